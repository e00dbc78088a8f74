"""Datasets read from files: statically binarized MNIST (Larochelle & Murray 2011) and the Keras
cache (mnist, fashion_mnist, cifar10). Each loader registers with `zoo.data` (import-time, no
TensorFlow); files are read directly and only downloaded when missing:

    binarized_mnist  $ZOO_DATA_DIR/binarized_mnist.npz, then $ZOO_CACHE_DIR (default ~/.cache/zoo),
                     then the official .amat files (converted to the .npz there). Unlabelled, unless
                     binarized_mnist_labels.npz (int arrays y_train, y_valid, y_test) lies beside the
                     .npz: then its labels are the dataset's (semi-supervised M2 needs them). The
                     official files carry none; the split is commonly taken to keep MNIST's order
                     (train [:50000], valid = train [50000:], test), i.e. MNIST's y_train[:50000],
                     y_train[50000:], y_test: check some images against MNIST's before trusting it.
    mnist, fashion_mnist, cifar10
                     the Keras cache ($KERAS_HOME/datasets, default ~/.keras), read directly, else
                     `keras.datasets.<name>.load_data()`; valid = the last `n_valid` train images
"""
from __future__ import annotations

import gzip
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from zoo.data import SPLITS, DataError, DataMissing, Dataset, _splits, one_of, register, whole

# --- binarized MNIST -------------------------------------------------------------------------
BMNIST_URL = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
BMNIST_FILE = "binarized_mnist.npz"
BMNIST_LABELS_FILE = "binarized_mnist_labels.npz"  # optional, beside BMNIST_FILE: y_train, y_valid, y_test


def cache_dir() -> Path:
    """The zoo's download cache: $ZOO_CACHE_DIR, default ~/.cache/zoo."""
    return Path(os.environ.get("ZOO_CACHE_DIR") or "~/.cache/zoo").expanduser()


def read_amat(path) -> np.ndarray:
    """A Larochelle .amat file (one image a line, 784 space-separated 0/1) -> uint8 `[N, 28, 28]`."""
    raw = np.frombuffer(Path(path).read_bytes(), np.uint8)
    if not np.isin(raw, np.frombuffer(b"01 \t\r\n", np.uint8)).all():
        raise DataError(f"{path}: not a binary .amat file (only 0/1 and whitespace expected); delete it "
                        f"and load again to download it afresh")
    bits = raw[(raw == ord("0")) | (raw == ord("1"))] - ord("0")
    if bits.size % 784:
        raise DataError(f"{path}: {bits.size} pixels is not a whole number of 28x28 images; delete it "
                        f"and load again to download it afresh")
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
            raise DataMissing(
                f"binarized_mnist: not found at {', '.join(map(str, tried))} and the download from "
                f"{BMNIST_URL} into {cache_dir()} failed ({_one_line(e)}). Fix: set ZOO_DATA_DIR to a "
                f"folder holding {BMNIST_FILE} (x_train, x_valid, x_test), or place that file (or the three "
                f"binarized_mnist_{{train,valid,test}}.amat files) in {cache_dir()}") from e
        path = cache_dir() / BMNIST_FILE
        np.savez_compressed(path, **{f"x_{k}": read_amat(p) for k, p in amats.items()})
    try:
        with np.load(path) as f:
            images = {k: f[f"x_{k}"].astype(np.uint8)[..., None] for k in SPLITS}  # [N, 28, 28, 1]
    except (OSError, ValueError, KeyError) as e:  # not an .npz, or without the three arrays
        raise DataError(f"binarized_mnist: cannot read {path} ({_one_line(e)}); it must be an .npz with "
                        f"uint8 arrays x_train, x_valid, x_test [N, 28, 28]: replace it, or point "
                        f"ZOO_DATA_DIR at a folder holding a good {BMNIST_FILE}") from e
    return Dataset("binarized_mnist", **images, levels=2, labels=_bmnist_labels(path, images))


def _bmnist_labels(path, images) -> dict:
    """{split: int64 [N]} from BMNIST_LABELS_FILE beside `path` when it exists (else {}: no labels).
    Raises DataError for a file without the three arrays or with lengths unlike the images'."""
    path = Path(path).with_name(BMNIST_LABELS_FILE)
    if not path.exists():
        return {}
    try:
        with np.load(path) as f:
            labels = {k: np.asarray(f[f"y_{k}"], np.int64).ravel() for k in SPLITS}
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"binarized_mnist: cannot read {path} ({_one_line(e)}); it must be an .npz with "
                        f"int arrays y_train, y_valid, y_test; fix or remove it") from e
    for k in SPLITS:
        if len(labels[k]) != len(images[k]):
            raise DataError(f"binarized_mnist: {path} has {len(labels[k])} labels y_{k} for {len(images[k])} "
                            f"{k} images; give one label per image of each split, or remove the file")
    return labels


def _one_line(err) -> str:
    """An exception's message on one line (a CLI reports a data error as one `error:` line)."""
    return " ".join(str(err).split()) or type(err).__name__


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
            raise DataMissing(
                f"{name}: not in the Keras cache (expected {expected}) and "
                f"keras.datasets.{name}.load_data() could not download it ({_one_line(e)}). Fix: run it once "
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
        raise DataError(f"{name}: n_valid must be in [1, {len(x_tr) - 1}] (this copy has {len(x_tr)} "
                        f"training images), got {n_valid}", "n_valid")
    images, labels = _splits(x, y, len(x_tr) - n_valid, n_valid)
    if binarize is None:
        return Dataset(name, **images, levels=256, labels=labels)
    if binarize != "dynamic":
        raise DataError(f"{name}: binarize must be None or 'dynamic', got {binarize!r}", "binarize")
    rng = np.random.default_rng(seed)  # one fixed draw per split; train re-drawn per epoch in tf_dataset
    fixed = {k: (rng.integers(0, 255, v.shape, np.uint8) < v).astype(np.uint8)  # P(1) = v / 255
             for k, v in images.items()}
    return Dataset(name, **fixed, levels=2, labels=labels, train_gray=images["train"])


KERAS_RULES = dict(binarize=one_of(None, "dynamic"), n_valid=whole(1, optional=True), seed=whole(0))


@register("mnist", **KERAS_RULES)
def _mnist(binarize=None, n_valid=None, seed=0):
    """256 levels, or `binarize="dynamic"`: Bernoulli(pixel / 255), fresh each epoch for train."""
    return _keras_dataset("mnist", n_valid, binarize, seed)


@register("fashion_mnist", **KERAS_RULES)
def _fashion_mnist(binarize=None, n_valid=None, seed=0):
    """As `mnist`, for Fashion-MNIST."""
    return _keras_dataset("fashion_mnist", n_valid, binarize, seed)


@register("cifar10", n_valid=KERAS_RULES["n_valid"])
def _cifar10(n_valid=None):
    """CIFAR-10, 32x32x3, 256 levels, valid = last 5000 of the 50000 train images."""
    return _keras_dataset("cifar10", n_valid)


def on_disk(name: str) -> bool:
    """Whether the files of dataset `name` (one of FILE_DATASETS) are all on disk."""
    if name == "binarized_mnist":
        return any(p.exists() for p in _bmnist_npz_paths()) \
            or all(p.exists() for p in _amat_paths(cache_dir()).values())
    return _keras_cache_files(name, keras_cache_dir()) is not None


FILE_DATASETS = ("binarized_mnist", "mnist", "fashion_mnist", "cifar10")
