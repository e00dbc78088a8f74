"""Samples: the saved sample grids of the chosen runs next to real test images; a seed redraws
fresh samples from the saved models (the only place here that loads TensorFlow, on demand)."""
import streamlit as st

from dashboard import data, ui

url, r = ui.start("Samples", "Each run's saved sample grid beside real test images of the same data.")
fin = ui.finished(r)
if fin.empty:
    st.warning("No finished run on this dataset yet.")
    st.stop()
picked = ui.pick_runs(fin, "Runs", key="samples_runs")
arts = data.artifacts(url)
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
        model = data.artifact(arts, run["run_id"], "model")
        if not redraw:
            ui.image(data.artifact(arts, run["run_id"], "samples_png"), caption)
        elif model is None:
            ui.placeholder(caption, "no saved model to redraw from (missing artifact)")
        else:
            try:
                x = data.redraw(str(model), 16, int(seed))
            except Exception as err:  # noqa: BLE001 - an unloadable model is shown, not raised
                ui.placeholder(caption, f"could not load or sample the model: {type(err).__name__}: {err}")
            else:
                st.image(ui.png(x, data.load_model(str(model)).levels), caption=f"{caption}, seed {seed}",
                         width="stretch", output_format="PNG")
