"""Teach: the flow's change of variables, and the flow read as a deterministic VAE."""
import streamlit as st

from dashboard import ui

url, r, live, m = ui.teach_page("Normalizing flow (RealNVP)", "Dinh et al. 2017; variational "
                                "dequantization of Ho et al. 2019.", "Flow")

st.subheader("1. Change of variables")
st.latex(r"z = f(y),\qquad \log p(y) = \underbrace{\log \mathcal{N}\big(f(y);\,0, I\big)}_{-\text{prior}} + "
         r"\underbrace{\log\left|\det \frac{\partial f}{\partial y}\right|}_{-\text{logdet}}")
st.subheader("2. Couplings make the determinant cheap")
st.latex(r"y'_{1:d} = y_{1:d},\quad y'_{d+1:D} = y_{d+1:D}\odot e^{s(y_{1:d})} + t(y_{1:d}),\qquad "
         r"\log\left|\det \tfrac{\partial y'}{\partial y}\right| = \textstyle\sum_j s_j(y_{1:d})")
st.subheader("3. A VAE whose encoder and decoder are one bijection")
st.latex(r"q(z|y) = \delta\big(z - f(y)\big),\quad p(y|z) = \delta\big(y - f^{-1}(z)\big)"
         r"\;\Rightarrow\; \text{no encoder gap: the ELBO is } \log p(y) \text{ itself}")
st.markdown("The only bound left is the one that turns a density on $\\mathbb{R}^D$ into probabilities of "
            "discrete images: dequantization, $v = x + u$, $u \\sim q(u|x)$ on $[0,1)^D$ (then $y$ = logit "
            "of $v/L$):")
st.latex(r"\log P(x) = \log \int_{[0,1)^D} p(x + u)\,du \;\ge\; "
         r"\mathbb{E}_{q(u|x)}\big[\log p(x+u) - \log q(u|x)\big]")
ui.metric_row(m, [("prior", "prior", "-log N(z): how typical the code is"),
                  ("logdet", "logdet", "-log|det df/dy|: the volume the flow stretches"),
                  ("logit", "logit", "the fixed data-to-logit map's Jacobian"),
                  ("dequantization", "dequantization", "log q(u|x); 0 for uniform noise"),
                  ("-log P(x) bound", "nll", "the sum of the four; IS-NLL tightens it")])
if live:
    nan = float("nan")
    st.caption(f"IS-NLL with k = {m.get('is_k', nan):.0f}: {m.get('is_nll', nan):.4g} nats. "
               "The *Latent explorer* decodes f(x) back to x exactly: the bijection at work.")
    ui.pictures(url, live[0])
