"""zoo.demos.posterior: p(x) as the area under p(x|z) p(z) by quadrature, p(z|x) and the ELBO's gap, on
cases with known answers: a decoder with zero weights (p(x|z) = 2^-16 whatever z), the total mass
over all 2^16 bars images, a large-k importance-sampling estimate, and log p(x) = ELBO + KL."""
import math

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.support import Fake, bars_vae, zero_decoder
from zoo.data import all_binary_images
from zoo.demos import posterior as P
from zoo.distributions import gaussian

LOG_HALF_16 = -16 * math.log(2.0)


def flat_vae(latent_dim, q_is_prior=False):
    """A bars VAE whose decoder has zero weights: p(x|z) = 2^-16 for every x and z, so p(x) = 2^-16,
    p(z|x) = p(z). With `q_is_prior`, q(z|x) = N(0, I) too (encoder weights zero, the sigma bias at
    softplus^-1(1 - 1e-4)); otherwise the encoder keeps its random weights."""
    model = zero_decoder(zoo.build_model("vae", Fake((4, 4, 1), 2), latent_dim=latent_dim, width=16, depth=1,
                                         seed=0))
    if q_is_prior:
        for w in model.encoder.weights:
            w.assign(tf.zeros_like(w))
        s0 = math.log(math.expm1(1.0 - 1e-4))
        model.encoder.get_layer("out").bias.assign([0.0] * latent_dim + [s0] * latent_dim)
    return model


class Narrow:
    """A 1-D latent "model" whose likelihood is Gaussian in z: p(x|z) = N(c; z, s^2). Then
    p(x) = N(c; 0, 1 + s^2) and p(z|x) = N(c / (1 + s^2), s^2 / (1 + s^2)) in closed form; its
    q(z|x) = N(m, t^2). With s = 0.003 the posterior is far narrower than a grid over the prior."""

    has_decoder, name = True, "narrow"

    def __init__(self, c=2.5, s=0.003, m=2.49, t=0.004):
        self.c, self.s, self.m, self.t = c, s, m, t
        self.prior = gaussian(tf.zeros([1]), tf.ones([1]))

    def check_input(self, x):
        return x

    def offers(self, method):
        return method in ("encode", "log_px_given_z", "prior")

    def log_px_given_z(self, z, x):  # [n, B, 1] -> [n, B]
        u = (self.c - np.asarray(z)[..., 0]) / self.s
        return -0.5 * u ** 2 - math.log(self.s * math.sqrt(2 * math.pi))

    def encode(self, x):
        return np.full((len(x), 1), self.m), np.full((len(x), 1), self.t)

    def exact(self):
        """(log p(x), KL(q || p(z|x))) in closed form."""
        v = 1 + self.s ** 2
        log_px = -0.5 * self.c ** 2 / v - 0.5 * math.log(2 * math.pi * v)
        mu, sd = self.c / v, self.s / math.sqrt(v)
        kl = math.log(sd / self.t) + (self.t ** 2 + (self.m - mu) ** 2) / (2 * sd ** 2) - 0.5
        return log_px, kl


def test_a_narrow_posterior_far_out_gets_a_fine_grid():
    model, x = Narrow(), np.zeros((1, 1, 1, 1), np.uint8)
    log_px, kl = model.exact()
    post = P.posterior(model, x)
    assert post.grid.axes[0][-1] - post.grid.axes[0][0] < 0.2  # refined: around the posterior and q
    assert post.log_px[0] == pytest.approx(log_px, abs=1e-5) and post.kl[0] == pytest.approx(kl, rel=1e-5)
    assert post.quad_error[0] < 1e-6 and post.edge_mass[0] < 1e-9
    coarse = P.posterior(model, x, refine=False)  # spacing 0.006 over the prior: 2 s, too coarse
    assert abs(coarse.kl[0] - kl) > 100 * abs(post.kl[0] - kl)


@pytest.fixture(scope="module")
def vae1(bars):
    return bars_vae(bars, 1)


@pytest.mark.parametrize("latent_dim", [1, 2])
def test_a_flat_decoder_gives_the_known_evidence_posterior_and_kl(latent_dim, bars):
    model = flat_vae(latent_dim)
    x = bars.test[:12]
    post = P.posterior(model, x)
    np.testing.assert_allclose(post.log_px, LOG_HALF_16, atol=1e-6)  # p(x) = p(x|z) exactly
    np.testing.assert_allclose(post.log_post, np.broadcast_to(post.log_prior[:, None], post.log_post.shape),
                               atol=1e-5)  # the posterior is the prior
    mu, sigma = post.mu, post.sigma  # KL(q || p(z|x)) = KL(q || N(0, I)) in closed form
    kl_prior = (0.5 * (mu ** 2 + sigma ** 2 - 1.0) - np.log(sigma)).sum(-1)
    assert kl_prior.mean() > 0.1  # the random encoder's q is not the prior: a KL worth checking
    np.testing.assert_allclose(post.kl, kl_prior, atol=1e-5)
    np.testing.assert_allclose(post.elbo, LOG_HALF_16 - kl_prior, atol=1e-5)


