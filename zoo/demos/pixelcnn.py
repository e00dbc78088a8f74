"""How the PixelCNN writes (UBC CPSC 532S lecture 16: PixelRNN / PixelCNN; van den Oord et al. 2016):
the partial canvases as the sampler fills the image, the receptive field of one sub-pixel, and one
class per row for a class-conditional model.

    p(x) = prod_{i=1}^{n} p(x_i | x_1, ..., x_{i-1})      "generate image pixels starting from the corner"
    p(x | h) = prod_i p(x_i | x_<i, h)                    conditional generation, h = the class y

Partial canvases replay the model's own sampler (its naive step: the whole network once per
sub-pixel, the same seeds as `model.sample`), so the last canvas is `model.sample(n, seed=seed)`;
beside them the nats spent so far, -log p(x_<k) = sum_{i<k} -log p(x_i | x_<i), which reach -log p(x).
The receptive field of sub-pixel t is the gradient of its distribution's parameters (logits) with
respect to the input image: exactly zero at t and after it in raster order (masked convolutions),
non-zero on the part of the past the stacks reach (`reach`: no blind spot in the gated PixelCNN).
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd
import tensorflow as tf


def _check(model) -> None:
    if not hasattr(model, "_naive_step") or not hasattr(model, "params"):
        raise ValueError(f"{type(model).__name__} is not a PixelCNN (no masked-convolution network "
                         f"`params`); pass a model of the pixelcnn family")


@dataclasses.dataclass
class Canvases:
    """`counts` `[S]` sub-pixels written at each snapshot; `canvases` uint8 `[S, n, H, W, C]` (unwritten
    sub-pixels 0, as the sampler holds them); `written` bool `[S, H, W, C]`; `labels` int32 `[n]` the
    classes sampled from (None: unconditional); `nats` a frame (written, image, nats): -log p(x_<k)
    of each image after k sub-pixels (given its label): -log p(x) (| y) at k = H*W*C. Exact at every
    count, as sub-pixel i's conditional sees only x_<i (all written)."""

    counts: np.ndarray
    canvases: np.ndarray
    written: np.ndarray
    labels: np.ndarray | None
    nats: pd.DataFrame


def snapshot_counts(num_dims: int, snapshots: int) -> list[int]:
    """`snapshots` counts of written sub-pixels evenly spread over 0 .. num_dims (both included)."""
    if snapshots < 2:
        raise ValueError(f"snapshots must be >= 2 (the empty and the full canvas), got {snapshots}")
    return sorted({int(round(k)) for k in np.linspace(0, num_dims, snapshots)})


def written_mask(counts, shape) -> np.ndarray:
    """bool `[S, H, W, C]`: the sub-pixels written after each count, raster order (channels innermost)."""
    flat = np.arange(int(np.prod(shape)))[None, :] < np.asarray(counts)[:, None]  # [S, D]
    return flat.reshape(len(flat), *shape)


def partial_canvases(model, n: int, seed: int = 0, counts=None, snapshots: int = 8, labels=None) -> Canvases:
    """Run the sampler sub-pixel by sub-pixel and keep the canvas after each of `counts` written
    sub-pixels (default `snapshots` evenly spread from 0 to H*W*C). `labels` as `model.sample`'s
    (drawn uniformly for a conditional model when None). Costs H*W*C network passes on n images.
    Raises ValueError for counts outside [0, H*W*C] or labels an unconditional model cannot take."""
    _check(model)
    h, w, c = model.data_shape
    d = h * w * c
    counts = snapshot_counts(d, snapshots) if counts is None else sorted({int(k) for k in counts})
    if not counts or counts[0] < 0 or counts[-1] > d:
        raise ValueError(f"counts of written sub-pixels must lie in [0, {d}] (H*W*C), got {counts}")
    labels = model.check_labels(labels, n)
    gen = model._seed(seed)  # then the draws of `_sample`: the base seed, then the labels
    base = keras.random.randint([2], 0, 2 ** 30, seed=gen, dtype="int32")
    if model.needs_labels and labels is None:
        labels = keras.random.randint([n], 0, model.num_classes, seed=gen, dtype="int32")
    given = labels if labels is not None else tf.zeros([n], tf.int32)
    model._naive_fn = model._naive_fn or tf.function(model._naive_step)  # the sampler's own (cached)
    canvas, snaps = tf.zeros([n, h, w, c], tf.int32), []
    for t in range(counts[-1] + 1):
        if t in counts:
            snaps.append(tf.cast(tf.clip_by_value(canvas, 0, model.levels - 1), tf.uint8).numpy())
        if t < counts[-1]:
            canvas = model._naive_fn(canvas, tf.constant(t), base, given)
    final = model.pixel_nll(snaps[-1], labels).numpy().reshape(n, -1)  # -log p(x_i | x_<i (, y)) [n, D]
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(final.astype(np.float64), axis=1)], axis=1)
    nats = pd.DataFrame([(k, i, cum[i, k]) for k in counts for i in range(n)],
                        columns=["written", "image", "nats"])
    return Canvases(np.array(counts), np.stack(snaps), written_mask(counts, model.data_shape),
                    None if labels is None else np.asarray(labels, np.int32), nats)


