"""Class-conditional generation (UBC CPSC 532S lecture 16, "Conditional Image Generation"; van den Oord
et al. 2016): a model of p(x | h) = prod_i p(x_i | x_<i, h) given a class label h = y, judged three
ways after training. Any model with `num_classes > 0` on a labelled dataset, through the public
contract only: `log_prob(x, labels=y)` and `sample(n, labels=...)`.

Rows (name, value, kind) for the results store, on the evaluation split:

    cond_nll           mean over the split of -log p(x | y) with the true labels, nats per example
                       (kind: the model's likelihood kind; exact for the PixelCNN, a bound for M2)
    cond_bits_per_dim  the same in bits per sub-pixel (`zoo.contract.bits_per_dim`)
    cond_nll_se        standard error of that mean over the examples, nats
    label_info         exact models only: mean of log p(x | y) - log p(x) in nats, i.e. the runner's
                       `nll` (the marginal -log p(x), for the PixelCNN -log (1/K) sum_y p(x | y))
                       minus cond_nll. It equals log K + mean log p(y | x) under the model's own
                       posterior: at most log K (each image tells its label), 0 when the label adds
                       nothing. (For a bound the difference of two bounds bounds nothing: not recorded.)
    data_cond_nll      bars only: the true -log p(x | y) averaged over the split (kind exact): the
                       floor of cond_nll, as data_nll is the floor of nll

    label_agreement    share of `n` samples drawn with labels balanced over the K classes (y_i = i mod K)
                       that a classifier puts in their requested class: a fraction in [0, 1].
                       kind "classifier": the dataset's cached classifier (`zoo.sample_metrics`, the one
                       behind fcd); kind "bayes" on bars: the exact Bayes classifier of the true bars
                       model, argmax_c p(x | c), a sample as near two bars as to one credited 1/2
    classifier_accuracy  the reference, the same classifier on real data: digits, the eval split with its
                       labels (as `zoo.sample_metrics` records it); bars, exactly sum_y p(y) sum_x
                       p(x | y) [argmax_c p(x | c) = y] over all 2^16 images (ties shared): what exact
                       draws of p(x | y) score on average. Samples can score above it (clean bars).

`class_rows` draws the class-per-row grid the runner saves (`samples_by_class.png` / `.npy`).
"""
from __future__ import annotations

import numpy as np

from zoo.contract import bits_per_dim


def _check(model, dataset, split):
    if not model.needs_labels:
        raise ValueError(f"{model.name} is unconditional (num_classes 0): train it with num_classes > 0 "
                         f"for conditional metrics")
    if split not in dataset.labels:
        raise ValueError(f"{dataset.name} has no labels for split {split!r}: a conditional model needs "
                         f"labelled data (digits, bars)")


def _options(options: dict) -> dict:
    """`sample` options without `labels`: the labels requested here win over a config's."""
    return {k: v for k, v in options.items() if k != "labels"}


# --- likelihood given the label ------------------------------------------------------------------
def log_probs(model, x, labels=None, batch_size=500, seed=0, draws=1) -> np.ndarray:
    """`model.log_prob(x, labels=labels)` in batches, float64 nats `[N]` (labels None: log p(x))."""
    parts = [model.log_prob(x[s:s + batch_size], seed=seed, draws=draws,
                            labels=None if labels is None else labels[s:s + batch_size]).numpy()
             for s in range(0, len(x), batch_size)]
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros([0])


def likelihood_rows(model, dataset, split="test", batch_size=500, seed=0, draws=1, nll=None) -> list:
    """cond_nll, cond_bits_per_dim, cond_nll_se (and label_info, data_cond_nll): see the module. `nll`:
    the mean -log p(x) over the split when already known (the runner's `nll`: for the PixelCNN K network
    passes spared), else computed here."""
    _check(model, dataset, split)
    x, y = dataset.split(split), np.asarray(dataset.labels[split], np.int32)
    kind = model.likelihood
    cond = log_probs(model, x, y, batch_size, seed, draws)  # [N] log p(x | y)
    rows = [("cond_nll", -cond.mean(), kind),
            ("cond_bits_per_dim", bits_per_dim(cond.mean(), model.num_dims), kind),
            ("cond_nll_se", cond.std(ddof=1) / np.sqrt(len(cond)) if len(cond) > 1 else np.nan, None)]
    if kind == "exact":
        nll = -log_probs(model, x, None, batch_size, seed).mean() if nll is None else nll  # -log p(x)
        rows.append(("label_info", cond.mean() + nll, "exact"))  # mean log p(x|y) - mean log p(x)
    if is_bars(dataset):
        lp = bars_log_likelihoods(x, dataset.noise)  # [N, 4]
        rows.append(("data_cond_nll", -float(lp[np.arange(len(y)), y].mean()), "exact"))
    return [(n, float(v), k) for n, v, k in rows]


# --- sample agreement with the requested labels -------------------------------------------------
def balanced_labels(n: int, num_classes: int) -> np.ndarray:
    """Requested labels int32 `[n]`, y_i = i mod K: every class within one sample of n / K."""
    return (np.arange(n) % num_classes).astype(np.int32)


