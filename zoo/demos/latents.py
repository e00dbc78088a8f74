"""The code a VAE's encoder gives labelled images, with prior draws on top: the "holes" a regulariser
closes (UBC CPSC 532S lecture 16, "what can happen without regularisation" vs "what we want to obtain
with regularisation"; Günnemann: "standard AE are not generative models, they can only reconstruct").

Sampling draws z ~ p(z) = N(0, I) and decodes it, but the decoder was trained only on codes of the
data, z ~ q(z|x): on the aggregate posterior (Hoffman & Johnson 2016, "ELBO surgery")

    q(z) = (1/N) sum_n q(z | x_n),   q(z | x_n) = N(mu(x_n), diag sigma(x_n)^2).

A prior draw z lies in a hole when the data's codes are rare there compared with the prior,

    hole(z)  <=>  q(z) < c p(z)          (c = `ratio`, 1/10 by default),

and the holes measure is the share of prior draws in holes, P_{z ~ p}[q(z) < c p(z)], by Monte Carlo.
Known answers: q(z|x) = p(z) for every x gives q = p and no holes; q(z) = N(0, s^2 I) in d = 2
(s < 1) has holes exactly where |z|^2 > r^2 = 2 log(1 / (c s^2)) / (1/s^2 - 1): share exp(-r^2 / 2);
codes crowded in a corner far from 0 leave nearly every prior draw in a hole. Beside it, the mean log
ratio E_p[log p(z) - log q(z)] = KL(p(z) || q(z)), 0 only when q = p.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_probability as tfp

tfd = tfp.distributions
RATIO = 0.1  # c: a prior draw is in a hole where the codes' density is under a tenth of the prior's


def check_latent_map(model) -> int:
    """The latent size d of a model whose codes can be mapped: a VAE / IWAE (`encode` -> (mu, sigma)
    of q(z|x)) with d = 2. Raises ValueError naming the fix otherwise."""
    from zoo.models.vae import VAE

    if not isinstance(model, VAE):
        raise ValueError(f"a {type(model).__name__} has no Gaussian encoder q(z|x): the map of mu(x) needs a "
                         "VAE or IWAE run")
    d = model.hp.latent_dim
    if d != 2:
        raise ValueError(f"{model.name} has a {d}-D latent: the map of mu(x) needs latent_dim: 2 (e.g. the "
                         "digits config's vae_2d)")
    return d


def posterior_params(model, x, batch: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) of q(z|x) for uint8 images x `[N, H, W, C]`: float32 `[N, d]` each, in batches."""
    parts = [model.encode(x[i:i + batch]) for i in range(0, len(x), batch)]
    return tuple(np.concatenate([np.asarray(p[j]) for p in parts]).astype(np.float32) for j in (0, 1))


def aggregate_log_density(z, mu, sigma):
    """log q(z) in nats, `[M]`, of the aggregate posterior (1/N) sum_n N(z; mu_n, diag sigma_n^2) at
    points z `[M, d]`, from the N codes mu, sigma `[N, d]` (a TFP mixture of equal weights)."""
    mu, sigma = tf.constant(mu, tf.float32), tf.constant(sigma, tf.float32)
    q = tfd.MixtureSameFamily(tfd.Categorical(logits=tf.zeros([tf.shape(mu)[0]])),
                              tfd.Independent(tfd.Normal(mu, sigma), reinterpreted_batch_ndims=1))
    return q.log_prob(tf.constant(z, tf.float32)).numpy()  # [M]


def prior_log_density(z):
    """log p(z) in nats, `[M]`, of the prior N(0, I) at z `[M, d]`."""
    z = np.asarray(z, np.float64)
    return (-0.5 * np.sum(z ** 2, -1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)).astype(np.float32)


def holes(z, mu, sigma, ratio: float = RATIO) -> dict:
    """The holes measure at prior draws z `[M, d]` (z ~ p(z)) of the codes mu, sigma `[N, d]`:
    {"holes": share of draws with q(z) < ratio p(z), "holes_se": its Monte Carlo standard error,
    "kl_prior_aggregate": mean of log p(z) - log q(z) in nats (KL(p || q)), "log_ratio": `[M]` the
    per-draw log q(z) - log p(z)}. Raises ValueError for ratio outside (0, 1] or empty inputs."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1] (a share of the prior's density), got {ratio}")
    if len(z) == 0 or len(mu) == 0:
        raise ValueError("holes needs at least one prior draw and one code")
    log_ratio = aggregate_log_density(z, mu, sigma) - prior_log_density(z)  # [M]
    share = float(np.mean(log_ratio < math.log(ratio)))
    return {"holes": share, "holes_se": math.sqrt(share * (1 - share) / len(z)),
            "kl_prior_aggregate": float(-np.mean(log_ratio)), "log_ratio": log_ratio}


def latent_map(model, x, labels=None, n_prior: int = 1000, seed: int = 0, ratio: float = RATIO) -> dict:
    """The picture's data for a 2-D-latent VAE / IWAE and uint8 images x `[N, H, W, C]`:

        codes   DataFrame z1, z2 (mu(x)), sigma1, sigma2, label (`labels` `[N]`, or -1)
        prior   DataFrame z1, z2 of `n_prior` draws z ~ N(0, I) (fixed by `seed`), hole (bool),
                log_ratio (log q(z) - log p(z))
        holes, holes_se, kl_prior_aggregate   as `holes`

    Raises ValueError (naming the fix) for a model without a 2-D Gaussian encoder, or mismatched labels."""
    check_latent_map(model)
    if labels is not None and len(labels) != len(x):
        raise ValueError(f"{len(labels)} labels for {len(x)} images: give one label per image")
    mu, sigma = posterior_params(model, x)
    z = np.random.default_rng(seed).standard_normal((int(n_prior), 2)).astype(np.float32)  # z ~ p(z)
    h = holes(z, mu, sigma, ratio)
    codes = pd.DataFrame({"z1": mu[:, 0], "z2": mu[:, 1], "sigma1": sigma[:, 0], "sigma2": sigma[:, 1],
                          "label": np.full(len(x), -1) if labels is None else np.asarray(labels, np.int64)})
    prior = pd.DataFrame({"z1": z[:, 0], "z2": z[:, 1], "hole": h["log_ratio"] < math.log(ratio),
                          "log_ratio": h["log_ratio"]})
    return {"codes": codes, "prior": prior, **{k: v for k, v in h.items() if k != "log_ratio"}}
