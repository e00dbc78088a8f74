"""keras-io "PixelCNN" (https://keras.io/examples/generative/pixelcnn/): a masked 7x7 convolution (mask
A), residual blocks of 1x1 conv -> masked kxk conv (mask B, half the filters) -> 1x1 conv, two 1x1
convolutions and a 1x1 output, trained by the built-in `fit` with a per-pixel cross-entropy. The mask
is applied as in the example, by assigning the masked kernel before each convolution.

Sized to the zoo's Gated PixelCNN: as many residual blocks as its gated blocks (`depth`), its
`kernel_size` in the blocks, and the filter count F whose parameter count is closest to the zoo
model's (a gated block has two stacks and 2x-wide gates, so F > `width`). Both networks stay at full
resolution, so equal parameter counts mean about equal multiply-adds (the example's full kxk masked
kernels count, and compute, their zero taps)."""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from experiments.peers.common import params_per_pixel, pixel_nll, scaled_with_targets
from experiments.peers.registry import peer

FIRST_KERNEL = 7  # the example's mask-A convolution


class PixelConvLayer(layers.Layer):
    """Conv2D whose kernel is masked to the pixels above and to the left (and the centre, mask B)."""

    def __init__(self, mask_type, **conv_kwargs):
        super().__init__()
        self.mask_type = mask_type
        self.conv = layers.Conv2D(**conv_kwargs)

    def build(self, input_shape):
        self.conv.build(input_shape)
        kh, kw = self.conv.kernel.shape[:2]
        self.mask = np.zeros(self.conv.kernel.shape, "float32")
        self.mask[: kh // 2] = 1.0
        self.mask[kh // 2, : kw // 2] = 1.0
        if self.mask_type == "B":
            self.mask[kh // 2, kw // 2] = 1.0

    def call(self, inputs):
        self.conv.kernel.assign(self.conv.kernel * self.mask)
        return self.conv(inputs)


class ResidualBlock(layers.Layer):
    def __init__(self, filters, kernel_size, **kwargs):
        super().__init__(**kwargs)
        self.conv1 = layers.Conv2D(filters, 1, activation="relu")
        self.pixel_conv = PixelConvLayer("B", filters=filters // 2, kernel_size=kernel_size,
                                         activation="relu", padding="same")
        self.conv2 = layers.Conv2D(filters, 1, activation="relu")

    def call(self, inputs):
        return layers.add([inputs, self.conv2(self.pixel_conv(self.conv1(inputs)))])


def param_count(f, depth, kernel_size, channels, p):
    """Parameters of `pixel_cnn` below with `f` filters (kept in step with it; the tests check)."""
    first = FIRST_KERNEL ** 2 * channels * f + f
    block = (f * f + f) + (kernel_size ** 2 * f * (f // 2) + f // 2) + ((f // 2) * f + f)
    return first + depth * block + 2 * (f * f + f) + (f * channels * p + channels * p)


def pixel_cnn(shape, p, filters, depth, kernel_size):
    h, w, c = shape
    inputs = keras.Input(shape)
    x = PixelConvLayer("A", filters=filters, kernel_size=FIRST_KERNEL, activation="relu",
                       padding="same")(inputs)
    for _ in range(depth):
        x = ResidualBlock(filters, kernel_size)(x)
    for _ in range(2):
        x = PixelConvLayer("B", filters=filters, kernel_size=1, activation="relu", padding="valid")(x)
    x = layers.Conv2D(c * p, 1)(x)  # logits (the example: one sigmoid per pixel)
    return keras.Model(inputs, layers.Reshape((h, w, c, p))(x), name="pixel_cnn")


@peer("pixelcnn", family="pixelcnn", example="https://keras.io/examples/generative/pixelcnn/",
      loss="per-pixel BCE (2 levels) / categorical CE over the levels, summed over pixels (built-in fit)")
def build_pixelcnn(dataset, zoo, jit_compile):
    hp, shape, p = zoo.hp, tuple(dataset.shape), params_per_pixel(dataset.levels)
    target = zoo.count_params()
    filters = min(range(4, 2048, 2), key=lambda f: abs(param_count(f, hp.depth, hp.kernel_size, shape[2], p)
                                                        - target))
    model = pixel_cnn(shape, p, filters, hp.depth, hp.kernel_size)
    model.compile(optimizer=keras.optimizers.Adam(hp.learning_rate), loss=pixel_nll, jit_compile=jit_compile)
    return model, scaled_with_targets(dataset.levels)
