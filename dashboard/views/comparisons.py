"""Bounds and decoders: two experiment axes of the VAE, from the finished runs of the dataset and experiment
chosen in the sidebar.

(a) Equal cost (Burda et al. 2016, Table 1): a VAE trained on the ELBO averaged over L draws per example
beside an IWAE trained on L_k with k = L -- the same decoder passes per step -- by number of samples.
(b) The decoder p(x|z) (Günnemann, "Choosing p(x|z)"; Bruna: Gaussian likelihoods "regress to the mean"):
VAE runs that differ in their pixel law, their test nats beside their saved samples."""
import pandas as pd
import streamlit as st

from dashboard import artifacts, data, ui

METRICS = ("nll", "is_nll", "is_k", "bits_per_dim")  # the test metrics this page reads
SHOWN = 6  # decoder columns of sample grids (the best run of each law)
SIDES = {"VAE": "L-sample ELBO", "IWAE": "L_k"}  # what each side trains on


def decoder_label(run: pd.Series) -> str:
    """The pixel law of a run: its `decoder`, with the scale of a discretised Gaussian."""
    law = run["decoder"] if isinstance(run["decoder"], str) else "?"
    if law != "discretized_gaussian":
        return law
    sigma = run["decoder_sigma"]
    return f"{law} (sigma {'learned' if sigma == 'learned' else f'{sigma} levels'})"


def equal_cost(w: pd.DataFrame) -> pd.DataFrame:
    """One row per number of samples n (a vae's L, an iwae's k): each side's mean test nats (its own
    bound: ELBO, IWAE-k), mean IS-NLL and run count. VAEs with kl_weight != 1 (not trained on the ELBO)
    are left out; experiment, latent_dim and decoder (with a Gaussian's sigma) become row keys when the
    runs differ in them."""
    vae = w[(w["model"] == "vae") & (w["kl_weight"] == 1)].assign(n=lambda d: d["samples"], side="VAE")
    iwae = w[w["model"] == "iwae"].assign(n=lambda d: d["k"], side="IWAE")
    both = pd.concat([vae, iwae]).dropna(subset=["n"])
    if both.empty:
        return both
    both = both.assign(n=both["n"].astype(int), decoder=both.apply(decoder_label, axis=1))
    for name in METRICS:
        if name not in both:
            both[name] = float("nan")
    keys = [c for c in ("experiment", "latent_dim", "decoder") if both[c].nunique(dropna=False) > 1] + ["n"]
    agg = both.groupby([*keys, "side"], dropna=False).agg(
        nats=("nll", "mean"), is_nll=("is_nll", "mean"), runs=("run_id", "size")).unstack("side")
    table = pd.DataFrame(index=agg.index)
    for side, bound in SIDES.items():
        if ("nats", side) in agg:
            kind = "ELBO" if side == "VAE" else "IWAE-k"
            table[f"{side} ({bound}) nats [{kind}]"] = agg["nats", side]
            table[f"{side} IS-NLL"] = agg["is_nll", side]
            table[f"{side} runs"] = agg["runs", side].fillna(0).astype(int)
    return table.reset_index().rename(columns={"n": "samples (L = k)"})


url, r = ui.start("Bounds and decoders", "Two axes of the VAE: how many samples per example its training "
                  "bound takes (the VAE's L-sample ELBO against the IWAE's L_k at equal cost), and which "
                  "pixel law p(x|z) its decoder has.")
scope = ui.scope(url)
fin = ui.finished(r)
w = data.wide(url, *scope, METRICS)  # these runs' metrics only, read in SQL
w = w[w["run_id"].isin(fin["run_id"])]

st.header("Equal cost: L-sample VAE against IWAE-k")
st.markdown(r"Each step of both decodes the same $L \times B$ codes $z_l \sim q(z|x)$. The VAE averages "
            r"the ELBO over them, $\frac1L\sum_l \log\frac{p(x,z_l)}{q(z_l|x)}$: the same bound, with $1/L$ "
            r"of its gradient's variance. The IWAE averages inside the log, "
            r"$\log\frac1k\sum_i\frac{p(x,z_i)}{q(z_i|x)}$: a tighter bound (Burda et al. 2016, Table 1).")
table = equal_cost(w)
if table.empty:
    st.info("No finished vae or iwae runs here. `python -m experiments run "
            "experiments/configs/digits_bounds.yaml` trains L = k = 1, 5, 50 of each.")
else:
    is_k = sorted({int(k) for k in w.loc[w["model"].isin(["vae", "iwae"]), "is_k"].dropna()}) \
        if "is_k" in w else []
    st.dataframe(table, hide_index=True)
    ui.kind_badges(["ELBO", *sorted({b for b in fin.loc[fin["model"] == "iwae", "badge"]}),
                    *(data.badge("iwae", k) for k in is_k)])
    st.caption("Test nats per example, means over each cell's runs (seeds): the VAE column is its ELBO, the "
               "IWAE's its own L_k (kind IWAE-k), and IS-NLL the importance-sampled estimate of -log p(x) "
               f"with k = {', '.join(map(str, is_k)) or 'n/a'} samples (kind IWAE-k too) for both. Equal "
               "ELBO nats at every L and falling IWAE nats along k is the paper's pattern.")

st.header("The decoder p(x|z)")
vae = fin[fin["model"] == "vae"]
if vae.empty:
    ui.no_runs("VAE")
    st.stop()
vae = vae.assign(law=vae.apply(decoder_label, axis=1))
ranked = ui.by_nll(vae, w)
best = ranked.drop_duplicates("law")  # the best run of each pixel law
if best["law"].nunique() < 2:
    st.info(f"These VAE runs share one decoder ({best['law'].iloc[0]}); "
            "experiments/configs/digits_decoders.yaml trains one per pixel law.")
best = ui.capped(best, SHOWN, "pixel laws (their best runs)", "best")
nums = w.set_index("run_id")
st.dataframe(pd.DataFrame({
    "decoder": best["law"].to_numpy(), "run": best["name"].to_numpy(), "kind": best["badge"].to_numpy(),
    "test nats": [nums.at[i, "nll"] if "nll" in nums else float("nan") for i in best["run_id"]],
    "IS-NLL": [nums.at[i, "is_nll"] if "is_nll" in nums else float("nan") for i in best["run_id"]],
    "bits/dim": [nums.at[i, "bits_per_dim"] if "bits_per_dim" in nums else float("nan")
                 for i in best["run_id"]]}), hide_index=True)
st.caption("Every law is a distribution over the same discrete levels, so the nats compare directly. A "
           "Gaussian decoder's samples are its mean E[x|z] plus independent pixel noise (its sigma, in "
           "levels, then binned): with a fixed sigma every pixel jitters by about that much; the mean itself "
           "is a blur of the images the code could stand for (Bruna: Gaussian likelihoods tend to regress to "
           "the mean).")
arts = data.artifacts(url, tuple(int(i) for i in best["run_id"]), ("samples_png",))
cols = st.columns(1 + len(best))
with cols[0]:
    ui.real_row(best.iloc[0], n=16)
for col, (_, run) in zip(cols[1:], best.iterrows()):
    with col:
        nll = nums.at[run["run_id"], "nll"] if "nll" in nums else float("nan")
        nats = "n/a" if pd.isna(nll) else f"{nll:.2f} nats"
        ui.image(artifacts.read_image(arts, run), f"{run['law']}: {nats} ({run['badge']})")
