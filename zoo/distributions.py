"""Discrete pixel likelihoods p(x | params) over `levels` integer values, built from TFP.

One place for every family's per-pixel output distribution, so each reports log-probabilities of
the same discrete data (and for the latent Gaussian of the latent-variable families):

    bernoulli              levels == 2, one logit per sub-pixel
    categorical            a softmax over the levels ("softmax loss at each pixel")
    discretized_logistic   Logistic(mu, s) quantised to {0..L-1}, edges taking the tails
                           (Salimans et al. 2017, eq. 2; tfd.QuantizedDistribution)
    discretized_gaussian   N(mu, s^2) quantised the same way: level k has the Gaussian's mass of
                           [k - 1/2, k + 1/2], the end bins open to -inf / +inf (Günnemann's Gaussian
                           p(x|z) made a law of the discrete data; the GAN's AIS observation model)

`params` has shape `[..., H, W, C, P]` with P = `num_params(kind, levels)`. The two discretised laws
take (loc, scale) from the same raw pair: loc = (L-1)/2 (1 + tanh p_0) in levels, scale = softplus(p_1)
+ MIN_SCALE levels; a fixed scale sigma is the constant p_1 = `scale_param(sigma)`.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import tensorflow as tf
import tensorflow_probability as tfp

from zoo.registry import unknown_key_error

tfd = tfp.distributions
PixelLaw = Literal["auto", "bernoulli", "categorical", "discretized_logistic",
                   "discretized_gaussian"]  # a config's `decoder` field
PIXEL_LAWS = get_args(PixelLaw)[1:]
_LAWS = {"discretized_logistic": tfd.Logistic, "discretized_gaussian": tfd.Normal}  # the laws quantised
MIN_SCALE = 1e-2  # levels: the smallest scale of a discretised law (a sharper one is a point mass anyway)


def gaussian(loc, scale):
    """The latent Gaussian N(loc, diag scale^2), event shape [d]: TFP's Independent Normal, whose
    log-density and KL are elementwise (the values of MultivariateNormalDiag without its
    LinearOperator maths, cheaper each step)."""
    return tfd.Independent(tfd.Normal(loc, scale), reinterpreted_batch_ndims=1)


def resolve_kind(kind: str, levels: int) -> str:
    """`auto` picks Bernoulli for binary data and a categorical softmax otherwise."""
    if kind == "auto":
        return "bernoulli" if levels == 2 else "categorical"
    if kind not in PIXEL_LAWS:
        raise unknown_key_error("pixel distribution", kind, ("auto", *PIXEL_LAWS))
    if kind == "bernoulli" and levels != 2:
        raise ValueError(f"a Bernoulli decoder needs binary data, this data has {levels} levels; "
                         f"use 'categorical', 'discretized_logistic' or 'discretized_gaussian'")
    return kind


def num_params(kind: str, levels: int) -> int:
    return {"bernoulli": 1, "categorical": levels, "discretized_logistic": 2, "discretized_gaussian": 2}[kind]


def _loc_scale(params, levels: int):
    """A discretised law's (loc, scale) `[..., H, W, C]` in levels: TFP's quantisation gives level y the
    mass of X in (y - 1, y], so loc is shifted by -1/2 to centre the bin of level mu on mu."""
    half = (levels - 1) / 2.0
    return half + half * tf.tanh(params[..., 0]) - 0.5, tf.nn.softplus(params[..., 1]) + MIN_SCALE


def scale_param(sigma: float) -> float:
    """The raw parameter p_1 whose scale is `sigma` levels (a fixed-scale decoder appends it as a
    constant). Raises ValueError unless sigma is a finite number > MIN_SCALE."""
    number = isinstance(sigma, (int, float)) and not isinstance(sigma, bool)
    if not number or not math.isfinite(sigma) or sigma <= MIN_SCALE:
        raise ValueError(f"a fixed pixel scale must be a number of levels > {MIN_SCALE}, got {sigma!r}")
    return float(sigma - MIN_SCALE + math.log(-math.expm1(MIN_SCALE - sigma)))  # softplus^-1(sigma - min)


def pixel_distribution(kind: str, params, levels: int) -> tfd.Distribution:
    """p(x | params) with event shape [H, W, C]; `params` is `[..., H, W, C, P]`."""
    if kind == "bernoulli":
        base = tfd.Bernoulli(logits=params[..., 0], dtype=tf.int32)
    elif kind == "categorical":
        base = tfd.Categorical(logits=params, dtype=tf.int32)
    else:  # the quantised law: TFP takes log cdf / log survival (log_ndtr for the Normal) by the side of
        loc, scale = _loc_scale(params, levels)  # the median, so far tails stay finite in float32
        base = tfd.QuantizedDistribution(_LAWS[kind](loc, scale), low=0.0, high=float(levels - 1))
    return tfd.Independent(base, reinterpreted_batch_ndims=3)


def pixel_log_prob(kind: str, params, x, levels: int):
    """log p(x | params) in nats, summed over pixels: `[...]` (x uint8 `[B, H, W, C]` broadcasts).

    Bernoulli and categorical take TF's fused cross-entropy kernels on x broadcast to the parameters'
    batch shape: the same value as `pixel_distribution(...).log_prob(x)` (a test holds them equal),
    without TFP's broadcast of the logits to x's shape, which costs a copy of them each step."""
    if kind in _LAWS:
        return pixel_distribution(kind, params, levels).log_prob(tf.cast(x, tf.float32))
    if kind == "bernoulli":
        logits = params[..., 0]  # [..., H, W, C]
        labels = tf.broadcast_to(tf.cast(x, logits.dtype), tf.shape(logits))
        nll = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    else:
        labels = tf.broadcast_to(tf.cast(x, tf.int32), tf.shape(params)[:-1])
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=params)
    return -tf.reduce_sum(nll, axis=[-3, -2, -1])


def pixel_sample(kind: str, params, levels: int, seed):
    """One draw per parameter set, as int32 `[..., H, W, C]`; `seed` is a TFP stateless seed."""
    return tf.cast(pixel_distribution(kind, params, levels).sample(seed=seed), tf.int32)


def pixel_mean(kind: str, params, levels: int):
    """E[x | params] in data units (0..levels-1), float `[..., H, W, C]`."""
    if kind == "bernoulli":
        return tf.sigmoid(params[..., 0])
    if kind == "categorical":
        return tf.reduce_sum(tf.nn.softmax(params, -1) * tf.range(levels, dtype=tf.float32), -1)
    loc, scale = _loc_scale(params, levels)  # E[y] = sum_{j=0}^{L-2} P(y > j), P(y > j) = P(X > j)
    j = tf.range(levels - 1, dtype=tf.float32)
    return tf.reduce_sum(_LAWS[kind](loc[..., None], scale[..., None]).survival_function(j), -1)
