"""Samples: the saved sample grids of the chosen runs next to real test images; a seed redraws
fresh samples from the saved models (the only place here that loads TensorFlow, on demand). Below them,
for each class-conditional run, its class-per-row grid with the row labels and the numbers that judge it
(dashboard/conditional.py)."""
import streamlit as st

from dashboard import artifacts, data, ui
from dashboard import conditional as cond

url, r = ui.start("Samples", "Each run's saved sample grid beside real test images of the same data.")
fin = ui.finished(r)
if fin.empty:
    st.warning("No finished run on this dataset yet.")
    st.stop()
picked = ui.pick_runs(fin, "Runs", key="samples_runs")
arts = data.artifacts(url, tuple(int(i) for i in picked["run_id"]))  # the picked runs' rows only
c1, c2 = st.columns([1, 3])
redraw = c1.toggle("Redraw from the models", key="redraw",
                   help="loads each model (TensorFlow) and samples anew")
seed = c2.number_input("Seed", min_value=0, max_value=2**31 - 1, value=0, step=1, key="seed",
                       disabled=not redraw, help="equal seeds give equal samples")

cols = st.columns(1 + len(picked))
with cols[0]:
    ui.real_row(fin.iloc[0] if picked.empty else picked.iloc[0], n=16)
for col, (_, run) in zip(cols[1:], picked.iterrows()):
    with col:
        caption = f"{run['name']} ({run['badge']})"
        if not redraw:
            ui.image(artifacts.read_image(arts, run), caption)
            continue
        got = artifacts.redraw_samples(arts, run, 16, int(seed))
        if got.ok:
            st.image(ui.png(*got.value), caption=f"{caption}, seed {seed}", width="stretch",
                     output_format="PNG")
        else:
            ui.placeholder(caption, f"no samples to redraw from: {got.why}")

conditional = picked[picked["run_id"].isin(arts.loc[arts["name"] == cond.GRID, "run_id"])]
if not conditional.empty:
    st.subheader("Class-conditional runs: one class per row")
    st.caption("Row y of each grid holds samples drawn given the label y, from p(x | y) (lecture 16, "
               "conditional generation). Label agreement: the share of the run's metric samples, asked for "
               "with labels balanced over the classes, that a classifier puts in the class asked for "
               "(digits: the cached classifier behind fcd; bars: the true model's Bayes classifier); "
               "beside it that classifier's accuracy on real data. Numbers on the test split.")
    for _, run in conditional.iterrows():
        cond.show(url, arts, run)
