"""Evaluation under the contract: one function turns a model and a split into named metrics.

Every likelihood-type metric carries the kind of number it is (exact / elbo / iwae / ...); the
bits/dim figures come from `zoo.contract.bits_per_dim`, the zoo's only conversion.
"""
from __future__ import annotations

import time

import keras
import numpy as np
import tensorflow as tf

from zoo.contract import bits_per_dim


def batched_terms(model, x, batch_size=500, seed=0, draws=1):
    """`model.nll_terms` of `x` over batches (compiled once), each term as numpy float64 `[draws, N]`:
    `draws` independent estimates per example (identical rows for an exact model)."""
    gen = keras.random.SeedGenerator(seed)
    fn = tf.function(lambda xb: model.nll_terms(xb, seed=gen), reduce_retracing=True)
    out = {}
    for _ in range(draws):
        parts = {}
        for start in range(0, len(x), batch_size):
            for name, value in fn(model.check_input(x[start:start + batch_size])).items():
                parts.setdefault(name, []).append(value.numpy())
        for name, v in parts.items():
            out.setdefault(name, []).append(np.concatenate(v))
    return {name: np.stack(v).astype(np.float64) for name, v in out.items()}


HEADLINE = ("nll", "log_prob", "bits_per_dim", "nll_se", "nll_draw_se")


def evaluate(model, dataset, split="test", batch_size=500, is_k=0, is_examples=None, seed=0, draws=1):
    """Metrics of `model` on `dataset.split(split)` as a list of (name, value, kind) rows.

    nll / bits_per_dim / log_prob: mean over the split of the model's own `log_prob` (kind =
    `model.likelihood`), each example's estimate averaged over `draws`; one row per `nll_terms`
    term; nll_se the standard error of the mean over examples; with draws > 1, nll_draw_se the
    mean over examples of each example's standard error over its draws (how far one image's
    number can be trusted). is_nll / is_bits_per_dim: the importance-sampled `log_prob_is` with
    `is_k` samples (kind iwae); on data with a known density (bars), data_nll is the true
    -log p(x) averaged over the split.
    """
    x = dataset.split(split)
    kind = model.likelihood
    rows = []
    if kind != "none":
        draws = 1 if kind == "exact" else draws
        per_draw = batched_terms(model, x, batch_size, seed, draws)  # {term: [draws, N]}
        terms = {name: v.mean(0) for name, v in per_draw.items()}
        nll = sum(terms.values())  # [N]
        rows += [("nll", nll.mean(), kind), ("log_prob", -nll.mean(), kind),
                 ("bits_per_dim", bits_per_dim(-nll.mean(), model.num_dims), kind),
                 ("nll_se", nll.std(ddof=1) / np.sqrt(len(nll)) if len(nll) > 1 else np.nan, None)]
        if draws > 1:
            rows += [("nll_draw_se", np.mean(sum(per_draw.values()).std(0, ddof=1)) / np.sqrt(draws), None),
                     ("draws", draws, None)]
        # (a lone "nll" term)
        rows += [(name, v.mean(), kind) for name, v in terms.items() if name not in HEADLINE]
    if is_k and model.has_importance_sampling:
        xi = x[:is_examples] if is_examples else x
        t0 = time.perf_counter()
        lp = np.concatenate([model.log_prob_is(xi[s:s + batch_size], is_k, seed=seed + 1).numpy()
                             for s in range(0, len(xi), batch_size)]).astype(np.float64)
        rows += [("is_nll", -lp.mean(), "iwae"),
                 ("is_bits_per_dim", bits_per_dim(lp.mean(), model.num_dims), "iwae"),
                 ("is_k", is_k, None), ("is_examples", len(xi), None),
                 ("is_seconds", time.perf_counter() - t0, None)]
    if hasattr(dataset, "true_log_prob"):
        rows.append(("data_nll", -float(np.mean(dataset.true_log_prob(x))), "exact"))
        rows += population_rows(model, dataset, batch_size, is_k, seed)
    return [(name, float(value), k) for name, value, k in rows]


def population_rows(model, dataset, batch_size=500, is_k=0, seed=0):
    """On bars (known p, 2^16 states): the model's NLL on the *population* instead of a split,
    pop_nll = sum_x p(x) (-log q(x)) over every 4x4 binary image, and pop_gap = pop_nll - H(p),
    which is KL(p || q) for an exact model (plus the expected bound gap for a bound). Free of the
    test split's sampling noise (about 0.026 nats of SE at 10k images). With `is_k`, models that set
    `population_is` (cheap importance weights) also give pop_is_nll / pop_is_gap."""
    from zoo.data import all_binary_images

    if model.likelihood in ("none", "ais", "vlb") or tuple(dataset.shape) != (4, 4, 1) or dataset.levels != 2:
        return []  # (AIS: too costly on 2^16 images; a one-draw VLB is too noisy on the few heavy images)
    x = all_binary_images(4, 4)
    p = np.exp(dataset.true_log_prob(x))  # [65536], sums to 1
    nll = sum(batched_terms(model, x, max(batch_size, 4096), seed).values())[0]
    rows = [("pop_nll", p @ nll, model.likelihood), ("pop_gap", p @ nll - dataset.entropy, model.likelihood)]
    if is_k and model.has_importance_sampling and model.population_is:
        lp = np.concatenate([model.log_prob_is(x[s:s + 1000], is_k, seed=seed + 2).numpy()
                             for s in range(0, len(x), 1000)]).astype(np.float64)
        rows += [("pop_is_nll", -(p @ lp), "iwae"), ("pop_is_gap", -(p @ lp) - dataset.entropy, "iwae")]
    return rows


IS_KS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


def reports(model, x, seed=0, is_ks=IS_KS):
    """The model's own `reports(x)` plus, for models with an importance-sampling estimate,
    `is_vs_k`: mean log_prob_is over `x` for each k (Burda et al.'s L_k rising with k), nats."""
    import pandas as pd

    out = dict(model.reports(x, seed=seed))
    if model.has_importance_sampling:
        lp = [float(np.mean(model.log_prob_is(x, k, seed=seed + 1).numpy())) for k in is_ks]
        out["is_vs_k"] = pd.DataFrame({"k": list(is_ks), "log_prob": lp, "nll": [-v for v in lp]})
    return out


def sampling_speed(model, n=64, seed=0, **kwargs):
    """Samples per second of `model.sample(n, **kwargs)` (second call, after tracing), and the samples."""
    model.sample(min(n, 4), seed=seed, **kwargs)
    t0 = time.perf_counter()
    samples = model.sample(n, seed=seed, **kwargs).numpy()
    return n / (time.perf_counter() - t0), samples


def sampler_comparison(model, n=16, seed=0):
    """For models with several samplers (`model.sample_methods`, fastest last): samples/s of each on
    the same `n` draws, and the speed-up of the last over the first, as metric rows."""
    methods = model.sample_methods
    if len(methods) < 2:
        return []
    speeds = {m: sampling_speed(model, n, seed, method=m)[0] for m in methods}
    rows = [(f"samples_per_sec_{m}", v, None) for m, v in speeds.items()]
    return rows + [("sampler_speedup", speeds[methods[-1]] / speeds[methods[0]], None)]
