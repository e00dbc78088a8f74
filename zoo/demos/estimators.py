"""Estimators of log p(x) for a latent-variable model, against their cost (Isachenko lecture 5: naive
Monte Carlo; Bruna lecture 16: IWAE; Wu et al. 2017: AIS).

    prior MC     p(x) = E_{p(z)} p(x|z) ≈ (1/k) sum_i p(x|z_i),        z_i ~ p(z)       (Isachenko)
    IS with q    p(x) = E_q p(x, z)/q(z|x) ≈ (1/k) sum_i w_i,          z_i ~ q(z|x)     (Burda eq. 8)
    AIS          chains annealed from p(z) to p(z|x) through p(x|z)^beta              (`zoo.ais`)
    quadrature   ∫ p(x|z) p(z) dz on a grid: exact up to the grid's error (1-D, 2-D latents)

Each log of an unbiased estimate of p(x) is a stochastic lower bound on log p(x) (Jensen). Prior
sampling wastes its draws where p(x|z) is negligible: once the posterior is narrow it needs far more
of them than q does (where the decoder barely uses z, the two are alike).
`cost` counts decoder evaluations per example, so the methods share one axis.
"""
from __future__ import annotations

import math
import time
import weakref

import numpy as np
import pandas as pd

KS = (1, 10, 100, 1000, 5000)  # samples k of prior MC and IS in a full table
AIS = ((4, 10), (4, 50), (4, 200))  # (chains, annealing steps) of AIS in a full table: 1, 2, 4 chains
LEAPFROG = 5  # HMC leapfrog steps per AIS transition of a VAE (the GAN uses its own `ais_leapfrog`)
# What the runner records for every latent run (small: it runs in the README's main job too)
RUNNER = dict(examples=8, ks=(1, 10, 100, 1000, 5000), repeats=3, ais=((4, 30),))
PRIOR_MC_K = 100  # default k of prior_mc_nll (the runner uses its eval.is_k, the k of is_nll)
QUADRATURE_POINTS = {1: 1001, 2: 101}  # grid points per axis of the table's quadrature (refined per image)
KIND_OF = {"prior MC": "mc", "IS with q": "iwae", "AIS": "ais", "quadrature": "exact"}  # zoo.vocabulary
COST = {"prior MC": "k decoder passes",
        "IS with q": "k decoder passes (+ 1 encoder pass)",
        "AIS": "chains x ((steps - 1)(leapfrog + 2) + 1) decoder passes (HMC: each with its gradient)",
        "quadrature": "grid points decoder passes per grid (a second grid over a narrow posterior)"}

_compiled = weakref.WeakKeyDictionary()  # model -> {name: its compiled function}


def _check(model):
    if not getattr(model, "has_decoder", False):
        raise ValueError(f"{getattr(model, 'name', model)} has no latent decoder p(x|z) (has_decoder is "
                         f"False): these estimators need a VAE, IWAE or GAN")


