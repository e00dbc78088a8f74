"""Teach: the posterior and its "area" (Paquet's opening deck: Inference, Evidence, Strategy). For a
saved VAE / IWAE with a 1-D or 2-D latent and a test image: p(x|z)p(z) over z, its area p(x) by
quadrature, the true posterior p(z|x) beside the encoder's q(z|x), and the ELBO's gap KL(q || p(z|x))
(zoo.demos.posterior). TensorFlow-free until the live toggle is on."""
import math

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, ui

CAPTION = ("Paquet, \"Inference\", \"Evidence\", \"Strategy\"; Isachenko, lecture 5 (evidence, posterior, "
           "variational decomposition). Exact numbers for a latent of 1 or 2 dimensions, by quadrature.")
IMAGES = 16  # the test images the user picks from
HEAT = 51  # cells per axis of a 2-D heat map (the numbers use the full grid)
url, r, live, m = ui.teach_page("Posterior and evidence", CAPTION, "VAE",
                                first=lambda runs: runs["latent_dim"].isin([1, 2]))  # drawable first


@st.cache_data(show_spinner="Integrating p(x|z) p(z) over a grid of z ...", max_entries=32)
def quadrature(store: str, run_id: int, _model, _x, index: int) -> tuple[pd.DataFrame, dict]:
    """(zoo.demos.posterior.curves of test image `index`, its numbers) for the run (cached by store, run
    and image)."""
    from zoo.demos.posterior import curves, posterior

    post = posterior(_model, _x[index:index + 1])
    numbers = {name: float(getattr(post, name)[0]) for name in ("log_px", "elbo", "kl", "quad_error",
                                                               "edge_mass")}
    numbers.update(points=len(post.grid.z), step=math.exp(post.grid.log_dv / post.grid.z.shape[1]),
                   mu=post.mu[0].tolist(), sigma=post.sigma[0].tolist())
    return curves(post, 0), numbers


def tiles(n: dict) -> None:
    c1, c2, c3 = st.columns(3)
    c1.metric("log p(x), quadrature (exact)", f"{n['log_px']:.4f}", help="log of the area under p(x|z)p(z), "
              "nats (zoo.demos.posterior)")
    c2.metric("ELBO", f"{n['elbo']:.4f}", help="E_q[log p(x, z) - log q(z|x)] on the same grid, nats")
    c3.metric("KL(q || p(z|x)) = the gap", f"{n['kl']:.4f}", help="log p(x) - ELBO, nats")
    st.caption(f"A grid of {n['points']:,} points, spacing {n['step']:.3g}: dropping every other point "
               f"moves these numbers by at most {n['quad_error']:.1e} nats; the posterior's mass in the "
               f"grid's outermost cells is {n['edge_mass']:.1e}. log p(x) - ELBO - KL = "
               f"{n['log_px'] - n['elbo'] - n['kl']:.1e}.")


DENSITIES = ["p(z|x)", "q(z|x)", "p(z)"]
COLOURS = alt.Scale(domain=DENSITIES, range=["#1565c0", "#ef6c00", "#9e9e9e"])
FLOOR = 1e-3  # the charts show the z where some density is above this share of its peak


