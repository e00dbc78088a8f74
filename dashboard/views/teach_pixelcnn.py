"""Teach: the PixelCNN's exact likelihood by the chain rule, pixel by pixel."""
import streamlit as st

from dashboard import ui

url, r, live, m = ui.teach_page("PixelCNN", "van den Oord et al. 2016 (gated PixelCNN). An exact "
                                "likelihood: no bound, no latent.", "PixelCNN")

st.subheader("1. The chain rule: any density is a product of conditionals")
st.latex(r"p(x) = \prod_{t=1}^{D} p(x_t \mid x_{<t}),\qquad "
         r"-\log p(x) = \sum_{t=1}^{D} -\log p(x_t \mid x_{<t})")
st.markdown("Pixels $t$ are taken in raster order (row by row, left to right; R, G, B within a pixel). "
            "Each conditional is a categorical (or Bernoulli) over the discrete levels, so the sum is the "
            "exact NLL of the discrete data.")
st.subheader("2. Masked convolutions keep it causal")
st.latex(r"h_t = f\big(x_{<t}\big)\ \text{(mask A at the input, mask B after)},\qquad "
         r"p(x_t \mid x_{<t}) = \mathrm{Cat}\big(x_t;\ \mathrm{softmax}(W h_t)\big)")
st.markdown("Training evaluates all $D$ conditionals in one pass; sampling must go one pixel at a time.")
ui.metric_row(m, [("-log p(x), exact", "nll", "the sum of the heat map below"),
                  ("bits / dim", "bits_per_dim", "-log p(x) / (D ln 2)"),
                  ("samples / s", "samples_per_sec", "the fast (row-cached) sampler"),
                  ("sampler speed-up", "sampler_speedup", "fast over the naive one-pixel-per-pass sampler")])
if live:
    heat = ui.live_report(url, live[0], "pixel_nll", "per-pixel NLL")
    if heat is not None:
        title = f"-log p(x_t | x_<t) per pixel: {heat['nats'].sum():.3f} nats in all"
        st.altair_chart(ui.heatmap(heat, title), width="content")
        st.caption("Each square is one term of the sum above, averaged over test images: the nats are spent "
                   "where the past says least about the pixel.")
    ui.pictures(url, live[0])
