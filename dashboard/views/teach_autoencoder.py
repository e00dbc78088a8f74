"""Teach: a plain autoencoder is not a generative model (the KL weight beta, the code map mu(x) with prior
draws on top and its holes), and what a factorised decoder p(x|z) = prod_j p(x_j|z) costs (decoder
draws beside means). UBC CPSC 532S lecture 16; Bruna lecture 16; Günnemann, "Choosing p(x|z)".
TensorFlow only once a live toggle is on."""
import json

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import artifacts, data, ui
from zoo import data as zdata

N_IMAGES, N_PRIOR, N_SHOWN, N_DECODED, MAX_RUNS = 1000, 2000, 300, 16, 3

url, r = ui.start("Autoencoders and decoders", "Why a plain autoencoder cannot generate (Günnemann: "
                  "\"standard AE are not generative models, they can only reconstruct the data\"), and why a "
                  "VAE's samples are speckled while a PixelCNN's are clean.", stop=False)
vaes = ui.finished(r, "VAE")
nll = data.wide(url, *ui.scope(url), ("nll",)) if not r.empty else None


def hparam(run: pd.Series, name: str):
    """A hyper-parameter of the run from its config (a `runs` column), or None when not recorded."""
    v = run.get(name)
    return None if v is None or pd.isna(v) else float(v)


@st.cache_data(show_spinner="Loading the labelled test images ...", max_entries=8)
def labelled(data_options: str, n: int):
    """(first `n` test images, their labels or None, levels) of a run's dataset; None when not on disk."""
    try:
        opts = json.loads(data_options)
        name = opts.pop("name", None)
        if not isinstance(name, str) or not zdata.available_offline(name):
            return None
        ds = zdata.load(name, **opts)
    except (OSError, ValueError, TypeError, MemoryError):
        return None
    labels = ds.labels.get("test")
    return ds.test[:n], None if labels is None else labels[:n], ds.levels


def map_chart(codes: pd.DataFrame, prior: pd.DataFrame) -> alt.Chart:
    """mu(x) coloured by label, the prior draws on top as crosses (darker in a hole)."""
    codes = codes.assign(label=codes["label"].map(lambda v: "none" if v < 0 else str(v)))
    prior = prior.assign(draw=np.where(prior["hole"], "z ~ p(z) in a hole", "z ~ p(z)"))
    dots = alt.Chart(codes).mark_circle(size=25, opacity=0.6).encode(
        x=alt.X("z1:Q", title="z1"), y=alt.Y("z2:Q", title="z2"), color=alt.Color("label:N"),
        tooltip=["label", "z1", "z2", "sigma1", "sigma2"])
    dark = alt.Scale(domain=["z ~ p(z)", "z ~ p(z) in a hole"], range=[0.25, 0.9])
    crosses = alt.Chart(prior).mark_point(shape="cross", size=30, color="black", filled=True).encode(
        x="z1:Q", y="z2:Q", opacity=alt.Opacity("draw:N", scale=dark), tooltip=["z1", "z2", "log_ratio"])
    return (dots + crosses).properties(height=320)


@st.cache_data(show_spinner="Encoding the test images ...", max_entries=16)
def code_map(url: str, run_id: int, data_options: str, seed: int, _model):
    """(zoo.demos.latents.latent_map of the run's labelled test images, E[x|z] of the first prior draws);
    cached per (store, run, data, seed): a finished run's model does not change."""
    from zoo.demos import latents

    x, labels, _ = labelled(data_options, N_IMAGES)
    m = latents.latent_map(_model, x, labels, n_prior=N_PRIOR, seed=seed)
    return m, np.asarray(_model.decode(m["prior"][["z1", "z2"]].to_numpy()[:N_DECODED]))


