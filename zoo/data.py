"""Datasets of the zoo: `load(name, **options) -> Dataset` of raw uint8 images `[N, H, W, C]`.

No TensorFlow / Keras at import time (the dashboard reads images without them); `tf_dataset`
and the Keras download fallback import them lazily. Data never downloads unless it is missing:

    bars             Paquet's 4x4 noisy bars, sampled here; exact `true_log_prob` and `entropy`
                     (`bars_entropy(noise)` without a dataset)
    digits           scikit-learn's bundled 8x8 digits (17 levels)
    binarized_mnist, mnist, fashion_mnist, cifar10
                     read from files on disk (`zoo.datafiles`), downloaded only when missing

`available_offline(name)` says whether `load(name)` can work without a download; `check_options(name,
options)` checks a request without loading anything. A request that cannot be met raises DataError (a
ValueError; DataMissing, also a FileNotFoundError, for data not on disk) naming the problem and the fix.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect

import numpy as np

from zoo.registry import unknown_key_error

SPLITS = ("train", "valid", "test")
_LOADERS = {}
_RULES = {}  # dataset -> {option: rule(value) -> None, or what the option takes}


class DataError(ValueError):
    """A dataset that cannot be given as asked -- an unknown name or option, an option value out of
    range, data that is not on disk -- worded for the user: the message names the problem and the fix.
    `option` is the offending option's name (None for the dataset's name or its files)."""

    option = None

    def __init__(self, message: str, option=None):
        super().__init__(message)
        self.option = option


class DataMissing(FileNotFoundError, DataError):
    """The files of a dataset are neither on disk nor downloadable; the message names the paths looked
    at and the environment variable that points elsewhere. A FileNotFoundError too."""


def register(name: str, **rules):
    """Decorator: add a loader `fn(**options) -> Dataset`; its keyword arguments are the options, and
    `rules` (option -> `rule(value)`: None if fine, else what the option takes) check their values
    before anything loads (`check_options`)."""

    def wrap(fn):
        _RULES.setdefault(name, rules)
        return _LOADERS.setdefault(name, fn)

    return wrap


def whole(minimum: int = 0, optional: bool = False):
    """An option's rule: a whole number >= `minimum` (or None when `optional`)."""

    def rule(value):
        if optional and value is None:
            return None
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= minimum:
            return None
        return f"a whole number >= {minimum}" + (" or None" if optional else "")

    return rule


def fraction(value):
    """An option's rule: a number in [0, 1]."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and 0.0 <= value <= 1.0
    return None if ok else "a number in [0, 1]"


def one_of(*choices):
    """An option's rule: one of `choices`."""

    def rule(value):
        if any(value is c if c is None or isinstance(c, bool) else (type(value) is type(c) and value == c)
               for c in choices):
            return None
        return " or ".join(map(repr, choices))

    return rule


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    return sorted(_LOADERS)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_options(name, options: dict) -> None:
    """Raise DataError unless `load(name, **options)` names a registered dataset, only its options and
    values its rules accept; loads nothing (a config is checked before anything is written)."""
    if not isinstance(name, str) or name not in _LOADERS:
        raise DataError(str(unknown_key_error("dataset", name, _LOADERS)))
    valid = inspect.signature(_LOADERS[name]).parameters
    for key, value in options.items():
        if key not in valid:
            raise DataError(str(unknown_key_error("option", key, valid, where=f" for dataset {name!r}")), key)
        rule = _RULES[name].get(key)
        expected = rule(value) if rule else None
        if expected:
            default = valid[key].default
            raise DataError(f"{name}: {key} must be {expected}, got {_show(value)} (default {default!r})",
                            key)


def load(name: str, **options) -> Dataset:
    """The dataset `name` with loader `options` (e.g. `load("bars", noise=0.2)`); DataError (a
    ValueError) names a bad name or option, DataMissing (a FileNotFoundError too) data not on disk."""
    check_options(name, options)
    return _LOADERS[name](**options)


