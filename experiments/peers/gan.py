"""keras-io "GAN overriding Model.train_step" / "DCGAN" (https://keras.io/examples/generative/
dcgan_overriding_train_step/): a generator and a discriminator (functional models), `compile(
d_optimizer, g_optimizer, loss_fn)` and a `train_step` that trains D with binary cross-entropy on
generated + real images (in one batch, with a little label noise) and then G through D with the
misleading labels. Sized to the zoo's GAN: dense layers (`network` mlp: `width`, `depth`) or stride-2
convolutions (`network` dcgan: `channels`), `latent_dim`, a tanh output, `d_steps` D steps per G step;
Adam(learning_rate, beta_1) for both as the zoo compiles them."""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from experiments.peers.common import scaled
from experiments.peers.registry import peer


def generator(shape, hp):
    (h, w, c), s = shape, len(hp.channels)
    x = inputs = keras.Input((hp.latent_dim,))
    if hp.network == "mlp":
        for _ in range(hp.depth):
            x = layers.Dense(hp.width, activation="relu")(x)
        x = layers.Reshape(shape)(layers.Dense(math.prod(shape), activation="tanh")(x))
    else:
        x = layers.Dense((h >> s) * (w >> s) * hp.channels[-1], activation="relu")(x)
        x = layers.Reshape((h >> s, w >> s, hp.channels[-1]))(x)
        for ch in reversed(hp.channels):
            x = layers.Conv2DTranspose(ch, 3, strides=2, padding="same", activation="relu")(x)
        x = layers.Conv2D(c, 3, padding="same", activation="tanh")(x)
    return keras.Model(inputs, x, name="generator")


def discriminator(shape, hp):
    x = inputs = keras.Input(shape)
    if hp.network == "mlp":
        x = layers.Flatten()(x)
        for _ in range(hp.depth):
            x = layers.Dense(hp.width, activation="leaky_relu")(x)
    else:
        for ch in hp.channels:
            x = layers.Conv2D(ch, 3, strides=2, padding="same", activation="leaky_relu")(x)
        x = layers.Flatten()(x)
    return keras.Model(inputs, layers.Dense(1)(x), name="discriminator")


class GAN(keras.Model):
    def __init__(self, discriminator, generator, latent_dim, d_steps=1, **kwargs):
        super().__init__(**kwargs)
        self.discriminator, self.generator = discriminator, generator
        self.latent_dim, self.d_steps = latent_dim, d_steps
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.d_loss_metric = keras.metrics.Mean(name="d_loss")
        self.g_loss_metric = keras.metrics.Mean(name="g_loss")

    def compile(self, d_optimizer, g_optimizer, loss_fn, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer, self.loss_fn = d_optimizer, g_optimizer, loss_fn
        d_optimizer.build(self.discriminator.trainable_weights)  # here, not inside a (maybe XLA) step
        g_optimizer.build(self.generator.trainable_weights)

    @property
    def metrics(self):
        return [self.d_loss_metric, self.g_loss_metric]

    def train_step(self, real_images):
        batch_size = ops.shape(real_images)[0]
        for _ in range(self.d_steps):
            latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
            combined = ops.concatenate([self.generator(latent), real_images], axis=0)
            labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
            labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
            with tf.GradientTape() as tape:
                d_loss = self.loss_fn(labels, self.discriminator(combined))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        latent = keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)
        misleading_labels = ops.zeros((batch_size, 1))
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(misleading_labels, self.discriminator(self.generator(latent)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_metric.update_state(d_loss)
        self.g_loss_metric.update_state(g_loss)
        return {"d_loss": self.d_loss_metric.result(), "g_loss": self.g_loss_metric.result()}


@peer("gan", family="gan", example="https://keras.io/examples/generative/dcgan_overriding_train_step/",
      loss="BCE of D on [G(z); x] labelled [1; 0] (+ label noise), then BCE of D(G(z)) against 0 for G")
def build_gan(dataset, zoo, jit_compile):
    hp, shape = zoo.hp, tuple(dataset.shape)
    if hp.loss != "ns":
        raise ValueError("the GAN peer is keras-io's cross-entropy GAN: it compares with loss='ns' only")
    model = GAN(discriminator(shape, hp), generator(shape, hp), hp.latent_dim, hp.d_steps)
    d_lr = hp.learning_rate if hp.d_learning_rate is None else hp.d_learning_rate
    model.compile(d_optimizer=keras.optimizers.Adam(d_lr, beta_1=hp.beta_1),
                  g_optimizer=keras.optimizers.Adam(hp.learning_rate, beta_1=hp.beta_1),
                  loss_fn=keras.losses.BinaryCrossentropy(from_logits=True), jit_compile=jit_compile)
    return model, scaled(dataset.levels, -1.0, 1.0)
