"""Where the inference gap comes from (Cremer, Li & Duvenaud 2018, "Inference Suboptimality in
Variational Autoencoders"; Günnemann, amortised inference): for each test image x,

    log p(x)  >=  ELBO(q*)  >=  ELBO(q_phi)
    approximation gap = log p(x) - ELBO(q*)       (the Gaussian family's limit)
    amortisation gap  = ELBO(q*) - ELBO(q_phi)    (the encoder's: one network for every x)

q_phi(z|x) = N(mu_phi(x), sigma_phi(x)^2) is the encoder's; q*(z) = N(mu, sigma^2) has its own mu,
log sigma per example, fitted by Adam on the reparameterised ELBO with the decoder and the prior frozen
(Günnemann's phi_optimal^(i) = argmax L_i(theta, phi^(i))), started at the encoder's q. Every ELBO here
is E_q[log p(x|z)] - KL(q || p(z)) (analytic KL) estimated with the same eps for q* and q_phi (common
random numbers). log p(x) is an importance-sampling estimate with q* as proposal: itself a stochastic
lower bound (Burda et al. 2016, thm. 1), so the approximation gap shown is an underestimate.
"""
from __future__ import annotations

import math
import time

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_probability as tfp

from zoo.distributions import gaussian

RUNNER = dict(examples=50, steps=200, samples=8, eval_samples=256, k=1000)  # what the runner records
BUDGET = 40_000  # latent draws per decoder call (samples x examples)


def _chunks(samples: int, batch: int):
    chunk = max(1, BUDGET // max(1, batch))
    return [(i, min(chunk, samples - i)) for i in range(0, samples, chunk)]


def optimise_q(model, x, steps: int = 200, samples: int = 8, learning_rate: float = 0.05, seed: int = 0):
    """q*: (mu `[B, d]`, sigma `[B, d]`) maximising each example's ELBO over a free Gaussian, decoder and
    prior frozen: `steps` steps of Keras's Adam (cosine-decayed `learning_rate`) on the mean of `samples`
    reparameterised draws, all examples at once, from the encoder's q. Raises ValueError for a model
    without an encoder q(z|x) and decoder p(x|z), or steps / samples < 1."""
    x = _check(model, x)
    if int(steps) < 1 or int(samples) < 1:
        raise ValueError(f"steps and samples must be >= 1, got {steps} and {samples}")
    mu0, sigma0 = model.encode(x)
    params = tf.Variable(tf.concat([mu0, tf.math.log(sigma0)], -1))  # [B, 2d]: (mu, log sigma)
    adam = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(float(learning_rate), int(steps)))
    adam.build([params])
    _fit(model, x, params, adam, *[tf.constant(int(v)) for v in (steps, samples, seed)])
    mu, log_sigma = tf.split(tf.convert_to_tensor(params), 2, -1)
    return mu, tf.exp(log_sigma)


