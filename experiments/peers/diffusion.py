"""keras-io "Denoising Diffusion Probabilistic Model" (https://keras.io/examples/generative/ddpm/): a
U-Net (residual blocks of GroupNorm -> swish -> 3x3 conv with the time embedding added, stride-2
downsampling, nearest upsampling + conv, skip concatenations) that predicts the noise of
x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t uniform over T = 1000 steps of a linear beta schedule,
trained on the MSE (Ho et al.'s simple loss) in its own `train_step`. The example's EMA copy of the
network is left out (the zoo keeps none).

Sized to the zoo's U-Net: its `channels` (one resolution each), `depth` residual blocks per
resolution, `time_dim` sinusoidal features and 4 x channels[0] time-MLP units, middle attention only
with `attention`; the output is the noise (C channels) where the zoo's categorical denoiser emits
C x levels logits."""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from experiments.peers.common import scaled
from experiments.peers.registry import peer

T = 1000


class TimeEmbedding(layers.Layer):
    def __init__(self, dim, **kwargs):
        super().__init__(**kwargs)
        half = dim // 2
        self.freqs = tf.exp(tf.range(half, dtype=tf.float32) * -(math.log(10000.0) / (half - 1)))

    def call(self, t):
        args = tf.cast(t, tf.float32)[:, None] * self.freqs[None, :]
        return tf.concat([tf.sin(args), tf.cos(args)], axis=-1)


def norm(x):
    return layers.GroupNormalization(math.gcd(x.shape[-1], 8))(x)


def residual_block(x, temb, width, act):
    residual = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    t = layers.Reshape((1, 1, width))(layers.Dense(width)(temb))
    x = layers.Conv2D(width, 3, padding="same")(layers.Activation(act)(norm(x)))
    x = layers.Add()([x, t])
    x = layers.Conv2D(width, 3, padding="same")(layers.Activation(act)(norm(x)))
    return layers.Add()([x, residual])


def attention_block(x, width):
    h, w = x.shape[1:3]
    q = layers.Reshape((h * w, width))(norm(x))
    out = layers.MultiHeadAttention(1, width)(q, q)
    return layers.Add()([x, layers.Reshape((h, w, width))(out)])


def unet(shape, widths, res_blocks, attention, time_dim, act):
    image_input = keras.Input(shape, name="image_input")
    time_input = keras.Input((), dtype="int32", name="time_input")
    x = layers.Conv2D(widths[0], 3, padding="same")(image_input)
    temb = TimeEmbedding(time_dim)(time_input)
    temb = layers.Dense(4 * widths[0], activation=act)(temb)
    temb = layers.Dense(4 * widths[0], activation=act)(temb)
    skips = [x]
    for i, width in enumerate(widths):
        for _ in range(res_blocks):
            x = residual_block(x, temb, width, act)
            skips.append(x)
        if i < len(widths) - 1:
            x = layers.Conv2D(width, 3, strides=2, padding="same")(x)
            skips.append(x)
    x = residual_block(x, temb, widths[-1], act)
    x = attention_block(x, widths[-1]) if attention else x
    x = residual_block(x, temb, widths[-1], act)
    for i in reversed(range(len(widths))):
        for _ in range(res_blocks + 1):
            x = residual_block(layers.Concatenate()([x, skips.pop()]), temb, widths[i], act)
        if i:
            x = layers.UpSampling2D(2, interpolation="nearest")(x)
            x = layers.Conv2D(widths[i], 3, padding="same")(x)
    x = layers.Activation(act)(norm(x))
    x = layers.Conv2D(shape[-1], 3, padding="same", kernel_initializer="zeros")(x)
    return keras.Model([image_input, time_input], x, name="unet")


class DiffusionModel(keras.Model):
    def __init__(self, network, timesteps=T, **kwargs):
        super().__init__(**kwargs)
        self.network, self.timesteps = network, timesteps
        betas = tf.linspace(1e-4, 0.02, timesteps)
        alphas_cumprod = tf.math.cumprod(1.0 - betas)
        self.sqrt_alphas_cumprod = tf.sqrt(alphas_cumprod)
        self.sqrt_one_minus_alphas_cumprod = tf.sqrt(1.0 - alphas_cumprod)
        self.seed_generator = keras.random.SeedGenerator(1337)
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def q_sample(self, x_start, t, noise):
        a = tf.gather(self.sqrt_alphas_cumprod, t)[:, None, None, None]
        b = tf.gather(self.sqrt_one_minus_alphas_cumprod, t)[:, None, None, None]
        return a * x_start + b * noise

    def train_step(self, images):
        batch_size = tf.shape(images)[0]
        t = keras.random.randint((batch_size,), 0, self.timesteps, seed=self.seed_generator, dtype="int32")
        with tf.GradientTape() as tape:
            noise = keras.random.normal(tf.shape(images), seed=self.seed_generator)
            images_t = self.q_sample(images, t, noise)
            pred_noise = self.network([images_t, t], training=True)
            loss = self.loss(noise, pred_noise)
        gradients = tape.gradient(loss, self.network.trainable_weights)
        self.optimizer.apply_gradients(zip(gradients, self.network.trainable_weights))
        self.loss_tracker.update_state(loss)
        return {"loss": self.loss_tracker.result()}


@peer("diffusion", family="diffusion", example="https://keras.io/examples/generative/ddpm/",
      loss="MSE of the U-Net's eps_hat(x_t, t) against eps, t uniform over 1000 steps (Ho et al.'s L_simple)")
def build_diffusion(dataset, zoo, jit_compile):
    hp = zoo.hp
    if hp.network == "mlp" or min(dataset.shape[:2]) < 8:
        raise ValueError("the diffusion peer is the keras-io U-Net: it needs the zoo's unet network")
    depth = 1 if hp.depth is None else hp.depth
    net = unet(tuple(dataset.shape), list(hp.channels), depth, hp.attention, hp.time_dim, hp.activation)
    model = DiffusionModel(net)
    model.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss=keras.losses.MeanSquaredError(),
                  jit_compile=jit_compile)
    return model, scaled(dataset.levels, -1.0, 1.0)