def live_map(run: pd.Series, seed: int) -> None:
    """One run's code map, its holes, and what its decoder makes of prior draws (or a placeholder)."""
    from zoo.demos import latents

    model = ui.live_model(url, run, needs=("encode", "decode"))
    if model is None:
        return
    try:
        latents.check_latent_map(model)
    except ValueError as err:
        return ui.placeholder(run["name"], str(err))
    if labelled(run["data_options"], N_IMAGES) is None:
        return ui.placeholder(run["name"], f"the {run['dataset']} data is not on this machine")
    try:
        m, decoded = code_map(url, int(run["run_id"]), run["data_options"], seed, model)
    except Exception as err:  # noqa: BLE001 - a model that does not fit its data is shown, not raised
        return ui.placeholder(run["name"], f"does not encode its test images ({artifacts.error_text(err)})")
    beta = float(model.hp.kl_weight)  # a VAE / IWAE (checked above); saved before kl_weight: 1
    what = "an autoencoder" if beta == 0 else "the ELBO" if beta == 1 else "a beta-VAE"
    st.markdown(f"**{ui.plain(run['name'])}**: beta = {beta:g} ({what})")
    ui.chart(map_chart(m["codes"], m["prior"].head(N_SHOWN)), width="stretch")
    a, b = st.columns(2)
    a.metric("holes", f"{m['holes']:.1%}", help=f"share of {N_PRIOR} prior draws z with q(z) < p(z)/10 "
             f"(± {m['holes_se']:.1%} Monte Carlo s.e.)")
    b.metric("KL(p(z) || q(z))", f"{m['kl_prior_aggregate']:.4g} nats",
             help="E_p[log p(z) - log q(z)] over the same draws: 0 only when the codes fill the prior")
    st.caption(f"Dots: mu(x) of {len(m['codes'])} test images, by label; crosses: {N_SHOWN} of the "
               f"{N_PRIOR} prior draws (dark: in a hole).")
    n_holes = int(m["prior"]["hole"].head(N_DECODED).sum())
    st.image(ui.png(decoded, model.levels, ncols=8), output_format="PNG", width="stretch",
             caption=f"E[x|z] of the first {N_DECODED} prior draws ({n_holes} of them in holes): what the "
             "decoder makes of p(z)")


@st.cache_data(show_spinner="Decoding prior draws ...", max_entries=16)
def decoder_draws(url: str, run_id: int, seed: int, _model):
    """zoo.demos.decoders.draws_beside_means: 8 prior draws z, E[x|z] and 3 draws x ~ p(x|z) each."""
    from zoo.demos import decoders

    return decoders.draws_beside_means(_model, n_z=8, n_draws=3, seed=seed)


def live_draws(run: pd.Series, seed: int) -> None:
    """Decoder draws beside their means for the same z, and the decoder's entropy (or a placeholder)."""
    from zoo.demos import decoders

    model = ui.live_model(url, run, needs=("decode",))
    if model is None:
        return
    try:
        decoders.check_decoder(model)
        got = decoder_draws(url, int(run["run_id"]), seed, model)
    except Exception as err:  # noqa: BLE001 - shown, not raised
        return ui.placeholder(run["name"], artifacts.error_text(err))
    grid = np.concatenate([got["mean"], got["draws"].reshape(-1, *got["mean"].shape[1:])])
    st.image(ui.png(grid, model.levels, ncols=len(got["z"])), output_format="PNG", width=640,
             caption="top row: E[x|z] for 8 prior draws z; below: three draws x ~ p(x|z) for each SAME z")
    st.metric("H[p(x|z)], mean over these z", f"{got['entropy'].mean():.4g} nats",
              help="sum over sub-pixels of each pixel's entropy given z: the noise each draw adds")


# --- 1. the KL weight and the holes -------------------------------------------------------------
st.subheader("1. An autoencoder is a VAE without its rate")
st.latex(r"\mathcal{L}_\beta(x) = \underbrace{-\mathbb{E}_{q(z|x)}\log p(x|z)}_{\text{distortion}} + \beta\,"
         r"\underbrace{\mathrm{KL}\big(q(z|x)\,\|\,p(z)\big)}_{\text{rate}}\\"
         r"\beta = 0:\ \text{an autoencoder (a noisy code)},\qquad"
         r"\beta = 1:\ \mathcal{L}_1 = -\mathrm{ELBO}")
st.caption("The KL weight beta (`kl_weight`) changes training only: every run's reported nats are its "
           "true -ELBO. Without the rate, nothing asks the codes to look like draws of p(z) = N(0, I).")
