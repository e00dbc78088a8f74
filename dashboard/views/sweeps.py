"""Sweeps: a metric (by default the test nats) against a swept hyper-parameter, one point per seed, the mean
over seeds and the min-max band; with two swept keys, one on x and the others as colour. A sweep is a
config entry's `sweep` (experiments/sweeps.py), or runs of one model that differ in one hyper-parameter."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui

EXAMPLE = """models:
  - model: vae
    hparams: {width: 256, depth: 2}
    sweep: {latent_dim: [2, 5, 10, 20]}   # one run per value: vae-latent_dim2, ..."""
LOG_RATIO = 10  # log x by default when the values span more than this factor (k = 1, 5, 50)

url, r = ui.start("Sweeps", "One hyper-parameter swept over values: a metric against the value, one point "
                  "per seed, the mean over seeds (line) and the range (band).")
s = data.sweeps(url, *ui.scope(url))
if s.empty:
    st.info("No sweep among the finished runs here. Sweep a hyper-parameter in a config entry (one run "
            "per value; experiments/configs/digits_sweeps.yaml), e.g.:")
    st.code(EXAMPLE, language="yaml")
    st.stop()

declared = s.drop_duplicates("sweep").set_index("sweep")["declared"]
c1, c2 = st.columns(2)
name = c1.selectbox("Sweep", list(declared.index), key="sweeps_sweep", format_func=lambda n: n if declared[n]
                    else f"{n} (entries differing in one hyper-parameter)")
one = s[s["sweep"] == name]
keys = list(dict.fromkeys(one["key"]))
values = one.pivot(index="run_id", columns="key", values="value")[keys]
values = values[values.index.isin(r["run_id"])]  # (two cached reads: a run newer than the other is left out)
m = data.metric_rows(url, tuple(int(i) for i in values.index))
metrics = sorted(set(m["name"]))
if not metrics:
    st.info("These runs recorded no metrics.")
    st.stop()
metric = c2.selectbox("Metric", metrics, index=metrics.index("nll") if "nll" in metrics else 0,
                      key="sweeps_metric")
x = st.radio("On the x axis", keys, horizontal=True, key="sweeps_x") if len(keys) > 1 else keys[0]
others = [k for k in keys if k != x]

rows = m[m["name"] == metric].set_index("run_id")
runs = r.set_index("run_id").loc[values.index]
pts = pd.DataFrame({"run": runs["name"], "label": runs["label"], "seed": runs["seed"],
                    x: values[x], "value": rows["value"].reindex(values.index)})
numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pts[x])
pts[x] = pd.to_numeric(pts[x]) if numeric else pts[x].map(str)
colour = " · ".join(others)
if others:
    pts[colour] = [" · ".join(f"{k}={values.at[i, k]}" for k in others) for i in values.index]
missing = int(pts["value"].isna().sum())
pts = pts.dropna(subset=["value"]).sort_values([x, "seed"])
if pts.empty:
    st.info(f"No run of this sweep recorded {metric}.")
    st.stop()

by = [x, *([colour] if others else [])]
agg = pts.groupby(by, sort=True)["value"].agg(["mean", "min", "max", "std", "count"]).reset_index()
agg = agg.rename(columns={"count": "seeds", "std": "sd"})
labels = pts.groupby(by, sort=True)["label"].agg(lambda v: ", ".join(dict.fromkeys(v)))
agg.insert(len(by), "runs", labels.values)

split = rows["split"].iloc[0] if not rows.empty else "test"
units = rows["units"].dropna().iloc[0] if "units" in rows and rows["units"].notna().any() else None
kinds = list(dict.fromkeys(data.badge(k) for k in rows["kind"].dropna())) if "kind" in rows else []
about = "; ".join(filter(None, [units and (f"{units} per example" if units == "nats" else units), *kinds]))
title = f"{split} {metric}" + (f" ({about})" if about else "")
positive = numeric and (pts[x] > 0).all()
wide_span = bool(positive and pts[x].max() / pts[x].min() > LOG_RATIO)
log_x = positive and st.toggle("Log x", value=wide_span, key=f"sweeps_logx_{name}_{x}")  # default per sweep

whole = numeric and all(float(v).is_integer() for v in pts[x])
ticks = alt.Axis(values=sorted(set(pts[x])), format="d" if whole else "~g") if numeric else alt.Axis()
xs = (alt.X(f"{x}:Q", scale=alt.Scale(type="log" if log_x else "linear", zero=False), title=x, axis=ticks)
      if numeric else alt.X(f"{x}:O", sort=list(dict.fromkeys(pts[x])), title=x))
enc = {"color": alt.Color(f"{colour}:N", title=colour)} if others else {}
band = alt.Chart(agg).mark_area(opacity=0.2).encode(x=xs, y=alt.Y("min:Q"), y2="max:Q", **enc)
mean = alt.Chart(agg).mark_line(point=alt.OverlayMarkDef(filled=True, size=70)).encode(
    x=xs, y=alt.Y("mean:Q", title=title, scale=alt.Scale(zero=False)),
    tooltip=[*by, "mean", "min", "max", "seeds"], **enc)
seeds = alt.Chart(pts).mark_point(size=50, opacity=0.8).encode(
    x=xs, y="value:Q", tooltip=["run", "seed", x, "value"], **enc)
ui.chart((band + mean + seeds).properties(height=int(380 * (1.6 if ui.presenting() else 1))), width="stretch")
st.caption(f"Open circles: one run (seed) each; line and filled dots: the mean over seeds; band: their "
           f"min–max. {len(pts)} runs.")
if len(set(rows["kind"].dropna())) > 0 and len(set(runs["badge"])) > 1:
    st.caption("Each run's number is its own kind (" + ", ".join(dict.fromkeys(runs["badge"])) + "): e.g. an "
               "IWAE run's nll is its L_k bound at its own k, which tightens as k grows; is_nll compares the "
               "runs with one estimator (eval.is_k importance samples).")
if missing:
    st.caption(f"{missing} run(s) of this sweep recorded no {metric}.")
st.dataframe(agg, hide_index=True, column_config={
    c: st.column_config.NumberColumn(format="%.4g") for c in ("mean", "min", "max", "sd")})
