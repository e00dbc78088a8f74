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
                                         ("discretized_logistic", 2), ("discretized_gaussian", 17),
                                         ("discretized_gaussian", 2)])
def test_pixel_mean_is_the_mean_of_the_discrete_law(kind, levels):
    """pixel_mean = sum_k k P(k) of the very distribution the decoder scores with, for wide and edge
    parameters too (a discretised logistic piles its tails on the end levels: its mean is not the
    clipped logistic mean -- off by up to 1.5 levels before this was fixed)."""
    from zoo.distributions import num_params, pixel_distribution

    rng = np.random.default_rng(1)
    params = tf.constant(rng.normal(0, 2, (6, 3, 3, 1, num_params(kind, levels))), tf.float32)
    probs = np.stack([np.exp(pixel_distribution(kind, params, levels).distribution.log_prob(
        np.full((6, 3, 3, 1), k, np.float32 if kind.startswith("discretized") else np.int32)).numpy())
        for k in range(levels)], -1)  # [6, 3, 3, 1, L]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(pixel_mean(kind, params, levels).numpy(), probs @ np.arange(levels), atol=2e-4)


# --- the discretised Gaussian ------------------------------------------------------------------
GAUSS = "discretized_gaussian"


def _gauss_params(loc, scale, levels):
    """Raw parameters [N, 1, 1, 1, 2] whose discretised Gaussian has mean level `loc` and `scale` levels."""
    from zoo.distributions import scale_param

    half = (levels - 1) / 2.0
    raw_loc = np.arctanh(np.clip((np.asarray(loc, np.float64) - half) / half, -1 + 1e-7, 1 - 1e-7))
    raw_scale = [scale_param(float(s)) for s in np.broadcast_to(scale, raw_loc.shape)]
    return tf.constant(np.stack([raw_loc, raw_scale], -1)[:, None, None, None, :], tf.float32)


def _all_levels(params, levels):
    """log p(k | params) for every level k: [N, levels] (params [1, N, ...] against x [L, 1, 1, 1, 1])."""
    k = np.arange(levels, dtype=np.uint8).reshape(levels, 1, 1, 1, 1)
    return pixel_log_prob(GAUSS, params[None], k, levels).numpy().T


@pytest.mark.parametrize("levels", [2, 17, 256])
def test_discretized_gaussian_sums_to_one_for_extreme_locations_and_scales(levels):
    """Sharp (0.011 levels) to flat (1000 levels) laws centred anywhere, the end levels too: the masses of
    the L bins sum to 1, every log-mass and its gradient stay finite (a far bin of a sharp law is
    ~ -1e6 nats, not -inf), and a sharp law puts its mass on its own level."""
    loc = np.repeat(np.array([0.0, 0.3, (levels - 1) // 2 + 0.2, levels - 1.3, levels - 1.0]), 4)
    scale = np.tile(np.array([0.011, 0.4, 30.0, 1000.0]), 5)
    params = _gauss_params(loc, scale, levels)
    lp = _all_levels(params, levels)
    assert np.isfinite(lp).all()
    np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, atol=2e-5)
    sharp = scale == 0.011
    np.testing.assert_array_equal(lp[sharp].argmax(-1), np.round(loc[sharp]))
    with tf.GradientTape() as tape:
        tape.watch(params)
        top = np.full((1, 1, 1, 1), levels - 1, np.uint8)  # the open end bin
        total = tf.reduce_sum(pixel_log_prob(GAUSS, params, top, levels))
    assert np.isfinite(tape.gradient(total, params).numpy()).all()


def _brute(loc, scale, levels):
    """log P(k) from scipy in float64: the Normal's mass of [k - 1/2, k + 1/2] (end bins open), as cdf
    differences on the left of the mean and survival differences on the right (no cancellation)."""
    from scipy.stats import norm

    k = np.arange(levels, dtype=np.float64)
    lo = np.where(k == 0, -np.inf, k - 0.5)
    hi = np.where(k == levels - 1, np.inf, k + 0.5)
    with np.errstate(divide="ignore"):  # a mass that underflows float64: -inf, left out by the caller
        left = np.log(norm.cdf(hi, loc, scale) - norm.cdf(lo, loc, scale))
        right = np.log(norm.sf(lo, loc, scale) - norm.sf(hi, loc, scale))
    return np.where(k < loc, left, right)


@pytest.mark.parametrize("levels", [2, 17])
def test_discretized_gaussian_agrees_with_scipy(levels):
    """Every level's log-mass equals the float64 scipy computation, wherever scipy's is representable."""
    rng = np.random.default_rng(3)
    loc = rng.uniform(0, levels - 1, 12)
    scale = np.exp(rng.uniform(np.log(0.2), np.log(20.0), 12))
    got = _all_levels(_gauss_params(loc, scale, levels), levels)
    half = (levels - 1) / 2.0
    loc32 = half + half * np.tanh(np.arctanh((loc - half) / half).astype(np.float32).astype(np.float64))
    want = np.stack([_brute(m, s, levels) for m, s in zip(loc32, scale)])
    ok = want > -80  # float64's own masses: beyond, scipy's differences underflow
    assert ok.mean() > 0.8
    np.testing.assert_allclose(got[ok], want[ok], rtol=1e-4, atol=1e-4)


def test_discretized_gaussian_samples_average_to_pixel_mean():
    """The mean of 20000 draws is pixel_mean's exact sum over levels, within 4 standard errors (the
    law's own variance), for laws inside the range and piled on an end level."""
    from zoo.distributions import pixel_sample

    levels = 17
    params = _gauss_params([0.2, 5.5, 8.0, 15.7, 16.0], [3.0, 0.3, 5.0, 2.0, 40.0], levels)
    draws = pixel_sample(GAUSS, tf.broadcast_to(params, [20000, *params.shape]), levels,
                         tf.constant([7, 0], tf.int32)).numpy().reshape(20000, -1)  # [draws, 5]
    assert draws.min() >= 0 and draws.max() <= levels - 1
    probs = np.exp(_all_levels(params, levels))  # [5, L]
    mean = pixel_mean(GAUSS, params, levels).numpy().ravel()
    np.testing.assert_allclose(mean, probs @ np.arange(levels), atol=1e-4)
    sd = np.sqrt(probs @ np.arange(levels) ** 2 - mean ** 2)
    assert np.all(np.abs(draws.mean(0) - mean) < 4 * sd / np.sqrt(20000) + 1e-3)


def test_a_fixed_scale_is_the_raw_parameter_it_names():
    """scale_param(sigma) gives scale sigma exactly; a scale at or below the floor is refused by name."""
    from zoo.distributions import MIN_SCALE, _loc_scale, scale_param

    for sigma in (0.05, 1.0, 7.5, 300.0):
        params = tf.constant([[0.0, scale_param(sigma)]])
        np.testing.assert_allclose(_loc_scale(params, 17)[1].numpy(), sigma, rtol=1e-5)
    for bad in (MIN_SCALE, 0.0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ValueError, match="fixed pixel scale"):
            scale_param(bad)
