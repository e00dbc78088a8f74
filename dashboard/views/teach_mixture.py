"""Teach: a mixture of K product-categorical components trained by EM (Bruna's lecture 16): the
log-likelihood per EM iteration, which never decreases, the components' mean images with their weights
pi, and the E- and M-step equations. TensorFlow-free: the run's history and its "components" report."""
import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import data, ui

SHOWN = 64  # mean images drawn (the heaviest components first)
ROUNDING = 1e-4  # nats per example: a fall smaller than this is float32 rounding, not EM going backwards

url, r, live, m = ui.teach_page("Mixture and EM", "Dempster, Laird & Rubin 1977; Bishop 2006 ch. 9. A "
                                "discrete latent c, exact responsibilities p(c | x), and a log-likelihood "
                                "that EM never lowers.", "Mixture")

st.subheader("1. Pick a component, then independent pixels")
st.latex(r"p(x \mid \theta) = \sum_{c=1}^{K} \pi_c \prod_{d=1}^{D} \theta_{c,d,x_d},\qquad "
         r"-\log p(x) = -\log \textstyle\sum_c \exp\big(\log\pi_c + \sum_d \log\theta_{c,d,x_d}\big)")
st.markdown("Each component is a product of categoricals over the levels (product-Bernoulli on binary "
            "images). The sum over $c$ has $K$ terms, so $\\log p(x)$ is **exact**: no bound, no sampling.")
st.subheader("2. EM: make the bound tight, then maximise it")
st.latex(r"\log p(X \mid \theta) = \mathcal{L}(q, \theta) + "
         r"\mathrm{KL}\big(q(Z) \,\|\, p(Z \mid X, \theta)\big),\qquad "
         r"Q(\theta, \theta_{old}) = \mathbb{E}_{Z \sim p(Z \mid X, \theta_{old})} \log p(X, Z \mid \theta)")
st.latex(r"\text{E-step:}\quad r_{nc} = p(c \mid x_n, \theta_{old}) = "
         r"\frac{\pi_c\, p(x_n \mid c)}{\sum_{c'} \pi_{c'}\, p(x_n \mid c')}")
st.latex(r"\text{M-step:}\quad N_c = \sum_n r_{nc},\quad \pi_c = \frac{N_c + \alpha}{N + K\alpha},\quad "
         r"\theta_{c,d,l} = \frac{\sum_n r_{nc}\,[x_{nd} = l] + \alpha}{N_c + L\alpha}")
st.markdown("The E-step sets $q$ to the exact posterior, so the KL is 0 and the bound touches "
            "$\\log p(X \\mid \\theta_{old})$; the M-step raises the bound, hence the log-likelihood: it "
            "**never decreases** (Dempster et al. 1977). In the zoo one epoch of `fit` is one EM iteration: "
            "the train step adds each batch's $r_{nc}$ sums, the M-step runs when the epoch ends. With a "
            "pseudocount $\\alpha > 0$ (a Dirichlet prior, MAP-EM) what never decreases is "
            "$\\log p(X \\mid \\theta) + \\alpha \\sum \\log \\theta + \\alpha \\sum \\log \\pi$; "
            "$\\alpha = 0$ is plain maximum likelihood.")
ui.metric_row(m, [("-log p(x), exact", "nll", "test nats per image"),
                  ("bits / dim", "bits_per_dim", "-log p(x) / (D ln 2)"),
                  ("data's own -log p(x)", "data_nll", "bars: the true model's NLL on the same test images"),
                  ("KL(p || model), bars", "pop_gap", "pop_nll - H(p) over all 2^16 bars images")])


