"""RealNVP (Dinh et al. 2017) on discrete images, read as a VAE whose encoder and decoder are one
deterministic bijection (q(z|v) = delta(z - f(v)), p(v|z) = delta(v - f^-1(z)); Isachenko's notes).

Dequantisation and the logit transform (RealNVP sec. 4.1), x in {0..L-1}^D:
    v  = x + u,  u ~ U[0,1)^D                      q(u|x) uniform, log q = 0
    y  = v / L,  s = a + (1 - 2a) y,  y' = logit(s)  a = `alpha`
    z  = f(y'),  p(z) = N(0, I)
    log p(v) = log N(f(y'); 0, I) + log|det df/dy'| + sum_d log[(1 - 2a) / (s_d (1 - s_d))] - D log L
    log P(x) = log int_[0,1)^D p(x + u) du >= E_u log p(x + u)     (Jensen: likelihood = "elbo")
    L_k      = E log (1/k) sum_i p(x + u_i)                          (`log_prob_is`, q(u|x) = 1)

`nll_terms`: prior = -log N(z), logdet = -log|det df/dy'| (the flow), dequantization =
-log|det dy'/dv| (the 1/L scaling and the logit); their sum is -log p(x + u) in nats.

Flow f, per scale (RealNVP sec. 3.6): [actnorm, checkerboard coupling] x n, squeeze (space to
depth), [actnorm, channel coupling] x n, then half the channels are factored out to the prior
(not after the last scale). Affine coupling with mask b (eq. 8-9):
    y = x exp(s) + t,  (s, t) = (1 - b) * (scale * tanh(s_raw), t_raw)(b x),  log det = sum s
ActNorm (Kingma & Dhariwal 2018): y = (x + bias) exp(log_scale) per channel, set from the first
batch it sees (zero mean, unit variance), then trained; a saved `initialized` flag keeps it fixed.
"""
from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.contract import GenerativeModel, ModelConfig
from zoo.registry import register

LOG_2PI = math.log(2.0 * math.pi)


def _sum_hwc(t):
    return tf.reduce_sum(t, axis=[1, 2, 3])  # [B, H, W, C] -> [B]


def checkerboard(shape, parity):
    """Mask [H, W, C]: 1 where (i + j) % 2 == parity (these pixels condition the others)."""
    h, w, c = shape
    board = (np.add.outer(np.arange(h), np.arange(w)) % 2 == parity).astype(np.float32)
    return np.repeat(board[:, :, None], c, axis=2)


