"""zoo.demos.decoders: a latent model's decoder draws x ~ p(x|z) beside its means E[x|z] for the same
z; the pixels' exact laws, means, variances and entropy on cases with known answers."""
import math

import numpy as np
import pytest
from support import Fake, zero_decoder

import zoo
from zoo.demos import decoders

N_DRAWS = 4000
SMALL = dict(latent_dim=2, width=16, depth=1, seed=0, jit_compile=False)


def _z(n=12, d=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("kind, p", [("bernoulli", 1), ("categorical", 17), ("discretized_logistic", 2)])
def test_each_pixel_law_sums_to_one(kind, p):
    levels = 2 if kind == "bernoulli" else 17
    params = np.random.default_rng(1).normal(0, 3, (5, 4, 4, 1, p)).astype(np.float32)
    pmf = decoders.pixel_pmf(kind, params, levels).numpy()
    assert pmf.shape == (5, 4, 4, 1, levels) and pmf.min() >= 0
    np.testing.assert_allclose(pmf.sum(-1), 1.0, rtol=1e-5)


def test_a_decoder_that_ignores_z_has_the_moments_of_a_uniform_pixel(bars, digits):
    """Logits 0: binary pixels have mean 1/2, variance 1/4 and entropy log 2 each (16 log 2 nats an
    image); 17-level pixels are uniform: mean 8, variance (17^2 - 1) / 12 = 24, entropy log 17."""
    got = decoders.decoder_moments(zero_decoder(zoo.build_model("vae", bars, **SMALL)), _z())
    np.testing.assert_allclose(got["mean"], 0.5, rtol=1e-6)
    np.testing.assert_allclose(got["var"], 0.25, rtol=1e-6)
    np.testing.assert_allclose(got["entropy"], 16 * math.log(2), rtol=1e-5)
    got = decoders.decoder_moments(zero_decoder(zoo.build_model("vae", digits, **SMALL)), _z())
    np.testing.assert_allclose(got["mean"], 8.0, rtol=1e-5)
    np.testing.assert_allclose(got["var"], 24.0, rtol=1e-4)
    np.testing.assert_allclose(got["entropy"], 64 * math.log(17), rtol=1e-5)


@pytest.mark.parametrize("data, kind", [("bars", "bernoulli"), ("digits", "categorical"),
                                        ("digits", "discretized_logistic")])
def test_the_mean_of_many_draws_is_the_decoders_mean(data, kind, request):
    """Per pixel, the average of 4000 draws x ~ p(x|z) is E[x|z] within 5 Monte Carlo standard errors
    (sqrt(Var[x_j|z] / 4000), from the exact law); draws are integers in [0, levels - 1]."""
    dataset = request.getfixturevalue(data)
    model = zoo.build_model("vae", dataset, decoder=kind, **SMALL)
    model.decoder.get_layer("out").bias.assign(  # spread the pixels' laws: not all near uniform
        np.random.default_rng(2).normal(0, 2, model.decoder.get_layer("out").bias.shape).astype(np.float32))
    z = _z(6)
    moments = decoders.decoder_moments(model, z)
    draws = decoders.decoder_draws(model, z, N_DRAWS, seed=3)
    assert draws.shape == (N_DRAWS, 6, *dataset.shape) and draws.dtype == np.int32
    assert draws.min() >= 0 and draws.max() <= dataset.levels - 1
    assert len(np.unique(draws)) == dataset.levels  # every level is drawn somewhere
    se = np.sqrt(moments["var"] / N_DRAWS)
    assert np.all(np.abs(draws.mean(0) - moments["mean"]) <= 5 * se + 1e-6)
    np.testing.assert_allclose(draws.var(0), moments["var"], rtol=0.25, atol=0.02)
    if kind != "discretized_logistic":  # the model's own decode(z) = E[x|z] (see the report on the third)
        np.testing.assert_allclose(moments["mean"], np.asarray(model.decode(z)), rtol=1e-5, atol=1e-5)


def test_pixels_are_independent_given_z(digits):
    """Given z, the covariance of two pixels over draws is 0 (within Monte Carlo error): the speckle."""
    model = zoo.build_model("vae", digits, **SMALL)
    draws = decoders.decoder_draws(model, _z(1), N_DRAWS, seed=5)[:, 0].reshape(N_DRAWS, -1).astype(float)
    a, b = draws[:, 27], draws[:, 28]  # two neighbouring pixels
    corr = np.corrcoef(a, b)[0, 1]
    assert abs(corr) < 4 / math.sqrt(N_DRAWS)


def test_draws_beside_means_share_their_z(bars):
    model = zoo.build_model("vae", bars, **SMALL)
    got = decoders.draws_beside_means(model, n_z=8, n_draws=3, seed=7)
    assert got["z"].shape == (8, 2) and got["mean"].shape == (8, 4, 4, 1)
    assert got["draws"].shape == (3, 8, 4, 4, 1)
    np.testing.assert_allclose(got["mean"], decoders.decoder_moments(model, got["z"])["mean"], rtol=1e-6)
    np.testing.assert_array_equal(got["draws"], decoders.decoder_draws(model, got["z"], 3, seed=7))
    again = decoders.draws_beside_means(model, n_z=8, n_draws=3, seed=7)
    np.testing.assert_array_equal(again["draws"], got["draws"])
    assert got["entropy"].shape == (8,) and np.all(got["entropy"] > 0)


@pytest.mark.parametrize("name, hp", [("pixelcnn", {"width": 4, "depth": 1}), ("flow", {"network": "mlp"})])
def test_models_without_a_factorised_decoder_are_refused(name, hp):
    model = zoo.build_model(name, Fake((4, 4, 1), 2), **hp)
    with pytest.raises(ValueError, match="no factorised pixel decoder.*VAE or IWAE"):
        decoders.draws_beside_means(model)
