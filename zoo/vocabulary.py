"""The names several layers share (models, evaluation, runner, benchmark, dashboard), declared once.

TensorFlow-free: the dashboard imports it to draw a page. A new family, likelihood kind or metric
is added here first; the registry refuses a model whose name has no family below.
"""
from __future__ import annotations

import dataclasses
from typing import Literal, get_args


@dataclasses.dataclass(frozen=True)
class Kind:
    """A likelihood kind: what a log P(x) number is, and how the dashboard badges it."""

    name: str
    badge: str  # short label on the leaderboard
    colour: str  # hex colour of the badge (charts)
    markdown: str  # Streamlit markdown badge colour
    meaning: str


# The likelihood kinds of the contract (zoo.contract): every number carries one.
KINDS = {k.name: k for k in (
    Kind("exact", "exact", "#2e7d32", "green", "the true log-likelihood of the discrete data"),
    Kind("elbo", "ELBO", "#ef6c00", "orange", "a variational lower bound E_q[log p(x, z) - log q(z|x)]"),
    Kind("iwae", "IWAE", "#1565c0", "blue",
         "the k-sample importance-weighted bound L_k (Burda et al. eq. 8)"),
    Kind("vlb", "VLB", "#6a1b9a", "violet", "the diffusion variational lower bound"),
    Kind("ais", "AIS", "#c62828", "red", "an annealed-importance-sampling estimate (Wu et al. 2017)"),
    Kind("mc", "MC", "#00838f", "blue",
         "naive Monte Carlo from the prior: log (1/k) sum_i p(x|z_i), z_i ~ p(z) (a stochastic lower bound)"),
    Kind("none", "n/a", "#757575", "gray", "no likelihood (a plain GAN): shown as n/a, never as 0"),
)}
LIKELIHOOD_KINDS = tuple(KINDS)
UNKNOWN_COLOUR = "#9e9e9e"

# Registry name -> family (the dashboard's teaching pages and filters group by family).
FAMILY_OF = {"vae": "VAE", "iwae": "VAE", "m2": "VAE", "flow": "Flow", "pixelcnn": "PixelCNN",
             "diffusion": "Diffusion", "gan": "GAN", "mixture": "Mixture"}
FAMILIES = tuple(dict.fromkeys(FAMILY_OF.values()))
LATENT_FAMILIES = ("VAE", "Flow")  # families with an encoder and a decoder: encode(x) / decode(z)


@dataclasses.dataclass(frozen=True)
class Facts:
    """What a family is, for the side-by-side overview (Isachenko's "generative models zoo" and his
    VAE-vs-flow table, extended to the six families)."""

    latent: str  # none / stochastic / deterministic / a chain
    encoder: str
    decoder: str
    objective: str  # what training maximises (or plays)
    kinds: str  # the likelihood kinds its runs report (KINDS)
    sampling: str  # network calls per sample, in words (runs record the number: sample_network_calls)
    source: str


FAMILY_FACTS = {
    "VAE": Facts("stochastic: z ~ q(z|x), p(z) = N(0, I)", "stochastic q(z|x) = N(mu(x), sigma(x)^2)",
                 "stochastic p(x|z), independent pixels", "ELBO (IWAE: the k-sample bound L_k)", "elbo, iwae",
                 "1 decoder call", "Kingma & Welling 2014; Burda et al. 2016"),
    "Flow": Facts("deterministic: z = f(x + u), same size as x", "deterministic f (a bijection)",
                  "deterministic f^-1", "log-likelihood of the dequantised data (its ELBO over u)", "elbo",
                  "1 inverse pass", "Dinh et al. 2017 (RealNVP)"),
    "PixelCNN": Facts("none: p(x) = prod_t p(x_t | x_<t)", "none", "the chain rule, one pixel at a time",
                      "exact log-likelihood", "exact", "one call per sub-pixel (H x W x C)",
                      "van den Oord et al. 2016"),
    "Diffusion": Facts("a chain z_1 ... z_T of noisier copies of x",
                       "fixed: q(z_t|x) = N(alpha_t x, sigma_t^2 I)", "learned reverse steps p(z_s|z_t)",
                       "the VLB (or Ho et al.'s simple loss)", "vlb",
                       "one denoiser call per step", "Sohl-Dickstein et al. 2015; Ho et al. 2020"),
    "GAN": Facts("stochastic: z ~ p(z), no encoder", "none", "deterministic generator G(z)",
                 "the minimax game of G and D (no likelihood)", "none; ais (an AIS estimate after training)",
                 "1 generator call", "Goodfellow et al. 2014; Wu et al. 2017 (AIS)"),
    "Mixture": Facts("discrete: one of K components, p(c) = pi_c",
                     "exact responsibilities p(c|x) (Bayes' rule)", "independent pixels given the component",
                     "log-likelihood, maximised by EM", "exact", "1 (pick a component, then its pixels)",
                     "Dempster, Laird & Rubin 1977; Bishop 2006 ch. 9"),
}