def window(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """The grid points in the box around every z where p(z|x), q(z|x) or p(z) is above FLOOR of its
    peak (a narrow posterior stays visible), at most HEAT per axis."""
    dens = frame[[c for c in DENSITIES if c in frame]]
    keep = (dens >= FLOOR * dens.max()).any(axis=1)
    box = np.ones(len(frame), bool)
    for a in axes:
        box &= frame[a].between(frame.loc[keep, a].min(), frame.loc[keep, a].max()).to_numpy()
    frame = frame[box]
    if len(axes) == 1:
        return frame
    values = [np.sort(frame[a].unique()) for a in axes]
    every = max(1, math.ceil(max(len(v) for v in values) / HEAT))
    return frame[frame[axes[0]].isin(values[0][::every]) & frame[axes[1]].isin(values[1][::every])]


def one_d(frame: pd.DataFrame, n: dict) -> None:
    frame = window(frame, ["z"])
    area = alt.Chart(frame).mark_area(opacity=0.5, line=True).encode(
        x=alt.X("z:Q"), y=alt.Y("p(x|z)p(z):Q", axis=alt.Axis(format=".2~e")), tooltip=["z", "p(x|z)p(z)"])
    title = f"p(x|z) p(z): its area is p(x) = {math.exp(n['log_px']):.4g}"
    ui.chart(area.properties(height=240, title=title), width="stretch")
    long = frame.melt(id_vars="z", value_vars=DENSITIES, var_name="density", value_name="value")
    lines = alt.Chart(long).mark_line().encode(
        x="z:Q", y=alt.Y("value:Q", title="density"), color=alt.Color("density:N", scale=COLOURS),
        strokeDash=alt.condition(alt.datum.density == "p(z)", alt.value([4, 4]), alt.value([1, 0])),
        tooltip=["density", "z", "value"])
    ui.chart(lines.properties(height=240, title="the true posterior p(z|x) beside the encoder's q(z|x)"),
             width="stretch")


def two_d(frame: pd.DataFrame) -> None:
    shown = window(frame, ["z1", "z2"])
    cols = st.columns(3)
    for col, name in zip(cols, ["p(x|z)p(z)", "p(z|x)", "q(z|x)"]):
        heat = alt.Chart(shown).mark_rect().encode(
            x=alt.X("z1:O", axis=alt.Axis(format=".1f", labelOverlap=True)),
            y=alt.Y("z2:O", sort="descending", axis=alt.Axis(format=".1f", labelOverlap=True)),
            color=alt.Color(f"{name}:Q", scale=alt.Scale(scheme="viridis"), legend=None),
            tooltip=["z1", "z2", name])
        with col:
            ui.chart(heat.properties(title=name, height=300), width="stretch")
    st.caption("Heat maps over z = (z1, z2), z2 up, where p(z|x), q(z|x) or p(z) is above a thousandth of "
               "its peak. The left one's volume is p(x); the middle one is it divided by p(x).")


st.subheader("1. Inference: Bayes' rule")
st.latex(r"p(z|x) = \frac{p(x|z)\,p(z)}{p(x)}")
st.subheader("2. Evidence: the area under p(x|z) p(z)")
st.latex(r"p(x) = \int p(x|z)\,p(z)\,\mathrm{d}z \;\approx\; \sum_{g} p(x|z_g)\,p(z_g)\,\Delta z")
st.caption("With one or two latent dimensions the integral is a sum over a grid: an exact log p(x) up to the "
           "grid's error. With more, the area cannot be computed this way: hence bounds and estimators.")
st.subheader("3. The ELBO's gap is the distance to the true posterior")
st.latex(r"\log p(x) = \underbrace{\mathbb{E}_{q(z|x)}\big[\log p(x,z) - \log q(z|x)\big]}_{\mathrm{ELBO}}"
         r" + \mathrm{KL}\big(q(z|x)\,\|\,p(z|x)\big)")


def needs(run, d) -> None:
    st.info(f"{ui.plain(run['name'])} has a {int(d)}-D latent: the posterior by quadrature needs a VAE or "
            "IWAE with latent_dim 1 or 2 (e.g. the bars config's VAE, latent_dim 1).")


def live_picture(run: pd.Series, x, index: int, numbers) -> None:
    """The quadrature of test image `index` under the run's saved model: tiles in `numbers` (a
    column), the charts below; an info for a latent of more than 2 dimensions."""
    latent = run.get("latent_dim")  # in the runs frame when the store's reader records it
    if latent is not None and pd.notna(latent) and latent > 2:
        return needs(run, latent)
    model = ui.live_model(url, run, needs=("encode", "log_px_given_z", "prior"))
    if model is None:
        return
    d = int(model.prior.event_shape[-1])
    if d > 2:
        return needs(run, d)
    frame, n = quadrature(url, int(run["run_id"]), model, x, index)
    with numbers:
        tiles(n)
    if d == 1:
        one_d(frame, n)
    else:
        two_d(frame)
    st.caption("q(z|x) = N(mu, sigma^2) with mu = " + ", ".join(f"{v:.3f}" for v in n["mu"]) + " and sigma = "
               + ", ".join(f"{v:.3f}" for v in n["sigma"]) + ": a Gaussian fitted by the ELBO, which cannot "
               "take the true posterior's shape exactly; the gap is what that costs for this image.")


if live:
    run = live[0]
    got = data.real_images(run["data_options"], "test", IMAGES)
    if got is None:
        ui.placeholder(run["name"], f"the {run['dataset']} data is not on this machine")
    else:
        x, levels = got
        c1, c2 = st.columns([1, 4])
        index = int(c1.number_input("Test image", 0, len(x) - 1, 0, key="posterior_image"))
        c1.image(ui.png(x[index:index + 1], levels), caption=f"test image {index}", output_format="PNG",
                 width="stretch")
        with c2:
            on = ui.live_toggle("p(x|z)p(z), p(z|x) and q(z|x) of this image", key="posterior_live")
        if on:
            live_picture(run, x, index, c2)
