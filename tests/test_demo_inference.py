"""zoo.demos.inference: the approximation and amortisation gaps (Cremer et al. 2018) on known answers:
a zero decoder (q* = the prior, no approximation gap, amortisation gap = KL(q_phi || p(z))), and a
trained 1-D bars VAE whose exact log p(x) is a quadrature over z."""
import types

import keras
import numpy as np
import pytest
from scipy.special import logsumexp
from support import bars_vae, mean_bound, zero_decoder

import zoo
from zoo.demos import inference as I

COLUMNS = ["example", "log_px_is", "elbo_q_star", "elbo_q_phi", "approximation_gap", "amortisation_gap",
           "kl_q_phi"]


@pytest.fixture(scope="module")
def zero(bars):
    """p(x|z) = 2^-16 for every z: p(x) = p(x|z), p(z|x) = p(z)."""
    keras.utils.set_random_seed(0)
    return zero_decoder(zoo.build_model("vae", bars, latent_dim=2, width=16, depth=1, seed=0))


@pytest.fixture(scope="module")
def trained(bars):
    return bars_vae(bars, 1, epochs=5, width=32)


def quadrature_log_px(model, x, n=20001, half_width=10.0):
    """log p(x) = log int p(x|z) p(z) dz on a grid of a 1-D latent, `[B]` (the exact known answer)."""
    z = np.linspace(-half_width, half_width, n, dtype=np.float32)
    grid = [np.broadcast_to(c[:, None, None], (len(c), len(x), 1)) for c in np.array_split(z, 10)]
    lp = np.concatenate([model.log_px_given_z(g, x).numpy() for g in grid])  # [n, B]
    lp = lp.astype(np.float64) + model.prior.log_prob(z[:, None, None]).numpy()
    return logsumexp(lp, 0) + np.log(z[1] - z[0])


def test_zero_decoder_q_star_is_the_prior_and_the_gaps_are_known(zero, bars):
    x = bars.test[:20]
    mu, sigma = I.optimise_q(zero, x, steps=200)
    assert np.abs(mu).max() < 1e-2 and np.abs(np.log(sigma)).max() < 1e-2  # q* = p(z) = N(0, I)
    table = I.inference_gaps(zero, x, eval_samples=64, k=256)
    assert list(table.columns) == COLUMNS
    np.testing.assert_allclose(table["elbo_q_star"], 16 * np.log(0.5), atol=1e-3)  # = log p(x) exactly
    np.testing.assert_allclose(table["approximation_gap"], 0.0, atol=1e-3)
    mu_phi, sigma_phi = (v.numpy() for v in zero.encode(x))
    kl = 0.5 * (sigma_phi ** 2 + mu_phi ** 2 - np.log(sigma_phi ** 2) - 1).sum(-1)  # Günnemann's closed form
    assert kl.min() > 0.1
    np.testing.assert_allclose(table["amortisation_gap"], kl, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(table["kl_q_phi"], kl, rtol=1e-5)


def test_trained_1d_vae_encoder_elbo_below_optimised_elbo_below_log_px(trained, bars):
    x = bars.test[:20]
    exact = quadrature_log_px(trained, x)
    table = I.inference_gaps(trained, x, steps=200, eval_samples=4000, k=5000)
    noise = 0.05  # 3 sd of a 4000-draw ELBO estimate here (measured sd <= 0.016)
    assert (table["elbo_q_phi"] <= table["elbo_q_star"] + noise).all()  # amortisation gap >= 0
    assert (table["elbo_q_star"] <= exact + noise).all()  # approximation gap >= 0
    assert table["amortisation_gap"].mean() > 0.02  # the encoder leaves something to gain
    # IS with q* is a stochastic lower bound: near the exact value, below it on average
    assert np.abs(table["log_px_is"] - exact).mean() < 0.05
    assert (table["log_px_is"] - exact).mean() < 0.01
    np.testing.assert_allclose(table["approximation_gap"], table["log_px_is"] - table["elbo_q_star"])
    np.testing.assert_allclose(table["amortisation_gap"], table["elbo_q_star"] - table["elbo_q_phi"])


def test_elbo_estimate_is_the_analytic_one_and_uses_common_random_numbers(trained, bars):
    x = bars.test[:5]
    mu, sigma = trained.encode(x)
    a, b = I.elbo(trained, x, mu, sigma, 300, seed=4), I.elbo(trained, x, mu, sigma, 300, seed=4)
    np.testing.assert_array_equal(a, b)
    many = I.elbo(trained, x, mu, sigma, 20000, seed=5)
    model_elbo = mean_bound(trained, x, draws=5000)  # the model's own one-draw ELBO, averaged
    np.testing.assert_allclose(many, model_elbo, atol=0.08)


def test_runner_outputs_rows_are_the_table_means(trained, bars):
    rows, tables = I.runner_outputs(trained, bars, bars.test[:60], seed=0)
    table = tables["inference_gaps"]
    assert len(table) == I.RUNNER["examples"] == 50 and list(table.columns) == COLUMNS
    got = {n: (v, kind) for n, v, kind in rows}
    assert set(got) == {"approximation_gap", "amortisation_gap", "optimised_elbo_nll", "encoder_elbo_nll",
                        "optimised_is_nll", "inference_seconds"}
    assert got["approximation_gap"] == (pytest.approx(table["approximation_gap"].mean()), None)
    assert got["amortisation_gap"] == (pytest.approx(table["amortisation_gap"].mean()), None)
    assert got["optimised_elbo_nll"] == (pytest.approx(-table["elbo_q_star"].mean()), "elbo")
    assert got["encoder_elbo_nll"] == (pytest.approx(-table["elbo_q_phi"].mean()), "elbo")
    assert got["optimised_is_nll"] == (pytest.approx(-table["log_px_is"].mean()), "iwae")
    assert got["inference_seconds"][0] > 0


def test_not_a_vae_records_nothing_and_bad_input_is_one_clear_error(trained, bars):
    decoder_only = types.SimpleNamespace(offers=lambda method: method == "log_px_given_z")  # a GAN
    assert I.runner_outputs(decoder_only, bars, bars.test[:5]) == ([], {})
    encoder_only = types.SimpleNamespace(offers=lambda method: method == "encode")  # a mixture
    assert I.runner_outputs(encoder_only, bars, bars.test[:5]) == ([], {})
    with pytest.raises(ValueError, match="need a VAE or IWAE"):
        I.optimise_q(decoder_only, bars.test[:2])
    with pytest.raises(ValueError, match="steps and samples must be >= 1"):
        I.optimise_q(trained, bars.test[:2], steps=0)
    with pytest.raises(TypeError, match="uint8"):
        I.inference_gaps(trained, bars.test[:2].astype(np.float32))
