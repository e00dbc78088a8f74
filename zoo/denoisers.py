"""The diffusion family's denoising networks (Ho et al. 2020; VDM): a residual MLP for tiny images and
DDPM's U-Net, both `(z [B, H, W, C], time features [B, E]) -> [B, H, W, C, params]`."""
from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from zoo.nets import OUT


def time_features(t, dim):
    """Sinusoidal embedding of 1000 t (Vaswani et al. / DDPM) for t in [0, 1], `[B] -> [B, dim]`."""
    half = dim // 2
    freqs = tf.exp(-math.log(10000.0) * tf.range(half, dtype=tf.float32) / half)
    args = 1000.0 * tf.cast(t, tf.float32)[:, None] * freqs[None]
    return tf.concat([tf.sin(args), tf.cos(args)], axis=-1)


def _time_mlp(te, width, act):
    return layers.Dense(width, activation=act, name="time_1")(
        layers.Dense(width, activation=act, name="time_0")(te))


def mlp_net(data_shape, params, width, depth, time_dim, act, name):
    """(z [B, H, W, C], time features [B, E]) -> [B, H, W, C, params] through residual dense blocks."""
    z, te = keras.Input(tuple(data_shape)), keras.Input((time_dim,))
    temb = _time_mlp(te, width, act)
    h = layers.Dense(width, name="in")(layers.Flatten()(z))
    for i in range(depth):
        r = layers.Dense(width, activation=act, name=f"res{i}_a")(
            layers.LayerNormalization(name=f"norm{i}")(h))
        r = layers.Add()([r, layers.Dense(width, name=f"res{i}_t")(temb)])
        h = layers.Add()([h, layers.Dense(width, name=f"res{i}_b")(layers.Activation(act)(r))])
    out = layers.Dense(math.prod(data_shape) * params, kernel_initializer="zeros", dtype=OUT, name="out")(
        layers.Activation(act)(h))
    return keras.Model([z, te], layers.Reshape((*data_shape, params), dtype=OUT)(out), name=name)


def _groups(ch):
    return math.gcd(ch, 8)


def _res_block(x, temb, ch, act, name):
    h = layers.Conv2D(ch, 3, padding="same", name=f"{name}_c0")(
        layers.Activation(act)(layers.GroupNormalization(_groups(x.shape[-1]), name=f"{name}_n0")(x)))
    h = layers.Add()([h, layers.Reshape((1, 1, ch))(layers.Dense(ch, name=f"{name}_t")(temb))])
    h = layers.Conv2D(ch, 3, padding="same", name=f"{name}_c1")(
        layers.Activation(act)(layers.GroupNormalization(_groups(ch), name=f"{name}_n1")(h)))
    skip = x if x.shape[-1] == ch else layers.Conv2D(ch, 1, name=f"{name}_skip")(x)
    return layers.Add()([skip, h])


def _attention(x, name, heads=4):
    hh, ww, ch = x.shape[1:]
    h = layers.Reshape((hh * ww, ch))(layers.GroupNormalization(_groups(ch), name=f"{name}_n")(x))
    h = layers.MultiHeadAttention(heads, max(1, ch // heads), name=f"{name}_mha")(h, h)
    return layers.Add()([x, layers.Reshape((hh, ww, ch))(h)])


def check_unet(data_shape, channels) -> None:
    """ValueError when a U-Net with len(`channels`) resolutions cannot halve images of `data_shape`."""
    h, w, _ = data_shape
    if h % 2 ** (len(channels) - 1) or w % 2 ** (len(channels) - 1):
        raise ValueError(f"a U-Net with {len(channels)} resolutions needs height and width divisible by "
                         f"{2 ** (len(channels) - 1)}, got {h}x{w}; use fewer `channels` or network='mlp'")


def unet(data_shape, params, channels, res_blocks, attention, time_dim, act, name):
    """DDPM's U-Net, one resolution per entry of `channels`: `[B, H, W, C] -> [B, H, W, C, params]`."""
    check_unet(data_shape, channels)
    h_, w_, c = data_shape
    z, te = keras.Input(tuple(data_shape)), keras.Input((time_dim,))
    temb = _time_mlp(te, 4 * channels[0], act)
    x = layers.Conv2D(channels[0], 3, padding="same", name="in")(z)
    skips = [x]
    for lvl, ch in enumerate(channels):
        for j in range(res_blocks):
            x = _res_block(x, temb, ch, act, f"down{lvl}_{j}")
            skips.append(x)
        if lvl < len(channels) - 1:
            x = layers.Conv2D(ch, 3, strides=2, padding="same", name=f"down{lvl}")(x)
            skips.append(x)
    x = _res_block(x, temb, channels[-1], act, "mid0")
    x = _attention(x, "mid_attn") if attention else x
    x = _res_block(x, temb, channels[-1], act, "mid1")
    for lvl, ch in reversed(list(enumerate(channels))):
        for j in range(res_blocks + 1):
            x = _res_block(layers.Concatenate()([x, skips.pop()]), temb, ch, act, f"up{lvl}_{j}")
        if lvl:
            x = layers.Conv2D(ch, 3, padding="same", name=f"up{lvl}")(layers.UpSampling2D(2)(x))
    x = layers.Activation(act)(layers.GroupNormalization(_groups(channels[0]), name="out_n")(x))
    out = layers.Conv2D(c * params, 3, padding="same", kernel_initializer="zeros", dtype=OUT, name="out")(x)
    return keras.Model([z, te], layers.Reshape((h_, w_, c, params), dtype=OUT)(out), name=name)