def test_the_area_sums_to_one_over_every_bars_image(vae1):
    """sum_x exp(quadrature log p(x)) over all 2^16 images: p(x|z_g) of every x from the decoder's
    Bernoulli logits at each grid point, computed once (a matrix product per chunk of images)."""
    grid = P.latent_grid(vae1, points=801)  # the prior's range
    logits = tf.reshape(vae1.decoder(grid.z.astype(np.float32)), [len(grid.z), 16]).numpy().astype(np.float64)
    on, off = -np.logaddexp(0, -logits), -np.logaddexp(0, logits)  # log sigmoid(+-l) [G, 16]
    images = all_binary_images(4, 4)
    x = images.reshape(len(images), 16).astype(np.float64)
    check = P.log_likelihood_grid(vae1, grid, images[:7])  # the contract's log p(x|z), 7 images
    np.testing.assert_allclose((x[:7] @ on.T + (1 - x[:7]) @ off.T).T, check, atol=2e-4)
    mass = sum(np.exp(P.evidence(grid, (xb @ on.T + (1 - xb) @ off.T).T)).sum()
               for xb in np.array_split(x, 16))
    assert mass == pytest.approx(1.0, abs=1e-4)


def test_quadrature_matches_a_large_k_importance_estimate(vae1, bars):
    x = bars.test[:100]
    post = P.posterior(vae1, x)
    assert post.quad_error.max() < 1e-6 and post.edge_mass.max() < 1e-6
    np.testing.assert_allclose(P.posterior(vae1, x, refine=False).log_px, post.log_px, atol=1e-6)
    is_5000 = vae1.log_prob_is(x, 5000, seed=1).numpy()
    diff = post.log_px - is_5000
    assert abs(diff.mean()) < 0.01  # IS is unbiased for p(x): its log is low by ~var/2 only
    assert np.median(np.abs(diff)) < 0.03


def test_log_px_is_the_elbo_plus_the_kl_to_the_true_posterior(vae1, bars):
    x = bars.test[:100]
    post = P.posterior(vae1, x)
    np.testing.assert_allclose(post.log_px - post.elbo, post.kl, atol=1e-8)
    assert post.kl.min() > 0 and post.kl.mean() > 1e-3  # a Gaussian q misses the true posterior a little
    # the model's own ELBO, -(distortion + rate): its analytic rate, and E_q log p(x|z) by Gauss-Hermite
    nodes, weights = np.polynomial.hermite.hermgauss(60)
    z = post.mu[None] + math.sqrt(2) * post.sigma[None] * nodes[:, None, None]  # [60, B, 1]
    log_lik = vae1.log_px_given_z(z.astype(np.float32), x).numpy()  # [60, B]
    distortion = -(weights[:, None] * log_lik).sum(0) / math.sqrt(math.pi)
    rate = vae1.nll_terms(x, seed=0)["rate"].numpy()
    np.testing.assert_allclose(post.elbo, -(distortion + rate), atol=1e-3)


def test_the_two_dimensional_case(bars):
    model = bars_vae(bars, 2, epochs=3)
    x = bars.test[:30]
    post = P.posterior(model, x, points=81)
    assert post.grid.z.shape == (81 * 81, 2) and post.log_post.shape == (81 * 81, 30)
    assert post.quad_error.max() < 1e-3
    np.testing.assert_allclose(post.log_px - post.elbo, post.kl, atol=1e-8)
    assert post.kl.min() > 0
    diff = post.log_px - model.log_prob_is(x, 5000, seed=1).numpy()
    assert abs(diff.mean()) < 0.02
    frame = P.curves(post, 3)
    assert list(frame.columns) == ["z1", "z2", "p(x|z)p(z)", "p(z|x)", "q(z|x)", "p(z)"]
    cell = math.exp(post.grid.log_dv)
    assert frame["p(z|x)"].sum() * cell == pytest.approx(1.0, abs=1e-9)
    assert frame["q(z|x)"].sum() * cell == pytest.approx(1.0, abs=1e-9)
    assert frame["p(x|z)p(z)"].sum() * cell == pytest.approx(math.exp(post.log_px[3]), rel=1e-9)


def test_the_curves_of_a_one_dimensional_latent(vae1, bars):
    post = P.posterior(vae1, bars.test[:2], points=401, refine=False)  # over the prior's range
    frame = P.curves(post, 1)
    assert list(frame.columns) == ["z", "p(x|z)p(z)", "p(z|x)", "q(z|x)", "p(z)"] and len(frame) == 401
    assert np.all(np.diff(frame["z"]) > 0)
    assert frame["p(z)"].sum() * math.exp(post.grid.log_dv) == pytest.approx(1.0, abs=1e-6)
    fine = P.curves(P.posterior(vae1, bars.test[1:2], points=401), 0)  # maybe refined: around p(z|x), q
    assert fine["z"].min() >= frame["z"].min() - 1 and fine["z"].max() <= frame["z"].max() + 1
    cell = fine["z"].iloc[1] - fine["z"].iloc[0]
    assert fine["p(z|x)"].sum() * cell == pytest.approx(1.0, abs=1e-9)


def test_models_it_cannot_integrate_say_why(bars):
    with pytest.raises(ValueError, match="latent_dim 1 or 2"):
        P.posterior(zoo.build_model("vae", bars, latent_dim=3, width=8, depth=1), bars.test[:2])
    with pytest.raises(ValueError, match="has no latent decoder"):
        P.posterior(zoo.build_model("pixelcnn", bars, width=4, depth=1), bars.test[:2])
    with pytest.raises(ValueError, match="at least 8 points"):
        P.latent_grid(flat_vae(1), points=3)
