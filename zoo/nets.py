"""Functional encoder/decoder networks shared by the latent-variable families (MLP and conv).

Each builder returns a built `keras.Model` mapping a float tensor to a float tensor; the model
classes wrap them and own the probability maths.
"""
from __future__ import annotations

import math

import keras
from keras import layers

# The dtype of every network's output layer (and the reshape after it): under a mixed-precision
# policy the hidden layers compute in bfloat16 / float16, the logits and parameters in float32.
OUT = "float32"


def halvings(h: int, w: int) -> int:
    """How many times height and width both halve exactly: the stride-2 stages (or squeezes) that
    fit, e.g. 9x9 -> 0, 6x10 -> 1, 28x28 -> 2, 32x32 -> 5."""
    n = 0
    while h % 2 ** (n + 1) == 0 and w % 2 ** (n + 1) == 0:
        n += 1
    return n


def check_conv_stages(data_shape, stages: int) -> int:
    """`stages`, or ValueError when stride-2 stages cannot halve the images of `data_shape` that often."""
    h, w, _ = data_shape
    if h % (2 ** stages) or w % (2 ** stages):
        raise ValueError(f"a conv network with {stages} stride-2 stages needs height and width divisible by "
                         f"{2 ** stages}, got {h}x{w}; use fewer `channels` or network='mlp'")
    return stages


def mlp(in_shape, out_shape, hidden, activation, name, out_activation=None):
    """Flatten -> Dense(h) for h in hidden -> Dense(prod(out_shape), out_activation) -> Reshape(out_shape)."""
    x = inp = keras.Input(tuple(in_shape))
    x = layers.Flatten()(x)
    for i, width in enumerate(hidden):
        x = layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    x = layers.Dense(math.prod(out_shape), activation=out_activation, dtype=OUT, name="out")(x)
    return keras.Model(inp, layers.Reshape(tuple(out_shape), dtype=OUT)(x), name=name)


def conv_encoder(data_shape, out_dim, channels, hidden, activation, name):
    """[B, H, W, C] -> stride-2 3x3 convs (one per entry of `channels`) -> Dense -> [B, out_dim]."""
    check_conv_stages(data_shape, len(channels))
    x = inp = keras.Input(tuple(data_shape))
    for i, ch in enumerate(channels):
        x = layers.Conv2D(ch, 3, strides=2, padding="same", activation=activation, name=f"conv_{i}")(x)
    x = layers.Flatten()(x)
    for i, width in enumerate(hidden):
        x = layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    return keras.Model(inp, layers.Dense(out_dim, dtype=OUT, name="out")(x), name=name)


def conv_decoder(in_dim, data_shape, params_per_pixel, channels, hidden, activation, name,
                 out_activation=None):
    """[B, in_dim] -> Dense -> [B, H/2^s, W/2^s, ch] -> transposed convs -> [B, H, W, C, P], or
    `[B, H, W, C]` for `params_per_pixel` None (one value per sub-pixel, e.g. a GAN's image)."""
    s = check_conv_stages(data_shape, len(channels))
    h, w, c = data_shape
    x = inp = keras.Input((in_dim,))
    for i, width in enumerate(hidden):
        x = layers.Dense(width, activation=activation, name=f"dense_{i}")(x)
    x = layers.Dense((h >> s) * (w >> s) * channels[-1], activation=activation, name="project")(x)
    x = layers.Reshape((h >> s, w >> s, channels[-1]))(x)
    for i, ch in enumerate(reversed(channels)):
        x = layers.Conv2DTranspose(ch, 3, strides=2, padding="same", activation=activation,
                                   name=f"deconv_{i}")(x)
    x = layers.Conv2D(c * (params_per_pixel or 1), 3, padding="same", activation=out_activation,
                      dtype=OUT, name="out")(x)
    if params_per_pixel is None:
        return keras.Model(inp, x, name=name)
    return keras.Model(inp, layers.Reshape((h, w, c, params_per_pixel), dtype=OUT)(x), name=name)
