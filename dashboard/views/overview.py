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


def number(run, name: str, fmt: str) -> str:
    v = None if run is None else run.get(name)
    return "n/a" if v is None or pd.isna(v) else format(v, fmt)


def cost(run) -> str:
    return number(run, "sample_network_calls", ",.0f")


def nats(run) -> str:
    return number(run, "nll", ".3f")


picked = {fam: best(fam) for fam in FAMILIES}
facts = {fam: FAMILY_FACTS[fam] for fam in FAMILIES}
rows = {  # aspect -> one cell per family (Isachenko's table: aspects down, models across)
    "latent": [f.latent for f in facts.values()],
    "encoder": [f.encoder for f in facts.values()],
    "decoder": [f.decoder for f in facts.values()],
    "training objective": [f.objective for f in facts.values()],
    "likelihood kind (best run)": ["-" if run is None else run["badge"] for run in picked.values()],
    "sampling": [f.sampling for f in facts.values()],
    "network calls per sample": [cost(run) for run in picked.values()],
    "best test nats": [nats(run) for run in picked.values()],
    "best run": ["no finished run" if run is None else run["name"] for run in picked.values()],
    "source": [f.source for f in facts.values()],
}
st.table(pd.DataFrame(rows, index=list(FAMILIES)).T)
st.caption("Network calls per sample: the sequential network calls the best run's sampler makes to draw "
           "one sample, as the runner recorded it (zoo: GenerativeModel.sampling_cost). Best test nats: "
           "-log P(x) of the test images, nats per example, of the kind above: bounds (ELBO, IWAE-k, VLB) "
           "are at least the true NLL, exact is the NLL itself, AIS a stochastic estimate; a GAN without "
           "AIS has no likelihood (n/a, never 0).")

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
