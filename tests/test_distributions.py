"""zoo.distributions: the per-pixel laws every decoder shares."""
import numpy as np
import pytest
import tensorflow as tf

from zoo.distributions import pixel_log_prob, pixel_mean


@pytest.mark.parametrize("levels", [2, 17])
def test_discretized_logistic_centres_on_every_level_and_sums_to_one(levels):
    """A sharp logistic whose mean is level k puts almost all its mass on k, for k = 0 .. L-1 alike
    (the end levels too), and its pixel_mean is k."""
    half = (levels - 1) / 2.0
    k = np.arange(levels, dtype=np.float32)
    raw = np.arctanh(np.clip((k - half) / half, -1 + 1e-6, 1 - 1e-6))  # tanh^-1 of the wanted mean
    params = np.stack([raw, np.full(levels, -6.0, np.float32)], -1)  # [L, 2]: a mean per level, sharp
    params = tf.constant(params[:, None, None, None, :])  # [L, 1, 1, 1, 2]
    x = np.arange(levels, dtype=np.uint8)
    pixel = [pixel_log_prob("discretized_logistic", params, np.full((1, 1, 1, 1), v, np.uint8), levels)
             for v in x]
    probs = np.exp(np.stack([p.numpy().reshape(-1) for p in pixel], -1))  # [mean level, x]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(-1), x)
    assert probs[np.arange(levels), x].min() > 0.9
    np.testing.assert_allclose(pixel_mean("discretized_logistic", params, levels).numpy().ravel(), k,
                               atol=1e-3)


@pytest.mark.parametrize("kind,levels", [("bernoulli", 2), ("categorical", 17), ("categorical", 2)])
def test_fused_pixel_log_prob_equals_the_tfp_distribution(kind, levels):
    """pixel_log_prob's fused cross-entropy path gives TFP's log_prob, with x broadcast over extra
    leading (draw) axes of the parameters as the IWAE uses it."""
    from zoo.distributions import num_params, pixel_distribution

    rng = np.random.default_rng(0)
    params = tf.constant(rng.normal(0, 3, (3, 4, 5, 6, 2, num_params(kind, levels))), tf.float32)
    x = rng.integers(0, levels, (4, 5, 6, 2)).astype(np.uint8)  # [B, H, W, C]: broadcasts over 3 draws
    got = pixel_log_prob(kind, params, x, levels).numpy()  # [3, 4]
    tiled = np.broadcast_to(x, (3, *x.shape)).astype(np.int32)
    want = pixel_distribution(kind, params, levels).log_prob(tiled).numpy()
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert got.max() < 0


def test_latent_gaussian_equals_multivariate_normal_diag():
    """zoo.distributions.gaussian: the log-density and KL of TFP's MultivariateNormalDiag."""
    import tensorflow_probability as tfp

    from zoo.distributions import gaussian

    tfd = tfp.distributions
    rng = np.random.default_rng(1)
    mu, sigma = rng.normal(size=(5, 3)).astype(np.float32), rng.uniform(0.2, 2, (5, 3)).astype(np.float32)
    z = rng.normal(size=(7, 5, 3)).astype(np.float32)
    q, mvn = gaussian(mu, sigma), tfd.MultivariateNormalDiag(mu, sigma)
    prior, mvn_prior = gaussian(tf.zeros(3), tf.ones(3)), tfd.MultivariateNormalDiag(tf.zeros(3), tf.ones(3))
    np.testing.assert_allclose(q.log_prob(z).numpy(), mvn.log_prob(z).numpy(), rtol=1e-5)
    kl = tfd.kl_divergence(q, prior).numpy()  # [5]
    np.testing.assert_allclose(kl, tfd.kl_divergence(mvn, mvn_prior).numpy(), rtol=1e-5)
    closed = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * np.log(sigma)).sum(-1)
    np.testing.assert_allclose(kl, closed, rtol=1e-5)


@pytest.mark.parametrize("kind,levels", [("bernoulli", 2), ("categorical", 17), ("discretized_logistic", 17),
                                         ("discretized_logistic", 2)])
def test_pixel_mean_is_the_mean_of_the_discrete_law(kind, levels):
    """pixel_mean = sum_k k P(k) of the very distribution the decoder scores with, for wide and edge
    parameters too (a discretised logistic piles its tails on the end levels: its mean is not the
    clipped logistic mean -- off by up to 1.5 levels before this was fixed)."""
    from zoo.distributions import num_params, pixel_distribution

    rng = np.random.default_rng(1)
    params = tf.constant(rng.normal(0, 2, (6, 3, 3, 1, num_params(kind, levels))), tf.float32)
    probs = np.stack([np.exp(pixel_distribution(kind, params, levels).distribution.log_prob(
        np.full((6, 3, 3, 1), k, np.float32 if kind == "discretized_logistic" else np.int32)).numpy())
        for k in range(levels)], -1)  # [6, 3, 3, 1, L]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pixel_mean(kind, params, levels).numpy(), probs @ np.arange(levels), atol=2e-4)
