"""Annealed importance sampling (Neal 2001) for decoder-based models, as in Wu et al. 2017,
"On the quantitative analysis of decoder-based generative models".

Anneal from the prior p(z) to the posterior p(z | x) through the geometric path

    f_t(z) = p(z) p(x | z)^beta_t,    0 = beta_0 < beta_1 < ... < beta_T = 1,

starting each chain at z_0 ~ p(z) and moving it with an HMC transition T_t that leaves f_t
invariant (tfp.mcmc.HamiltonianMonteCarlo). The importance weight of one chain is

    log w = sum_{t=1..T} (beta_t - beta_{t-1}) log p(x | z_{t-1}),         (Neal eq. 3)

and E[w] = p(x), so log mean_c w_c over `chains` independent chains is a stochastic lower bound
on log p(x) (Jensen) that tightens as T grows; T = 1 is importance sampling from the prior.
The schedule is Wu et al.'s sigmoid one; the HMC step size is adapted per example towards an
acceptance rate of 0.65 from the previous transitions' acceptance, as in Wu et al.'s code (a
standard approximation: exactly, each kernel should not depend on the chain's past).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from zoo.registry import unknown_key_error


def sigmoid_schedule(steps: int, radius: float = 4.0) -> np.ndarray:
    """beta_0 = 0 < ... < beta_T = 1, dense near both ends: rescaled sigmoid(linspace(-r, r))."""
    if steps < 1:
        raise ValueError(f"AIS needs at least 1 annealing step, got {steps}")
    if steps == 1:
        return np.array([0.0, 1.0])
    s = 1.0 / (1.0 + np.exp(-np.linspace(-radius, radius, steps + 1)))
    return (s - s[0]) / (s[-1] - s[0])


def ais_log_prob(prior, log_likelihood, x, steps: int, chains: int, seed=None, leapfrog_steps: int = 10,
                 step_size: float = 0.1, target_accept: float = 0.65, adapt_rate: float = 0.05,
                 schedule: str = "sigmoid", return_diagnostics: bool = False):
    """AIS estimate of log p(x) in nats, `[B]` (a stochastic lower bound, see the module docstring).

    prior           a TFP distribution over z with event shape [d] and no batch shape, e.g. N(0, I)
    log_likelihood  fn(z [C, B, d], x) -> log p(x_b | z_cb) `[C, B]`; x is passed through untouched
    x               the batch (any structure with a leading batch axis B); B = x.shape[0]
    steps, chains   annealing steps T and independent chains C per example
    seed            a TFP stateless seed (int or int32 [2]); equal seeds give equal estimates
    With `return_diagnostics`, also returns {"accept": mean HMC acceptance [B],
    "step_size": final step size [B], "log_weights": [C, B]}. Call inside `tf.function` for speed.
    """
    if schedule == "sigmoid":
        betas = sigmoid_schedule(steps)
    elif schedule == "linear":
        betas = np.linspace(0.0, 1.0, steps + 1)
    else:
        raise unknown_key_error("AIS schedule", schedule, ("sigmoid", "linear"))
    betas = tf.constant(betas, tf.float32)  # [T + 1]
    batch = tf.shape(tf.nest.flatten(x)[0])[0]
    seed, init_seed = tfp.random.split_seed(tfp.random.sanitize_seed(seed), 2)
    z = prior.sample([chains, batch], seed=init_seed)  # [C, B, d]

    def transition(z, beta, eps, seed):
        """One HMC move targeting f_beta; returns the new z and the acceptance probability [C, B]."""
        kernel = tfp.mcmc.HamiltonianMonteCarlo(
            lambda z_: prior.log_prob(z_) + beta * log_likelihood(z_, x),
            step_size=eps[None, :, None], num_leapfrog_steps=leapfrog_steps)
        z, results = kernel.one_step(z, kernel.bootstrap_results(z), seed=seed)
        accept = tf.exp(tf.minimum(results.log_accept_ratio, 0.0))  # NaN proposals are rejected
        return z, tf.where(tf.math.is_finite(accept), accept, 0.0)

    def body(t, z, log_w, eps, accept_sum, seed):
        step_seed, seed = tfp.random.split_seed(seed)
        log_w += (betas[t] - betas[t - 1]) * log_likelihood(z, x)  # [C, B]
        z, accept = transition(z, betas[t], eps, step_seed)
        accept = tf.reduce_mean(accept, 0)  # [B]
        eps = eps * tf.where(accept > target_accept, 1.0 + adapt_rate, 1.0 - adapt_rate)  # Wu et al.: 0.02
        return t + 1, tf.stop_gradient(z), log_w, tf.clip_by_value(eps, 1e-4, 2.0), accept_sum + accept, seed

    log_w = tf.zeros([chains, batch])
    eps = tf.fill([batch], tf.constant(step_size, tf.float32))
    _, z, log_w, eps, accept_sum, _ = tf.while_loop(
        lambda t, *_: t < steps, body, (tf.constant(1), z, log_w, eps, tf.zeros([batch]), seed))
    log_w += (betas[steps] - betas[steps - 1]) * log_likelihood(z, x)  # last increment: no move needed
    estimate = tf.reduce_logsumexp(log_w, 0) - tf.math.log(tf.cast(chains, tf.float32))  # [B]
    if return_diagnostics:
        accept = accept_sum / tf.cast(tf.maximum(steps - 1, 1), tf.float32)
        return estimate, {"accept": accept, "step_size": eps, "log_weights": log_w}
    return estimate
