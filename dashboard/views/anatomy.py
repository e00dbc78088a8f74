"""Bound anatomy: where each family's number comes from, from its terms and saved reports. Each tab draws
the best SHOWN runs (by test nats) of the dataset and experiment chosen in the sidebar."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import artifacts, data, ui

SHOWN = 10  # runs per tab: one point, bar, line or heat map each
ESTIMATOR_RUNS = 4  # runs whose estimators report the "IS vs k" tab draws (one chart each)
ESTIMATOR_COLUMNS = {"method", "k", "steps", "cost", "nll"}  # what the chart reads of report_estimators
TERMS = ("nll", "data_nll", "rate", "distortion", "iw_gain", "prior", "logdet", "logit", "dequantization",
         "diffusion", "reconstruction")  # the test metrics this page draws

url, r = ui.start("Bound anatomy", "Each family's -log P(x) taken apart: the terms it sums (test means, "
                  "nats) and the reports the runner saved.")
scope = ui.scope(url)
w = data.wide(url, *scope, TERMS)  # these runs' terms only, read in SQL
fin = ui.finished(r)
truth = float(w.loc[w["run_id"].isin(fin["run_id"]), "data_nll"].mean()) if "data_nll" in w else None
truth = truth if truth == truth else None  # NaN -> None
tabs = st.tabs(["VAE", "IS vs k", "Flow", "PixelCNN", "Diffusion", "GAN"])


def best(runs, what):
    """The best SHOWN of `runs` by test nats (no nats last, then the latest), with a note when capped."""
    return ui.capped(ui.by_nll(runs, w), SHOWN, f"{what} (by test nats)", "best")


def reports(runs, name, what):
    """({run name: report frame} of the best SHOWN runs that saved report_<name>, how many saved one that
    cannot be read): a placeholder naming the file and why for each of those; runs that recorded none
    are skipped. Only the report_<name> rows of the finished runs are read (SQL)."""
    rows = data.artifacts(url, None, (f"report_{name}",), scope[0], scope[1], "FINISHED")
    got, bad = {}, 0
    runs = best(runs[runs["run_id"].isin(rows["run_id"])], f"runs with a saved report ({what})")
    for _, run in runs.iterrows():
        arts = rows[rows["run_id"] == run["run_id"]]
        read = artifacts.read_report(arts, run, name)
        if read.ok:
            got[run["name"]] = read.value
        elif read.file:
            ui.placeholder(f"{what} of {run['name']}", read.why)
            bad += 1
    return got, bad


with tabs[0]:
    st.markdown(r"$-\mathrm{ELBO}$ = **distortion** $-\mathbb{E}_q\log p(x|z)$ + **rate** "
                r"$\mathrm{KL}(q(z|x)\,\|\,p(z))$, the nats the code carries. Runs on one dashed diagonal "
                "have the same ELBO; IWAE adds iw_gain <= 0.")
    v = w[w["run_id"].isin(ui.finished(r, "VAE")["run_id"])]
    terms = ["rate", "distortion", "nll"]  # a run recorded without them (another version) is not drawn
    v = v.dropna(subset=terms) if set(terms) <= set(v.columns) else v.iloc[:0]
    v = best(v, "VAE runs")
    if v.empty:
        ui.no_runs("VAE")
    else:
        pts = alt.Chart(v).mark_point(filled=True, size=90).encode(
            x=alt.X("rate:Q", title="rate (nats)"), y=alt.Y("distortion:Q", title="distortion (nats)"),
            color="name:N", tooltip=["name", "rate", "distortion", "nll"])
        span = (0.0, 1.5 * float(v["rate"].max()) + 0.5)  # the diagonals near the runs only
        iso = pd.DataFrame([{"name": n, "rate": x, "distortion": e - x} for n, e in zip(v["name"], v["nll"])
                            for x in span])
        diag = alt.Chart(iso).mark_line(strokeDash=[3, 3], opacity=0.4).encode(x="rate", y="distortion",
                                                                                color="name")
        ui.chart((diag + pts).properties(height=320), width="stretch")
        ui.chart(ui.terms_bars(w, v, ["distortion", "rate", "iw_gain"]), width="stretch")

with tabs[1]:
    st.markdown(r"$\log p(x) \ge \mathcal{L}_k = \mathbb{E}\log\frac{1}{k}\sum_i \frac{p(x,z_i)}{q(z_i|x)}$, "
                r"rising with k towards log p(x) (Burda et al. 2016). Mean $-\mathcal{L}_k$ over test "
                "images; dashed (bars): the data's own true NLL, a floor for every model, not a model's "
                "value.")
    got, bad = reports(fin, "is_vs_k", "-L_k against k")
    if not got and not bad:
        ui.no_runs("with an importance-sampling estimate (VAE, IWAE, flow)")
    elif got:
        df = pd.concat([d.assign(run=n) for n, d in got.items()])
        ui.chart(ui.lines(df, "k", "nll", "run", log_x=True, rule=truth), width="stretch")
    st.markdown(r"**Prior sampling vs importance sampling vs AIS**, against the decoder evaluations each "
                r"costs per example: $\log\frac{1}{k}\sum_i p(x|z_i)$, $z_i\sim p(z)$ (naive Monte Carlo, "
                r"Isachenko), the same with $z_i\sim q(z|x)$ and weights $p(x,z_i)/q(z_i|x)$, and AIS "
                "(Wu et al. 2017). Bands: the range over repeats; dashed: the model's exact -log p(x) by "
                "quadrature (latents of 1 or 2 dimensions).")
    got, bad = reports(fin, "estimators", "log p(x) estimates against their cost")
    if not got and not bad:
        ui.no_runs("with a decoder p(x|z) (VAE, IWAE, GAN)")
    if len(got) > ESTIMATOR_RUNS:
        st.caption(f"The best {ESTIMATOR_RUNS} of these runs are drawn.")
    cols = st.columns(2)
    for i, (n, df) in enumerate(list(got.items())[:ESTIMATOR_RUNS]):
        with cols[i % 2]:
            if ESTIMATOR_COLUMNS <= set(df.columns):
                ui.chart(ui.estimators_chart(df, n), width="stretch")
            else:
                missing = sorted(ESTIMATOR_COLUMNS - set(df.columns))
                ui.placeholder(f"estimators of {n}", f"its report_estimators lacks the columns {missing} "
                               "(written by another version of the code?)")

with tabs[2]:
    st.markdown(r"$-\log p(x)$ = **prior** $-\log\mathcal{N}(f(y))$ + **logdet** "
                r"$-\log|\det\partial f/\partial y|$ (the flow's volume change) + **logit** (the fixed data "
                r"transform) + **dequantization** $\log q(u|x)$ (0 for uniform noise).")
    f = best(ui.finished(r, "Flow"), "Flow runs")
    chart = ui.terms_bars(w, f, ["prior", "logdet", "logit", "dequantization"])
    if chart is None:
        ui.no_runs("Flow")
    else:
        ui.chart(chart, width="stretch")

with tabs[3]:
    st.markdown(r"$-\log p(x) = \sum_t -\log p(x_t \mid x_{<t})$: each pixel's share of the exact NLL, "
                "averaged over test images (raster order: left to right, top to bottom).")
    got, bad = reports(ui.finished(r, "PixelCNN"), "pixel_nll", "per-pixel NLL")
    if not got and not bad:
        ui.no_runs("PixelCNN")
    for n, df in got.items():
        title = f"{n}: {df['nats'].sum():.3f} nats in all (the report images)"
        ui.chart(ui.heatmap(df, title), width="content")

with tabs[4]:
    st.markdown(r"$-\log p(x) \le$ **prior** + **diffusion** + **reconstruction** (the VLB); the diffusion "
                "term spread over the timesteps t shows where along the noise schedule the bound is paid.")
    d = ui.finished(r, "Diffusion")
    got, _ = reports(d, "timestep_loss", "loss per timestep")
    if d.empty:
        ui.no_runs("Diffusion")
    elif got:
        df = pd.concat([g.assign(run=n) for n, g in got.items()])
        ui.chart(ui.lines(df, "t", "nats", "run"), width="stretch")
    chart = ui.terms_bars(w, best(d, "Diffusion runs"), ["prior", "diffusion", "reconstruction"])
    if chart is not None:
        ui.chart(chart, width="stretch")

with tabs[5]:
    st.markdown(r"**D(real)** and **D(fake)** over training: the optimal discriminator $D^* = p/(p + p_G)$ "
                "is 1/2 everywhere once $p_G = p$ (dashed). A GAN has no likelihood: its nats are n/a.")
    g = best(ui.finished(r, "GAN"), "GAN runs")
    h = data.history(url, tuple(int(i) for i in g["run_id"]), ("d_real", "d_fake")) if not g.empty \
        else pd.DataFrame()
    if g.empty:
        ui.no_runs("GAN")
    elif h.empty:
        st.info("These GAN runs recorded no d_real / d_fake.")
    else:
        h = h.merge(g[["run_id", "name"]].rename(columns={"name": "run"}), on="run_id")
        ui.chart(ui.lines(h, "epoch", "value", "run", dash="name", rule=0.5), width="stretch")
