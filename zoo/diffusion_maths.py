"""Gaussian diffusion maths, apart from any network (the schedule / q_sample / posterior / reverse
step split of keras-io's GaussianDiffusion and diffusers' schedulers), in the variance-preserving
log-SNR form of VDM (Kingma et al. 2021, "Variational Diffusion Models"; google-research/vdm).

Schedule: gamma(t) = -log SNR(t) = log(sigma_t^2 / alpha_t^2), increasing on t in [0, 1] from
gamma_min to gamma_max;  alpha_t^2 = sigmoid(-gamma_t),  sigma_t^2 = sigmoid(gamma_t).
    linear  gamma(t) = gamma_min + (gamma_max - gamma_min) t                     (VDM's fixed schedule)
    cosine  gamma(t) = 2 log tan(pi u / 2), u = u_min + (u_max - u_min) t: alpha_t^2 = cos^2(pi u / 2)
            (Nichol & Dhariwal 2021), with u_min, u_max chosen to hit gamma_min and gamma_max.

Forward:    q(z_t | x) = N(alpha_t x, sigma_t^2 I)                                       (VDM eq. 1)
Posterior:  q(z_s | z_t, x) = N(mu, sigma_s^2 c I),  s < t,  c = -expm1(gamma_s - gamma_t),
            mu = (alpha_s / alpha_t) (1 - c) z_t + alpha_s c x                              (VDM eq. 32)
Reverse:    p(z_s | z_t) = q(z_s | z_t, x = x_hat(z_t)),  x_hat = (z_t - sigma_t eps_hat) / alpha_t
VLB on discrete x (nats):  -log p(x) <= prior + diffusion + reconstruction, with
    prior           KL(q(z_1 | x) || N(0, I))
    diffusion (T)   T/2 E_{i, eps}[expm1(gamma_t - gamma_s) ||eps - eps_hat(z_t, t)||^2],
                    t = i/T, s = (i-1)/T: the sum of the T per-step KLs              (VDM eq. 14)
    diffusion (T=inf) 1/2 E_{t, eps}[gamma'(t) ||eps - eps_hat(z_t, t)||^2]          (VDM eq. 17)
    reconstruction  -E log p(x | z_0),
                    p(x_i = k | z_0) proportional to N(z_0,i / alpha_0; v_k, sigma_0^2 / alpha_0^2),
                    a softmax over exactly the data's levels v_k                     (VDM eq. 28-29)
DDIM (Song et al. 2021, eq. 12, 16): z_s = alpha_s x_hat + sqrt(sigma_s^2 - d^2) eps_hat + d noise,
    d^2 = eta^2 sigma_s^2 c; eta = 1 is the ancestral step above, eta = 0 is deterministic.
"""
from __future__ import annotations

import math
from typing import Literal, get_args

import tensorflow as tf

from zoo.registry import unknown_key_error

Schedule = Literal["linear", "cosine"]  # a config's `schedule` field
SCHEDULES = get_args(Schedule)


class NoiseSchedule:
    """gamma(t) and gamma'(t) of a fixed schedule from gamma_min (t = 0) to gamma_max (t = 1)."""

    def __init__(self, kind: str = "linear", gamma_min: float = -10.0, gamma_max: float = 8.0):
        if kind not in SCHEDULES:
            raise unknown_key_error("schedule", kind, SCHEDULES)
        if not gamma_min < gamma_max:
            raise ValueError(f"need gamma_min < gamma_max, got {gamma_min} and {gamma_max}")
        self.kind, self.gamma_min, self.gamma_max = kind, float(gamma_min), float(gamma_max)
        # cosine: tan(pi u / 2) = e^{gamma/2}
        self.u_min = 2.0 / math.pi * math.atan(math.exp(gamma_min / 2.0))
        self.u_max = 2.0 / math.pi * math.atan(math.exp(gamma_max / 2.0))

    def gamma(self, t):
        t = tf.convert_to_tensor(t, tf.float32)
        if self.kind == "linear":
            return self.gamma_min + (self.gamma_max - self.gamma_min) * t
        u = self.u_min + (self.u_max - self.u_min) * t
        return 2.0 * tf.math.log(tf.tan(0.5 * math.pi * u))

    def gamma_prime(self, t):
        """d gamma / dt."""
        t = tf.convert_to_tensor(t, tf.float32)
        if self.kind == "linear":
            return tf.fill(tf.shape(t), self.gamma_max - self.gamma_min)
        u = self.u_min + (self.u_max - self.u_min) * t
        return 2.0 * math.pi * (self.u_max - self.u_min) / tf.sin(math.pi * u)  # d/du 2 log tan(pi u/2)


def alpha_sigma(gamma):
    """(alpha, sigma) with alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma)."""
    return tf.sqrt(tf.sigmoid(-gamma)), tf.sqrt(tf.sigmoid(gamma))


def _bcast(g, like):
    """[B] -> [B, 1, 1, 1] against an image batch `like` [B, H, W, C]."""
    return tf.reshape(g, tf.concat([tf.shape(g), tf.ones([tf.rank(like) - 1], tf.int32)], 0))


