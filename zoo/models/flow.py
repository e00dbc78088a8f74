"""RealNVP (Dinh et al. 2017) on discrete images, read as a VAE whose encoder and decoder are one
deterministic bijection: q(z|v) = delta(z - f(v)), p(v|z) = delta(v - f^-1(z)) (Isachenko's notes).

Dequantisation and the logit transform (RealNVP sec. 4.1), x in {0..L-1}^D, a = `alpha`:
    v  = x + u,  u ~ q(u|x) on [0, 1)^D
    y  = v / L,  s = a + (1 - 2a) y,  y' = logit(s),  z = f(y'),  p(z) = N(0, I)
    log p(v) = log N(f(y')) + log|det df/dy'| + sum_d log[(1 - 2a) / (s_d (1 - s_d))] - D log L
    log P(x) = log E_q[p(x + u) / q(u|x)] >= E_q[log p(x + u) - log q(u|x)]   (likelihood = "elbo")
    L_k      = E log (1/k) sum_i p(x + u_i) / q(u_i|x)                         (`log_prob_is`)
q(u|x) is U[0,1)^D (`dequantization="uniform"`, log q = 0; Theis et al. 2016) or learned (Flow++, Ho
et al. 2019): eps ~ N(0, I) -> a conditional elementwise affine map and couplings, all conditioned
on x -> u = a mixture-of-logistics CDF (sigmoid if `deq_mixtures=0`), log q = log N(eps) - log|du/deps|.

`nll_terms` (nats, summing to -log_prob): prior = -log N(z); logdet = -log|det df/dy'| (the flow);
logit = -log|det dy'/dv| (the 1/L scaling and the logit); dequantization = log q(u|x) (0 if uniform).

Flow f, per scale (RealNVP sec. 3.6): [actnorm, checkerboard coupling] x n, squeeze (space to depth),
[actnorm, channel coupling] x n, then half the channels go to the prior (not after the last scale).
`n_scales` 0 (auto, `RealNVP.auto_scales`) squeezes while the sides stay even and >= 4; an odd
height or width cannot squeeze, so auto then gives 0 scales: one block of couplings at full resolution.
Affine coupling with mask b (eq. 8-9): y = x exp(s) + t, (s, t) = (1 - b) (scale tanh(s_raw), t_raw)
of (b x), log det = sum s. ActNorm (Kingma & Dhariwal 2018): y = (x + bias) exp(log_scale) per
channel, set from the first batch it sees (zero mean, unit variance), then trained; a saved
`initialized` flag keeps it from re-initialising after loading.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from zoo.contract import GenerativeModel, ModelConfig
from zoo.nets import OUT, halvings
from zoo.registry import register

LOG_2PI = math.log(2.0 * math.pi)


def _sum_hwc(t):
    return tf.reduce_sum(t, axis=[1, 2, 3])  # [B, H, W, C] -> [B]


def checkerboard(shape, parity):
    """Mask `[H, W, C]`: 1 where (i + j) % 2 == parity (these pixels condition the others)."""
    h, w, c = shape
    board = (np.add.outer(np.arange(h), np.arange(w)) % 2 == parity).astype(np.float32)
    return np.repeat(board[:, :, None], c, axis=2)


def channel_mask(shape, parity):
    """Mask `[H, W, C]`: 1 on the first (parity 0) or second (parity 1) half of the channels."""
    h, w, c = shape
    half = (np.arange(c) < c // 2) if parity == 0 else (np.arange(c) >= c // 2)
    return np.broadcast_to(half.astype(np.float32), (h, w, c)).copy()


def st_net(hw, c_in, c_out, network, hidden, n_blocks, name):
    """`[H, W, c_in] -> [H, W, c_out]`: "conv" a ResNet of 3x3 convs, "mlp" dense layers on the
    flattened image (cheap and global on tiny images). The last layer starts at zero."""
    h, w = hw
    x = inp = keras.Input((h, w, c_in))
    if network == "mlp":
        x = layers.Flatten()(x)
        for i in range(n_blocks + 1):
            x = layers.Dense(hidden, activation="relu", name=f"dense_{i}")(x)
        out = layers.Reshape((h, w, c_out), dtype=OUT)(
            layers.Dense(h * w * c_out, kernel_initializer="zeros", dtype=OUT, name="out")(x))
        return keras.Model(inp, out, name=name)
    x = layers.Conv2D(hidden, 3, padding="same", name="conv_in")(x)
    for i in range(n_blocks):
        r = layers.Conv2D(hidden, 3, padding="same", activation="relu", name=f"res{i}_a")(layers.ReLU()(x))
        x = layers.Add()([x, layers.Conv2D(hidden, 1, name=f"res{i}_b")(r)])
    out = layers.Conv2D(c_out, 3, padding="same", kernel_initializer="zeros", dtype=OUT, name="conv_out")(
        layers.ReLU()(x))
    return keras.Model(inp, out, name=name)


class Squeeze(layers.Layer):
    """Space-to-depth `[H, W, C] -> [H/2, W/2, 4C]`: a permutation, log|det| = 0."""

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

    def _moments(self, x):
        """Mean and variance per channel `[C]` of the *global* batch: under tf.distribute each replica
        sees a slice, so the sums are all-reduced (else each replica would keep its own statistics).
        The all-reduce runs every step when there are several replicas (a collective cannot sit in
        the `tf.cond` below) -- 2C + 1 numbers per layer."""
        x = tf.cast(x, tf.float32)
        sums = tf.stack([tf.reduce_sum(x, [0, 1, 2]), tf.reduce_sum(tf.square(x), [0, 1, 2])])  # [2, C]
        count = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32)
        ctx = tf.distribute.get_replica_context()  # None in cross-replica context: x is the whole batch
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            sums, count = ctx.all_reduce(tf.distribute.ReduceOp.SUM, [sums, count])
        mean = sums[0] / count
        return mean, tf.maximum(sums[1] / count - tf.square(mean), 0.0)

    def _data_init(self, mean, var):
        self.bias.assign(-mean)
        self.log_scale.assign(-0.5 * tf.math.log(var + 1e-4))
        self.initialized.assign(1.0)
        return tf.constant(0.0)

    def forward(self, x):
        ctx = tf.distribute.get_replica_context()
        done = lambda: tf.constant(0.0)  # noqa: E731
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            mean, var = self._moments(x)  # outside the cond: a collective
            tf.cond(self.initialized > 0, done, lambda: self._data_init(mean, var))
        else:
            tf.cond(self.initialized > 0, done, lambda: self._data_init(*self._moments(x)))
        hw = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        y = (x + self.bias) * tf.exp(self.log_scale)
        return y, tf.fill(tf.shape(x)[:1], hw * tf.reduce_sum(self.log_scale))

    def inverse(self, y):
        return y * tf.exp(-self.log_scale) - self.bias


class Coupling(layers.Layer):
    """Masked affine coupling: pixels where mask = 1 pass through and, with an optional outside
    input `cond` `[B, H, W, K]`, set the scale and shift of the rest (an all-zero mask then gives a
    conditional elementwise affine map)."""

    def __init__(self, shape, mask, network, hidden, n_blocks, cond_channels=0, **kwargs):
        super().__init__(**kwargs)
        self.mask = tf.constant(mask)  # [H, W, C]
        c = shape[2]  # the net sees the pass-through part, the mask and the condition
        self.net = st_net(shape[:2], 2 * c + cond_channels, 2 * c, network, hidden, n_blocks,
                          f"{self.name}_net")
        self.scale = self.add_weight(shape=(c,), initializer="ones", name="scale")

    def _log_scale_shift(self, x_pass, cond):
        inputs = [x_pass, tf.broadcast_to(self.mask, tf.shape(x_pass))] + ([] if cond is None else [cond])
        s_raw, t = tf.split(self.net(tf.concat(inputs, -1)), 2, axis=-1)  # [B, H, W, C] each
        return (1.0 - self.mask) * self.scale * tf.tanh(s_raw), (1.0 - self.mask) * t

    def forward(self, x, cond=None):
        s, t = self._log_scale_shift(x * self.mask, cond)
        return x * tf.exp(s) + t, _sum_hwc(s)

    def inverse(self, y, cond=None):
        s, t = self._log_scale_shift(y * self.mask, cond)  # y * mask == x * mask
        return (y - t) * tf.exp(-s)


class MixtureCDF(layers.Layer):
    """a -> u = sum_k pi_k sigmoid((a - m_k) / s_k) in (0, 1), parameters from `cond` (Flow++ sec. 3.3);
    forward only (q(u|x) is only ever sampled),
    log|du/da| = log sum_k pi_k logistic((a - m_k) / s_k) / s_k."""

    def __init__(self, shape, k, network, hidden, n_blocks, **kwargs):
        super().__init__(**kwargs)
        self.k = k
        self.net = st_net(shape[:2], shape[2], 3 * k * shape[2], network, hidden, n_blocks,
                          f"{self.name}_net")

    def forward(self, a, cond):
        if not self.k:
            return tf.sigmoid(a), _sum_hwc(tf.math.log_sigmoid(a) + tf.math.log_sigmoid(-a))
        params = tf.reshape(self.net(cond), tf.concat([tf.shape(a), [3, self.k]], 0))
        logits, means, log_scales = tf.unstack(params, axis=-2)  # [B, H, W, C, K] each
        t = (a[..., None] - means - tf.linspace(-1.5, 1.5, self.k)) * tf.exp(-log_scales)  # spread at init
        log_w = tf.nn.log_softmax(logits, -1)
        u = tf.reduce_sum(tf.exp(log_w) * tf.sigmoid(t), -1)
        log_terms = log_w + tf.math.log_sigmoid(t) + tf.math.log_sigmoid(-t) - log_scales
        log_du = tf.reduce_logsumexp(log_terms, -1)
        return u, _sum_hwc(log_du)


@dataclasses.dataclass
class FlowConfig(ModelConfig):
    n_scales: int = 0  # 0 = auto: halve H, W while both stay even and >= 4 (none if H or W is odd)
    n_couplings: int = 3  # couplings per mask type and scale (checkerboard, then channel-wise)
    # shift-and-log-scale nets: ResNet, or dense on the flattened image
    network: Literal["conv", "mlp"] = "conv"
    width: int = 32  # conv filters / dense units of each network
    depth: int = 1  # residual blocks (conv) or extra hidden layers (mlp) per network
    alpha: float = 0.05  # logit transform y' = logit(alpha + (1 - 2 alpha) y)
    dequantization: Literal["uniform", "variational"] = "variational"  # q(u|x)
    deq_couplings: int = 2  # variational: checkerboard couplings after the conditional affine map
    deq_mixtures: int = 4  # variational: logistic components of the final CDF (0 = a sigmoid)
    learning_rate: float = 2e-3


@register("flow")
class RealNVP(GenerativeModel):
    """Multi-scale RealNVP with (variational) dequantisation; `encode`/`decode` are f and f^-1."""

    likelihood = "elbo"
    has_importance_sampling = True
    has_encoder = True  # the VAE view: encode(x) = z = f(x), decode(z) = f^-1(z)
    term_names = ("prior", "logdet", "logit", "dequantization")
    Config = FlowConfig

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        h, w, _ = data_shape
        if not 0.0 < hp.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {hp.alpha}")
        n_scales = hp.n_scales or cls.auto_scales(h, w)
        if h % 2 ** n_scales or w % 2 ** n_scales:
            raise ValueError(f"{n_scales} scales need height and width divisible by {2 ** n_scales}, "
                             f"got {h}x{w}; set n_scales lower, or to 0 for auto "
                             f"({cls.auto_scales(h, w)} here)")

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        h, w, c = self.data_shape
        nets = (hp.network, hp.width, hp.depth)
        self.dequantizer = []  # q(u|x): eps -> conditional couplings -> mixture CDF -> u
        if hp.dequantization == "variational":
            masks = [np.zeros(self.data_shape, np.float32)] + [checkerboard(self.data_shape, i % 2)
                                                               for i in range(hp.deq_couplings)]
            self.dequantizer = [Coupling(self.data_shape, m, *nets, cond_channels=c, name=f"deq{i}")
                                for i, m in enumerate(masks)]
            self.dequantizer.append(MixtureCDF(self.data_shape, hp.deq_mixtures, *nets, name="deq_cdf"))
        n_scales = hp.n_scales or self.auto_scales(h, w)
        self.n_scales = n_scales  # the one built
        self.steps, self.factor_at, self.z_shapes = [], [], []  # factor out before steps[i], i in factor_at
        if not n_scales:  # [H, W, C] as it is, no squeeze: checkerboard then (C > 1) channel couplings
            self._add_couplings((h, w, c), checkerboard, "s0_cb")
            if c > 1:
                self._add_couplings((h, w, c), channel_mask, "s0_ch")
        for k in range(n_scales):
            self._add_couplings((h, w, c), checkerboard, f"s{k}_cb")
            self.steps.append(Squeeze(name=f"s{k}_squeeze"))
            h, w, c = h // 2, w // 2, 4 * c
            self._add_couplings((h, w, c), channel_mask, f"s{k}_ch")
            if k < n_scales - 1:  # half the channels go to the prior
                self.factor_at.append(len(self.steps))
                self.z_shapes.append((h, w, c // 2))
                c //= 2
        self.z_shapes.append((h, w, c))
        self.is_budget = max(1, 2 ** 23 // (self.num_dims * hp.width))  # IS chunk: bound activation memory
        for layer in self.steps + self.dequantizer:  # weights made in __init__; called via forward/inverse
            layer.built = True  # (Keras builds a model symbolically under tf.distribute if a layer is not)
        self.built = True

    @staticmethod
    def auto_scales(h, w):
        """What n_scales=0 (auto) builds: one squeeze, then more while H and W stay even and >= 4 after
        it (bars 4x4 and digits 8x8: 1, MNIST 28x28: 2, CIFAR 32x32: 3); 0 when H or W is odd (9x9,
        12x9): a squeeze needs even sides, so the couplings stay at full resolution."""
        fit = halvings(h, w)  # the squeezes the sides allow
        n = min(1, fit)
        while n < fit and min(h, w) // 2 ** (n + 1) >= 4:
            n += 1
        return n

    def _add_couplings(self, shape, make_mask, prefix):
        hp = self.hp
        for i in range(hp.n_couplings):
            self.steps.append(ActNorm(shape[2], name=f"{prefix}{i}_actnorm"))
            self.steps.append(Coupling(shape, make_mask(shape, i % 2), hp.network, hp.width, hp.depth,
                                       name=f"{prefix}{i}"))

    # --- the bijections ----------------------------------------------------------------------
    def flow_forward(self, y):
        """y' `[B, H, W, C]` -> (z `[B, D]`: factored-out parts then the last scale, flat; log|det| `[B]`)."""
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

    def dequantizer_forward(self, eps, x):
        """Variational q(u|x): eps `[B, H, W, C]` -> (u in (0, 1), log|det du/deps| `[B]`)."""
        cond = tf.cast(x, tf.float32) / (self.levels - 1) - 0.5  # [B, H, W, C] in [-1/2, 1/2]
        a, log_det = eps, tf.zeros(tf.shape(eps)[:1])
        for step in self.dequantizer:
            a, ld = step.forward(a, cond)
            log_det += ld
        return a, log_det

    # --- VAE view ------------------------------------------------------------------------------
    def _encode(self, x):
        """z = f(logit((x + 1/2) / L)) `[B, D]` (midpoint dequantisation, flat as in `flow_forward`)."""
        return self.flow_forward(self.to_logit(tf.cast(x, tf.float32) + 0.5)[0])[0]

    def decode(self, z):
        """The continuous x in data units `[B, H, W, C]`: v = f^-1(z) mapped back, minus the 1/2."""
        return self.from_logit(self.flow_inverse(tf.convert_to_tensor(z, tf.float32))) - 0.5

    # --- maths ---------------------------------------------------------------------------------
    def _terms(self, v):
        """-log p(v) as prior + logdet + logit, each `[B]`."""
        y, log_jac_logit = self.to_logit(v)
        z, log_jac_flow = self.flow_forward(y)
        prior = 0.5 * tf.reduce_sum(tf.square(z), -1) + 0.5 * self.num_dims * LOG_2PI
        return {"prior": prior, "logdet": -log_jac_flow, "logit": -log_jac_logit}

    def _dequantize(self, x, seed):
        """u ~ q(u|x): (v = x + u `[B, H, W, C]`, log q(u|x) `[B]`)."""
        xf = tf.cast(x, tf.float32)
        if self.hp.dequantization == "uniform":
            return xf + keras.random.uniform(tf.shape(x), seed=seed), tf.zeros(tf.shape(x)[:1])
        eps = keras.random.normal(tf.shape(x), seed=seed)
        u, log_det = self.dequantizer_forward(eps, x)
        return xf + u, -_sum_hwc(0.5 * tf.square(eps) + 0.5 * LOG_2PI) - log_det  # log N(eps) - log|det|

    def _nll_terms(self, x, seed, training, labels=None):
        v, log_q = self._dequantize(x, seed)
        return {**self._terms(v), "dequantization": log_q}

    def _log_weights(self, x, n, seed):
        b = tf.shape(x)[0]
        xs = tf.reshape(tf.repeat(x[None], n, axis=0), [-1, *self.data_shape])  # [n*B, H, W, C]
        v, log_q = self._dequantize(xs, seed)
        log_p = -tf.add_n(list(self._terms(v).values()))
        return tf.reshape(log_p - log_q, [n, b])  # log p(x + u_i) - log q(u_i | x)

    def _sample(self, n, seed):
        z = keras.random.normal([n, self.num_dims], seed=seed)
        return tf.floor(self.decode(z) + 0.5)  # v = x + u  ->  x = floor(v)
