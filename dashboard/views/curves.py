"""Curves: per-epoch training (solid) and validation (dashed) values, overlaid across runs."""
import streamlit as st

from dashboard import data, ui

url, r = ui.start("Curves", "Per-epoch values as the runner recorded them; running runs update as epochs "
                  "end.")
picked = ui.pick_runs(r, "Runs", key="curves_runs", default=8)
h = data.history(url, tuple(int(i) for i in picked["run_id"]))
if h.empty:
    st.info("No epochs recorded for these runs yet.")
    st.stop()
names = sorted({n.removeprefix("val_") for n in h["name"]})
default = [n for n in ("loss", "rate", "distortion", "d_loss", "g_loss") if n in names][:3] or names[:1]
terms = st.multiselect("Terms (validation dashed)", names, default=default, key="curves_terms")
c1, c2 = st.columns(2)
log_y = c1.toggle("Log scale", key="curves_log")
smooth = c2.slider("Smoothing (exponential moving average weight)", 0.0, 0.95, 0.0, 0.05, key="curves_smooth")

h = h.merge(picked[["run_id", "name"]].rename(columns={"name": "run"}), on="run_id")
for term in terms:
    df = h[h["name"].isin([term, f"val_{term}"])].copy()
    df["split"] = df["name"].map(lambda n: "validation" if n.startswith("val_") else "training")
    if smooth:
        df = df.sort_values("epoch")
        ewm = lambda v: v.ewm(alpha=1 - smooth).mean()  # noqa: E731
        df["value"] = df.groupby(["run", "split"])["value"].transform(ewm)
    st.subheader(term)
    ui.chart(ui.lines(df, "epoch", "value", "run", log_y=log_y, dash="split"), width="stretch")