def channel_mask(shape, parity):
    """Mask [H, W, C]: 1 on the first (parity 0) or second (parity 1) half of the channels."""
    h, w, c = shape
    half = (np.arange(c) < c // 2) if parity == 0 else (np.arange(c) >= c // 2)
    return np.broadcast_to(half.astype(np.float32), (h, w, c)).copy()


class Squeeze(layers.Layer):
    """Space-to-depth [H, W, C] -> [H/2, W/2, 4C]: a permutation, log|det| = 0."""

    def forward(self, x):
        return tf.nn.space_to_depth(x, 2), tf.zeros(tf.shape(x)[:1])

    def inverse(self, y):
        return tf.nn.depth_to_space(y, 2)


class ActNorm(layers.Layer):
    """y = (x + bias) * exp(log_scale) per channel; log det = H W sum_c log_scale_c."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")
        self.log_scale = self.add_weight(shape=(channels,), initializer="zeros", name="log_scale")
        self.initialized = self.add_weight(shape=(), initializer="zeros", trainable=False, name="initialized")

    def _data_init(self, x):
        mean, var = tf.nn.moments(x, axes=[0, 1, 2])  # [C] each
        self.bias.assign(-mean)
        self.log_scale.assign(-0.5 * tf.math.log(var + 1e-4))
        self.initialized.assign(1.0)
        return tf.constant(0.0)

    def forward(self, x):
        tf.cond(self.initialized > 0, lambda: tf.constant(0.0), lambda: self._data_init(x))
        hw = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        y = (x + self.bias) * tf.exp(self.log_scale)
        return y, tf.fill(tf.shape(x)[:1], hw * tf.reduce_sum(self.log_scale))

    def inverse(self, y):
        return y * tf.exp(-self.log_scale) - self.bias


def st_net(shape, hidden, n_blocks, name):
    """[H, W, 2C] (masked input and mask) -> [H, W, 2C] (raw log-scale, shift): a small ResNet
    of 3x3 convs whose last conv starts at zero, so every coupling starts as the identity."""
    x = inp = keras.Input((*shape[:2], 2 * shape[2]))
    h = layers.Conv2D(hidden, 3, padding="same", name="conv_in")(x)
    for i in range(n_blocks):
        r = layers.Conv2D(hidden, 3, padding="same", activation="relu", name=f"res{i}_a")(layers.ReLU()(h))
        h = layers.Add()([h, layers.Conv2D(hidden, 1, name=f"res{i}_b")(r)])
    out = layers.Conv2D(2 * shape[2], 3, padding="same", kernel_initializer="zeros", name="conv_out")(layers.ReLU()(h))
    return keras.Model(inp, out, name=name)


class Coupling(layers.Layer):
    """Masked affine coupling: the pixels where mask = 1 pass through and condition the rest."""

    def __init__(self, shape, mask, hidden, n_blocks, **kwargs):
        super().__init__(**kwargs)
        self.mask = tf.constant(mask)  # [H, W, C]
        self.net = st_net(shape, hidden, n_blocks, name=f"{self.name}_net")
        self.scale = self.add_weight(shape=(shape[2],), initializer="ones", name="scale")

    def _log_scale_shift(self, x_cond):
        mask = tf.broadcast_to(self.mask, tf.shape(x_cond))
        s_raw, t = tf.split(self.net(tf.concat([x_cond, mask], -1)), 2, axis=-1)  # [B, H, W, C] each
        return (1.0 - self.mask) * self.scale * tf.tanh(s_raw), (1.0 - self.mask) * t

    def forward(self, x):
        s, t = self._log_scale_shift(x * self.mask)
        return x * tf.exp(s) + t, _sum_hwc(s)

    def inverse(self, y):
        s, t = self._log_scale_shift(y * self.mask)  # y * mask == x * mask
        return (y - t) * tf.exp(-s)


@dataclasses.dataclass
class FlowConfig(ModelConfig):
    n_scales: int = 0  # 0 = auto: halve H, W while both stay even and >= 4 (at least one squeeze)
    n_couplings: int = 3  # couplings per mask type and scale (checkerboard, then channel-wise)
    hidden: int = 64  # conv filters of each shift-and-log-scale network
    n_blocks: int = 2  # residual blocks per network
    alpha: float = 0.05  # logit transform y' = logit(alpha + (1 - 2 alpha) y)


@register("flow")
class RealNVP(GenerativeModel):
    """RealNVP with uniform dequantisation; `encode`/`decode` are the flow and its inverse."""

    likelihood = "elbo"
    term_names = ("prior", "logdet", "dequantization")
    Config = FlowConfig

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        if not 0.0 < hp.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {hp.alpha}")
        h, w, c = self.data_shape
        n_scales = hp.n_scales or self.auto_scales(h, w)
        if h % 2 ** n_scales or w % 2 ** n_scales:
            raise ValueError(f"{n_scales} scales need height and width divisible by {2 ** n_scales}, got {h}x{w}")
        self.steps, self.factor_at, self.z_shapes = [], [], []  # factor_at: step index before which to split
        for k in range(n_scales):
            self._add_couplings((h, w, c), checkerboard, f"s{k}_cb")
            self.steps.append(Squeeze(name=f"s{k}_squeeze"))
            h, w, c = h // 2, w // 2, 4 * c
            self._add_couplings((h, w, c), channel_mask, f"s{k}_ch")
            if k < n_scales - 1:  # factor out half the channels
                self.factor_at.append(len(self.steps))
                self.z_shapes.append((h, w, c // 2))
                c //= 2
        self.z_shapes.append((h, w, c))
        self.is_budget = max(1, 2 ** 23 // (self.num_dims * hp.hidden))  # IS chunk: bound activation memory
        self.built = True

    @staticmethod
    def auto_scales(h, w):
        n = 1
        while h % 2 ** (n + 1) == 0 and w % 2 ** (n + 1) == 0 and min(h, w) // 2 ** (n + 1) >= 4:
            n += 1
        return n

    def _add_couplings(self, shape, make_mask, prefix):
        hp = self.hp
        for i in range(hp.n_couplings):
            self.steps.append(ActNorm(shape[2], name=f"{prefix}{i}_actnorm"))
            self.steps.append(Coupling(shape, make_mask(shape, i % 2), hp.hidden, hp.n_blocks, name=f"{prefix}{i}"))

    # --- the bijections ----------------------------------------------------------------------
    def flow_forward(self, y):
        """y' `[B, H, W, C]` -> (z `[B, D]` flat: factored-out parts then the last scale, log|det| `[B]`)."""
        zs, logdet = [], tf.zeros(tf.shape(y)[:1])
        for i, step in enumerate(self.steps):
            if i in self.factor_at:
                z, y = tf.split(y, 2, axis=-1)
                zs.append(tf.reshape(z, [tf.shape(z)[0], -1]))
            y, ld = step.forward(y)
            logdet += ld
        zs.append(tf.reshape(y, [tf.shape(y)[0], -1]))
        return tf.concat(zs, axis=-1), logdet

    def flow_inverse(self, z):
        """z `[B, D]` -> y' `[B, H, W, C]`."""
        parts = tf.split(z, [math.prod(s) for s in self.z_shapes], axis=-1)
        parts = [tf.reshape(p, [-1, *s]) for p, s in zip(parts, self.z_shapes)]
        y = parts.pop()
        for i in reversed(range(len(self.steps))):
            y = self.steps[i].inverse(y)
            if i in self.factor_at:
                y = tf.concat([parts.pop(), y], axis=-1)
        return y

    def to_logit(self, v):
        """Data units v in [0, L) -> (y' = logit(a + (1 - 2a) v / L), log|det dy'/dv| `[B]`)."""
        a = self.hp.alpha
        s = a + (1.0 - 2.0 * a) * v / self.levels
        log_jac = math.log(1.0 - 2.0 * a) - tf.math.log(s) - tf.math.log1p(-s) - math.log(self.levels)
        return tf.math.log(s) - tf.math.log1p(-s), _sum_hwc(log_jac)

    def from_logit(self, y):
        a = self.hp.alpha
        return (tf.sigmoid(y) - a) / (1.0 - 2.0 * a) * self.levels

    # --- VAE view ------------------------------------------------------------------------------
    def encode(self, x):
        """z = f(logit((x + 1/2) / L)) `[B, D]` (midpoint dequantisation, flat as in `flow_forward`)."""
        x = self.check_input(x)
        return self.flow_forward(self.to_logit(tf.cast(x, tf.float32) + 0.5)[0])[0]

    def decode(self, z):
        """The continuous x in data units, `[B, H, W, C]`: f^-1(z) mapped back, minus the 1/2."""
        return self.from_logit(self.flow_inverse(tf.convert_to_tensor(z, tf.float32))) - 0.5

    # --- maths ---------------------------------------------------------------------------------
    def _terms(self, v):
        """-log p(v) split into prior / logdet / dequantization, each `[B]`."""
        y, log_jac_logit = self.to_logit(v)
        z, log_jac_flow = self.flow_forward(y)
        prior = 0.5 * tf.reduce_sum(tf.square(z), -1) + 0.5 * self.num_dims * LOG_2PI
        return {"prior": prior, "logdet": -log_jac_flow, "dequantization": -log_jac_logit}

    def _dequantize(self, x, seed):
        return tf.cast(x, tf.float32) + keras.random.uniform(tf.shape(x), seed=seed)

    def _nll_terms(self, x, seed, training):
        return self._terms(self._dequantize(x, seed))

    def _log_weights(self, x, n, seed):
        b = tf.shape(x)[0]
        xs = tf.reshape(tf.repeat(x[None], n, axis=0), [-1, *self.data_shape])  # [n*B, H, W, C]
        log_p = -tf.add_n(list(self._terms(self._dequantize(xs, seed)).values()))
        return tf.reshape(log_p, [n, b])  # log p(x + u_i) - log q(u_i | x), log q = 0

    def _sample(self, n, seed):
        z = keras.random.normal([n, self.num_dims], seed=seed)
        return tf.floor(self.decode(z) + 0.5)  # v = x + u  ->  x = floor(v)
