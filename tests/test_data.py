"""Tests of zoo.data: real loaders on tiny files in temporary caches, never the network."""
import gzip
import math
import os
import pickle
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from zoo import data, datafiles

# The real file when CI or a developer points ZOO_DATA_DIR at it (CI: ../shared/data beside the clone).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL_BMNIST = Path(os.environ.get("ZOO_DATA_DIR") or SHARED_DATA) / "binarized_mnist.npz"


@pytest.fixture(autouse=True)
def offline(monkeypatch, tmp_path):
    """Empty caches in tmp_path, and any network connection fails the test loudly."""

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "zoo_cache"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)


@pytest.fixture
def no_keras_download(monkeypatch):
    def fail(name):
        raise AssertionError(f"tried to download {name}")

    monkeypatch.setattr(datafiles, "_keras_download", fail)


def first_batch(ds):
    return next(iter(ds))


# --- registry and errors -----------------------------------------------------------------------
def test_module_does_not_import_tensorflow():
    code = "import sys, zoo.data; print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[1])
    assert out.stdout.strip() == "False"


def test_zoo_submodules_load_on_first_access_without_tensorflow():
    code = ("import sys, zoo; assert 'zoo.data' not in sys.modules; ds = zoo.data.load('digits'); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
            "print(ds.name, zoo.vocabulary.family('iwae'), 'results' in dir(zoo))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["digits", "VAE", "True"]
    import zoo

    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        zoo.nothing_here  # noqa: B018



def test_unknown_dataset_names_valid_ones():
    with pytest.raises(ValueError, match="unknown dataset 'barz'") as err:
        data.load("barz")
    assert "did you mean 'bars'" in str(err.value)
    for name in ("bars", "digits", "binarized_mnist", "mnist", "fashion_mnist", "cifar10"):
        assert name in str(err.value)
    assert data.list_datasets() == sorted(data._LOADERS)


def test_unknown_option_names_it_and_suggests():
    with pytest.raises(ValueError, match="unknown option 'nosie' for dataset 'bars'") as err:
        data.load("bars", nosie=0.2)
    assert "did you mean 'noise'" in str(err.value)
    assert "n_train" in str(err.value) and "seed" in str(err.value)
    with pytest.raises(ValueError, match="unknown option 'noise' for dataset 'digits'"):
        data.load("digits", noise=0.1)


def test_split_rejects_unknown_name():
    ds = data.load("bars", n_train=10, n_valid=10, n_test=10)
    assert ds.split("valid") is ds.valid
    with pytest.raises(ValueError, match="unknown split 'validation'.*train, valid, test"):
        ds.split("validation")


# --- bars --------------------------------------------------------------------------------------
def test_bars_arrays():
    ds = data.load("bars")
    assert (ds.name, ds.levels, ds.shape, ds.num_dims) == ("bars", 2, (4, 4, 1), 16)
    for split, n in (("train", 10000), ("valid", 2000), ("test", 2000)):
        x = ds.split(split)
        assert x.shape == (n, 4, 4, 1) and x.dtype == np.uint8
        assert set(np.unique(x)) == {0, 1}
        assert ds.labels[split].shape == (n,) and ds.labels[split].dtype == np.int64
    # Labels are the bar column: with noise 0 the image is exactly that bar.
    clean = data.load("bars", noise=0.0, n_train=100)
    for x, c in zip(clean.train, clean.labels["train"]):
        assert x[:, c].all() and x.sum() == 4


def test_bars_deterministic_seed():
    a, b = data.load("bars", seed=3), data.load("bars", seed=3)
    c = data.load("bars", seed=4)
    assert all(np.array_equal(a.split(s), b.split(s)) for s in data.SPLITS)
    assert not np.array_equal(a.train, c.train)


def test_bars_empirical_statistics():
    ds = data.load("bars", n_train=20000)
    freq = np.bincount(ds.labels["train"], minlength=4) / 20000
    np.testing.assert_allclose(freq, 0.25, atol=0.02)
    bars = np.zeros((4, 4, 4, 1), np.uint8)
    for c in range(4):
        bars[c, :, c] = 1
    flip_rate = (ds.train != bars[ds.labels["train"]]).mean()
    assert abs(flip_rate - 0.1) < 0.005
    # The sample average of -log p(x) estimates the entropy.
    assert abs(-ds.true_log_prob(ds.train).mean() - ds.entropy) < 0.05


def test_bars_exact_distribution():
    ds = data.load("bars")
    assert ds.entropy == pytest.approx(6.5718, abs=1e-4)
    log_p = ds.true_log_prob(data.all_binary_images())
    assert log_p.shape == (65536,)
    assert np.exp(log_p).sum() == pytest.approx(1.0, abs=1e-10)
    # The blank image is 4 flips away from every bar.
    blank = np.zeros((1, 4, 4, 1), np.uint8)
    assert ds.true_log_prob(blank)[0] == pytest.approx(4 * math.log(0.1) + 12 * math.log(0.9))
    assert data.load("bars", noise=0.0).entropy == pytest.approx(math.log(4))
    assert data.load("bars", noise=0.5).entropy == pytest.approx(16 * math.log(2))
    with pytest.raises(ValueError, match="binary images"):
        ds.true_log_prob(np.full((1, 4, 4, 1), 2, np.uint8))


def test_bars_entropy_without_a_dataset():
    assert round(data.bars_entropy(0.1), 4) == 6.5718 and data.bars_entropy() == data.bars_entropy(0.1)
    assert data.bars_entropy(0.1) == data.load("bars", noise=0.1).entropy
    assert data.bars_entropy(0.2) == pytest.approx(data.load("bars", noise=0.2).entropy)
    assert data.bars_entropy(0.2) > data.bars_entropy(0.1)
    assert data.bars_entropy(0.0) == pytest.approx(math.log(4))
    assert data.bars_entropy(0.5) == pytest.approx(16 * math.log(2))
    with pytest.raises(ValueError, match="noise must be in"):
        data.bars_entropy(1.5)
    np.testing.assert_array_equal(data.bar_images()[:, :, 2, 0], [[0] * 4, [0] * 4, [1] * 4, [0] * 4])


def test_all_binary_images():
    x = data.all_binary_images()
    assert x.shape == (65536, 4, 4, 1) and x.dtype == np.uint8
    assert len(np.unique(x.reshape(-1, 16), axis=0)) == 65536
    assert data.all_binary_images(2, 3).shape == (64, 2, 3, 1)


# --- digits ------------------------------------------------------------------------------------
def test_digits_split_and_labels():
    from sklearn.datasets import load_digits

    ds = data.load("digits")
    assert (ds.levels, ds.shape) == (17, (8, 8, 1))
    assert [len(ds.split(s)) for s in data.SPLITS] == [1000, 350, 447]
    assert ds.train.dtype == np.uint8 and ds.train.min() == 0 and ds.train.max() == 16
    ref = load_digits()
    np.testing.assert_array_equal(ds.valid[0, ..., 0], ref.images[1000])
    np.testing.assert_array_equal(ds.labels["test"], ref.target[1350:])
    assert ds.labels["train"].dtype == np.int64 and set(ds.labels["train"]) == set(range(10))
    assert not hasattr(ds, "true_log_prob") and not hasattr(ds, "entropy")


# --- tf.data -----------------------------------------------------------------------------------
def test_tf_dataset_batches():
    ds = data.load("bars", n_train=100)
    batches = list(ds.tf_dataset("train", 32, shuffle=False).as_numpy_iterator())
    assert [len(b) for b in batches] == [32, 32, 32, 4]
    assert batches[0].dtype == np.uint8 and batches[0].shape == (32, 4, 4, 1)
    np.testing.assert_array_equal(np.concatenate(batches), ds.train)
    x, y = first_batch(ds.tf_dataset("valid", 16, with_labels=True))
    assert x.shape == (16, 4, 4, 1) and y.shape == (16,) and y.dtype.name == "int64"


def test_tf_dataset_shuffle_seed_and_repeat():
    ds = data.load("bars", n_train=500)
    order = [np.concatenate(list(ds.tf_dataset("train", 100, seed=7).as_numpy_iterator()))
             for _ in range(2)]
    np.testing.assert_array_equal(order[0], order[1])
    assert not np.array_equal(order[0], ds.train)
    np.testing.assert_array_equal(np.sort(order[0].reshape(500, -1), 0),
                                  np.sort(ds.train.reshape(500, -1), 0))
    # Labels stay paired with their images after shuffling (noise 0: image == bar of its label).
    clean = data.load("bars", noise=0.0, n_train=200)
    x, y = first_batch(clean.tf_dataset("train", 200, with_labels=True, seed=1))
    assert all(x.numpy()[i, :, c].all() for i, c in enumerate(y.numpy()))
    n = sum(1 for _ in ds.tf_dataset("train", 100, repeat=True).take(12))
    assert n == 12


def test_tf_dataset_order_is_a_function_of_the_position():
    """Epoch e's order depends on e (the stream's position), not on how often the dataset was
    iterated in this process: a resumed run sees what the uninterrupted one saw."""
    import tensorflow as tf

    ds = data.load("bars", n_train=50)
    flat = lambda d: np.concatenate(list(d.as_numpy_iterator())).reshape(50, -1)  # noqa: E731
    free = ds.tf_dataset("train", 16, seed=3)
    straight = [flat(free) for _ in range(3)]  # epochs 0, 1, 2 in one process
    assert not np.array_equal(straight[0], straight[1]) and not np.array_equal(straight[1], straight[2])
    position = tf.Variable(0, dtype=tf.int64)
    placed = ds.tf_dataset("train", 16, seed=3, position=position)
    for epoch in (2, 1, 1):
        position.assign(epoch * 50)
        np.testing.assert_array_equal(flat(placed), straight[epoch])
    stream = ds.tf_dataset("train", 16, seed=3, repeat=True, position=position)
    position.assign(50)  # a repeated stream resumed at epoch 1 (a capped epoch of 50 examples)
    seen = np.concatenate(list(stream.take(7).as_numpy_iterator()))[:100]
    np.testing.assert_array_equal(seen.reshape(100, -1), np.concatenate(straight[1:]))


def test_tf_dataset_with_labels_needs_labels(tmp_path, monkeypatch):
    np.savez(tmp_path / "binarized_mnist.npz", **{f"x_{s}": np.zeros((3, 28, 28), np.uint8)
                                                   for s in data.SPLITS})
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path))
    ds = data.load("binarized_mnist")
    assert ds.labels == {}
    with pytest.raises(ValueError, match="no labels"):
        ds.tf_dataset("train", 2, with_labels=True)


