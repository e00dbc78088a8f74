"""Teach: the VAE's ELBO (by Jensen, and as log p - KL), reparameterisation, and the IWAE bound."""
import pandas as pd
import streamlit as st

from dashboard import ui

url, r, live, m = ui.teach_page("VAE and IWAE", "Kingma & Welling 2014; Burda et al. 2016. The numbers "
                                "below are the chosen run's test means in nats.", "VAE")

st.subheader("1. A bound by Jensen's inequality")
st.latex(r"\log p(x) = \log \mathbb{E}_{q(z|x)}\!\left[\frac{p(x,z)}{q(z|x)}\right] \;\ge\; "
         r"\mathbb{E}_{q(z|x)}\!\left[\log p(x,z) - \log q(z|x)\right] = \mathrm{ELBO}(x)")
st.subheader("2. ... whose gap is a KL divergence")
st.latex(r"\mathrm{ELBO}(x) = \log p(x) - \mathrm{KL}\big(q(z|x)\,\|\,p(z|x)\big)")
st.subheader("3. ... and which splits into distortion and rate")
st.latex(r"-\mathrm{ELBO}(x) = \underbrace{-\mathbb{E}_{q(z|x)}\log p(x|z)}_{\text{distortion}} + "
         r"\underbrace{\mathrm{KL}\big(q(z|x)\,\|\,p(z)\big)}_{\text{rate}}")
ui.metric_row(m, [("distortion", "distortion", "-E_q log p(x|z)"),
                  ("rate", "rate", "KL(q(z|x) || p(z))"),
                  ("-ELBO (or -L_k)", "nll", "the run's own bound: distortion + rate (+ iw_gain for IWAE)"),
                  ("IS-NLL, about -log p(x)", "is_nll", "-L_k with the evaluation's k (is_k)")])
if live and pd.notna(m.get("is_nll")) and pd.notna(m.get("nll")):
    gap = m["nll"] - m["is_nll"]
    st.caption(f"So KL(q(z|x) || p(z|x)) is about {gap:.3f} nats here: the price of a Gaussian q(z|x) (-ELBO "
               "minus the IS estimate of -log p(x))." if live[0]["likelihood"] == "elbo" else
               f"This run's own number is -L_{live[0]['k']}, {gap:.3f} nats above the IS estimate of "
               "-log p(x): importance weighting already closed part of the ELBO's KL gap (section 5).")

st.subheader("4. The reparameterisation trick")
st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x)\odot\varepsilon,\quad \varepsilon\sim\mathcal{N}(0, I)"
         r"\;\Rightarrow\; \nabla_\phi\,\mathbb{E}_{q_\phi(z|x)}[f(z)] = "
         r"\mathbb{E}_{\varepsilon}\big[\nabla_\phi f(\mu_\phi(x) + \sigma_\phi(x)\odot\varepsilon)\big]")
st.caption("The noise moves out of the parameters, so one sample gives a low-variance gradient through mu "
           "and sigma.")

st.subheader("5. The importance-weighted bound")
st.latex(r"\mathcal{L}_k(x) = \mathbb{E}_{z_{1..k}\sim q}\Big[\log \frac{1}{k}\sum_{i=1}^{k} "
         r"\frac{p(x, z_i)}{q(z_i|x)}\Big],\qquad \mathrm{ELBO} = \mathcal{L}_1 \le \mathcal{L}_k \le "
         r"\mathcal{L}_{k+1} \le \log p(x)")
if live:
    is_k = ui.live_report(url, live[0], "is_vs_k", "-L_k against k")
    if is_k is not None:
        truth = m.get("data_nll") if pd.notna(m.get("data_nll")) else None
        st.altair_chart(ui.lines(is_k.assign(run=live[0]["name"]), "k", "nll", "run", log_x=True, rule=truth),
                        width="stretch")
        st.caption("-L_k against k for this run: it falls towards -log p(x) (dashed: the true NLL, bars "
                   "only).")
    ui.pictures(url, live[0])