@tf.function(reduce_retracing=True)
def _fit(model, x, params, adam, steps, samples, seed):
    """`steps` Adam steps on -sum_B ELBO over the variable params = (mu, log sigma) `[B, 2d]`."""
    shape = tf.concat([[samples], tf.shape(params)[:1], tf.shape(params)[1:] // 2], 0)  # [S, B, d]
    for t in tf.range(steps):
        eps = tf.random.stateless_normal(shape, seed=tf.stack([3 * seed, t]))  # [S, B, d]
        with tf.GradientTape() as tape:
            mu, log_sigma = tf.split(params, 2, -1)
            loss = -tf.reduce_sum(_elbo(model, x, mu, tf.exp(log_sigma), eps))
        adam.apply([tape.gradient(loss, params)], [params])


def _check(model, x):
    if not (model.offers("log_px_given_z") and model.offers("encode")):
        raise ValueError(f"the inference gaps need a VAE or IWAE (an encoder q(z|x) and a decoder p(x|z)); "
                         f"{type(model).__name__} has none")
    return model.check_input(x)


def _kl(model, mu, sigma):
    return tfp.distributions.kl_divergence(gaussian(mu, sigma), model.prior)  # [B]


def _elbo(model, x, mu, sigma, eps):
    """mean over draws of log p(x|z) - KL(q || p(z)), q = N(mu, sigma^2), z = mu + sigma eps: `[B]`."""
    return tf.reduce_mean(model.log_px_given_z(mu + sigma * eps, x), 0) - _kl(model, mu, sigma)


def elbo(model, x, mu, sigma, samples: int = 256, seed: int = 0) -> np.ndarray:
    """ELBO of q = N(mu, sigma^2) per example, `[B]` nats: E_q[log p(x|z)] - KL(q || p(z)) from
    `samples` draws (equal seeds: equal eps, so two q's are compared on common random numbers)."""
    x = _check(model, x)
    b, d = mu.shape
    total = np.zeros(b)
    for start, n in _chunks(samples, b):
        eps = tf.random.stateless_normal([n, b, d], seed=[3 * int(seed) + 1, start])  # [n, B, d]
        total += tf.reduce_sum(model.log_px_given_z(mu + sigma * eps, x), 0).numpy()
    return total / samples - _kl(model, mu, sigma).numpy()


def is_log_px(model, x, mu, sigma, k: int = 1000, seed: int = 0) -> np.ndarray:
    """log (1/k) sum_i p(x, z_i) / q(z_i), z_i ~ q = N(mu, sigma^2): `[B]` nats, an importance-sampling
    estimate of log p(x) that is a stochastic lower bound on it (Burda et al. 2016, thm. 1)."""
    x = _check(model, x)
    b, d = mu.shape
    q, parts = gaussian(mu, sigma), []
    for start, n in _chunks(k, b):
        z = mu + sigma * tf.random.stateless_normal([n, b, d], seed=[3 * int(seed) + 2, start])  # [n, B, d]
        log_w = model.log_px_given_z(z, x) + model.prior.log_prob(z) - q.log_prob(z)  # [n, B]
        parts.append(tf.reduce_logsumexp(log_w, 0))
    return (tf.reduce_logsumexp(tf.stack(parts), 0) - math.log(k)).numpy().astype(np.float64)


def inference_gaps(model, x, steps: int = 200, samples: int = 8, eval_samples: int = 256, k: int = 1000,
                   seed: int = 0) -> pd.DataFrame:
    """Per example of x (uint8 `[B, H, W, C]`), in nats: log_px_is (IS with q*, k draws), elbo_q_star,
    elbo_q_phi, approximation_gap = log_px_is - elbo_q_star, amortisation_gap = elbo_q_star - elbo_q_phi,
    and kl_q_phi = KL(q_phi || p(z)) (the encoder's rate). See `optimise_q` for q*."""
    x = _check(model, x)
    mu_phi, sigma_phi = model.encode(x)
    mu, sigma = optimise_q(model, x, steps, samples, seed=seed)
    star = elbo(model, x, mu, sigma, eval_samples, seed)
    phi = elbo(model, x, mu_phi, sigma_phi, eval_samples, seed)  # the same eps: common random numbers
    log_px = is_log_px(model, x, mu, sigma, k, seed)
    kl = _kl(model, mu_phi, sigma_phi).numpy()
    return pd.DataFrame({"example": np.arange(len(star)), "log_px_is": log_px, "elbo_q_star": star,
                         "elbo_q_phi": phi, "approximation_gap": log_px - star,
                         "amortisation_gap": star - phi, "kl_q_phi": kl.astype(np.float64)})


def runner_outputs(model, dataset, x, seed=0):
    """For a VAE / IWAE (a decoder and an encoder; not the GAN): the per-example table `inference_gaps`
    on the first RUNNER["examples"] report images, and metric rows (their means, nats):
    approximation_gap, amortisation_gap, optimised_elbo_nll and encoder_elbo_nll (kind elbo),
    optimised_is_nll (kind iwae: IS with q*, k = RUNNER["k"]), inference_seconds (wall time)."""
    if not (model.offers("log_px_given_z") and model.offers("encode")):
        return [], {}
    t0 = time.perf_counter()
    cfg = RUNNER
    table = inference_gaps(model, x[:cfg["examples"]], cfg["steps"], cfg["samples"], cfg["eval_samples"],
                           cfg["k"], seed)
    mean = table.mean()
    rows = [("approximation_gap", mean["approximation_gap"], None),
            ("amortisation_gap", mean["amortisation_gap"], None),
            ("optimised_elbo_nll", -mean["elbo_q_star"], "elbo"),
            ("encoder_elbo_nll", -mean["elbo_q_phi"], "elbo"),
            ("optimised_is_nll", -mean["log_px_is"], "iwae"),
            ("inference_seconds", time.perf_counter() - t0, None)]
    return [(n, float(v), kind) for n, v, kind in rows], {"inference_gaps": table}
