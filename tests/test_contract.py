"""The likelihood contract, checked on every registered model (binary and 17-level data)."""
import math
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo import data
from zoo.contract import LIKELIHOOD_KINDS, bits_per_dim

MODELS = zoo.list_models()
# Smaller than the defaults where those cost minutes on 2 CPU cores; the contract does not depend on size.
CHEAP = {"diffusion": dict(channels=[16, 16], sample_steps=100), "pixelcnn": dict(filters=32, n_layers=3)}


def build(name, dataset):
    return zoo.build_model(name, dataset, **CHEAP.get(name, {}))


@pytest.fixture(scope="module", params=["bars", "digits"])
def dataset(request):
    if request.param == "bars":
        return data.load("bars", n_train=256, n_valid=64, n_test=64)
    return data.load("digits")


def test_registry_names_every_family_once():
    assert {"vae", "iwae"} <= set(MODELS)
    with pytest.raises(ValueError, match="unknown model 'vea'.*iwae.*vae"):
        zoo.build_model("vea", data.load("bars", n_train=8, n_valid=8, n_test=8))


def test_unknown_hyper_parameter_is_named(dataset):
    with pytest.raises(ValueError, match="unknown key 'latnet_dim'.*did you mean 'latent_dim'"):
        zoo.build_model("vae", dataset, latnet_dim=3)


@pytest.mark.parametrize("name", MODELS)
def test_terms_shapes_and_sum(name, dataset):
    model = build(name, dataset)
    x = dataset.test[:16]
    assert model.likelihood in LIKELIHOOD_KINDS
    if model.likelihood == "none":  # e.g. a plain GAN: no number at all, and a pointer to one
        assert model.term_names == ()
        for fn in (model.nll_terms, model.log_prob):
            with pytest.raises(ValueError, match="has no likelihood"):
                fn(x, seed=7)
        return
    terms = model.nll_terms(x, seed=7)
    assert tuple(terms) == model.term_names
    for value in terms.values():
        assert value.shape == (16,) and value.dtype == "float32"
        assert np.all(np.isfinite(value.numpy()))
    log_prob = model.log_prob(x, seed=7).numpy()
    np.testing.assert_allclose(-sum(v.numpy() for v in terms.values()), log_prob, rtol=1e-5, atol=1e-4)
    assert np.all(log_prob < 0)  # probabilities of discrete data are below 1
    np.testing.assert_allclose(model.bits_per_dim(x, seed=7).numpy(), -log_prob / (model.num_dims * math.log(2)),
                               rtol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_samples_in_data_space(name, dataset):
    model = build(name, dataset)
    s = model.sample(9, seed=3).numpy()
    assert s.dtype == np.uint8 and s.shape == (9, *dataset.shape)
    assert s.max() <= dataset.levels - 1
    np.testing.assert_array_equal(s, model.sample(9, seed=3).numpy())  # a seed replays
    assert not np.array_equal(s, model.sample(9, seed=4).numpy())


@pytest.mark.parametrize("name", MODELS)
def test_fit_then_save_load_round_trip(name, dataset, tmp_path):
    model = build(name, dataset)
    x_fit = dataset.train[:256]
    before = None if model.likelihood == "none" else float(np.mean(model.log_prob(x_fit, seed=11)))
    history = model.fit(dataset.tf_dataset("train", 64, seed=0), epochs=3, verbose=0)
    if model.likelihood == "none":  # a GAN's own loss: its discriminator beats chance (log 4 at D = 1/2)
        assert history.history["d_loss"][-1] < math.log(4)
    else:  # training raises the bound; paired on one seed, as one-draw bounds (VLB, ELBO) are noisy
        assert float(np.mean(model.log_prob(x_fit, seed=11))) > before
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model) and loaded.likelihood == model.likelihood
    x = dataset.test[:32]
    if model.likelihood == "none":
        with pytest.raises(ValueError, match="has no likelihood"):
            loaded.log_prob(x, seed=5)
    else:
        np.testing.assert_allclose(loaded.log_prob(x, seed=5).numpy(), model.log_prob(x, seed=5).numpy(), rtol=1e-6)
    np.testing.assert_array_equal(loaded.sample(4, seed=1).numpy(), model.sample(4, seed=1).numpy())


def test_bad_inputs_are_named(dataset):
    model = zoo.build_model("vae", dataset)
    x = dataset.test[:4]
    with pytest.raises(TypeError, match="expected uint8.*got dtype float32"):
        model.log_prob(x.astype(np.float32))
    h, w, c = dataset.shape
    with pytest.raises(ValueError, match=rf"expected images of shape \[B, {h}, {w}, {c}\].*got \[4, {h}, {w}\]"):
        model.log_prob(x[..., 0])
    bad = x.copy()
    bad[0, 0, 0, 0] = dataset.levels
    with pytest.raises(ValueError, match=f"outside \\[0, {dataset.levels - 1}\\]"):
        model.log_prob(bad)


def test_bits_per_dim_is_the_one_conversion():
    assert bits_per_dim(-math.log(2) * 784, 784) == pytest.approx(1.0)
    np.testing.assert_allclose(bits_per_dim(np.array([-88.0]), 784), [88.0 / 784 / math.log(2)])


def test_a_fresh_process_loads_a_saved_model_with_zoo_load_model(tmp_path):
    ds = data.load("bars", n_train=8, n_valid=8, n_test=8)
    model = zoo.build_model("gan", ds, hidden=[8], latent_dim=2, jit_compile=False)
    model.save(tmp_path / "g.keras")
    code = ("import sys, zoo; m = zoo.load_model(sys.argv[1]); "
            "print(type(m).__name__, m.sample(3, seed=1).numpy().ravel().tolist())")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "g.keras")], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(zoo.__file__).parent.parent)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "GAN"
    assert out.stdout.strip().endswith(str(model.sample(3, seed=1).numpy().ravel().tolist()))
