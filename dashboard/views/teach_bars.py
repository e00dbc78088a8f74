"""Teach: Paquet's 4x4 bars, the running example (an exact density, so every gap can be measured)."""
import json

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui
from zoo.data import bar_images, bars_entropy

BARS_SHOWN = 40  # one bar per run: the best ones

st.title("The running example: 4x4 bars")
st.markdown("Pick one of the four columns uniformly, light it, then flip every pixel independently with "
            "probability $\\epsilon$ = 0.1. With $b_c$ the image of bar $c$:")
st.latex(r"p(x) = \frac{1}{4}\sum_{c=1}^{4}\ \epsilon^{\,|x - b_c|}\,(1-\epsilon)^{\,16 - |x - b_c|},"
         r"\qquad H(p) = -\sum_{x \in \{0,1\}^{16}} p(x)\log p(x)")
c1, c2 = st.columns(2)
c1.image(ui.png(bar_images(), 2, ncols=4), caption="the four bars b_c: all the mass sits near these",
         output_format="PNG")
with c2:
    got = ui.real_row(pd.Series({"data_options": json.dumps({"name": "bars"}), "dataset": "bars"}), n=32,
                      caption="real bars: each is a bar with 10% of its pixels flipped")
H = bars_entropy()
st.metric("H(p): the lowest expected NLL of any model", f"{H:.4f} nats",
          help="computed here from zoo.data over all 2^16 images")
st.markdown("The data live near four points of a 16-D cube, so one continuous latent coordinate can walk "
            "through all four bars: a **1-D manifold**. A VAE with `latent_dim: 1` (the bars config) "
            "learns such a curve; open *Latent explorer* on it to see E[x|z] along z. Every model below is "
            "judged by how far its test nats sit above H(p).")

url = data.db_url()
dataset, experiment = ui.scope(url)  # the sidebar's experiment, when it is a bars one
w = data.wide(url, "bars", experiment if dataset == "bars" else None, ("nll",))  # test nats only (SQL)
w = w[w["status"] == "FINISHED"]
if w.empty or "nll" not in w:
    st.info("No finished bars runs in this store yet: "
            "`python -m experiments run experiments/configs/bars.yaml`.")
else:
    plot = w.dropna(subset=["nll"]).sort_values("nll", kind="stable").assign(gap=lambda d: d["nll"] - H)
    plot = ui.capped(plot, BARS_SHOWN, "finished bars runs (by test nats)", "best",
                     "choose the bars dataset and an experiment in the sidebar to narrow them")
    chart = alt.Chart(plot).mark_bar().encode(
        x=alt.X("gap:Q", title="test nats - H(p)"), y=alt.Y("name:N", title=None),
        color=alt.Color("badge:N", title="kind"), tooltip=["name", "badge", "nll", "gap"])
    ui.chart(chart.properties(height=alt.Step(28)), width="stretch")
    st.caption("A bound (ELBO, IWAE-k) can sit above H(p) even for a perfect model; an exact NLL cannot go "
               "below it except by test-split noise.")
