"""What a factorised decoder costs (Günnemann, "Choosing p(x|z)": each pixel x_j is conditionally
independent of the others given z; they become dependent only once z is marginalised out).

A VAE's decoder gives one distribution per sub-pixel,

    p(x | z) = prod_j p(x_j | f(z)_j)        (Bernoulli, categorical or discretised logistic),

so a draw x ~ p(x|z) adds independent noise to every pixel around the mean E[x|z]: a sample of the
model is speckled, while the mean is smooth. The noise each draw adds is the decoder's entropy
H[p(x|z)] = sum_j H[p(x_j|z)] nats. A PixelCNN draws pixel j given the pixels already drawn,
p(x) = prod_j p(x_j | x_<j), so its pixels agree with each other and its samples are clean.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from zoo.distributions import pixel_distribution, pixel_sample


def check_decoder(model) -> None:
    """Raise ValueError (naming the fix) unless `model` has a factorised pixel decoder p(x|z) with a
    Gaussian prior on z: a VAE or IWAE (`decoder`, `pixel_kind`, `hp.latent_dim`)."""
    from zoo.models.vae import VAE

    if not isinstance(model, VAE):
        raise ValueError(f"a {type(model).__name__} has no factorised pixel decoder p(x|z): decoder draws "
                         "need a VAE or IWAE run")


def pixel_pmf(kind: str, params, levels: int):
    """p(x_j = k | params) for k = 0..levels-1, float32 `[..., H, W, C, levels]`: every sub-pixel's
    own law (`zoo.distributions.pixel_distribution`), exactly; each sums to 1 over k."""
    base = pixel_distribution(kind, params, levels).distribution  # batch [..., H, W, C]
    log_p = tf.stack([base.log_prob(tf.cast(k, base.dtype)) for k in range(levels)], -1)
    return tf.exp(log_p)


def decoder_moments(model, z) -> dict:
    """For latents z `[M, d]`: {"mean": E[x|z] `[M, H, W, C]` in data units, "var": Var[x_j|z] per
    sub-pixel `[M, H, W, C]`, "entropy": H[p(x|z)] = sum_j H[p(x_j|z)] in nats `[M]`}, from the
    pixels' exact probabilities. Raises ValueError for a model without a factorised decoder."""
    check_decoder(model)
    p = pixel_pmf(model.pixel_kind, model.decoder(tf.constant(z, tf.float32)), model.levels)  # [M,H,W,C,L]
    k = tf.range(model.levels, dtype=tf.float32)
    mean = tf.reduce_sum(p * k, -1)
    var = tf.reduce_sum(p * (k - mean[..., None]) ** 2, -1)  # centred: no cancellation in float32
    entropy = -tf.reduce_sum(tf.math.multiply_no_nan(tf.math.log(p), p), [-4, -3, -2, -1])
    return {"mean": mean.numpy(), "var": var.numpy(), "entropy": entropy.numpy()}


def decoder_draws(model, z, n_draws: int, seed: int = 0) -> np.ndarray:
    """`n_draws` independent x ~ p(x|z) for each latent of z `[M, d]`: int32 `[n_draws, M, H, W, C]`
    in [0, levels - 1], every sub-pixel drawn on its own given z (`zoo.distributions.pixel_sample`)."""
    check_decoder(model)
    params = model.decoder(tf.constant(z, tf.float32))  # [M, H, W, C, P]
    params = tf.broadcast_to(params, [int(n_draws), *params.shape])
    return pixel_sample(model.pixel_kind, params, model.levels, tf.constant([int(seed), 0], tf.int32)).numpy()


def draws_beside_means(model, n_z: int = 8, n_draws: int = 3, seed: int = 0) -> dict:
    """The picture's data: `n_z` prior draws z ~ N(0, I) (fixed by `seed`), {"z": `[n_z, d]`, "mean":
    E[x|z] `[n_z, H, W, C]`, "draws": `[n_draws, n_z, H, W, C]` for the SAME z, "entropy": H[p(x|z)]
    nats `[n_z]`}. Raises ValueError for a model without a factorised decoder."""
    check_decoder(model)
    z = np.random.default_rng(seed).standard_normal((int(n_z), model.hp.latent_dim)).astype(np.float32)
    moments = decoder_moments(model, z)
    return {"z": z, "mean": moments["mean"], "draws": decoder_draws(model, z, n_draws, seed),
            "entropy": moments["entropy"]}
