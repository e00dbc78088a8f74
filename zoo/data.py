"""Datasets of the zoo: `load(name, **options) -> Dataset` of raw uint8 images `[N, H, W, C]`.

No TensorFlow / Keras at import time (the dashboard reads images without them); `tf_dataset`
and the Keras download fallback import them lazily. Data never downloads unless it is missing:

    bars             Paquet's 4x4 noisy bars, sampled here; exact `true_log_prob` and `entropy`
                     (`bars_entropy(noise)` without a dataset)
    digits           scikit-learn's bundled 8x8 digits (17 levels)
    binarized_mnist  Larochelle & Murray's static binarization: $ZOO_DATA_DIR, then
                     $ZOO_CACHE_DIR (default ~/.cache/zoo), then the official .amat files
    mnist, fashion_mnist, cifar10
                     the Keras cache ($KERAS_HOME/datasets, default ~/.keras), read directly,
                     else `keras.datasets.<name>.load_data()`; valid = last `n_valid` of train

`available_offline(name)` says whether `load(name)` can work without a download.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import inspect
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from zoo.registry import unknown_key_error

SPLITS = ("train", "valid", "test")
_LOADERS = {}


def register(name: str):
    """Decorator: add a loader `fn(**options) -> Dataset`; its keyword arguments are the options."""
    return lambda fn: _LOADERS.setdefault(name, fn)


def list_datasets() -> list[str]:
    """Names of every registered dataset, sorted."""
    return sorted(_LOADERS)


def load(name: str, **options) -> Dataset:
    """The dataset `name` with loader `options` (e.g. `load("bars", noise=0.2)`)."""
    if name not in _LOADERS:
        raise unknown_key_error("dataset", name, _LOADERS)
    loader = _LOADERS[name]
    valid = inspect.signature(loader).parameters
    for key in options:
        if key not in valid:
            raise unknown_key_error("option", key, valid, where=f" for dataset {name!r}")
    return loader(**options)


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

    def tf_dataset(self, split, batch_size, shuffle=True, with_labels=False, seed=None, repeat=False):
        """Batched, prefetched `tf.data.Dataset` of uint8 images (or `(images, labels)`)."""
        import tensorflow as tf

        x = self.split(split)
        dynamic = split == "train" and self.train_gray is not None
        if dynamic:
            x = self.train_gray
        if with_labels and split not in self.labels:
            raise ValueError(f"{self.name} has no labels; use with_labels=False")
        ds = tf.data.Dataset.from_tensor_slices((x, self.labels[split]) if with_labels else x)
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        if repeat:
            ds = ds.repeat()
        ds = ds.batch(batch_size, drop_remainder=False)
        if dynamic:  # a fresh Bernoulli(pixel / 255) draw per batch and per epoch
            noise = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)

            def binarize(batch, s):
                images = batch[0] if with_labels else batch  # [B, H, W, C] 0..255
                u = tf.random.stateless_uniform(tf.shape(images), seed=tf.stack([s, s + 1]))
                images = tf.cast(u * 255.0 < tf.cast(images, tf.float32), tf.uint8)
                return (images, batch[1]) if with_labels else images

            ds = tf.data.Dataset.zip((ds, noise)).map(binarize, num_parallel_calls=tf.data.AUTOTUNE)
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


@register("bars")
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


# --- binarized MNIST -------------------------------------------------------------------------
BMNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
BMNIST_FILE = "binarized_mnist.npz"


def cache_dir() -> Path:
    """The zoo's download cache: $ZOO_CACHE_DIR, default ~/.cache/zoo."""
    return Path(os.environ.get("ZOO_CACHE_DIR") or "~/.cache/zoo").expanduser()


def read_amat(path) -> np.ndarray:
    """A Larochelle .amat file (one image a line, 784 space-separated 0/1) -> uint8 `[N, 28, 28]`."""
    raw = np.frombuffer(Path(path).read_bytes(), np.uint8)
    if not np.isin(raw, np.frombuffer(b"01 \t\r\n", np.uint8)).all():
        raise ValueError(f"{path}: not a binary .amat file (only 0/1 and whitespace expected)")
    bits = raw[(raw == ord("0")) | (raw == ord("1"))] - ord("0")
    if bits.size % 784:
        raise ValueError(f"{path}: {bits.size} pixels is not a whole number of 28x28 images")
    return bits.reshape(-1, 28, 28)


