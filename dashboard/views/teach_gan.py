"""Teach: the GAN minimax game and its optimal discriminator; no likelihood, so n/a, never 0."""
import pandas as pd
import streamlit as st

from dashboard import data, ui

url, r = ui.start("GAN", "Goodfellow et al. 2014. A sampler without a density: its likelihood is n/a.",
                  stop=False)
live = ui.live_run(url, r, "GAN")
m = live[1] if live else pd.Series(dtype=float)

st.subheader("1. The minimax game")
st.latex(r"\min_G \max_D\ V(D, G) = \mathbb{E}_{x\sim p}\big[\log D(x)\big] + "
         r"\mathbb{E}_{z\sim p(z)}\big[\log\big(1 - D(G(z))\big)\big]")
st.subheader("2. The optimal discriminator")
st.latex(r"D^*(x) = \frac{p(x)}{p(x) + p_G(x)},\qquad V(D^*, G) = -\log 4 + 2\,\mathrm{JSD}\big(p \,\|\, p_G\big)")
st.markdown("At the optimum $p_G = p$, so $D^* = 1/2$ everywhere: below, D(real) and D(fake) should meet at 1/2. "
            "Without $\\log p_G(x)$ the leaderboard shows *n/a*; judge the samples by the sample metrics instead.")
c = st.columns(4)
ui.metric(c[0], "test nats", m, "nll", "n/a: a GAN has no likelihood")
for col, (name, label) in zip(c[1:], [("fcd", "FCD"), ("kid", "KID"), ("kl_emp_true", "KL(q^ || p), bars")]):
    ui.metric(col, label, m, name, "sample-quality metric (zoo.sample_metrics), when recorded")
if live:
    h = data.history(url, (int(live[0]["run_id"]),))
    h = h[h["name"].isin(["d_real", "d_fake"])]
    if h.empty:
        ui.placeholder("D(real) and D(fake)", "this run recorded no d_real / d_fake history")
    else:
        st.altair_chart(ui.lines(h, "epoch", "value", "name", rule=0.5), width="stretch")
    ui.pictures(url, live[0])
