"""zoo.demos.gradients: the reparameterised, score-function and baselined estimators of the ELBO's
gradient over the encoder's weights agree in expectation (with each other, and with the exact
gradient -grad KL when the decoder has zero weights), and the score function's variance is larger."""
import types

import keras
import numpy as np
import pytest

import zoo
from tests.support import bars_vae, zero_decoder
from zoo.demos import gradients as G

REP, SF, BASE = G.ESTIMATORS


def _z(mean, reference, se2):
    """Per-weight standardised differences, over the weights whose standard error is not zero."""
    keep = se2 > 1e-20
    return (mean - reference)[keep] / np.sqrt(se2[keep])


@pytest.fixture(scope="module")
def untrained(bars):
    keras.utils.set_random_seed(0)
    return zero_decoder(zoo.build_model("vae", bars, latent_dim=2, width=16, depth=1, seed=0))


@pytest.fixture(scope="module")
def trained(bars):
    return bars_vae(bars, 1, epochs=5, width=32)


def test_zero_decoder_every_estimator_is_unbiased_for_minus_grad_kl(untrained, bars):
    x, s = bars.test[:3], 4000
    exact = G.kl_gradient(untrained, x)
    assert np.linalg.norm(exact) > 0.5  # a gradient worth estimating (the encoder's q is not the prior)
    stats = G.encoder_gradients(untrained, x, samples=s, form="mc", seed=1)
    for name in G.ESTIMATORS:
        z = _z(stats.mean[name], exact, stats.variance[name] / s)
        assert np.abs(z).max() < 5, name  # within 5 standard errors, every weight
        assert np.mean(z ** 2) < 3, name
    var = stats.table.set_index("estimator")["total_variance"]
    assert var[SF] > 100 * var[REP] and var[SF] > 10 * var[BASE]  # measured: 5253, 9.0, 89.8


def test_zero_decoder_analytic_form_reparameterised_and_baselined_are_exact(untrained, bars):
    """With the analytic KL and a constant log p(x|z), the reparameterised gradient of log p(x|z) is 0
    and the leave-one-out baseline cancels the constant signal: both return -grad KL with no variance;
    the plain score function multiplies grad log q by the constant log p(x|z) = 16 log(1/2)."""
    x, s = bars.test[:3], 500
    exact = G.kl_gradient(untrained, x)
    stats = G.encoder_gradients(untrained, x, samples=s, form="analytic")
    for name in (REP, BASE):
        np.testing.assert_allclose(stats.mean[name], exact, atol=1e-5)
        assert stats.table.set_index("estimator").loc[name, "total_variance"] < 1e-10
    assert stats.table.set_index("estimator").loc[SF, "total_variance"] > 100
    assert np.abs(_z(stats.mean[SF], exact, stats.variance[SF] / s)).max() < 5


def test_trained_model_estimators_agree_and_the_score_function_varies_more(trained, bars):
    x = bars.test[:4]
    reference = G.encoder_gradients(trained, x, samples=4000, form="mc", seed=2)  # independent draws
    ref_mean, ref_se2 = reference.mean[REP], reference.variance[REP] / 4000
    stats = G.encoder_gradients(trained, x, samples=2000, form="mc", seed=3)
    for name in G.ESTIMATORS:
        z = _z(stats.mean[name], ref_mean, stats.variance[name] / 2000 + ref_se2)
        assert np.abs(z).max() < 5, name
    t = stats.table.set_index("estimator")
    assert set(t["S"]) == {2000} and set(t["examples"]) == {4} and set(t["form"]) == {"mc"}
    assert set(t["weights"]) == {sum(int(np.prod(w.shape)) for w in trained.encoder.trainable_weights)}
    np.testing.assert_allclose(t["total_variance"], [stats.variance[n].sum() for n in t.index])
    np.testing.assert_allclose(t["mean_norm"], [np.linalg.norm(stats.mean[n]) for n in t.index])
    signal = np.clip(t["mean_norm"] ** 2 - t["total_variance"] / 2000, 0, None)  # |E g|^2, noise removed
    np.testing.assert_allclose(t["snr"], np.sqrt(signal / t["total_variance"]))
    np.testing.assert_allclose(t["mean_se"], np.sqrt(t["total_variance"] / 2000))
    assert t.loc[SF, "total_variance"] > 10 * t.loc[REP, "total_variance"]  # measured: about 48x
    assert t.loc[BASE, "total_variance"] < t.loc[SF, "total_variance"] / 10  # the baseline's gain


def test_one_draw_variance_matches_independent_batches(trained, bars):
    """The J^T Cov(v) J shortcut is the variance of a one-draw gradient: the spread of means of
    independent 50-draw estimates over 100 seeds is total_variance / 50 (within sampling error)."""
    x, b = bars.test[:2], 2
    mu, sigma, jac = G.encoder_jacobian(trained, x)
    means = np.stack([G.draw_gradients(trained, x, mu, sigma, 50, seed=seed)[REP].reshape(50, -1).mean(0) / b
                      for seed in range(100)]) @ jac  # [100, P]: 100 independent 50-draw means
    spread = means.var(0, ddof=1).sum()
    one_draw = G.encoder_gradients(trained, x, samples=4000, seed=999).table.iloc[0]["total_variance"]
    assert 0.7 < spread / (one_draw / 50) < 1.4


def test_bad_input_is_one_clear_error(trained, bars):
    with pytest.raises(ValueError, match="samples must be >= 2"):
        G.encoder_gradients(trained, bars.test[:1], samples=1)
    with pytest.raises(ValueError, match="form must be one of"):
        G.encoder_gradients(trained, bars.test[:1], form="exact")
    with pytest.raises(ValueError, match="needs? a VAE or IWAE"):
        G.encoder_gradients(types.SimpleNamespace(offers=lambda method: False), bars.test[:1])
    with pytest.raises(ValueError, match="fewer examples"):
        G.encoder_jacobian(trained, np.repeat(bars.test, 20, 0))