# --- binarized MNIST ---------------------------------------------------------------------------
def write_amat(path, x):
    path.write_text("".join(" ".join(map(str, row)) + "\n" for row in x.reshape(len(x), -1)))


def test_read_amat(tmp_path):
    x = (np.random.default_rng(0).random((3, 28, 28)) < 0.3).astype(np.uint8)
    write_amat(tmp_path / "a.amat", x)
    out = datafiles.read_amat(tmp_path / "a.amat")
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, x)
    (tmp_path / "bad.amat").write_text("0 1 2\n")
    with pytest.raises(ValueError, match="not a binary .amat"):
        datafiles.read_amat(tmp_path / "bad.amat")


def test_binarized_mnist_converts_amat_in_cache_without_download(tmp_path):
    cache = tmp_path / "zoo_cache"
    cache.mkdir()
    rng = np.random.default_rng(1)
    arrays = {s: (rng.random((n, 28, 28)) < 0.2).astype(np.uint8) for s, n in zip(data.SPLITS, (5, 2, 3))}
    for s, x in arrays.items():
        write_amat(cache / f"binarized_mnist_{s}.amat", x)
    ds = data.load("binarized_mnist")  # the socket guard fails the test if it downloads
    assert (ds.levels, ds.shape, ds.labels) == (2, (28, 28, 1), {})
    for s, x in arrays.items():
        np.testing.assert_array_equal(ds.split(s)[..., 0], x)
        assert ds.split(s).dtype == np.uint8
    assert (cache / "binarized_mnist.npz").exists()
    np.testing.assert_array_equal(data.load("binarized_mnist").test[..., 0], arrays["test"])