@dataclasses.dataclass(eq=False)
class Dataset:
    """Train/valid/test uint8 images `[N, H, W, C]` in `[0, levels - 1]`, plus optional labels.

    `train_gray` is set only for dynamic binarization: the 0..255 train images that
    `tf_dataset("train")` re-binarizes each epoch (`train` then holds one fixed draw).
    """

    name: str
    train: np.ndarray = dataclasses.field(repr=False)
    valid: np.ndarray = dataclasses.field(repr=False)
    test: np.ndarray = dataclasses.field(repr=False)
    levels: int
    labels: dict = dataclasses.field(default_factory=dict, repr=False)  # split -> int64 [N]
    train_gray: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        for split in SPLITS:
            x = self.split(split)
            if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != self.train.shape[1:]:
                raise ValueError(f"{self.name}: {split} must be uint8 [N, H, W, C] like train, "
                                 f"got {x.dtype} {x.shape}")

    @property
    def shape(self) -> tuple:
        return tuple(int(s) for s in self.train.shape[1:])  # (H, W, C)

    @property
    def num_dims(self) -> int:
        return int(np.prod(self.shape))

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid splits: {', '.join(SPLITS)}")
        return getattr(self, name)

    def tf_dataset(self, split, batch_size, shuffle=True, with_labels=False, seed=None, repeat=False,
                   position=None, labels=None):
        """Batched, prefetched `tf.data.Dataset` of uint8 images (or `(images, labels)`).

        `labels`: int `[N]` to pair with the split's images instead of its own labels (implies
        `with_labels`), e.g. -1 for the hidden labels of semi-supervised training (`zoo.training.fit`).

        The order is a function of the example position p alone: pass p // N is a stateless
        permutation of the N images seeded by (seed, pass) (unshuffled: in order), so it does not
        depend on how often the dataset was iterated in this process. `position` (an int64
        tf.Variable, read when an iterator starts, then moved on by N) is where a new iterator
        begins; `zoo.training.fit` sets it at each epoch's start, so a resumed run sees the batches
        the uninterrupted run saw; without it, each iteration takes the next pass. `repeat`: an
        endless stream of passes.
        Dynamic binarisation draws its Bernoulli noise from (seed, the batch's first position)."""
        import tensorflow as tf

        x = self.split(split)
        dynamic = split == "train" and self.train_gray is not None
        if dynamic:
            x = self.train_gray
        if labels is not None:
            labels, with_labels = np.asarray(labels, np.int64), True
            if labels.shape != (len(x),):
                raise ValueError(f"{self.name}: labels must be [{len(x)}] for the {split} split, "
                                 f"got shape {list(labels.shape)}")
        elif with_labels and split not in self.labels:
            raise ValueError(f"{self.name} has no labels; use with_labels=False")
        n, seed = len(x), int(seed or 0)
        if position is None:
            position = tf.Variable(0, dtype=tf.int64, trainable=False)
        # each new iterator starts at `position` and moves it on by a pass (the next epoch)
        start = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64))
        start = start.map(lambda _: position.assign_add(n) - n)

        def permutation(k):  # pass k: [N] int64, a stateless shuffle seeded by (seed, k), or in order
            seeds = tf.stack([tf.constant(seed, tf.int64), k])
            every = tf.range(n, dtype=tf.int64)
            return tf.random.experimental.stateless_shuffle(every, seed=seeds) if shuffle else every

        def order(first):  # (position, example index) from position `first` on
            last = first // n + 1 if not repeat else tf.int64.max
            perms = tf.data.Dataset.range(first // n, last).map(permutation).unbatch()
            positions = tf.data.Dataset.range(first, tf.int64.max)
            return tf.data.Dataset.zip(positions, perms.skip(first % n))

        ds = start.flat_map(order).batch(batch_size)  # ([B] positions, [B] indices)
        batches = tf.data.INFINITE_CARDINALITY if repeat else -(-n // batch_size)
        ds = ds.apply(tf.data.experimental.assert_cardinality(batches))  # known, as Keras expects
        images = tf.constant(x)  # [N, H, W, C] uint8
        labels = tf.constant(self.labels[split] if labels is None else labels) if with_labels else None

        def take(pos, idx):
            batch = tf.gather(images, idx)  # [B, H, W, C]
            if dynamic:  # a fresh Bernoulli(pixel / 255) draw per batch position
                u = tf.random.stateless_uniform(tf.shape(batch), seed=tf.stack([tf.constant(seed, tf.int64),
                                                                                  pos[0]]))
                batch = tf.cast(u * 255.0 < tf.cast(batch, tf.float32), tf.uint8)
            return (batch, tf.gather(labels, idx)) if with_labels else batch

        ds = ds.map(take, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)


def _splits(x, y, n_train, n_valid):
    """Consecutive train/valid/test slices of `x` (and of labels `y` when given)."""
    cuts = {"train": slice(0, n_train), "valid": slice(n_train, n_train + n_valid),
            "test": slice(n_train + n_valid, None)}
    images = {k: x[s] for k, s in cuts.items()}
    labels = {k: np.asarray(y[s], np.int64) for k, s in cuts.items()} if y is not None else {}
    return images, labels


# --- bars ------------------------------------------------------------------------------------
def all_binary_images(h=4, w=4) -> np.ndarray:
    """Every binary h x w image, uint8 `[2^(h*w), h, w, 1]` (image k has the bits of k)."""
    n = h * w
    bits = (np.arange(2**n, dtype=np.int64)[:, None] >> np.arange(n)) & 1  # [2^n, n]
    return bits.astype(np.uint8).reshape(-1, h, w, 1)


BARS_NOISE = 0.1  # the bars' default flip probability


def bar_images() -> np.ndarray:
    """The four noiseless bars, uint8 `[4, 4, 4, 1]` (image c lights column c)."""
    bars = np.zeros((4, 4, 4, 1), np.uint8)  # [column, H, W, C]
    for c in range(4):
        bars[c, :, c] = 1
    return bars


def _check_noise(noise) -> None:
    if not 0.0 <= noise <= 1.0:
        raise ValueError(f"bars: noise must be in [0, 1], got {noise}")


def bars_log_prob(x, noise: float = BARS_NOISE) -> np.ndarray:
    """Exact log p(x) of the bars in nats, float64 `[N]`, for binary images `[N, 4, 4, 1]`."""
    from scipy.special import logsumexp, xlogy

    _check_noise(noise)
    x = np.asarray(x)
    if x.shape[1:] != (4, 4, 1) or ((x != 0) & (x != 1)).any():
        raise ValueError(f"bars: expected binary images [N, 4, 4, 1], got {x.dtype} {x.shape}")
    flips = (x.reshape(-1, 1, 16) != bar_images().reshape(1, 4, 16)).sum(-1)  # [N, 4]
    log_terms = xlogy(flips, noise) + xlogy(16 - flips, 1 - noise)  # [N, 4]
    return logsumexp(log_terms, axis=-1) - np.log(4)


@functools.lru_cache(maxsize=16)
def bars_entropy(noise: float = BARS_NOISE) -> float:
    """H(p) = -sum_x p(x) log p(x) of the bars in nats, summed over all 2^16 images (no sampling):
    the lowest test NLL any model can have in expectation (6.5718 at noise 0.1)."""
    log_p = bars_log_prob(all_binary_images(), float(noise))
    finite = np.isfinite(log_p)
    return float(-np.sum(np.exp(log_p[finite]) * log_p[finite]) + 0.0)


@dataclasses.dataclass(eq=False)
class BarsDataset(Dataset):
    """Bars data with its exact distribution: `true_log_prob` and `entropy` in nats."""

    noise: float = BARS_NOISE

    def true_log_prob(self, x) -> np.ndarray:
        """Exact log p(x) in nats, `[N]`, for binary images `[N, 4, 4, 1]`."""
        return bars_log_prob(x, self.noise)

    @property
    def entropy(self) -> float:
        """-sum_x p(x) log p(x) over all 2^16 images: `bars_entropy(self.noise)`."""
        return bars_entropy(self.noise)


@register("bars", noise=fraction, n_train=whole(1), n_valid=whole(0), n_test=whole(0), seed=whole(0))
def _bars(noise=BARS_NOISE, n_train=10000, n_valid=2000, n_test=2000, seed=0):
    """Pick one of the 4 columns uniformly, set it to 1, flip each pixel with prob `noise`.
    Labels are the chosen column."""
    _check_noise(noise)
    rng = np.random.default_rng(seed)
    n = n_train + n_valid + n_test
    columns = rng.integers(0, 4, size=n)  # [N]
    flips = rng.random((n, 4, 4, 1)) < noise  # [N, 4, 4, 1]
    x = bar_images()[columns] ^ flips.astype(np.uint8)
    images, labels = _splits(x, columns, n_train, n_valid)
    return BarsDataset("bars", **images, levels=2, labels=labels, noise=float(noise))


# --- digits ----------------------------------------------------------------------------------
@register("digits")
def _digits():
    """scikit-learn's 1797 8x8 digits, values 0..16; split as Tomczak's intro_dgm:
    train = [:1000], valid = [1000:1350], test = [1350:] (447)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.uint8)[..., None]  # [1797, 8, 8, 1]
    images, labels = _splits(x, d.target, 1000, 350)
    return Dataset("digits", **images, levels=17, labels=labels)


# --- offline check -----------------------------------------------------------------------------
def available_offline(name: str) -> bool:
    """Whether `load(name)` can work from local files alone, never starting a download: True for
    the sampled / bundled sets (bars, digits), for the others True when their files are on disk."""
    from zoo import datafiles

    return datafiles.on_disk(name) if name in datafiles.FILE_DATASETS else name in _LOADERS


import zoo.datafiles  # noqa: E402, F401  (registers the file-backed datasets; it imports this module)