st.latex(r"q(z) = \frac{1}{N}\sum_{n} q(z|x_n),\qquad \text{holes} = "
         r"\Pr_{z\sim p(z)}\!\big[\,q(z) < \tfrac{1}{10}\,p(z)\,\big]")
st.caption("Sampling decodes z ~ p(z), but the decoder only ever saw codes of the data, z ~ q(z): a prior "
           "draw lands in a hole where the data's codes are rarer than a tenth of the prior's density.")

if vaes.empty:
    ui.no_runs("VAE")
else:
    order = vaes.assign(_2d=[hparam(x, "latent_dim") != 2 for _, x in vaes.iterrows()],
                        _beta=[hparam(x, "kl_weight") not in (0.0, 1.0) for _, x in vaes.iterrows()])
    order = order.sort_values(["_2d", "_beta"], kind="stable")  # 2-D runs of beta 0 and 1 first
    if {"kl_weight", "latent_dim"} <= set(vaes.columns):  # one beta-0 and one beta-1 run picked first
        firsts = [order[(order["kl_weight"] == b) & (order["latent_dim"] == 2)].head(1) for b in (0.0, 1.0)]
        order = pd.concat([*firsts, order]).drop_duplicates("run_id")
    picked = ui.pick_runs(order.drop(columns=["_2d", "_beta"]), "Runs to compare (an autoencoder, beta = 0, "
                          "beside a VAE, beta = 1)", key="ae_runs", default=2)
    seed = int(st.number_input("Seed of the prior draws", 0, 10_000, 0, key="ae_seed"))
    c1, c2 = st.columns(2)
    for col, (_, run) in zip((c1, c2), picked.head(2).iterrows()):
        with col:
            ui.image(artifacts.read_image(ui.run_artifacts(url, run), run), f"saved samples of {run['name']}")
    if ui.live_toggle("the code map mu(x) of each run, prior draws on top", key="ae_live_map"):
        if len(picked) > MAX_RUNS:
            st.caption(f"The first {MAX_RUNS} picked runs are drawn.")
        shown = picked.head(MAX_RUNS)
        for col, (_, run) in zip(st.columns(max(1, len(shown))), shown.iterrows()):
            with col:
                live_map(run, seed)

# --- 2. the factorised decoder -----------------------------------------------------------------
st.subheader("2. What a factorised decoder costs")
st.latex(r"p(x|z) = \prod_{j=1}^{D} p(x_j \,|\, f(z)_j)\quad\text{(VAE)}\qquad\text{vs}\qquad "
         r"p(x) = \prod_{j=1}^{D} p(x_j \,|\, x_{<j})\quad\text{(PixelCNN)}")
st.caption("Given z, the VAE draws every pixel on its own: each draw scatters independent noise around the "
           "smooth mean E[x|z], so the samples are speckled. A PixelCNN draws each pixel given the ones "
           "already drawn, so neighbours agree and its samples are clean. The mean is not a sample: a blur.")
st.latex(r"H\big[p(x|z)\big] = \sum_{j} H\big[p(x_j|z)\big]\quad"
         r"\text{nats of independent pixel noise per draw}")
if not vaes.empty:
    run = ui.pick_run(vaes, "Decoder of run", key="ae_decoder_run", by=nll)
    pixelcnns = ui.by_nll(ui.finished(r, "PixelCNN"), nll)
    c1, c2 = st.columns(2)
    with c1:
        ui.image(artifacts.read_image(ui.run_artifacts(url, run), run), f"saved samples of {run['name']}")
    with c2:
        if pixelcnns.empty:
            ui.placeholder("a PixelCNN's samples", "no finished PixelCNN run on this dataset")
        else:
            pc = pixelcnns.iloc[0]
            ui.image(artifacts.read_image(ui.run_artifacts(url, pc), pc), f"saved samples of {pc['name']}")
    if ui.live_toggle("decoder draws beside their means E[x|z]", key="ae_live_draws"):
        live_draws(run, int(st.session_state.get("ae_seed", 0)))
