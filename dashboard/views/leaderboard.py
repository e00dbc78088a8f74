"""Leaderboard: every finished run on the dataset, ranked by test nats, with the kind of number."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui
from zoo.data import bars_entropy

CHART_ROWS = 40  # the chart draws the best rows only: one line each

url, r = ui.start("Leaderboard", "Test negative log-likelihood of the discrete data, nats per example "
                  "(lower is better). Click a column header to sort.")
w = data.wide(url, *ui.scope(url), data.LEADERBOARD_METRICS)  # these runs' metrics only, read in SQL
left, right = st.columns(2)
aggregate = left.toggle("One row per model (mean over seeds, ± sd)", key="aggregate")
where = right.toggle("Where each run ran (host, devices, replicas, precision, versions)", key="where")
ranked, apart = data.leaderboard(w, aggregate, where)

ui.kind_badges(ranked["kind"])
st.markdown("**Bounds and exact values are different kinds of number.** *exact* is the model's "
            "true -log P(x). *ELBO*, *IWAE-k* and *VLB* are bounds: the true NLL is at most the number "
            "shown (the model may be better than it says), so a bound beside an exact value is not a "
            "like-for-like race. *AIS* is a stochastic estimate. *IS-NLL* is the k-sample "
            "importance-weighted bound, tighter than the training bound. *n/a*: the model has no likelihood "
            "(never 0).")
if r["dataset"].iloc[0] == "bars":
    st.caption(f"Bars: the entropy H(p) = {bars_entropy():.4f} nats is the floor. *gap to optimum* = "
               "nats - the true -log p(x) of the same test images; *population gap* = the model's NLL on all "
               "2^16 images weighted by p(x), minus H(p).")

free = ranked["kind"] == "n/a"  # no likelihood: listed, never ranked by nats (and never shown as 0)
ranked, free = ranked[~free], ranked[free].drop(columns="rank")
if ranked.empty and free.empty:
    st.warning("No finished run on this dataset yet.")
if not ranked.empty:
    num = [c for c in ranked.columns if pd.api.types.is_float_dtype(ranked[c])]
    fmt = {c: "{:,.0f}" if c in ("params", "samples/s") else "{:.4g}" for c in num}
    kinds = list(dict.fromkeys(ranked["kind"]))
    st.dataframe(ranked.assign(kind=ranked["kind"].map(lambda b: [b])).style.format(fmt), hide_index=True,
                 column_config={"kind": st.column_config.MultiselectColumn(
                     "kind", options=kinds, color=[data.badge_colour(k) for k in kinds],
                     help="the kind of number in *nats*"), **ui.sample_metric_columns(ranked)})
    st.caption("An empty cell (None) was not measured for that run, e.g. IS-NLL of a model without latents.")
    plot = ranked.dropna(subset=["nats"])
    plot = ui.capped(plot, CHART_ROWS, "ranked rows in the chart (the table lists them all)", "best")
    err = "± sd" if aggregate else "± se"
    plot = plot.assign(who=plot["model"] + (plot["seed"].map(lambda s: f" s{s}") if "seed" in plot else ""),
                       lo=plot["nats"] - plot[err].fillna(0), hi=plot["nats"] + plot[err].fillna(0))
    base = alt.Chart(plot).encode(y=alt.Y("who:N", sort=list(plot["who"]), title=None))
    colour = alt.Color("kind:N", scale=alt.Scale(domain=kinds, range=[data.badge_colour(k) for k in kinds]))
    chart = base.mark_rule().encode(x=alt.X("lo:Q", scale=alt.Scale(zero=False), title="test nats"), x2="hi")
    chart += base.mark_point(filled=True, size=80).encode(x="nats:Q", color=colour,
                                                          tooltip=["model", "kind", "nats", err])
    if "IS-NLL" in plot:
        chart += base.mark_point(shape="diamond", size=60).encode(x="IS-NLL:Q", tooltip=["model", "IS-NLL"])
    if "gap to optimum" in plot:
        floor = float((plot["nats"] - plot["gap to optimum"]).mean())
        rule = alt.Chart(pd.DataFrame({"x": [floor]})).mark_rule(strokeDash=[4, 4], color="gray")
        chart += rule.encode(x="x")
    ui.chart(chart.properties(height=alt.Step(28)), width="stretch")
    st.caption("Dots: test nats, with a line of ± its standard error (or the seed sd); diamonds: IS-NLL; "
               "dashed: the true NLL of the same test images (bars only).")
if not free.empty:
    st.subheader("No likelihood: not ranked by nats")
    st.caption("These models (e.g. a GAN) only sample; judge them by the sample metrics, where recorded.")
    nats = [c for c in ("nats", "± se", "± sd", "bits/dim", "gap to optimum", "population gap") if c in free]
    free = free.astype({c: object for c in nats}).assign(**{c: "n/a" for c in nats}).dropna(axis=1, how="all")
    st.dataframe(free, hide_index=True, column_config=ui.sample_metric_columns(free))

if not apart.empty:
    st.subheader("Not ranked: failed, diverged or still running")
    st.dataframe(apart, hide_index=True)

listed = pd.concat([ranked, free])
if "run" in listed and not listed.empty:  # (not in the one-row-per-model view)
    with st.expander("Every number a run recorded, with its kind and units"):
        names = {f"#{int(r)} {m} s{int(s)}": int(r) for r, m, s in zip(listed["run"], listed["model"],
                                                                         listed["seed"])}
        pick = st.selectbox("Run", list(names), key="metrics_of_run")
        rows = data.run_metric_rows(url, names[pick])
        st.dataframe(rows, hide_index=True,
                     column_config={"value": st.column_config.NumberColumn(format="%.6g")})
        st.caption("kind: what a number is (a likelihood kind; `classifier` for the sample metrics); units: "
                   "nats are per example, bits/dim per sub-pixel, fractions in [0, 1].")
