"""What several baselines share: the pipelines' preprocessing (as the keras-io examples scale their
data) and the per-pixel reconstruction loss of the VAE and PixelCNN examples."""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


def scaled(levels: int, low: float = 0.0, high: float = 1.0):
    """uint8 batch -> float32 in [low, high] (keras-io: `x.astype("float32") / 255`)."""
    def fn(x):
        return tf.cast(x, tf.float32) * ((high - low) / (levels - 1)) + low
    return fn


def scaled_with_targets(levels: int):
    """uint8 batch -> (float32 in [0, 1], int32 levels): the input and the reconstruction target."""
    scale = scaled(levels)
    return lambda x: (scale(x), tf.cast(x, tf.int32))


def pixel_nll(targets, logits):
    """Per-example reconstruction loss in nats `[B]`, summed over the pixels: binary cross-entropy
    (one logit per sub-pixel, the keras-io VAE / PixelCNN loss) or, for more than 2 levels, the
    categorical cross-entropy over the levels. targets `[B, H, W, C]` levels, logits `[B, H, W, C, P]`
    (P = 1 may come squeezed: Keras's compiled loss drops a last axis of 1)."""
    if len(logits.shape) == len(targets.shape) + 1 and logits.shape[-1] > 1:
        per = keras.losses.sparse_categorical_crossentropy(ops.cast(targets, "int32"), logits,
                                                           from_logits=True)
    else:  # per sub-pixel: Keras's binary_crossentropy averages over the last axis, so give it one of 1
        logits = ops.reshape(logits, ops.shape(targets))
        per = keras.losses.binary_crossentropy(ops.cast(targets, "float32")[..., None], logits[..., None],
                                               from_logits=True)
    return ops.sum(per, axis=(1, 2, 3))


def params_per_pixel(levels: int) -> int:
    """Logits per sub-pixel: 1 (sigmoid) for binary data, else one per level (softmax)."""
    return 1 if levels == 2 else levels
