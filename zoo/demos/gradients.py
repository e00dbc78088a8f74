"""Why reparameterise: the ELBO's gradient with respect to the ENCODER's weights by three estimators,
and their variance over S draws (Paquet, "Naive sampling" / "Reparameterization trick"; Bruna, mean
field and the score-function estimator; Kingma & Welling 2014 sec. 2.4; Williams 1992).

For q_phi(z|x) = N(mu_phi(x), diag sigma_phi(x)^2) and a learning signal f, one draw z_s ~ q gives

    reparameterised    z_s = mu + sigma * eps_s:   g_s = grad_phi f(mu_phi + sigma_phi * eps_s)
    score function     g_s = grad_phi log q_phi(z_s|x) * f(z_s)          (REINFORCE; z_s held fixed)
    + baseline         g_s = grad_phi log q_phi(z_s|x) * (f(z_s) - b_s),
                       b_s = (1 / (S-1)) sum_{j != s} f(z_j)             (leave-one-out mean of the signal)

`form` says which ELBO is differentiated (per example; the batch ELBO is their mean over the batch):

    "mc"        ELBO = E_q[log p(x, z) - log q(z|x)], f = log p(x|z) + log p(z) - log q(z|x); the
                reparameterised estimator differentiates f through z and through log q's parameters;
                the score function drops E_q[-grad log q] = 0 (the brief's REINFORCE form).
    "analytic"  ELBO = E_q[log p(x|z)] - KL(q || p(z)), f = log p(x|z); the exact -grad KL is added
                to every estimator (the zoo's training form, `VAEConfig.kl = "analytic"`).

All three are unbiased for the same gradient. Each draw's gradient is g_s = J^T v_s, J the Jacobian of
the encoder's outputs (mu, sigma) with respect to its weights and v_s the draw's gradient with respect
to (mu, sigma): the mean is mean(v) J and the per-weight variance diag(J^T Cov(v) J), exactly, without
S backward passes.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_probability as tfp

from zoo.distributions import gaussian

ESTIMATORS = ("reparameterised", "score function", "score function + baseline")
FORMS = ("mc", "analytic")
JACOBIAN_BUDGET = 64 * 2**20  # floats in J: [B * 2d, encoder weights]


@dataclasses.dataclass
class GradientStats:
    """`table`: one row per estimator (estimator, form, S, examples, weights, total_variance,
    variance_per_weight, mean_norm, mean_se, snr); `mean` / `variance`: {estimator: `[P]`} mean over
    the S draws of a one-draw gradient and its per-weight variance, over the P encoder weights."""

    table: pd.DataFrame
    mean: dict
    variance: dict


def _check(model, x, samples, form):
    for need in ("encoder", "encode", "log_px_given_z", "prior"):
        if not model.offers(need):
            raise ValueError(f"encoder gradients need a VAE or IWAE (an encoder q(z|x) and a decoder); "
                             f"{type(model).__name__} has no {need}")
    if form not in FORMS:
        raise ValueError(f"form must be one of {FORMS}, got {form!r}")
    if int(samples) < 2:
        raise ValueError(f"samples must be >= 2 (a variance and the leave-one-out baseline need two "
                         f"draws), got {samples}")
    return model.check_input(x)


def encoder_jacobian(model, x):
    """(mu `[B, d]`, sigma `[B, d]`, J `[B*2d, P]` float64): the Jacobian of the encoder's outputs
    (mu, sigma) of each example, flattened row-major, with respect to its P trainable weights.
    Raises ValueError when J would exceed JACOBIAN_BUDGET floats (fewer examples fix it)."""
    x = model.check_input(x)
    weights = model.encoder.trainable_weights
    size = int(x.shape[0]) * 2 * model.hp.latent_dim * sum(int(np.prod(w.shape)) for w in weights)
    if size > JACOBIAN_BUDGET:
        raise ValueError(f"the encoder Jacobian would hold {size:,} floats (> {JACOBIAN_BUDGET:,}); "
                         f"pass fewer examples (x has {int(x.shape[0])})")
    with tf.GradientTape() as tape:
        mu, sigma = model.encode(x)  # [B, d] each
        h = tf.concat([mu, sigma], -1)  # [B, 2d]
    jac = tape.jacobian(h, weights)  # each [B, 2d, *w.shape]
    flat = np.concatenate([np.reshape(j.numpy(), (int(tf.size(h)), -1)) for j in jac], 1)
    return mu, sigma, flat.astype(np.float64)


def draw_gradients(model, x, mu, sigma, samples: int, form: str = "mc", seed: int = 0) -> dict:
    """{estimator: v `[S, B, 2d]`}: each draw's gradient of the ELBO of each example with respect to
    its encoder outputs (mu, sigma), for S = `samples` draws eps ~ N(0, I) (stateless, `seed`)."""
    s_, (b, d) = int(samples), mu.shape
    eps = tf.random.stateless_normal([s_, b, d], seed=[int(seed), 7])  # [S, B, d]
    m, s = tf.tile(mu[None], [s_, 1, 1]), tf.tile(sigma[None], [s_, 1, 1])  # [S, B, d] per-draw copies
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([m, s])
        q = gaussian(m, s)
        z = m + s * eps  # reparameterised draws  [S, B, d]
        log_px_z = model.log_px_given_z(z, x)  # [S, B]
        kl = tfp.distributions.kl_divergence(q, model.prior)  # [S, B]
        f = log_px_z + model.prior.log_prob(z) - q.log_prob(z) if form == "mc" else log_px_z - kl
        log_q = q.log_prob(tf.stop_gradient(z))  # the score's log q(z_s | x), z_s fixed
        neg_kl = -kl if form == "analytic" else tf.zeros_like(kl)
    cat = lambda grads: tf.concat(grads, -1).numpy().astype(np.float64)  # noqa: E731  [S, B, 2d]
    reparam, score, exact = cat(tape.gradient(f, [m, s])), cat(tape.gradient(log_q, [m, s])), 0.0
    if form == "analytic":
        exact = cat(tape.gradient(neg_kl, [m, s]))
        signal = log_px_z
    else:
        signal = tf.stop_gradient(f)
    signal = signal.numpy().astype(np.float64)[..., None]  # [S, B, 1]
    baseline = (signal.sum(0, keepdims=True) - signal) / (s_ - 1)  # leave-one-out mean  [S, B, 1]
    return {ESTIMATORS[0]: reparam, ESTIMATORS[1]: score * signal + exact,
            ESTIMATORS[2]: score * (signal - baseline) + exact}


def encoder_gradients(model, x, samples: int = 100, form: str = "mc", seed: int = 0) -> GradientStats:
    """The three estimators of grad_phi of the batch-mean ELBO of images x (uint8 `[B, H, W, C]`)
    over the encoder's weights phi, each from S = `samples` draws (nats per weight unit).

    `table` columns: total_variance = trace of the covariance of a one-draw gradient over all P
    encoder weights; variance_per_weight = total_variance / P; mean_norm = |mean gradient|_2;
    mean_se = sqrt(total_variance / S), the standard error (norm) of the S-draw mean; snr =
    |E g| / sqrt(total_variance), a one-draw signal-to-noise ratio (inf at zero variance), with
    |E g|^2 estimated as mean_norm^2 - total_variance / S (the mean's own noise removed; floored at 0).
    The leave-one-out baseline makes its S draws dependent: its variance is per draw, its mean unbiased.
    Raises ValueError for a model without an encoder and decoder, a bad `form` or `samples` < 2."""
    x = _check(model, x, samples, form)
    mu, sigma, jac = encoder_jacobian(model, x)
    b, p = int(x.shape[0]), jac.shape[1]
    rows, means, variances = [], {}, {}
    for name, v in draw_gradients(model, x, mu, sigma, samples, form, seed).items():
        v = v.reshape(int(samples), -1) / b  # the batch mean's gradient per draw  [S, B*2d]
        cov = np.atleast_2d(np.cov(v, rowvar=False))  # [B*2d, B*2d]
        mean = v.mean(0) @ jac  # [P]
        var = np.clip(((cov @ jac) * jac).sum(0), 0.0, None)  # diag(J^T C J)  [P]
        total, norm = float(var.sum()), float(np.linalg.norm(mean))
        rows.append(dict(estimator=name, form=form, S=int(samples), examples=b, weights=p,
                         total_variance=total, variance_per_weight=total / p, mean_norm=norm,
                         mean_se=float(np.sqrt(total / samples)), snr=_snr(norm, total, samples)))
        means[name], variances[name] = mean, var
    return GradientStats(pd.DataFrame(rows), means, variances)


def _snr(norm: float, total: float, samples: int) -> float:
    if total <= 0:
        return np.inf
    return float(np.sqrt(max(norm ** 2 - total / samples, 0.0) / total))


def kl_gradient(model, x) -> np.ndarray:
    """grad_phi of -mean_B KL(q_phi(z|x) || p(z)) over the encoder's weights, `[P]` float64: the exact
    ELBO gradient when p(x|z) does not depend on z (e.g. a decoder with zero weights)."""
    x = model.check_input(x)
    weights = model.encoder.trainable_weights
    with tf.GradientTape() as tape:
        mu, sigma = model.encode(x)
        neg_kl = -tf.reduce_mean(tfp.distributions.kl_divergence(gaussian(mu, sigma), model.prior))
    return np.concatenate([np.ravel(g.numpy()) for g in tape.gradient(neg_kl, weights)]).astype(np.float64)