def draw_conditional(model, labels, seed=0, batch_size=500, **options) -> np.ndarray:
    """Samples uint8 `[n, H, W, C]`, sample i requested with `labels[i]`, drawn in batches with the
    seeds `zoo.sample_metrics.draw_samples` uses; `options` go to `model.sample` (not `labels`)."""
    labels, options = np.asarray(labels, np.int32), _options(options)
    parts = [np.asarray(model.sample(len(labels[s:s + batch_size]), seed=10_000 * (seed + 1) + i,
                                     labels=labels[s:s + batch_size], **options))
             for i, s in enumerate(range(0, len(labels), batch_size))]
    return np.concatenate(parts)


def is_bars(dataset) -> bool:
    from zoo.data import BarsDataset

    return isinstance(dataset, BarsDataset)


def bars_log_likelihoods(x, noise: float) -> np.ndarray:
    """log p(x | c) of the true bars model in nats, float64 `[N, 4]`, c = the lit column: each of the
    16 pixels flipped from bar c with probability `noise` (the components of `zoo.data.bars_log_prob`,
    whose log-mean-exp over c they are)."""
    from scipy.special import xlogy

    from zoo.data import bar_images

    flips = (np.asarray(x).reshape(len(x), 1, 16) != bar_images().reshape(1, 4, 16)).sum(-1)  # [N, 4]
    return xlogy(flips, noise) + xlogy(16 - flips, 1 - noise)


def bayes_credit(log_lik, labels) -> np.ndarray:
    """Credit `[N]` of the Bayes (MAP, uniform prior) class of each row of `log_lik` [N, K] for `labels`:
    1 when the label is the unique argmax, 1/m when it is one of m tied maxima, else 0."""
    best = log_lik == log_lik.max(1, keepdims=True)  # [N, K]
    return best[np.arange(len(labels)), labels] / best.sum(1)


def classifier_labels(net, x, batch_size=1000) -> np.ndarray:
    """The class int64 `[N]` a `zoo.sample_metrics.FeatureNet` classifier gives uint8 images
    `[N, H, W, C]` (the argmax of its logits)."""
    x = np.asarray(x, np.float32)
    return np.concatenate([net.model(x[s:s + batch_size], training=False).numpy().argmax(-1)
                           for s in range(0, len(x), batch_size)]) if len(x) else np.zeros([0], np.int64)


def agreement_rows(dataset, samples, requested, split="test") -> list:
    """label_agreement of `samples` uint8 `[N, H, W, C]` requested with `requested` int `[N]`, and the
    classifier's accuracy on real data for reference (see the module). Raises ValueError for a dataset
    without labels, or mismatched lengths."""
    samples, requested = np.asarray(samples), np.asarray(requested, np.int64)
    if len(samples) != len(requested) or not len(samples):
        raise ValueError(f"agreement_rows: {len(samples)} samples for {len(requested)} requested labels; "
                         f"give one label per sample (at least one)")
    if is_bars(dataset):
        from zoo.data import all_binary_images

        agree = bayes_credit(bars_log_likelihoods(samples, dataset.noise), requested).mean()
        lp = bars_log_likelihoods(all_binary_images(), dataset.noise)  # [65536, 4]
        exact = np.mean([np.sum(np.exp(lp[:, c]) * bayes_credit(lp, np.full(len(lp), c))) for c in range(4)])
        return [("label_agreement", float(agree), "bayes"), ("classifier_accuracy", float(exact), "bayes")]
    from zoo.sample_metrics import feature_net

    if not {"train", split} <= set(dataset.labels):
        raise ValueError(f"{dataset.name} has no labels for train and {split!r}: no classifier to check "
                         f"the samples' labels with")
    net = feature_net(dataset)
    agree = float(np.mean(classifier_labels(net, samples) == requested))
    return [("label_agreement", agree, "classifier")] + net.sanity_rows(dataset, split)


def sample_rows(model, dataset, n, split="test", seed=0, batch_size=500, **options) -> list:
    """label_agreement (and classifier_accuracy) of `n` samples with balanced requested labels."""
    _check(model, dataset, split)
    requested = balanced_labels(n, model.num_classes)
    drawn = draw_conditional(model, requested, seed=seed, batch_size=batch_size, **options)
    return agreement_rows(dataset, drawn, requested, split)


# --- the class-per-row grid ----------------------------------------------------------------------
def class_rows(model, per_class: int, seed=0, **options) -> np.ndarray:
    """uint8 `[K * per_class, H, W, C]`, class-major: images r * per_class .. (r + 1) * per_class - 1
    drawn by one `model.sample(K * per_class, seed=seed, labels=...)` with label r (grid row r when
    tiled `per_class` to a row). Raises ValueError for an unconditional model or per_class < 1."""
    from zoo.demos.pixelcnn import class_grid

    return class_grid(model, per_class, seed=seed, **_options(options))[1]
