"""Samples: the saved sample grids of the chosen runs next to real test images; a seed redraws
fresh samples from the saved models (the only place here that loads TensorFlow, on demand)."""
import streamlit as st

from dashboard import artifacts, data, ui

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