def shown(out: Canvases, levels: int) -> np.ndarray:
    """The canvases for a picture, float `[S, n, H, W, C]`: the sub-pixels written, the rest drawn as
    `zoo.demos.diffusion.checker` (a checkerboard: not the 0 the sampler holds them at)."""
    from zoo.demos.diffusion import checker

    blank = checker(out.canvases.shape[2:], levels)
    return np.where(out.written[:, None], out.canvases.astype(np.float32), blank)


def _sub_pixel(model, row: int, col: int, channel: int) -> None:
    h, w, c = model.data_shape
    if not (0 <= row < h and 0 <= col < w and 0 <= channel < c):
        raise ValueError(f"sub-pixel ({row}, {col}, {channel}) is outside the {h}x{w}x{c} image; "
                         f"pick row < {h}, col < {w}, channel < {c}")


def receptive_field(model, x, row: int, col: int, channel: int = 0, labels=None) -> np.ndarray:
    """|d params(x)[row, col, channel] / d x|: the absolute Jacobian of that sub-pixel's distribution
    parameters (its logits) with respect to the input image (model units), summed over the
    parameters and averaged over the images x uint8 `[B, H, W, C]`; float `[H, W, C]`, >= 0. Zero
    at (row, col, channel) and every later sub-pixel in raster order. Raises ValueError for a
    sub-pixel outside the image, TypeError / ValueError for bad images or labels."""
    _check(model)
    _sub_pixel(model, row, col, channel)
    x = model.check_input(x)
    labels = model.check_labels(labels, int(x.shape[0]))
    xf = model.preprocess(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(xf)
        out = tf.reduce_sum(model.params(xf, labels)[:, row, col, channel], axis=0)  # [P], summed over B
        parts = tf.unstack(out)
    # one gradient per parameter p, [B, H, W, C] each: image b's parameters depend on image b only
    field = tf.add_n([tf.abs(tape.gradient(p, xf)) for p in parts])
    del tape
    return tf.reduce_mean(field, axis=0).numpy()


def reach(model, row: int, col: int, channel: int = 0) -> np.ndarray:
    """bool `[H, W, C]`: the sub-pixels the gated stacks can see from (row, col, channel), with
    n = depth blocks of kernel k, r = k // 2. Vertical stack: n convolutions (r+1) x k, then shifted
    one row down: rows row-1-n*r .. row-1, columns col-n*r .. col+n*r. Horizontal stack: n
    convolutions 1 x (r+1): columns col-n*r .. col-1 of the row, and the channels before `channel`
    at (row, col) (mask A, then B). The whole past when n*r + 1 >= H - 1 and n*r >= W - 1."""
    _check(model)
    _sub_pixel(model, row, col, channel)
    h, w, c = model.data_shape
    span = model.hp.depth * (model.hp.kernel_size // 2)
    rows, cols, chans = np.indices((h, w, c))
    above = (rows < row) & (rows >= row - 1 - span) & (np.abs(cols - col) <= span)
    left = (rows == row) & (cols < col) & (cols >= col - span)
    return above | left | ((rows == row) & (cols == col) & (chans < channel))


def field_table(field: np.ndarray) -> pd.DataFrame:
    """A receptive field `[H, W, C]` as rows (row, col, channel, gradient) for a heat map."""
    rows, cols, chans = np.indices(field.shape)
    return pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "channel": chans.ravel(),
                         "gradient": np.asarray(field, np.float64).ravel()})


def class_grid(model, per_class: int, seed: int = 0, **options) -> tuple[np.ndarray, np.ndarray]:
    """(labels int32 `[K * per_class]`, samples uint8 `[K * per_class, H, W, C]`): row y of the grid
    (`per_class` columns) drawn from p(x | y), y = 0..K-1, by `model.sample(..., labels=labels)`.
    Raises ValueError for an unconditional model (num_classes 0) or per_class < 1."""
    if not getattr(model, "num_classes", 0):
        raise ValueError(f"{getattr(model, 'name', model)} is unconditional (num_classes 0): no class to "
                         f"put in a row; train a pixelcnn with num_classes > 0")
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}")
    labels = np.repeat(np.arange(model.num_classes, dtype=np.int32), per_class)
    return labels, model.sample(len(labels), seed=seed, labels=labels, **options).numpy()