def test_binarized_mnist_data_dir_comes_first(tmp_path, monkeypatch):
    for folder, value in (("data", 1), ("zoo_cache", 0)):
        (tmp_path / folder).mkdir()
        np.savez(tmp_path / folder / "binarized_mnist.npz",
                 **{f"x_{s}": np.full((2, 28, 28), value, np.uint8) for s in data.SPLITS})
    assert data.load("binarized_mnist").train.max() == 0
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))
    assert data.load("binarized_mnist").train.min() == 1


def test_binarized_mnist_missing_explains_fix(tmp_path, monkeypatch):
    urls = []

    def offline_urlopen(url, timeout):
        urls.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline_urlopen)
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError) as err:
        data.load("binarized_mnist")
    assert urls == [datafiles.BMNIST_URL + "binarized_mnist_train.amat"]
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "binarized_mnist.npz") in msg
    assert str(tmp_path / "zoo_cache" / "binarized_mnist.npz") in msg
    assert "set ZOO_DATA_DIR" in msg and "download" in msg


@pytest.mark.skipif(not REAL_BMNIST.exists(), reason="real binarized MNIST not on this machine")
def test_binarized_mnist_real_file(monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(REAL_BMNIST.parent))
    ds = data.load("binarized_mnist")
    assert [len(ds.split(s)) for s in data.SPLITS] == [50000, 10000, 10000]
    assert ds.train.shape[1:] == (28, 28, 1) and ds.train.max() == 1
    assert ds.train.mean() == pytest.approx(0.1306, abs=1e-4)


