"""keras-io "Variational AutoEncoder" (https://keras.io/examples/generative/vae/) sized like the zoo's
VAE: a functional encoder ending in z_mean, z_log_var and a `Sampling` layer, a functional decoder,
and a `train_step` minimising reconstruction cross-entropy + the analytic KL. The networks follow the
zoo config (`network` mlp or conv, `channels`, `width`, `depth`, `activation`, `latent_dim`); the
decoder emits one logit per sub-pixel (binary data, the example's BCE) or one per level (softmax).
The IWAE peer is the same model trained on the k-sample bound (there is no keras-io IWAE)."""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from experiments.peers.common import params_per_pixel, pixel_nll, scaled_with_targets
from experiments.peers.registry import peer

HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class Sampling(layers.Layer):
    """z = z_mean + exp(z_log_var / 2) * eps: `[B, d]`, or `[draws, B, d]` for draws > 1."""

    def __init__(self, draws=1, **kwargs):
        super().__init__(**kwargs)
        self.draws = draws
        self.seed_generator = keras.random.SeedGenerator(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        shape = ops.shape(z_mean) if self.draws == 1 else (self.draws, *ops.shape(z_mean))
        eps = keras.random.normal(shape, seed=self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps


def encoder(shape, hp, draws=1):
    x = inputs = keras.Input(shape)
    if hp.network == "conv":
        for ch in hp.channels:
            x = layers.Conv2D(ch, 3, strides=2, padding="same", activation=hp.activation)(x)
    x = layers.Flatten()(x)
    for _ in range(hp.depth):
        x = layers.Dense(hp.width, activation=hp.activation)(x)
    z_mean = layers.Dense(hp.latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(hp.latent_dim, name="z_log_var")(x)
    z = Sampling(draws)([z_mean, z_log_var])
    return keras.Model(inputs, [z_mean, z_log_var, z], name="encoder")


def decoder(shape, p, hp):
    (h, w, c), s = shape, len(hp.channels)
    x = inputs = keras.Input((hp.latent_dim,))
    for _ in range(hp.depth):
        x = layers.Dense(hp.width, activation=hp.activation)(x)
    if hp.network == "conv":
        x = layers.Dense((h >> s) * (w >> s) * hp.channels[-1], activation=hp.activation)(x)
        x = layers.Reshape((h >> s, w >> s, hp.channels[-1]))(x)
        for ch in reversed(hp.channels):
            x = layers.Conv2DTranspose(ch, 3, strides=2, padding="same", activation=hp.activation)(x)
        x = layers.Conv2D(c * p, 3, padding="same")(x)
    else:
        x = layers.Dense(h * w * c * p)(x)
    return keras.Model(inputs, layers.Reshape((h, w, c, p))(x), name="decoder")


class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.total_loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        images, targets = data
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(images)
            reconstruction_loss = ops.mean(pixel_nll(targets, self.decoder(z)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {m.name: m.result() for m in self.metrics}


class IWAE(VAE):
    """The VAE's networks on L_k = E log (1/k) sum_i p(x, z_i) / q(z_i | x) (Burda et al. 2016); the
    encoder's Sampling layer draws the k samples."""

    def __init__(self, encoder, decoder, k, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.k = k

    def train_step(self, data):
        images, targets = data
        with tf.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(images)  # z [k, B, d]
            k, b = ops.shape(z)[0], ops.shape(z)[1]
            logits = self.decoder(ops.reshape(z, (-1, ops.shape(z)[-1])))
            tiled = ops.reshape(ops.broadcast_to(targets[None], (k, *ops.shape(targets))),
                                (-1, *ops.shape(targets)[1:]))
            log_px_z = -ops.reshape(pixel_nll(tiled, logits), (k, b))
            log_pz = ops.sum(-0.5 * ops.square(z) - HALF_LOG_2PI, axis=-1)
            log_qz = ops.sum(-0.5 * ops.square(z - z_mean) * ops.exp(-z_log_var) - 0.5 * z_log_var
                             - HALF_LOG_2PI, axis=-1)
            log_w = log_px_z + log_pz - log_qz  # [k, B]
            bound = ops.logsumexp(log_w, axis=0) - math.log(self.k)
            total_loss = -ops.mean(bound)
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(-ops.mean(log_px_z))
        self.kl_loss_tracker.update_state(ops.mean(log_qz - log_pz))
        return {m.name: m.result() for m in self.metrics}


def _build(dataset, hp, jit_compile, k=0):
    shape, p = tuple(dataset.shape), params_per_pixel(dataset.levels)
    nets = encoder(shape, hp, max(k, 1)), decoder(shape, p, hp)
    model = IWAE(*nets, k) if k else VAE(*nets)
    model.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), jit_compile=jit_compile)
    return model, scaled_with_targets(dataset.levels)


LOSS = "sum over pixels of BCE (2 levels) / categorical CE over the levels of p(x|z), + analytic KL"
EXAMPLE = "https://keras.io/examples/generative/vae/"


@peer("vae", family="vae", loss=f"ELBO: {LOSS}", example=EXAMPLE)
def build_vae(dataset, zoo, jit_compile):
    return _build(dataset, zoo.hp, jit_compile)


@peer("vae_conv", family="vae", hparams={"network": "conv"}, loss=f"ELBO: {LOSS}", example=EXAMPLE)
def build_vae_conv(dataset, zoo, jit_compile):
    return _build(dataset, zoo.hp, jit_compile)


@peer("iwae", family="iwae", example=f"{EXAMPLE} (no keras-io IWAE: its networks, Burda et al.'s loss)",
      loss="-L_k = -[logsumexp_i (log p(x|z_i) + log p(z_i) - log q(z_i|x)) - log k], k Sampling-layer draws")
def build_iwae(dataset, zoo, jit_compile):
    return _build(dataset, zoo.hp, jit_compile, k=zoo.hp.k)
