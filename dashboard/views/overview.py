"""Families side by side: the overview a lecturer opens first (Isachenko's "generative models zoo" and
his VAE-vs-flow table, extended to the six families). TensorFlow-free: facts from zoo.vocabulary, numbers
and sample grids from the store."""
import pandas as pd
import streamlit as st

from dashboard import artifacts, data, ui
from zoo.vocabulary import FAMILIES, FAMILY_FACTS

url, r = ui.start("Families side by side", "What each family's latent is, what it trains, what kind of "
                  "number it reports, what a sample costs, and its best run on this dataset (test nats, "
                  "lower is better).")
w = data.wide(url, *ui.scope(url), ("nll", "sample_network_calls"))
fin = w[w["status"] == "FINISHED"]


def best(fam: str) -> pd.Series | None:
    """The family's finished run with the lowest test nats (a likelihood-free one only when no run has
    nats: the latest), or None."""
    runs = ui.by_nll(fin[fin["family"] == fam], fin)
    return None if runs.empty else runs.iloc[0]


def cost(run) -> str:
    v = None if run is None else run.get("sample_network_calls")
    return "n/a" if v is None or pd.isna(v) else f"{int(v):,}"


rows, picked = [], {}
for fam in FAMILIES:
    f, run = FAMILY_FACTS[fam], best(fam)
    picked[fam] = run
    nats = None if run is None else run.get("nll")
    rows.append({"family": fam, "latent": f.latent, "encoder": f.encoder, "decoder": f.decoder,
                 "objective": f.objective, "kind": "-" if run is None else run["badge"],
                 "network calls / sample": cost(run), "sampling": f.sampling,
                 "best test nats": "n/a" if nats is None or pd.isna(nats) else f"{nats:.3f}",
                 "run": "no finished run" if run is None else run["name"], "source": f.source})
table = pd.DataFrame(rows)
st.dataframe(table, hide_index=True, column_config={
    "kind": st.column_config.Column(help="the kind of number the best run reports: exact, a bound (ELBO, "
                                    "IWAE-k, VLB), an AIS estimate, or n/a (no likelihood)"),
    "network calls / sample": st.column_config.Column(
        help="sequential network calls to draw one sample, as recorded by the best run's sampler "
             "(zoo: GenerativeModel.sampling_cost)"),
    "best test nats": st.column_config.Column(help="-log P(x) of the test images, nats per example, of "
                                              "the kind in 'kind': bounds and exact values are different "
                                              "kinds of number")})
st.caption("Bounds (ELBO, IWAE-k, VLB) are at least the true NLL; exact is the NLL itself; AIS is a "
           "stochastic estimate; a GAN without AIS has no likelihood (n/a, never 0).")

st.subheader("Samples of each family's best run")
real = next((run for run in picked.values() if run is not None), None)
cols = st.columns(len(FAMILIES) + 1)
with cols[0]:
    if real is not None:
        ui.real_row(real, caption="real test images")
for col, fam in zip(cols[1:], FAMILIES):
    with col:
        run = picked[fam]
        if run is None:
            ui.placeholder(fam, "no finished run of this family on this dataset")
        else:
            ui.image(artifacts.read_image(ui.run_artifacts(url, run), run), f"{fam}: {run['name']}")
