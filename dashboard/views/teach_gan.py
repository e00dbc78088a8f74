"""Teach: the GAN minimax game, its optimal discriminator, and the AIS estimate of its likelihood
(plain GANs: n/a, never 0)."""
import streamlit as st

from dashboard import data, ui
from zoo.vocabulary import SAMPLE_METRICS

url, r, live, m = ui.teach_page("GAN", "Goodfellow et al. 2014. A sampler without a density: its "
                                "likelihood is n/a unless estimated by AIS.", "GAN")

st.subheader("1. The minimax game")
st.latex(r"\min_G \max_D\ V(D, G) = \mathbb{E}_{x\sim p}\big[\log D(x)\big] + "
         r"\mathbb{E}_{z\sim p(z)}\big[\log\big(1 - D(G(z))\big)\big]")
st.subheader("2. The optimal discriminator")
st.latex(r"D^*(x) = \frac{p(x)}{p(x) + p_G(x)},\qquad "
         r"V(D^*, G) = -\log 4 + 2\,\mathrm{JSD}\big(p \,\|\, p_G\big)")
st.markdown("At the optimum $p_G = p$, so $D^* = 1/2$ everywhere: below, D(real) and D(fake) should meet "
            "at 1/2. Without $\\log p_G(x)$ a plain GAN's nats are *n/a*; judge its samples by the sample "
            "metrics.")
st.subheader("3. A likelihood anyway: annealed importance sampling")
st.latex(r"\log P(x) \gtrsim \log \tfrac{1}{C}\textstyle\sum_c w_c,\quad "
         r"\log w_c = \sum_{t=1}^{T} (\beta_t - \beta_{t-1}) \log P(x \mid z^c_{t-1}),\quad "
         r"P(x \mid z) = \prod_i \int_{\mathrm{bin}(x_i)} \mathcal{N}(u;\, G(z)_i, \sigma^2)\,du")
st.markdown("With `ais_steps > 0` (Wu et al. 2017) HMC chains anneal from $p(z)$ to $p(z \\mid x)$; the "
            "Gaussian around $G(z)$ is integrated over each level's bin, so the number is log P of the same "
            "discrete data as every other family (kind **AIS**, a stochastic lower bound; $\\sigma$ tuned on "
            "validation).")
kind = f" ({live[0]['badge']})" if live else ""  # AIS, or n/a without a likelihood
nats = (f"test nats{kind}", "nll", "AIS estimate when the run has ais_steps > 0; else n/a (no likelihood)")
quality = [(label, name, f"{SAMPLE_METRICS[name].label} (zoo.sample_metrics), when recorded")
           for name, label in [("fcd", "FCD"), ("kid", "KID"), ("kl_emp_true", "KL(q^ || p), bars")]]
ui.metric_row(m, [nats, *quality])
if live:
    h = data.history(url, (int(live[0]["run_id"]),), ("d_real", "d_fake"))
    if h.empty:
        ui.placeholder("D(real) and D(fake)", "this run recorded no d_real / d_fake history")
    else:
        ui.chart(ui.lines(h, "epoch", "value", "name", rule=0.5), width="stretch")
    ui.pictures(url, live[0])