def family(model: str) -> str:
    """The family of a registry name ("iwae" -> "VAE"); an unknown name is its own family."""
    return FAMILY_OF.get(str(model), str(model))


@dataclasses.dataclass(frozen=True)
class Metric:
    """A sample-quality metric (zoo.sample_metrics): its label and whether lower is better."""

    name: str
    label: str
    lower_is_better: bool | None  # None: a check to read, not a score (memorisation)

    @property
    def direction(self) -> str:
        """"lower is better", "higher is better" or "a check, not a score"."""
        if self.lower_is_better is None:
            return "a check, not a score"
        return "lower is better" if self.lower_is_better else "higher is better"


# Sample-quality metrics shown beside the likelihoods (zoo.sample_metrics produces them).
SAMPLE_METRICS = {m.name: m for m in (
    Metric("fcd", "Fréchet classifier distance", True),
    Metric("fd_ae", "Fréchet distance (autoencoder features)", True),
    Metric("kid", "kernel inception-style distance (cubic kernel)", True),
    Metric("precision", "k-NN precision", False),
    Metric("recall", "k-NN recall", False),
    Metric("nn_train_dist", "mean distance to the nearest training image", None),
    Metric("nn_closer_than_test", "share of samples nearer the training set than test images are", None),
    Metric("kl_emp_true", "KL(sample histogram || true p), nats", True),
    Metric("tv_emp_true", "TV(sample histogram, true p)", True),
)}

# The units of the numbers the store records (its `units` column, filled by `metric_units` when a
# metric is logged). Likelihood-type numbers are nats per example (the contract); the family's terms
# (distortion, rate, ...) too.
NATS, BITS, FRACTION = "nats", "bits/dim", "fraction"
METRIC_UNITS = {
    **dict.fromkeys(("nll", "log_prob", "nll_se", "nll_draw_se", "distortion", "rate", "iw_gain",
                     "label_rate", "prior", "diffusion", "reconstruction", "logdet", "logit",
                     "dequantization", "kl_emp_true", "kl_emp_true_floor", "label_info"), NATS),
    **dict.fromkeys(("precision", "recall", "classifier_accuracy", "nn_closer_than_test", "tv_emp_true",
                     "tv_emp_true_floor", "label_agreement", "ssl_error"), FRACTION),
    **dict.fromkeys(("is_k", "is_examples", "metric_samples", "prior_mc_k", "sample_network_calls", "draws"),
                    "count"),
    "fcd": "squared classifier-feature distance", "fd_ae": "squared autoencoder-feature distance",
    "kid": "cubic-kernel MMD^2 (classifier features)", "kid_se": "cubic-kernel MMD^2 (classifier features)",
    "nn_train_dist": "pixel distance (L2, levels)", "nn_train_dist_test": "pixel distance (L2, levels)",
    "autoencoder_mse": "squared pixel error (pixels in [0, 1])", "obs_sigma": "levels",
    "obs_sigma_at_grid_edge": "flag (1 = at the grid's edge)", "sampler_speedup": "ratio",
}
UNIT_SUFFIXES = (("bits_per_dim", BITS), ("_nll", NATS), ("_nll_se", NATS), ("_gap", NATS),
                 ("_per_sec", "per second"), ("_seconds", "s"), ("_error", FRACTION), ("_accuracy", FRACTION))
UNIT_PREFIXES = (("samples_per_sec", "per second"), ("m1_error_", FRACTION))


def metric_units(name: str) -> str | None:
    """The units of metric `name` (`METRIC_UNITS`, else a suffix or prefix rule: `*_nll` nats,
    `*bits_per_dim` bits/dim, `*_per_sec` per second, `m1_error_n<N>` fraction, ...); None if unknown."""
    name = str(name)
    if name in METRIC_UNITS:
        return METRIC_UNITS[name]
    rules = [(name.endswith(s), u) for s, u in UNIT_SUFFIXES]
    rules += [(name.startswith(p), u) for p, u in UNIT_PREFIXES]
    return next((u for hit, u in rules if hit), None)


# How a run spreads over devices and hosts (zoo.distribute, a config's `train.strategy`).
Strategy = Literal["auto", "default", "mirrored", "multi_worker"]
STRATEGIES = get_args(Strategy)
# Keras dtype policies a run may train under (a config's `train.precision`); likelihoods are float32.
Precision = Literal["float32", "mixed_bfloat16", "mixed_float16"]
PRECISIONS = get_args(Precision)