def prior_mc_log_prob(model, x, k: int, seed: int = 0, chunk: int | None = None) -> np.ndarray:
    """Naive Monte Carlo log (1/k) sum_i p(x|z_i), z_i ~ p(z) = `model.prior`: `[B]` float64 nats.

    x uint8 `[B, H, W, C]`; the k draws go in chunks of `chunk` (default: `model.is_budget` samples x
    examples); equal seeds give equal estimates. A stochastic lower bound on log p(x) (Jensen) whose
    bias and spread shrink only as fast as k covers the posterior's share of the prior (Isachenko,
    lecture 5, "naive Monte-Carlo estimation"). Raises ValueError without `has_decoder` or for k < 1."""
    import tensorflow as tf

    _check(model)
    if int(k) < 1:
        raise ValueError(f"prior Monte Carlo needs k >= 1 samples, got {k}")
    x = model.check_input(x)
    b = int(x.shape[0])
    if b == 0:
        return np.zeros([0])
    fns = _compiled.setdefault(model, {})
    if "prior_mc" not in fns:
        fns["prior_mc"] = tf.function(lambda z, xb: tf.reduce_logsumexp(model.log_px_given_z(z, xb), 0),
                                      reduce_retracing=True)
    chunk = int(chunk or max(1, min(k, getattr(model, "is_budget", 40_000) // b)))
    parts = []
    for i, start in enumerate(range(0, int(k), chunk)):
        n = min(chunk, int(k) - start)
        z = model.prior.sample([n, b], seed=tf.constant([int(seed), i], tf.int32))  # [n, B, d]
        parts.append(np.asarray(fns["prior_mc"](z, x), np.float64))  # [B]
    return np.logaddexp.reduce(np.stack(parts), axis=0) - math.log(k)


def ais_cost(steps: int, chains: int, leapfrog: int) -> int:
    """Decoder evaluations per example of `zoo.ais.ais_log_prob`: per chain, each of the steps - 1
    HMC transitions evaluates p(x|z) for the weight, once more with its gradient to start, and once
    per leapfrog step; the last step only the weight."""
    return int(chains) * ((int(steps) - 1) * (int(leapfrog) + 2) + 1)


def ais_log_weights(model, x, steps: int, chains: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """(AIS log-weights `[chains, B]` float64 nats, leapfrog steps per transition): the estimator of the
    models' `log_prob_ais` (`zoo.ais.ais_log_prob` from `model.prior` through `model.log_px_given_z`;
    the GAN's own `ais_leapfrog`, LEAPFROG for a VAE), compiled once per (model, steps, chains) so
    repeats with other seeds do not retrace (a VAE's `log_prob_ais` does). log mean_c exp(w_c) over
    any c of the chains is an AIS estimate of log p(x) with c chains (`ais_log_prob`)."""
    import tensorflow as tf

    from zoo.ais import ais_log_prob as ais

    _check(model)
    leapfrog = int(getattr(getattr(model, "hp", None), "ais_leapfrog", LEAPFROG))
    fns = _compiled.setdefault(model, {})
    key = ("ais", int(steps), int(chains))
    if key not in fns:
        fns[key] = tf.function(
            lambda xb, s: ais(model.prior, model.log_px_given_z, xb, int(steps), int(chains), seed=s,
                              leapfrog_steps=leapfrog, return_diagnostics=True)[1]["log_weights"],
            reduce_retracing=True, jit_compile=False)  # XLA's compile outlasts these short chains
    log_w = fns[key](model.check_input(x), tf.constant([int(seed), 7], tf.int32))
    return np.asarray(log_w, np.float64), leapfrog


def ais_log_prob(model, x, steps: int, chains: int, seed: int = 0) -> np.ndarray:
    """AIS estimate of log p(x) `[B]` float64 nats with `chains` chains of `steps` annealing steps
    (`ais_log_weights`): a stochastic lower bound that tightens as steps grow (Neal 2001)."""
    log_w, _ = ais_log_weights(model, x, steps, chains, seed)
    return np.logaddexp.reduce(log_w, axis=0) - math.log(chains)


def _halvings(n: int) -> list[int]:
    """n, n // 2, ..., 1 in increasing order (the chain counts read off one AIS run)."""
    return sorted({n >> i for i in range(int(n).bit_length())})


def estimator_table(model, x, ks=KS, repeats: int = 3, seed: int = 0, ais=AIS,
                    quadrature: bool = True) -> pd.DataFrame:
    """log p(x) estimates against their cost: one row per (method, setting, repeat) with columns
    method, k (samples; AIS: chains; quadrature: grid points), steps (AIS only), cost (decoder
    evaluations per example, see COST), cost_counts (what `cost` counts), repeat, nll (the mean of
    -estimate over x, nats), seconds (of the call behind the row; AIS: the run of all its chains).
    Methods: "prior MC" (`prior_mc_log_prob`), "IS with q" (`model.log_prob_is`, with
    `has_importance_sampling`), "AIS" (`ais_log_weights`, the estimator of the models'
    `log_prob_ais`: for each (chains, steps) of `ais` one run per repeat, read with its first
    chains, chains // 2, ..., 1 chains, so one compiled run gives several costs), and for a latent of 1 or 2
    dimensions "quadrature" (once: it is deterministic; `zoo.demos.posterior`; the model's exact
    log p(x) up to the grid's error). Raises ValueError without `has_decoder`."""
    _check(model)
    rows = []

    def add(method, k, steps, cost, repeat, estimate, start):
        rows.append(dict(method=method, k=int(k), steps=steps, cost=int(cost), cost_counts=COST[method],
                         repeat=repeat, nll=float(-np.mean(estimate)), seconds=time.perf_counter() - start))

    for k in ks:
        for r in range(repeats):
            t = time.perf_counter()
            add("prior MC", k, None, k, r, prior_mc_log_prob(model, x, k, seed=seed + 1000 * r + 1), t)
    if getattr(model, "has_importance_sampling", False):
        for k in ks:
            for r in range(repeats):
                t = time.perf_counter()
                est = np.asarray(model.log_prob_is(x, k, seed=seed + 1000 * r + 2))
                add("IS with q", k, None, k, r, est, t)
    if hasattr(model, "log_prob_ais"):  # the models that have AIS (VAE, IWAE, GAN): the same estimator
        for chains, steps in ais:
            for r in range(repeats):
                t = time.perf_counter()
                log_w, leapfrog = ais_log_weights(model, x, steps, chains, seed=seed + 1000 * r + 3)
                for c in _halvings(chains):
                    est = np.logaddexp.reduce(log_w[:c], axis=0) - math.log(c)
                    add("AIS", c, steps, ais_cost(steps, c, leapfrog), r, est, t)
    if quadrature and int(model.prior.event_shape[-1]) <= 2:
        from zoo.demos.posterior import posterior

        t = time.perf_counter()
        points = QUADRATURE_POINTS[int(model.prior.event_shape[-1])]
        exact = [posterior(model, x[i:i + 1], points).log_px[0] for i in range(len(x))]  # a grid each
        size = points ** int(model.prior.event_shape[-1])
        add("quadrature", size, None, size, 0, exact, t)
    return pd.DataFrame(rows)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """An `estimator_table` (or its saved CSV) per setting, in the table's order: method, k, steps,
    cost, then nll (the mean over repeats), nll_min, nll_max, nll_sd (over repeats; NaN for one),
    repeats, and line (the curve a chart draws it on: the method, "AIS, T steps" for AIS).
    TensorFlow-free (the dashboard draws it)."""
    keys = ["method", "k", "steps", "cost"]
    g = table.groupby(keys, sort=False, dropna=False)["nll"]
    out = g.agg(nll="mean", nll_min="min", nll_max="max", nll_sd="std", repeats="size").reset_index()
    steps = [f"{s:g}" if isinstance(s, (int, float)) and s == s else "" for s in out["steps"]]
    out["line"] = [f"{m}, {t} steps" if t else m for m, t in zip(out["method"], steps)]
    return out


def runner_outputs(model, dataset, x, seed: int = 0, metric_x=None, k: int = PRIOR_MC_K) -> tuple[list, dict]:
    """What the runner records for a model with a decoder (VAE, IWAE, GAN): the metric rows
    ("prior_mc_nll", -mean prior MC estimate with `k` samples, "mc") and ("prior_mc_k", k, None) on
    `metric_x` (default x: the runner passes the images and k of its is_nll, so the two sit side by
    side), and the report {"estimators": `estimator_table`} on the first RUNNER["examples"] images of x
    with the RUNNER settings; ([], {}) for any other model."""
    if not getattr(model, "has_decoder", False):
        return [], {}
    xm = x if metric_x is None else metric_x
    nll = float(-np.mean(prior_mc_log_prob(model, xm, int(k), seed=seed)))
    s = RUNNER
    table = estimator_table(model, x[:s["examples"]], ks=s["ks"], repeats=s["repeats"], seed=seed,
                            ais=s["ais"])
    return [("prior_mc_nll", nll, "mc"), ("prior_mc_k", float(k), None)], {"estimators": table}