def q_sample(x, gamma, eps):
    """z_t = alpha_t x + sigma_t eps ~ q(z_t | x); gamma `[B]`, x and eps `[B, H, W, C]`."""
    alpha, sigma = alpha_sigma(_bcast(gamma, x))
    return alpha * x + sigma * eps


def q_posterior(z_t, x, gamma_s, gamma_t):
    """Mean and variance of q(z_s | z_t, x) (gamma_s < gamma_t, `[B]`), each `[B, H, W, C]`."""
    g_s, g_t = _bcast(gamma_s, z_t), _bcast(gamma_t, z_t)
    (alpha_s, sigma_s), (alpha_t, _) = alpha_sigma(g_s), alpha_sigma(g_t)
    c = -tf.math.expm1(g_s - g_t)
    mean = alpha_s / alpha_t * (1.0 - c) * z_t + alpha_s * c * x
    return mean, tf.broadcast_to(sigma_s ** 2 * c, tf.shape(z_t))


def x_from_eps(z_t, eps_hat, gamma_t):
    """x_hat = (z_t - sigma_t eps_hat) / alpha_t."""
    alpha, sigma = alpha_sigma(_bcast(gamma_t, z_t))
    return (z_t - sigma * eps_hat) / alpha


def eps_from_x(z_t, x_hat, gamma_t):
    """eps_hat = (z_t - alpha_t x_hat) / sigma_t."""
    alpha, sigma = alpha_sigma(_bcast(gamma_t, z_t))
    return (z_t - alpha * x_hat) / sigma


def ancestral_step(z_t, eps_hat, gamma_s, gamma_t, noise):
    """z_s ~ p(z_s | z_t) = q(z_s | z_t, x_hat(z_t)) with standard normal `noise`."""
    mean, var = q_posterior(z_t, x_from_eps(z_t, eps_hat, gamma_t), gamma_s, gamma_t)
    return mean + tf.sqrt(var) * noise


def ddim_step(z_t, eps_hat, gamma_s, gamma_t, noise, eta=0.0):
    """Generalised DDIM step: eta = 0 deterministic, eta = 1 the ancestral step in distribution."""
    g_s, g_t = _bcast(gamma_s, z_t), _bcast(gamma_t, z_t)
    alpha_s, sigma_s = alpha_sigma(g_s)
    dev2 = eta ** 2 * sigma_s ** 2 * -tf.math.expm1(g_s - g_t)  # [B, 1, 1, 1]
    x_hat = x_from_eps(z_t, eps_hat, gamma_t)
    return alpha_s * x_hat + tf.sqrt(tf.maximum(sigma_s ** 2 - dev2, 0.0)) * eps_hat + tf.sqrt(dev2) * noise


def forward_step(z_s, gamma_s, gamma_t, noise):
    """z_t ~ q(z_t | z_s) = N(alpha_{t|s} z_s, sigma_{t|s}^2), alpha_{t|s} = alpha_t / alpha_s
    (RePaint's jump back)."""
    g_s, g_t = _bcast(gamma_s, z_s), _bcast(gamma_t, z_s)
    (alpha_s, sigma_s), (alpha_t, sigma_t) = alpha_sigma(g_s), alpha_sigma(g_t)
    a = alpha_t / alpha_s
    return a * z_s + tf.sqrt(tf.maximum(sigma_t ** 2 - a ** 2 * sigma_s ** 2, 0.0)) * noise


def _sum_hwc(v):
    return tf.reduce_sum(v, axis=[1, 2, 3])


def prior_kl(x, gamma_1):
    """KL(q(z_1 | x) || N(0, I)) in nats, `[B]`; gamma_1 `[B]` (or scalar), x `[B, H, W, C]`."""
    g = _bcast(tf.broadcast_to(gamma_1, tf.shape(x)[:1]), x)
    var = tf.sigmoid(g)
    return _sum_hwc(0.5 * (var + tf.sigmoid(-g) * x ** 2 - tf.math.log(var) - 1.0))  # per sub-pixel, summed


def diffusion_weight(schedule: NoiseSchedule, t, timesteps: int):
    """w(t) with diffusion term = E_t[w(t) / 2 ||eps - eps_hat||^2]:
    gamma'(t), or T expm1(gamma_t - gamma_s)."""
    if timesteps:
        return timesteps * tf.math.expm1(schedule.gamma(t) - schedule.gamma(t - 1.0 / timesteps))
    return schedule.gamma_prime(t)


def decoder_logits(z_0, gamma_0, values):
    """Logits `[B, H, W, C, L]` of p(x | z_0): -1/2 e^{-gamma_0} (z_0 / alpha_0 - v_k)^2
    over levels v `[L]`."""
    g = _bcast(tf.broadcast_to(gamma_0, tf.shape(z_0)[:1]), z_0)
    alpha, _ = alpha_sigma(g)
    return -0.5 * tf.exp(-g)[..., None] * (z_0[..., None] / alpha[..., None] - values) ** 2


def reconstruction_nll(x_int, z_0, gamma_0, values):
    """-log p(x | z_0) in nats, `[B]`: a categorical over the levels, summed over sub-pixels."""
    logits = decoder_logits(z_0, gamma_0, values)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(x_int, tf.int32), logits=logits)
    return _sum_hwc(nll)
