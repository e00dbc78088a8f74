"""Teach: the PixelCNN's exact likelihood by the chain rule, pixel by pixel."""
import altair as alt
import numpy as np
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
        title = (f"-log p(x_t | x_<t) per pixel: {heat['nats'].sum():.3f} nats in all on the runner's 200 "
                 "report images (the tile: all test images)")
        ui.chart(ui.heatmap(heat, title), width="content")
        st.caption("Each square is one term of the sum above, averaged over test images: the nats are spent "
                   "where the past says least about the pixel.")
    ui.pictures(url, live[0])


# --- 3. how it writes (live: loads the model) ---------------------------------------------------------
IMAGES, SNAPSHOTS, PER_CLASS = 4, 8, 8  # canvases drawn, snapshots of each, samples per class row


@st.cache_data(max_entries=16, show_spinner="Sampling sub-pixel by sub-pixel ...")
def canvases(url: str, run_id: int, seed: int, _model):
    """(strip [IMAGES * SNAPSHOTS, H, W, C] floats, unwritten as a checkerboard, counts, nats frame, the
    classes drawn or None)."""
    from zoo.demos import pixelcnn as demo

    out = demo.partial_canvases(_model, IMAGES, seed=seed, snapshots=SNAPSHOTS)
    strip = np.swapaxes(demo.shown(out, _model.levels), 0, 1)  # [IMAGES, SNAPSHOTS, H, W, C]
    return strip.reshape(-1, *_model.data_shape), out.counts, out.nats, out.labels


@st.cache_data(max_entries=32, show_spinner="Differentiating the logits ...")
def field(url: str, run_id: int, row: int, col: int, chan: int, _model, _x):
    """(gradient table, non-zero count, reach count, earlier sub-pixels) of sub-pixel (row, col, chan)."""
    from zoo.demos import pixelcnn as demo

    labels = np.zeros(len(_x), np.int32) if _model.num_classes else None  # given y = 0
    grad = demo.receptive_field(_model, _x, row, col, chan, labels=labels)
    _, w, c = _model.data_shape
    return demo.field_table(grad), int((grad > 0).sum()), int(demo.reach(_model, row, col, chan).sum()), \
        (row * w + col) * c + chan


@st.cache_data(max_entries=16, show_spinner="Sampling one class per row ...")
def classes(url: str, run_id: int, seed: int, _model):
    from zoo.demos import pixelcnn as demo

    return demo.class_grid(_model, PER_CLASS, seed=seed)[1]


def field_map(df, row: int, col: int, chan: int) -> alt.Chart:
    """The receptive field as a heat map (one panel per channel), the chosen sub-pixel outlined."""
    df = df.assign(chosen=(df["row"] == row) & (df["col"] == col) & (df["channel"] == chan))
    step = max(8, min(40, 320 // (int(df["col"].max()) + 1)))
    chart = alt.Chart(df).mark_rect(strokeWidth=3).encode(
        x=alt.X("col:O", title="column"), y=alt.Y("row:O", title="row"),
        color=alt.Color("gradient:Q", scale=alt.Scale(scheme="viridis")),
        stroke=alt.condition("datum.chosen", alt.value("red"), alt.value(None)),
        tooltip=["row", "col", "channel", "gradient"]).properties(width=alt.Step(step), height=alt.Step(step))
    return chart.facet(column="channel:O") if df["channel"].nunique() > 1 else chart


def writes(run, model, x, levels) -> None:
    rid = int(run["run_id"])
    h, w, c = model.data_shape
    st.markdown("**Generation order**: the sampler writes one sub-pixel per network pass, from the corner.")
    left, right = st.columns([2, 3])
    with left:
        st.latex(r"p(x) = \prod_{i=1}^{n} p(x_i \mid x_1, \ldots, x_{i-1})")
        st.latex(r"-\log p(x_{<k}) = \sum_{i<k} -\log p(x_i \mid x_{<i})")
        seed = st.number_input("Seed", 0, 10_000, 0, key="pixelcnn_seed")
    strip, counts, nats, drawn = canvases(url, rid, int(seed), model)
    given = "" if drawn is None else f" (rows: classes y = {', '.join(map(str, drawn))}, drawn uniformly)"
    with right:
        st.image(ui.png(strip, levels, ncols=len(counts)), output_format="PNG", width="stretch",
                 caption="after " + ", ".join(map(str, counts)) + " sub-pixels (checkered: not yet "
                         f"written); the last column is model.sample({IMAGES}, seed={seed})" + given)
        ui.chart(ui.lines(nats.astype({"image": str}), "written", "nats", "image", height=200),
                        width="stretch")
    last = nats[nats["written"] == counts[-1]]["nats"]
    st.caption("Nats spent so far on each image: each sub-pixel adds -log p(x_i | x_<i); the ends are the "
               "samples' own -log p(x): " + ", ".join(f"{v:.3f}" for v in last))

    st.markdown("**The receptive field** of one sub-pixel: which inputs its logits move with.")
    left, right = st.columns([2, 3])
    with left:
        st.latex(r"\frac{\partial\, \mathrm{logits}_t(x)}{\partial x_s} = 0 \quad \text{for every } s \ge t")
        st.caption("Mask A at the input (a sub-pixel never sees itself), mask B after it.")
        pick = st.columns(3)
        row = pick[0].number_input("Row", 0, h - 1, h // 2, key="pixelcnn_row")
        col = pick[1].number_input("Column", 0, w - 1, w // 2, key="pixelcnn_col")
        chan = pick[2].number_input("Channel", 0, c - 1, 0, key="pixelcnn_channel")
        table, nonzero, reach, earlier = field(url, rid, int(row), int(col), int(chan), model, x)
        tiles = st.columns(3)
        tiles[0].metric("before it", earlier, help="t: the sub-pixels before it in raster order")
        tiles[1].metric("in reach", reach, help="the stacks' reach: depth x (kernel // 2) rows up and "
                        "columns either side, and to the left: the gated PixelCNN has no blind spot")
        tiles[2].metric("non-zero", nonzero, help="sub-pixels with mean |d logits / d x| > 0 over the test "
                        "images")
    with right:
        ui.chart(field_map(table, int(row), int(col), int(chan)), width="content")
        st.caption(f"mean |d logits / d x| over {len(x)} test images" + (", given y = 0" if model.num_classes
                   else "") + "; red: the chosen sub-pixel")

    st.markdown("**Conditional generation**: the same network given a class h = y as a bias of every block.")
    left, right = st.columns([2, 3])
    left.latex(r"p(x \mid h) = \prod_{i=1}^{n} p(x_i \mid x_1, \ldots, x_{i-1}, h)")
    if not model.num_classes:
        right.info("This run is unconditional (num_classes 0): pick a class-conditional PixelCNN run "
                   "(trained with num_classes > 0) for one class per row.")
    else:
        grid = classes(url, rid, int(seed), model)
        right.image(ui.png(grid, levels, ncols=PER_CLASS), output_format="PNG", width="stretch",
                    caption=f"row y: {PER_CLASS} samples of p(x | y), y = 0 .. {model.num_classes - 1}")


if live:
    st.subheader("3. How the PixelCNN writes")
    ui.live_section(url, live[0], "partial canvases, a receptive field and one class per row",
                    "pixelcnn_live", ("params", "pixel_nll"), writes)
