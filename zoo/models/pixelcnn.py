"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN Decoders").

    p(x | h) = prod_i p(x_i | x_1..x_{i-1}, h)     sub-pixels in raster order, R -> G -> B (eq. 1)
    y = tanh(W_f * x + V_f^T h) ⊙ sigmoid(W_g * x + V_g^T h)                      (eqs. 2, 4)

Two stacks without a blind spot (sec. 2.2, fig. 2). Vertical: a (k//2+1) x k kernel over rows <= i,
shifted one row down (rows < i only) before a 1x1 convolution feeds it into the horizontal stack.
Horizontal: a 1 x (k//2+1) kernel over columns <= j of the current row; the current pixel's tap is
channel-masked (mask A in the first block: group c sees image channels < c; mask B after: <= c), as
are all 1x1 convolutions after it. Residual connections in the horizontal stack; every block adds a
1x1 skip to the head relu -> 1x1 -> relu -> 1x1 -> parameters of a `zoo.distributions` pixel law.

Class-conditional (num_classes > 0): a label embedding is a bias of every block; the contract's
label-free log p(x) is the exact marginal logsumexp_y log p(x | y) - log K (uniform p(y)).
Sampling: "naive" re-runs the network for each of the H*W*C sub-pixels; "fast" runs the vertical
stack once per row on the rows its receptive field reaches, then only the horizontal stack on the
current row for each sub-pixel. Both draw sub-pixel t with the stateless seed fold_in(seed, t).
"""
from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo.contract import GenerativeModel, ModelConfig
from zoo.distributions import (
    PixelLaw,
    num_params,
    pixel_distribution,
    pixel_log_prob,
    pixel_sample,
    resolve_kind,
)
from zoo.nets import OUT
from zoo.registry import register


def channel_groups(n: int, channels: int, split: int = 1) -> np.ndarray:
    """The image channel (0..C-1) each of `n` features serves; `split` equal chunks grouped alike."""
    per = n // split
    return (np.arange(n) % per) * channels // per


@keras.saving.register_keras_serializable(package="zoo")
class CausalConv2D(keras.layers.Layer):
    """Convolution of the input zero-padded by `pad` = (top, left, right), so output (i, j) sees rows
    i-kh+1..i and columns j-left..j-left+kw-1. `mask` "A" / "B" masks the kernel's bottom-right tap
    (the current pixel): output group c sees input groups < c (A) or <= c (B)."""

    def __init__(self, filters, kernel_size=(1, 1), pad=(0, 0, 0), mask=None, channels=1, out_split=1,
                 **kwargs):
        super().__init__(**kwargs)
        if mask not in (None, "A", "B"):
            raise ValueError(f"mask must be None, 'A' or 'B', got {mask!r}")
        self.filters, self.kernel_size, self.pad = int(filters), tuple(kernel_size), tuple(pad)
        self.mask, self.channels, self.out_split = mask, int(channels), int(out_split)

    def build(self, input_shape):
        kh, kw, cin = *self.kernel_size, int(input_shape[-1])
        self.kernel = self.add_weight(shape=(kh, kw, cin, self.filters), initializer="glorot_uniform",
                                      name="kernel")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")
        mask = np.ones((kh, kw, cin, self.filters), "float32")
        if self.mask:
            g_in = channel_groups(cin, self.channels)[:, None]
            g_out = channel_groups(self.filters, self.channels, self.out_split)[None, :]
            mask[-1, -1] = (g_in < g_out) if self.mask == "A" else (g_in <= g_out)
        self.kernel_mask = mask

    def call(self, x):
        """[B, h, W, Cin] -> [B, h + top - kh + 1, W + left + right - kw + 1, filters]. Pad (only if any),
        Conv2D, BiasAdd: on CPU grappler fuses Conv2D + BiasAdd (+ Add / Relu after it) into one oneDNN
        kernel, and the bias gradient into the filter gradient. (Conv2D's own explicit padding would
        spare the Pad op but sends the gradients to slow non-oneDNN kernels.)"""
        top, left, right = self.pad
        if any(self.pad):
            x = tf.pad(x, [[0, 0], [top, 0], [left, right], [0, 0]])
        kernel = tf.cast(self.kernel, x.dtype)  # the compute dtype under a mixed-precision policy
        kernel = kernel if self.kernel_mask.all() else kernel * self.kernel_mask.astype(x.dtype.name)
        return tf.nn.bias_add(tf.nn.conv2d(x, kernel, 1, "VALID"), tf.cast(self.bias, x.dtype))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "pad": list(self.pad), "mask": self.mask, "channels": self.channels,
                "out_split": self.out_split}


def _add(x, y):
    """x + y, or x when y is None (no op for an absent bias or residual)."""
    return x if y is None else x + y


def _drop_last_row(x):
    """[B, h, W, F] -> [B, h - 1, W, F]. A Slice: the gradient of `x[:, :-1]` (StridedSliceGrad) is
    slow on CPU, Slice's is a Pad."""
    rows = x.shape[1] or tf.shape(x)[1]
    return tf.slice(x, [0, 0, 0, 0], [-1, rows - 1, -1, -1])


def _gate(pre):
    f, g = tf.split(pre, 2, axis=-1)
    return tf.tanh(f) * tf.sigmoid(g)


@dataclasses.dataclass
class PixelCNNConfig(ModelConfig):
    width: int = 64  # feature maps of each stack (>= channels; groups of width/C serve R, G, B)
    depth: int = 6  # gated blocks
    kernel_size: int = 3  # odd k: vertical (k//2+1) x k, horizontal 1 x (k//2+1)
    decoder: PixelLaw = "auto"  # auto = bernoulli (2 levels) else categorical
    num_classes: int = 0  # > 0: class-conditional p(x | y), labels 0..num_classes-1


@register("pixelcnn")
class PixelCNN(GenerativeModel):
    """Gated PixelCNN; `nll_terms` = {nll: -log p(x)} exact, `pixel_nll` its per-sub-pixel map."""

    likelihood = "exact"
    term_names = ("nll",)
    sample_methods = ("naive", "fast")  # the benchmark compares them
    Config = PixelCNNConfig

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        if hp.kernel_size < 3 or hp.kernel_size % 2 == 0 or hp.depth < 1 or hp.num_classes < 0:
            raise ValueError(f"pixelcnn: need an odd kernel_size >= 3, depth >= 1, num_classes >= 0; got "
                             f"{hp.kernel_size}, {hp.depth}, {hp.num_classes}")
        if hp.width < data_shape[2]:
            raise ValueError(f"pixelcnn: width ({hp.width}) must be >= the {data_shape[2]} image channels")

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        h, w, c = self.data_shape
        self.pixel_kind = resolve_kind(hp.decoder, self.levels)
        self.num_classes = hp.num_classes
        f, r, n = hp.width, hp.kernel_size // 2, hp.depth
        self.v_convs = [CausalConv2D(2 * f, (r + 1, hp.kernel_size), (r, r, r), name=f"v{i}")
                        for i in range(n)]
        self.links = [CausalConv2D(2 * f, pad=(1, 0, 0), name=f"v_to_h{i}") for i in range(n)]  # rows < i
        self.h_convs = [CausalConv2D(2 * f, (1, r + 1), (0, r, 0), "A" if i == 0 else "B", c, 2, name=f"h{i}")
                        for i in range(n)]
        self.h_outs = [CausalConv2D(f, mask="B", channels=c, name=f"h_out{i}") for i in range(n - 1)]
        self.skips = [CausalConv2D(f, mask="B", channels=c, name=f"skip{i}") for i in range(n)]
        self.head = [CausalConv2D(f, mask="B", channels=c, name="head0"),
                     CausalConv2D(c * num_params(self.pixel_kind, self.levels), mask="B", channels=c,
                                  dtype=OUT, name="head1")]  # float32 logits under mixed precision
        self.embeds = [keras.layers.Embedding(hp.num_classes, 4 * f, name=f"embed{i}")
                       for i in range(n if self.needs_labels else 0)]
        self.sample_rows = min(h, n * r + 2)  # output row i sees input rows >= i - 1 - n*r
        self._naive_fn = self._fast_fn = None
        self.params(tf.zeros([1, h, w, c]), tf.zeros([1], tf.int32))  # create the weights
        self.built = True

    # --- networks ------------------------------------------------------------------------------
    def preprocess(self, x):
        """uint8 levels -> float in [-1, 1]."""
        return tf.cast(x, tf.float32) * (2.0 / (self.levels - 1)) - 1.0

    def _embed(self, labels):
        """Per block the (vertical, horizontal) biases, each [B, 1, 1, 2F] (None if unconditional)."""
        if not self.needs_labels:
            return [(None, None)] * self.hp.depth
        return [tuple(tf.split(tf.reshape(e(labels), [-1, 1, 1, 4 * self.hp.width]), 2, axis=-1))
                for e in self.embeds]

    def _vertical(self, xf, emb):
        """The vertical stack's input to each horizontal block, [B, h, W, 2F] each, from rows < i."""
        v, links = xf, []
        for i, (conv, link, (bias, _)) in enumerate(zip(self.v_convs, self.links, emb)):
            pre = _add(conv(v), bias)  # [B, h, W, 2F], rows <= i
            links.append(link(_drop_last_row(pre)))  # [B, h, W, 2F]: the link pads on top, rows < i
            if i < len(self.v_convs) - 1:
                v = _gate(pre)  # [B, h, W, F]
        return links

    def _horizontal(self, xf, links, emb):
        """Horizontal stack and head: parameters [B, h, W, C, P] for every sub-pixel."""
        h, skip = xf, None
        for i, (conv, link, (_, bias)) in enumerate(zip(self.h_convs, links, emb)):
            g = _gate(_add(conv(h) + link, bias))  # [B, h, W, F]
            skip = _add(self.skips[i](g), skip)
            if i < len(self.h_outs):
                h = _add(self.h_outs[i](g), h if i else None)  # residual after the first block
        out = self.head[1](tf.nn.relu(self.head[0](tf.nn.relu(skip))))  # [B, h, W, C * P]
        _, w, c = self.data_shape
        rows = out.shape[1] or tf.shape(out)[1]  # static when known: no shape ops in the graph
        return tf.reshape(out, [-1, rows, w, c, out.shape[-1] // c])

    def params(self, xf, labels=None):
        """Distribution parameters [B, H, W, C, P] of each sub-pixel given the ones before it."""
        emb = self._embed(labels)
        return self._horizontal(xf, self._vertical(xf, emb), emb)

    # --- likelihood ----------------------------------------------------------------------------
    def _cond_log_prob(self, x, labels):
        """log p(x | y), [B]."""
        return pixel_log_prob(self.pixel_kind, self.params(self.preprocess(x), labels), x, self.levels)

    def _pixel_log_probs(self, x, labels):
        """log p(x_t | x_<t, y) for every sub-pixel t, [B, H, W, C]."""
        dist = pixel_distribution(self.pixel_kind, self.params(self.preprocess(x), labels), self.levels)
        return dist.distribution.log_prob(tf.cast(x, dist.dtype))  # float levels for a discretised law

    def _every_label(self, fn, x):
        """fn(x, y) for each label y: [K, B, ...] (x tiled K times in one batch)."""
        b, k = tf.shape(x)[0], self.num_classes
        out = fn(tf.tile(x, [k, 1, 1, 1]), tf.repeat(tf.range(k, dtype=tf.int32), b))
        return tf.reshape(out, tf.concat([[k, b], tf.shape(out)[1:]], 0))

    def _nll_terms(self, x, seed, training, labels=None):
        """-log p(x | y) given labels; else -log p(x), for a conditional model the exact marginal
        log K - logsumexp_y log p(x | y) (uniform p(y))."""
        if labels is not None or not self.needs_labels:
            return {"nll": -self._cond_log_prob(x, labels)}
        lp = self._every_label(self._cond_log_prob, x)  # [K, B]
        return {"nll": math.log(self.num_classes) - tf.reduce_logsumexp(lp, axis=0)}

    def pixel_nll(self, x, labels=None):
        """-log p(x_t | x_<t) per sub-pixel t, [B, H, W, C] nats; sums to -log_prob(x). A conditional
        model without labels gives the marginal's factors: p(x_t | x_<t) = p(x_<=t) / p(x_<t)."""
        x = self.check_input(x)
        labels = self.check_labels(labels, tf.shape(x)[0])
        if not self.needs_labels or labels is not None:
            return -self._pixel_log_probs(x, labels)
        lp = self._every_label(self._pixel_log_probs, x)  # [K, B, H, W, C]
        flat = tf.reshape(lp, [self.num_classes, tf.shape(x)[0], -1])  # raster order, channels innermost
        prefix = tf.reduce_logsumexp(tf.cumsum(flat, axis=-1), axis=0) - math.log(self.num_classes)  # [B, D]
        steps = prefix - tf.pad(prefix, [[0, 0], [1, 0]])[:, :-1]
        return -tf.reshape(steps, tf.shape(x))

    def reports(self, x, seed=0):
        """pixel_nll: the mean -log p(x_t | x_<t) of `x` at each (row, col, channel), nats."""
        import pandas as pd

        nll = np.concatenate([self.pixel_nll(x[s:s + 100]).numpy() for s in range(0, len(x), 100)]).mean(0)
        rows, cols, chans = np.indices(nll.shape)  # nll: [H, W, C]
        return {"pixel_nll": pd.DataFrame({"row": rows.ravel(), "col": cols.ravel(), "channel": chans.ravel(),
                                           "nats": nll.ravel()})}

    # --- sampling ------------------------------------------------------------------------------
    def _sample(self, n, seed, labels=None, method="fast"):
        """`labels` int32 [n] for a conditional model (drawn uniformly when None); `method` "fast"
        (row-cropped, cached vertical stack) or "naive" (the whole network per sub-pixel)."""
        base = keras.random.randint([2], 0, 2 ** 30, seed=seed, dtype="int32")  # TFP stateless seed
        if self.needs_labels and labels is None:
            labels = keras.random.randint([n], 0, self.num_classes, seed=seed, dtype="int32")
        labels = tf.zeros([n], tf.int32) if labels is None else labels
        h, w, c = self.data_shape
        canvas = tf.zeros([n, h, w, c], tf.int32)
        if method == "naive":
            self._naive_fn = self._naive_fn or tf.function(self._naive_step)
            for t in range(h * w * c):
                canvas = self._naive_fn(canvas, tf.constant(t), base, labels)
        else:
            self._fast_fn = self._fast_fn or tf.function(self._fast_row)
            for i in range(h):
                canvas = self._fast_fn(canvas, tf.constant(i), base, labels)
        return canvas

    def _sampling_cost(self, method="fast", labels=None):
        """H*W*C sequential network calls either way ("fast" runs only the horizontal stack per call)."""
        return int(np.prod(self.data_shape))

    def _draw(self, params, t, base):
        """Sub-pixel t of every image from its parameters [n, P]: int32 [n]."""
        seed = tf.random.experimental.stateless_fold_in(base, t)
        return pixel_sample(self.pixel_kind, params[:, None, None, None], self.levels, seed)[:, 0, 0, 0]

    @staticmethod
    def _put(canvas, value, t):
        """canvas [n, h, W, C] with flat sub-pixel t (raster order) set to value [n]."""
        hot = tf.reshape(tf.one_hot(t, tf.size(canvas[0]), dtype=tf.int32), tf.shape(canvas[:1]))
        return canvas + (value[:, None, None, None] - canvas) * hot

    def _naive_step(self, canvas, t, base, labels):
        h, w, c = self.data_shape
        params = self.params(self.preprocess(canvas), labels)  # [n, H, W, C, P], the whole network
        return self._put(canvas, self._draw(params[:, t // (w * c), (t // c) % w, t % c], t, base), t)

    def _fast_row(self, canvas, i, base, labels):
        """Sample row i: the vertical stack once on the rows that reach it, then for each sub-pixel
        of the row only the horizontal stack on that row."""
        h, w, c = self.data_shape
        rows = self.sample_rows
        start = tf.clip_by_value(i - rows + 1, 0, h - rows)
        emb = self._embed(labels)
        crop = tf.slice(canvas, [0, start, 0, 0], [-1, rows, w, c])  # [n, rows, W, C]
        links = [tf.gather(v, [i - start], axis=1) for v in self._vertical(self.preprocess(crop), emb)]

        def step(t, row):  # row [n, 1, W, C]
            params = self._horizontal(self.preprocess(row), links, emb)  # [n, 1, W, C, P]
            return t + 1, self._put(row, self._draw(params[:, 0, t // c, t % c], i * w * c + t, base), t)

        row = tf.slice(canvas, [0, i, 0, 0], [-1, 1, w, c])
        _, row = tf.while_loop(lambda t, _: t < w * c, step, (tf.constant(0), row))
        hot = tf.reshape(tf.one_hot(i, h, dtype=tf.int32), [1, h, 1, 1])
        return canvas * (1 - hot) + row * hot
