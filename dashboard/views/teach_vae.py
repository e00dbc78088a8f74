"""Teach: the VAE's ELBO (by Jensen, and as log p - KL), reparameterisation, the IWAE bound, and the
estimators of log p(x) against their cost (the runner's `estimators` report, zoo.demos.estimators)."""
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
               f"This run's own number is -L_{int(live[0]['k'])}, {gap:.3f} nats above the IS estimate of "
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
        ui.chart(ui.lines(is_k.assign(run=live[0]["name"]), "k", "nll", "run", log_x=True, rule=truth),
                        width="stretch")
        st.caption("-L_k against k for this run: it falls towards -log p(x). Dashed (bars only): the data's "
                   "own true NLL, a floor for every model's -log p(x), not this model's value. On the "
                   "runner's 200 report images: the tiles above average all test images.")


st.subheader("6. Estimators of log p(x) against their cost")
st.latex(r"\underbrace{\log \frac{1}{k}\sum_{i=1}^{k} p(x|z_i),\ z_i\sim p(z)}_{\text{naive Monte Carlo}}"
         r"\qquad \underbrace{\log \frac{1}{k}\sum_{i=1}^{k} \frac{p(x, z_i)}{q(z_i|x)},\ z_i\sim q(z|x)}"
         r"_{\text{importance sampling}}\qquad \underbrace{\log \frac{1}{C}\sum_{c=1}^{C} \prod_{t=1}^{T}"
         r" p(x|z_{c,t-1})^{\beta_t - \beta_{t-1}}}_{\text{AIS}}")
st.caption("Each is the log of an unbiased estimate of p(x) = E_p(z)[p(x|z)] (Isachenko, lecture 5), so a "
           "stochastic lower bound on log p(x). Drawing z from the prior wastes the draws where p(x|z) is "
           "negligible; q(z|x) aims them at the posterior (Burda et al.); AIS anneals from p(z) to p(z|x).")
ui.metric_row(m, [("prior MC NLL", "prior_mc_nll", "-log (1/k) sum_i p(x|z_i), z_i ~ p(z), with k = "
                   "prior_mc_k draws, on the images and with the k of IS-NLL"),
                  ("prior MC k", "prior_mc_k", "draws of the prior MC estimate"),
                  (f"IS-NLL, k = {m['is_k']:.0f}" if pd.notna(m.get("is_k")) else "IS-NLL", "is_nll",
                   "-L_k with q(z|x), on the test images: the same kind of estimate, its draws from q")])
if live:
    est = ui.live_report(url, live[0], "estimators", "log p(x) estimates against their cost")
    if est is not None and not {"method", "k", "steps", "cost", "nll"} <= set(est.columns):
        ui.placeholder("log p(x) estimates against their cost", "the run's report_estimators lacks its "
                       "columns (written by another version of the code?)")
    elif est is not None:
        ui.chart(ui.estimators_chart(est), width="stretch")
        exact = ("Dashed: this model's exact -log p(x) on the same images, by quadrature over its latent."
                 if "quadrature" in set(est["method"]) else "No exact value: the latent has more than 2 "
                 "dimensions.")
        st.caption("Mean -log p(x) estimate over the runner's first report images against the decoder "
                   "evaluations each costs per example (prior MC and IS: k; AIS: chains x ((steps - 1)"
                   "(leapfrog + 2) + 1), each HMC step one decoder pass with its gradient); bands: the range "
                   f"over repeats; prior MC with very few draws is far worse and runs off the top. {exact} "
                   "These are the runner's 8 report images: the tiles above average all test images.")
    ui.pictures(url, live[0])
