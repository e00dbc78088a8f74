"""zoo.demos.latents: the posterior means mu(x) of labelled images, prior draws on top, and the holes
measure P_{z~p}[q(z) < c p(z)] of the aggregate posterior q(z) = (1/N) sum_n q(z|x_n), on cases with
known answers."""
import math

import numpy as np
import pytest
from support import Fake

import zoo
from zoo.demos import latents

M = 20_000  # prior draws: the Monte Carlo standard error of a share is at most 0.0035


def _prior(seed=0, m=M):
    return np.random.default_rng(seed).standard_normal((m, 2)).astype(np.float32)


def _codes(n, mu, sigma):
    return np.full((n, 2), mu, np.float32), np.full((n, 2), sigma, np.float32)


def test_codes_that_are_the_prior_leave_no_holes():
    """q(z|x) = p(z) for every x: q = p, so q(z) / p(z) = 1 at every draw and KL(p || q) = 0."""
    got = latents.holes(_prior(), *_codes(50, 0.0, 1.0))
    assert got["holes"] == 0.0 and got["holes_se"] == 0.0
    assert abs(got["kl_prior_aggregate"]) < 1e-5
    np.testing.assert_allclose(got["log_ratio"], 0.0, atol=1e-5)


@pytest.mark.parametrize("s, ratio", [(0.5, 0.1), (0.3, 0.1), (0.5, 0.5)])
def test_a_narrow_gaussian_code_has_the_holes_of_its_closed_form(s, ratio):
    """q = N(0, s^2 I) in 2-D: q(z) < c p(z) exactly where |z|^2 > r^2 = 2 log(1/(c s^2)) / (1/s^2 - 1),
    which a 2-D standard normal exceeds with probability exp(-r^2 / 2); and KL(p || q) =
    2 (log s + 1 / (2 s^2) - 1/2)."""
    r2 = 2 * math.log(1 / (ratio * s ** 2)) / (1 / s ** 2 - 1)
    got = latents.holes(_prior(), *_codes(3, 0.0, s), ratio=ratio)
    exact = math.exp(-r2 / 2)
    assert abs(got["holes"] - exact) < 4 * math.sqrt(exact * (1 - exact) / M), (got["holes"], exact)
    assert got["holes_se"] == pytest.approx(math.sqrt(got["holes"] * (1 - got["holes"]) / M))
    assert got["kl_prior_aggregate"] == pytest.approx(2 * (math.log(s) + 0.5 / s ** 2 - 0.5), rel=0.02)


def test_codes_crowded_in_a_corner_leave_the_prior_in_holes():
    """mu(x) = (3, 3), sigma = 0.1 for every x: KL(N(0, I) || N(m, s^2 I)) = sum over the 2 dimensions
    of log s + (1 + m^2) / (2 s^2) - 1/2 = 994.39 nats, and nearly every prior draw is in a hole."""
    got = latents.holes(_prior(), *_codes(10, 3.0, 0.1))
    assert got["holes"] > 0.995
    kl = 2 * (math.log(0.1) + (1 + 9) / (2 * 0.01) - 0.5)
    assert got["kl_prior_aggregate"] == pytest.approx(kl, rel=0.03)


def test_the_aggregate_posterior_is_the_mixture_of_the_codes():
    mu = np.array([[0.0, 0.0], [2.0, -1.0]], np.float32)
    sigma = np.array([[1.0, 0.5], [0.3, 2.0]], np.float32)
    z = np.array([[0.5, 0.5], [2.0, -1.0], [-3.0, 4.0]], np.float32)

    def normal(z, m, s):  # log N(z; m, diag s^2)
        return np.sum(-0.5 * ((z - m) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi), -1)

    expected = np.log(0.5 * np.exp(normal(z, mu[0], sigma[0])) + 0.5 * np.exp(normal(z, mu[1], sigma[1])))
    np.testing.assert_allclose(latents.aggregate_log_density(z, mu, sigma), expected, rtol=1e-5)
    np.testing.assert_allclose(latents.prior_log_density(z), normal(z, 0.0, 1.0), rtol=1e-6)


def _prior_encoder(bars):
    """A VAE whose encoder ignores x and outputs q(z|x) = N(0, I): mu = 0, softplus(s) + 1e-4 = 1."""
    model = zoo.build_model("vae", bars, latent_dim=2, width=8, depth=1, jit_compile=False)
    out = model.encoder.get_layer("out")
    s = math.log(math.expm1(1 - 1e-4))
    out.kernel.assign(np.zeros(out.kernel.shape, np.float32))
    out.bias.assign(np.array([0.0, 0.0, s, s], np.float32))
    return model


def test_latent_map_of_an_encoder_that_maps_everything_to_the_prior(bars):
    x, y = bars.test[:300], bars.labels["test"][:300]
    got = latents.latent_map(_prior_encoder(bars), x, y, n_prior=500, seed=4)
    codes, prior = got["codes"], got["prior"]
    assert list(codes.columns) == ["z1", "z2", "sigma1", "sigma2", "label"] and len(codes) == 300
    np.testing.assert_array_equal(codes["label"], y)
    np.testing.assert_allclose(codes[["z1", "z2"]], 0.0, atol=1e-6)
    np.testing.assert_allclose(codes[["sigma1", "sigma2"]], 1.0, rtol=1e-5)
    assert len(prior) == 500 and got["holes"] == 0.0 and not prior["hole"].any()
    assert abs(got["kl_prior_aggregate"]) < 1e-4
    again = latents.latent_map(_prior_encoder(bars), x, n_prior=500, seed=4)
    np.testing.assert_array_equal(again["prior"][["z1", "z2"]], prior[["z1", "z2"]])  # the seed fixes z
    assert (again["codes"]["label"] == -1).all()


def test_an_autoencoder_leaves_more_holes_than_a_vae(bars):
    """Trained alike on the bars, beta = 0 shrinks sigma and scatters mu(x) at will: prior draws fall
    between its codes; the beta = 1 model's codes fill the prior."""
    got = {}
    for beta in (0.0, 1.0):
        model = zoo.build_model("vae", bars, kl_weight=beta, latent_dim=2, width=32, depth=1, seed=0,
                                learning_rate=3e-3, jit_compile=False)
        model.fit(bars.tf_dataset("train", 100, seed=0), epochs=4, verbose=0)
        got[beta] = latents.latent_map(model, bars.test[:1000], n_prior=2000)["holes"]
    assert got[0.0] > 0.9 and got[1.0] < 0.5, got


def test_bad_models_and_labels_are_refused_by_name(bars):
    one_d = zoo.build_model("vae", bars, latent_dim=1, width=8, depth=1)
    with pytest.raises(ValueError, match="1-D latent.*latent_dim: 2"):
        latents.latent_map(one_d, bars.test[:10])
    with pytest.raises(ValueError, match="no Gaussian encoder.*VAE or IWAE"):
        latents.latent_map(zoo.build_model("pixelcnn", Fake((4, 4, 1), 2), width=4, depth=1), bars.test[:10])
    with pytest.raises(ValueError, match="3 labels for 10 images"):
        latents.latent_map(_prior_encoder(bars), bars.test[:10], [0, 1, 2])
    with pytest.raises(ValueError, match=r"ratio must be in \(0, 1\]"):
        latents.holes(_prior(m=5), *_codes(2, 0.0, 1.0), ratio=0.0)
