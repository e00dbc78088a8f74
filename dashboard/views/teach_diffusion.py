"""Teach: diffusion's forward and reverse processes and its variational bound (VDM notation)."""
import streamlit as st

from dashboard import ui

url, r, live, m = ui.teach_page("Diffusion", "Ho et al. 2020; Kingma et al. 2021 (VDM), in the log-SNR "
                                "form gamma(t).", "Diffusion")

st.subheader("1. Forward: noise the data, no parameters")
st.latex(r"q(z_t \mid x) = \mathcal{N}\big(\alpha_t x,\ \sigma_t^2 I\big),\qquad "
         r"\alpha_t^2 = \mathrm{sigmoid}(-\gamma_t),\ \sigma_t^2 = \mathrm{sigmoid}(\gamma_t),\ t\in[0,1]")
st.subheader("2. Reverse: denoise with a learned guess of x")
st.latex(r"p(z_s \mid z_t) = q\big(z_s \mid z_t,\ x = \hat{x}(z_t)\big),\qquad "
         r"\hat{x}(z_t) = \big(z_t - \sigma_t\,\hat{\varepsilon}(z_t, t)\big)/\alpha_t,\quad s < t")
st.subheader("3. The variational bound")
st.latex(r"-\log p(x) \le \underbrace{\mathrm{KL}\big(q(z_1|x)\,\|\,\mathcal{N}(0,I)\big)}_{\text{prior}} + "
         r"\underbrace{\sum_{i=1}^{T}\mathbb{E}\,\mathrm{KL}\big(q(z_s|z_t,x)\,\|\,p(z_s|z_t)\big)}"
         r"_{\text{diffusion}} + "
         r"\underbrace{\mathbb{E}\big[-\log p(x \mid z_0)\big]}_{\text{reconstruction}}")
st.latex(r"\text{diffusion}_{T\to\infty} = \tfrac{1}{2}\,\mathbb{E}_{t\sim U(0,1),\,\varepsilon}"
         r"\big[\gamma'(t)\,\lVert \varepsilon - \hat{\varepsilon}(z_t, t)\rVert^2\big]")
ui.metric_row(m, [("prior", "prior", "KL(q(z_1|x) || N(0, I))"),
                  ("diffusion", "diffusion", "the denoising KLs summed over steps"),
                  ("reconstruction", "reconstruction", "-E log p(x|z_0) over the discrete levels"),
                  ("VLB: -log p(x) <=", "nll", "their sum, the run's test nats")])
if live:
    steps = ui.live_report(url, live[0], "timestep_loss", "loss per timestep")
    if steps is not None:
        st.altair_chart(ui.lines(steps.assign(run=live[0]["name"]), "t", "nats", "run"), width="stretch")
        st.caption("The diffusion term as a function of t: where along the noise schedule the bound is paid.")
    ui.pictures(url, live[0])