# --- Keras-cache datasets ----------------------------------------------------------------------
def fake_images(n, shape, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, *shape), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)


def write_idx(path, x):
    header = bytes([0, 0, 8, x.ndim]) + np.asarray(x.shape, ">i4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + x.tobytes())


def write_keras_cache(root, name, train, test, cifar_dir="cifar-10-batches-py"):
    """Tiny files laid out as Keras stores them under $KERAS_HOME/datasets."""
    root.mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        np.savez(root / "mnist.npz", x_train=train[0], y_train=train[1], x_test=test[0], y_test=test[1])
    elif name == "fashion_mnist":
        (root / "fashion-mnist").mkdir()
        for fname, arr in zip(datafiles.FASHION_FILES, (train[1], train[0], test[1], test[0])):
            write_idx(root / "fashion-mnist" / fname, arr)
    else:
        folder = root / cifar_dir
        folder.mkdir(parents=True)
        chunks = [(x, y) for x, y in zip(np.array_split(train[0], 5), np.array_split(train[1], 5))]
        for fname, (x, y) in zip(datafiles.CIFAR_FILES, chunks + [test]):
            flat = x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # channel-first rows, as CIFAR stores
            with open(folder / fname, "wb") as f:
                pickle.dump({b"data": flat, b"labels": [int(v) for v in y]}, f)


KERAS_CASES = [("mnist", (28, 28), None), ("fashion_mnist", (28, 28), None),
               ("cifar10", (32, 32, 3), "cifar-10-batches-py"),
               ("cifar10", (32, 32, 3), "cifar-10-batches-py-target/cifar-10-batches-py")]


@pytest.mark.parametrize("name,shape,cifar_dir", KERAS_CASES)
def test_keras_cache_read_directly(name, shape, cifar_dir, tmp_path, no_keras_download):
    train, test = fake_images(20, shape, 0), fake_images(6, shape, 1)
    write_keras_cache(tmp_path / "keras" / "datasets", name, train, test, cifar_dir)
    ds = data.load(name)
    full = (*shape, 1) if len(shape) == 2 else shape
    assert (ds.name, ds.levels, ds.shape) == (name, 256, full)
    assert [len(ds.split(s)) for s in data.SPLITS] == [17, 3, 6]  # valid = last min(5000, 20 // 6)
    np.testing.assert_array_equal(ds.valid.reshape(3, *shape), train[0][17:])
    np.testing.assert_array_equal(ds.test.reshape(6, *shape), test[0])
    np.testing.assert_array_equal(ds.labels["train"], train[1][:17])
    assert ds.labels["valid"].dtype == np.int64
    assert len(data.load(name, n_valid=5).valid) == 5
    with pytest.raises(ValueError, match="n_valid must be in"):
        data.load(name, n_valid=20)


@pytest.mark.parametrize("name,expected", [("mnist", "mnist.npz"),
                                           ("fashion_mnist", "fashion-mnist/train-labels-idx1-ubyte.gz"),
                                           ("cifar10", "cifar-10-batches-py")])
def test_keras_missing_explains_fix(name, expected, tmp_path, monkeypatch):
    def offline_download(name):
        raise ConnectionError("no network")

    monkeypatch.setattr(datafiles, "_keras_download", offline_download)
    with pytest.raises(FileNotFoundError) as err:
        data.load(name)
    msg = str(err.value)
    assert msg.startswith(name) and str(tmp_path / "keras" / "datasets" / expected) in msg
    assert f"keras.datasets.{name}.load_data()" in msg and "KERAS_HOME" in msg and "no network" in msg


def test_available_offline_without_files(tmp_path, monkeypatch):
    for var, folder in (("ZOO_DATA_DIR", "empty_data"), ("ZOO_CACHE_DIR", "empty_cache")):
        (tmp_path / folder).mkdir()
        monkeypatch.setenv(var, str(tmp_path / folder))
    assert data.available_offline("bars") and data.available_offline("digits")
    for name in ("binarized_mnist", "mnist", "fashion_mnist", "cifar10", "no_such_set"):
        assert not data.available_offline(name), name


def test_available_offline_with_files(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "data"))
    (tmp_path / "data").mkdir()
    np.savez(tmp_path / "data" / "binarized_mnist.npz", **{f"x_{s}": np.zeros((1, 28, 28), np.uint8)
                                                            for s in data.SPLITS})
    assert data.available_offline("binarized_mnist")
    (tmp_path / "data" / "binarized_mnist.npz").unlink()
    (tmp_path / "zoo_cache").mkdir()
    for s in data.SPLITS[:2]:
        write_amat(tmp_path / "zoo_cache" / f"binarized_mnist_{s}.amat", np.zeros((1, 28, 28), np.uint8))
    assert not data.available_offline("binarized_mnist")  # the test .amat would still be downloaded
    write_amat(tmp_path / "zoo_cache" / "binarized_mnist_test.amat", np.zeros((1, 28, 28), np.uint8))
    assert data.available_offline("binarized_mnist")  # load() converts the three .amat files, no download
    root = tmp_path / "keras" / "datasets"
    for name, shape, cifar_dir in KERAS_CASES:  # cifar10 in either folder layout of Keras
        write_keras_cache(root, name, fake_images(12, shape, 0), fake_images(2, shape, 1),
                          cifar_dir or "cifar-10-batches-py")
        assert data.available_offline(name), (name, cifar_dir)
        if cifar_dir:
            (root / cifar_dir / "test_batch").unlink()
            assert not data.available_offline(name), cifar_dir
    (root / "fashion-mnist" / datafiles.FASHION_FILES[0]).unlink()
    assert not data.available_offline("fashion_mnist")


