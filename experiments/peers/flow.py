"""keras-io "Density estimation using Real NVP" (https://keras.io/examples/generative/real_nvp/):
affine coupling layers whose small networks return (s, t) with a tanh on s (here one network whose
output is split in two, as the zoo's), masked inputs, a Gaussian prior's log-likelihood + the
log-determinants, and a `train_step` minimising its negative mean.

Sized to the zoo's RealNVP: the same multi-scale plan (checkerboard couplings, squeeze, channel-wise
couplings, half the channels factored out between scales), the same coupling networks (a ResNet of
3x3 convs, or dense layers: `network`, `width`, `depth`) and a per-channel affine before each
coupling (the zoo's ActNorm, without its data-dependent start). On discrete data the example's
log-likelihood needs a dequantisation, so the peer has the zoo's too: the logit transform of
(x + u) / L with u uniform, or variational (conditional couplings on eps ~ N(0, I) and a mixture of
logistics CDF, Flow++), so the loss is -E_q[log p(x + u) - log q(u | x)]."""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import layers

from experiments.peers.registry import peer

LOG_2PI = math.log(2.0 * math.pi)


def checkerboard(shape, parity):
    h, w, c = shape
    board = (np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == parity
    return np.repeat(board[:, :, None], c, axis=2).astype("float32")


def channel_half(shape, parity):
    h, w, c = shape
    half = (np.arange(c) < c // 2) != bool(parity)
    return np.broadcast_to(half, (h, w, c)).astype("float32")


def coupling_net(shape, c_in, c_out, hp):
    """[H, W, c_in] -> [H, W, c_out] (a coupling's s and t, stacked; the last layer starts at zero)."""
    h, w, _ = shape
    x = inputs = keras.Input((h, w, c_in))
    if hp.network == "mlp":
        x = layers.Flatten()(x)
        for _ in range(hp.depth + 1):
            x = layers.Dense(hp.width, activation="relu")(x)
        out = layers.Reshape((h, w, c_out))(layers.Dense(h * w * c_out, kernel_initializer="zeros")(x))
    else:
        x = layers.Conv2D(hp.width, 3, padding="same")(x)
        for _ in range(hp.depth):
            r = layers.Conv2D(hp.width, 3, padding="same", activation="relu")(layers.ReLU()(x))
            x = layers.add([x, layers.Conv2D(hp.width, 1)(r)])
        x = layers.ReLU()(x)
        out = layers.Conv2D(c_out, 3, padding="same", kernel_initializer="zeros")(x)
    return keras.Model(inputs, out)


class Affine(layers.Layer):
    """y = (x + bias) exp(log_scale) per channel; log|det| = H W sum log_scale."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros")
        self.log_scale = self.add_weight(shape=(input_shape[-1],), initializer="zeros")

    def call(self, x):
        hw = tf.cast(tf.shape(x)[1] * tf.shape(x)[2], tf.float32)
        return (x + self.bias) * tf.exp(self.log_scale), hw * tf.reduce_sum(self.log_scale)


class RealNVP(keras.Model):
    def __init__(self, shape, levels, hp, scales, **kwargs):
        super().__init__(**kwargs)
        self.levels, self.alpha, self.hp = levels, hp.alpha, hp
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        c = shape[2]
        self.deq_masks, self.deq_nets, self.deq_cdf = [], [], None
        if hp.dequantization == "variational":
            self.deq_masks = [np.zeros(shape, "float32")] + [checkerboard(shape, i % 2)
                                                             for i in range(hp.deq_couplings)]
            self.deq_nets = [coupling_net(shape, 2 * c, 2 * c, hp) for _ in self.deq_masks]
            if hp.deq_mixtures:
                self.deq_cdf = coupling_net(shape, c, 3 * hp.deq_mixtures * c, hp)
        self.plan, self.masks, self.nets, self.affines = [], [], [], []  # plan: "couple", "squeeze", "factor"
        h, w = shape[:2]
        for k in range(scales):
            for make in (checkerboard, channel_half):
                for i in range(hp.n_couplings):
                    self.masks.append(make((h, w, c), i % 2))
                    self.nets.append(coupling_net((h, w, c), c, 2 * c, hp))
                    self.affines.append(Affine())
                    self.plan.append("couple")
                if make is checkerboard:
                    self.plan.append("squeeze")
                    h, w, c = h // 2, w // 2, 4 * c
            if k < scales - 1:
                self.plan.append("factor")
                c //= 2
        self.distribution = tfp.distributions.MultivariateNormalDiag(loc=tf.zeros([int(np.prod(shape))]))

    @property
    def metrics(self):
        return [self.loss_tracker]

    def couple(self, net, mask, x, cond=None):
        inputs = x * mask if cond is None else tf.concat([x * mask, cond], -1)
        s, t = tf.split(net(inputs), 2, axis=-1)
        s, t = tf.tanh(s) * (1.0 - mask), t * (1.0 - mask)
        return x * tf.exp(s) + t, tf.reduce_sum(s, [1, 2, 3])

    def dequantize(self, x):
        """u ~ q(u | x) in (0, 1): (u, log q(u | x) `[B]`)."""
        if self.hp.dequantization == "uniform":
            return keras.random.uniform(tf.shape(x), seed=self.seed_generator), tf.zeros(tf.shape(x)[:1])
        eps = keras.random.normal(tf.shape(x), seed=self.seed_generator)
        cond = x / (self.levels - 1) - 0.5
        a, log_q = eps, -tf.reduce_sum(0.5 * tf.square(eps) + 0.5 * LOG_2PI, [1, 2, 3])
        for net, mask in zip(self.deq_nets, self.deq_masks):
            a, log_det = self.couple(net, mask, a, cond)
            log_q -= log_det
        if self.deq_cdf is None:
            log_du = tf.math.log_sigmoid(a) + tf.math.log_sigmoid(-a)
            return tf.sigmoid(a), log_q - tf.reduce_sum(log_du, [1, 2, 3])
        k = self.hp.deq_mixtures
        params = tf.reshape(self.deq_cdf(cond), tf.concat([tf.shape(a), [3, k]], 0))
        logits, means, log_scales = tf.unstack(params, axis=-2)  # [B, H, W, C, K] each
        t = (a[..., None] - means - tf.linspace(-1.5, 1.5, k)) * tf.exp(-log_scales)
        log_w = tf.nn.log_softmax(logits, -1)
        u = tf.reduce_sum(tf.exp(log_w) * tf.sigmoid(t), -1)
        log_du = tf.reduce_logsumexp(log_w + tf.math.log_sigmoid(t) + tf.math.log_sigmoid(-t) - log_scales,
                                     -1)
        return u, log_q - tf.reduce_sum(log_du, [1, 2, 3])

    def call(self, v):
        """v = x + u in [0, L) -> (z `[B, D]`, log|det dz/dv| `[B]`): the logit transform, then the flow."""
        s = self.alpha + (1.0 - 2.0 * self.alpha) * v / self.levels
        y = tf.math.log(s) - tf.math.log1p(-s)
        log_det = tf.reduce_sum(math.log((1.0 - 2.0 * self.alpha) / self.levels) - tf.math.log(s)
                                - tf.math.log1p(-s), [1, 2, 3])
        zs, step = [], 0
        for op in self.plan:
            if op == "squeeze":
                y = tf.nn.space_to_depth(y, 2)
            elif op == "factor":
                z, y = tf.split(y, 2, axis=-1)
                zs.append(tf.reshape(z, [tf.shape(z)[0], -1]))
            else:
                y, ld_affine = self.affines[step](y)
                y, ld = self.couple(self.nets[step], self.masks[step], y)
                log_det += ld + ld_affine
                step += 1
        zs.append(tf.reshape(y, [tf.shape(y)[0], -1]))
        return tf.concat(zs, -1), log_det

    def log_loss(self, x):
        u, log_q = self.dequantize(x)
        z, log_det = self(x + u)
        return -tf.reduce_mean(self.distribution.log_prob(z) + log_det - log_q)

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self.log_loss(data)
        g = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(g, self.trainable_variables))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


@peer("flow", family="flow", example="https://keras.io/examples/generative/real_nvp/",
      loss="-[log N(z) + log|det| (couplings, logit transform) - log q(u|x)] of v = x + u, u ~ q(u|x)")
def build_flow(dataset, zoo, jit_compile):
    shape = tuple(dataset.shape)
    model = RealNVP(shape, dataset.levels, zoo.hp, scales=len(zoo.z_shapes))
    model.log_loss(tf.zeros((1, *shape)))  # create every weight before compiling
    model.compile(optimizer=keras.optimizers.Adam(zoo.hp.learning_rate), jit_compile=jit_compile)
    return model, lambda x: tf.cast(x, tf.float32)