def _amat_paths(folder) -> dict:
    """{split: folder/binarized_mnist_<split>.amat}, the official file names."""
    return {split: Path(folder) / f"binarized_mnist_{split}.amat" for split in SPLITS}


def _bmnist_npz_paths() -> list[Path]:
    """Where binarized_mnist.npz is looked for, in order: $ZOO_DATA_DIR (if set), then `cache_dir()`."""
    tried = []
    if os.environ.get("ZOO_DATA_DIR"):
        tried.append(Path(os.environ["ZOO_DATA_DIR"]).expanduser() / BMNIST_FILE)
    return tried + [cache_dir() / BMNIST_FILE]


def download_binarized_mnist(folder, timeout=30) -> dict:
    """Fetch the three official .amat files into `folder`, skipping those already there.
    Returns {split: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = _amat_paths(folder)
    for path in paths.values():
        if not path.exists():
            with urllib.request.urlopen(BMNIST_URL + path.name, timeout=timeout) as r:
                path.with_suffix(".part").write_bytes(r.read())
            path.with_suffix(".part").rename(path)
    return paths


@register("binarized_mnist")
def _binarized_mnist():
    """Static binarized MNIST 50000/10000/10000 (keys x_train, x_valid, x_test in the .npz)."""
    tried = _bmnist_npz_paths()
    path = next((p for p in tried if p.exists()), None)
    if path is None:
        try:
            amats = download_binarized_mnist(cache_dir())
        except (OSError, urllib.error.URLError) as e:
            raise FileNotFoundError(
                f"binarized_mnist: not found at {', '.join(map(str, tried))} and the download from "
                f"{BMNIST_URL} into {cache_dir()} failed ({e}). Fix: set ZOO_DATA_DIR to a folder "
                f"holding {BMNIST_FILE} (x_train, x_valid, x_test), or place that file (or the three "
                f"binarized_mnist_{{train,valid,test}}.amat files) in {cache_dir()}") from e
        path = cache_dir() / BMNIST_FILE
        np.savez_compressed(path, **{f"x_{k}": read_amat(p) for k, p in amats.items()})
    with np.load(path) as f:
        images = {k: f[f"x_{k}"].astype(np.uint8)[..., None] for k in SPLITS}  # [N, 28, 28, 1]
    return Dataset("binarized_mnist", **images, levels=2)


# --- Keras datasets: mnist, fashion_mnist, cifar10 -------------------------------------------
FASHION_FILES = ("train-labels-idx1-ubyte.gz", "train-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz")
CIFAR_DIRS = ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py")  # keras 3, plain
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch",)


def keras_cache_dir() -> Path:
    """Where Keras caches datasets: `$KERAS_HOME/datasets` (default `~/.keras`, `/tmp` if read-only)."""
    home = os.environ.get("KERAS_HOME")
    if not home:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    return Path(home).expanduser() / "datasets"


def _read_idx(path) -> np.ndarray:
    """A gzipped idx file (big-endian header, then uint8 data)."""
    with gzip.open(path, "rb") as f:
        buf = f.read()
    dims = np.frombuffer(buf, ">i4", count=buf[3], offset=4)
    return np.frombuffer(buf, np.uint8, offset=4 + 4 * buf[3]).reshape(dims)


def _read_cifar_batch(path):
    """A CIFAR python batch: pickled {b"data": uint8 [N, 3072] channel-first, b"labels": [N]}."""
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # [N, 32, 32, 3]
    return x, np.asarray(d[b"labels"])


def _keras_cache_files(name, root) -> list[Path] | None:
    """The Keras cache files of dataset `name` under `root` when all of them exist, else None."""
    layouts = {"mnist": [[root / "mnist.npz"]],
               "fashion_mnist": [[root / "fashion-mnist" / f for f in FASHION_FILES]],
               "cifar10": [[root / d / f for f in CIFAR_FILES] for d in CIFAR_DIRS]}.get(name, [])
    return next((files for files in layouts if all(p.exists() for p in files)), None)


def _from_keras_cache(name, root):
    """`((x_train, y_train), (x_test, y_test))` from the Keras cache files, or None if absent."""
    files = _keras_cache_files(name, root)
    if files is None:
        return None
    if name == "mnist":
        with np.load(files[0]) as f:
            return (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    if name == "fashion_mnist":
        y_tr, x_tr, y_te, x_te = map(_read_idx, files)
        return (x_tr, y_tr), (x_te, y_te)
    parts = [_read_cifar_batch(p) for p in files]  # cifar10: 5 train batches, then the test batch
    train = tuple(np.concatenate(a) for a in zip(*parts[:5]))
    return train, parts[5]


def _keras_download(name):
    import keras

    return getattr(keras.datasets, name).load_data()


def _keras_arrays(name):
    root = keras_cache_dir()
    arrays = _from_keras_cache(name, root)
    if arrays is None:
        try:
            arrays = _keras_download(name)
        except Exception as e:
            expected = {"mnist": ["mnist.npz"],
                        "fashion_mnist": [f"fashion-mnist/{f}" for f in FASHION_FILES],
                        "cifar10": [f"{d}/{{data_batch_1..5,test_batch}}" for d in CIFAR_DIRS]}[name]
            expected = " or ".join(str(root / p) for p in expected)
            raise FileNotFoundError(
                f"{name}: not in the Keras cache (expected {expected}) and "
                f"keras.datasets.{name}.load_data() could not download it ({e}). Fix: run it once "
                f"with network access, or copy the Keras cache files there (or set KERAS_HOME to "
                f"a folder whose datasets/ subfolder holds them)") from e
    return arrays


def _keras_dataset(name, n_valid, binarize=None, seed=0):
    """Train/valid from the Keras train set (valid = its last `n_valid`), test = the Keras test set.

    Default `n_valid`: min(5000, N_train // 6), i.e. 5000 for the real data, sane for tiny caches.
    """
    (x_tr, y_tr), (x_te, y_te) = _keras_arrays(name)
    x = np.concatenate([x_tr, x_te]).astype(np.uint8)
    x = x[..., None] if x.ndim == 3 else x  # [N, H, W, C]
    y = np.concatenate([np.ravel(y_tr), np.ravel(y_te)])
    n_valid = min(5000, len(x_tr) // 6) if n_valid is None else int(n_valid)
    if not 0 < n_valid < len(x_tr):
        raise ValueError(f"{name}: n_valid must be in [1, {len(x_tr) - 1}], got {n_valid}")
    images, labels = _splits(x, y, len(x_tr) - n_valid, n_valid)
    if binarize is None:
        return Dataset(name, **images, levels=256, labels=labels)
    if binarize != "dynamic":
        raise ValueError(f"{name}: binarize must be None or 'dynamic', got {binarize!r}")
    rng = np.random.default_rng(seed)  # one fixed draw per split; train re-drawn per epoch in tf_dataset
    fixed = {k: (rng.integers(0, 255, v.shape, np.uint8) < v).astype(np.uint8)  # P(1) = v / 255
             for k, v in images.items()}
    return Dataset(name, **fixed, levels=2, labels=labels, train_gray=images["train"])


@register("mnist")
def _mnist(binarize=None, n_valid=None, seed=0):
    """256 levels, or `binarize="dynamic"`: Bernoulli(pixel / 255), fresh each epoch for train."""
    return _keras_dataset("mnist", n_valid, binarize, seed)


@register("fashion_mnist")
def _fashion_mnist(binarize=None, n_valid=None, seed=0):
    """As `mnist`, for Fashion-MNIST."""
    return _keras_dataset("fashion_mnist", n_valid, binarize, seed)


@register("cifar10")
def _cifar10(n_valid=None):
    """CIFAR-10, 32x32x3, 256 levels, valid = last 5000 of the 50000 train images."""
    return _keras_dataset("cifar10", n_valid)


# --- offline check -----------------------------------------------------------------------------
def available_offline(name: str) -> bool:
    """Whether `load(name)` can work from local files alone, never starting a download: True for
    the sampled / bundled sets (bars, digits), for the others True when their files are on disk."""
    if name == "binarized_mnist":
        return any(p.exists() for p in _bmnist_npz_paths()) \
            or all(p.exists() for p in _amat_paths(cache_dir()).values())
    if name in ("mnist", "fashion_mnist", "cifar10"):
        return _keras_cache_files(name, keras_cache_dir()) is not None
    return name in _LOADERS