def test_dynamic_binarization(tmp_path, no_keras_download):
    train, test = fake_images(30, (28, 28), 2), fake_images(6, (28, 28), 3)
    train[0][:, :4] = 0  # rows always off
    train[0][:, 4:8] = 255  # rows always on
    write_keras_cache(tmp_path / "keras" / "datasets", "mnist", train, test)
    ds = data.load("mnist", binarize="dynamic")
    assert ds.levels == 2 and ds.train_gray.max() > 1
    for s in data.SPLITS:
        assert set(np.unique(ds.split(s))) == {0, 1} and ds.split(s).dtype == np.uint8
    np.testing.assert_array_equal(ds.valid, data.load("mnist", binarize="dynamic").valid)  # fixed draw
    assert not np.array_equal(ds.valid, data.load("mnist", binarize="dynamic", seed=1).valid)
    assert abs(ds.test.mean() - test[0].mean() / 255) < 0.02

    tfds = ds.tf_dataset("train", 10, shuffle=False, seed=0)
    epochs = [np.concatenate(list(tfds.as_numpy_iterator())) for _ in range(3)]
    assert epochs[0].shape == (25, 28, 28, 1) and epochs[0].dtype == np.uint8
    assert set(np.unique(epochs[0])) == {0, 1}
    assert not np.array_equal(epochs[0], epochs[1])  # re-sampled each epoch
    assert (epochs[0][:, :4] == 0).all() and (epochs[0][:, 4:8] == 1).all()
    assert abs(np.mean(epochs) - ds.train_gray.mean() / 255) < 0.01
    x, y = first_batch(ds.tf_dataset("train", 5, with_labels=True))
    assert set(np.unique(x.numpy())) == {0, 1} and y.shape == (5,)
    with pytest.raises(ValueError, match="binarize must be None or 'dynamic'"):
        data.load("mnist", binarize="static")