def em_history(run_id: int) -> pd.DataFrame:
    """The run's training log-likelihood per EM iteration (nats per image, at the parameters that
    iteration's E-step used; the history's -loss) and its change; with a pseudocount also the MAP
    objective (log-likelihood + log p(theta) / N, the history's -map_loss) and its change."""
    h = data.history(url, (run_id,), ("loss", "map_loss"))
    wide = h.pivot_table(index="epoch", columns="name", values="value").sort_index()
    if "loss" not in wide:
        return pd.DataFrame()
    out = pd.DataFrame({"iteration": wide.index.to_numpy() + 1, "log_likelihood": -wide["loss"].to_numpy()})
    out["change"] = out["log_likelihood"].diff()
    if "map_loss" in wide:
        out["map_objective"] = -wide["map_loss"].to_numpy()
        out["map_change"] = out["map_objective"].diff()
    return out


def component_images(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(component ids, their pi, mean images [K, H, W, C] in [0, 1]) from the "components" report,
    the heaviest component first."""
    shape = [int(table[c].max()) + 1 for c in ("row", "col", "channel")]
    ids, images, weights = [], [], []
    for comp, part in table.groupby("component"):
        img = np.zeros(shape, np.float32)
        img[part["row"].astype(int), part["col"].astype(int), part["channel"].astype(int)] = part["intensity"]
        ids.append(int(comp))
        images.append(img)
        weights.append(float(part["pi"].iloc[0]))
    order = np.argsort(weights)[::-1]
    return np.asarray(ids)[order], np.asarray(weights)[order], np.stack(images)[order]


if live:
    run = live[0]
    st.subheader("3. The log-likelihood per EM iteration")
    ll = em_history(int(run["run_id"]))
    if ll.empty:
        ui.placeholder("log-likelihood per EM iteration", "this run recorded no training loss history")
    else:
        named = {"log_likelihood": "log-likelihood", "map_objective": "MAP objective"}
        long = ll.melt("iteration", [c for c in named if c in ll], "series", "nats")  # per image
        ui.chart(ui.lines(long.replace({"series": named}), "iteration", "nats", "series"), width="stretch")
        monotone = "map_objective" if "map_objective" in ll else "log_likelihood"
        change = {"map_objective": "map_change", "log_likelihood": "change"}[monotone]
        what = named[monotone] + (" (log-likelihood + log p(θ) / N)" if monotone == "map_objective" else "")
        fall = float(-ll[change].min()) if len(ll) > 1 else 0.0
        if fall <= ROUNDING:
            st.markdown(f"Over {len(ll)} iterations the training {what} **never decreased** (from "
                        f"{ll[monotone].iloc[0]:.4f} to {ll[monotone].iloc[-1]:.4f} nats per image; falls "
                        "below 1e-4 nats would be float32 rounding).")
        else:
            st.warning(f"The {what} fell by {fall:.4g} nats at some iteration: this run's epochs were not "
                       "full-batch EM iterations (steps_per_epoch, or re-binarised data).")
        if monotone == "map_objective":
            st.caption("MAP-EM (pseudocount > 0) guarantees the MAP objective; the log-likelihood alone "
                       "may dip slightly at an iteration.")
        st.dataframe(ll, hide_index=True, width="stretch")
    st.subheader("4. The components: mean images and weights")
    table = ui.live_report(url, run, "components", "component means")
    if table is not None:
        ids, pi, images = component_images(table)
        if len(ids) > SHOWN:
            st.caption(f"The {SHOWN} heaviest of {len(ids)} components.")
        st.image([ui.png(img[None], 2) for img in images[:SHOWN]], width=96,
                 caption=[f"c={c}: π={p:.3f}" for c, p in zip(ids[:SHOWN], pi[:SHOWN])])
        bars = pd.DataFrame({"component": ids.astype(str), "pi": pi})
        ui.chart(alt.Chart(bars).mark_bar().encode(
            x=alt.X("component:N", sort=None), y=alt.Y("pi:Q", title="π (mixing weight)"),
            tooltip=["component", "pi"]).properties(height=200), width="stretch")
        st.caption(f"E[x_d | c] for each of the K = {len(ids)} components (white = the top level), heaviest "
                   "first: a sample picks one with probability π_c, then draws every pixel independently.")
    ui.pictures(url, run)
