"""Teach: diffusion's forward and reverse processes and its variational bound (VDM notation)."""
import numpy as np
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
        ui.chart(ui.lines(steps.assign(run=live[0]["name"]), "t", "nats", "run"), width="stretch")
        st.caption("The diffusion term as a function of t: where along the noise schedule the bound is paid.")
    ui.pictures(url, live[0])


# --- 4. in motion (live: loads the model) ------------------------------------------------------------
TIMES = [i / 8 for i in range(9)]  # the forward strip's t
DRAWS, CHAIN, FILL = 3, 4, 8  # forward draws per t, reverse chains, images inpainted


@st.cache_data(max_entries=16, show_spinner="Noising the image ...")
def forward(url: str, run_id: int, index: int, seed: int, _model, _x):
    """(strip [DRAWS * len(TIMES), H, W, C] in data units, schedule table at TIMES, at 50 t)."""
    from zoo.demos import diffusion as demo

    z = demo.forward_process(_model, np.repeat(_x[index:index + 1], DRAWS, 0), TIMES, seed)  # [T, D, ...]
    strip = demo.to_data_units(_model, np.swapaxes(z, 0, 1)).reshape(-1, *z.shape[2:])
    return strip, demo.schedule_table(_model, TIMES), demo.schedule_table(_model, np.linspace(0, 1, 50))


@st.cache_data(max_entries=16, show_spinner="Running the reverse chain ...")
def reverse(url: str, run_id: int, method: str, seed: int, _model):
    """(states strip [CHAIN * (F + 1)] ending with the decoded sample, predictions strip, t [F])."""
    from zoo.demos import diffusion as demo

    c = demo.reverse_chain(_model, CHAIN, seed=seed, method=method)
    units = lambda a: demo.to_data_units(_model, np.swapaxes(a, 0, 1))  # noqa: E731  [n, F, H, W, C]
    states = np.concatenate([units(c.z), c.sample[:, None].astype(np.float32)], axis=1)
    return states.reshape(-1, *c.sample.shape[1:]), units(c.x_hat).reshape(-1, *c.sample.shape[1:]), c.t


@st.cache_data(max_entries=16, show_spinner="Inpainting ...")
def repaint(url: str, run_id: int, mask: str, method: str, resample: int, seed: int, _model, _x):
    """originals, masked and inpainted images stacked: [3 * FILL, H, W, C]."""
    from zoo.demos import diffusion as demo

    options = {"method": method, "resample": resample, **({"eta": 1.0} if method == "ddim" else {})}
    _, masked, out = demo.inpaint(_model, _x[:FILL], mask, seed=seed, **options)
    return np.concatenate([_x[:FILL], masked, out]).astype(np.float32)


def motion(run, model, x, levels) -> None:
    from zoo.demos import diffusion as demo

    rid = int(run["run_id"])
    st.markdown("**The forward process** takes a test image to noise; it has no parameters.")
    left, right = st.columns([2, 3])
    with left:
        st.latex(r"q(z_t \mid x) = \mathcal{N}\big(\alpha_t x,\ \sigma_t^2 I\big)")
        st.latex(r"\mathrm{SNR}(t) = \alpha_t^2 / \sigma_t^2 = e^{-\gamma_t}")
        index = st.number_input("Test image", 0, len(x) - 1, 0, key="diffusion_image")
        t = st.slider("t", 0.0, 1.0, 0.5, 0.05, key="diffusion_t")
        now = demo.schedule_table(model, [t]).iloc[0]
        for col, (label, name) in zip(st.columns(3), [("alpha_t", "alpha"), ("sigma_t", "sigma"),
                                                      ("log SNR(t)", "log_snr")]):
            col.metric(label, f"{now[name]:.4g}")
    strip, table, curve = forward(url, rid, int(index), 0, model, x)
    with right:
        st.image(ui.png(strip, levels, ncols=len(TIMES)), output_format="PNG", width="stretch",
                 caption=f"z_t ~ q(z_t|x) in data units, {DRAWS} draws (rows) at t = "
                         + ", ".join(f"{v:g}" for v in table["t"]))
        long = curve.melt(id_vars=["t"], value_vars=["alpha", "sigma"], var_name="of", value_name="value")
        ui.chart(ui.lines(long, "t", "value", "of", height=180), width="stretch")
    st.dataframe(table, hide_index=True, width="stretch")

    st.markdown("**The reverse chain** draws z_1 from N(0, I) and denoises it step by step.")
    left, right = st.columns([2, 3])
    with left:
        st.latex(r"p(z_0, \ldots, z_1) = p(z_1) \prod_i p(z_{s_i} \mid z_{t_i})")
        st.latex(r"\hat{x}(z_t) = \big(z_t - \sigma_t\,\hat{\varepsilon}(z_t, t)\big)/\alpha_t")
        method = st.radio("Sampler", ["ddim", "ancestral"], horizontal=True, key="diffusion_method",
                          help=f"ddim: {model.hp.ddim_steps} deterministic steps; ancestral: "
                               f"{model.ancestral_steps} steps")
        seed = st.number_input("Seed", 0, 10_000, 0, key="diffusion_seed")
    states, preds, ts = reverse(url, rid, method, int(seed), model)
    with right:
        when = ", ".join(f"{v:.2f}" for v in ts)
        st.image(ui.png(states, levels, ncols=len(ts) + 1), output_format="PNG", width="stretch",
                 caption=f"states z_t at t = {when}, then x ~ p(x|z_0): model.sample({CHAIN}, seed={seed})")
        st.image(ui.png(preds, levels, ncols=len(ts)), output_format="PNG", width="stretch",
                 caption="the network's guess x_hat(z_t) at the same steps")

    st.markdown("**Inpainting** keeps the known pixels and lets the chain fill the rest (RePaint).")
    left, right = st.columns([2, 3])
    with left:
        st.latex(r"z_s = m \odot z_s^{\mathrm{known}} + (1 - m) \odot z_s^{\mathrm{unknown}}")
        st.latex(r"z_s^{\mathrm{known}} \sim q(z_s \mid x),\quad z_s^{\mathrm{unknown}} \sim p(z_s \mid z_t)")
        mask = st.selectbox("Hide", demo.MASKS, key="diffusion_mask", help="the region the model fills")
        fill = st.radio("Sampler", ["ddim", "ancestral"], horizontal=True, key="diffusion_fill_method")
        jumps = st.slider("RePaint jumps per step", 1, 5, 2, key="diffusion_resample")
    rows = repaint(url, rid, mask, fill, int(jumps), 0, model, x)
    with right:
        st.image(ui.png(rows, levels, ncols=FILL), output_format="PNG", width="stretch",
                 caption="test images; the mask (checkered: hidden); inpainted by model.inpaint")


if live:
    st.subheader("4. Diffusion in motion")
    ui.live_section(url, live[0], "the forward process, a reverse chain and inpainting", "diffusion_live",
                    ("p_sample", "inpaint"), motion)
