"""VAE and IWAE: bounds on exhaustive 4x4 binary data, the k=1 identity, the analytic KL."""
import numpy as np
import pytest
import tensorflow as tf
from support import Fake, check_is1_is_the_elbo, mean_bound, total_mass

import zoo


def _trained(name, bars, **hp):
    model = zoo.build_model(name, bars, latent_dim=2, width=64, depth=2, learning_rate=3e-3, seed=0, **hp)
    model.fit(bars.tf_dataset("train", 100, seed=0), epochs=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def vae(bars):
    return _trained("vae", bars)


@pytest.fixture(scope="module")
def iwae(bars):
    return _trained("iwae", bars, k=5)


@pytest.mark.parametrize("name", ["vae", "iwae"])
def test_bound_sums_below_one_over_all_images(name, request):
    model = request.getfixturevalue(name)
    total = total_mass(model, draws=16)
    assert total <= 1.0
    assert total > 0.5  # trained: the check is not vacuous


def test_is_estimate_tightens_with_k(vae, bars):
    x = bars.test[:1000]
    elbo_x, is1_x = check_is1_is_the_elbo(vae, x)
    elbo = elbo_x.mean()
    is_k = [is1_x.mean()] + [vae.log_prob_is(x, k, seed=1).numpy().mean() for k in (10, 200)]
    assert elbo < is_k[1] < is_k[2]  # L_k increases with k (Burda et al. thm. 1)
    assert is_k[2] < -bars.entropy + 0.05  # never (noticeably) above the truth on average


def test_iwae_k1_equals_vae_elbo_for_same_weights_and_noise(vae, bars):
    """L_1 = log w = log p(x|z) + log p(z) - log q(z|x): the VAE ELBO with the single-sample rate."""
    x = bars.test[:256]
    vae_mc = zoo.build_model("vae", bars, latent_dim=2, width=64, depth=2, kl="mc")
    iwae1 = zoo.build_model("iwae", bars, latent_dim=2, width=64, depth=2, k=1)
    for m in (vae_mc, iwae1):
        m.set_weights(vae.get_weights())
    np.testing.assert_allclose(iwae1.log_prob(x, seed=11).numpy(), vae_mc.log_prob(x, seed=11).numpy(),
                               rtol=1e-6)
    terms = iwae1.nll_terms(x, seed=11)
    np.testing.assert_allclose(terms["iw_gain"].numpy(), 0.0, atol=1e-5)
    # The default (analytic-KL) ELBO is the same bound with a lower-variance estimator.
    analytic, mc = mean_bound(vae, x, draws=64), mean_bound(vae_mc, x, draws=64)
    assert abs(analytic.mean() - mc.mean()) < 0.02


def test_rate_is_the_closed_form_kl(vae, bars):
    x = bars.test[:64]
    mu, sigma = (t.numpy() for t in vae.encode(x))
    kl = 0.5 * np.sum(mu ** 2 + sigma ** 2 - 1.0 - 2.0 * np.log(sigma), axis=-1)
    np.testing.assert_allclose(vae.nll_terms(x, seed=0)["rate"].numpy(), kl, rtol=1e-4, atol=1e-5)


def test_iwae_terms_and_k(iwae, bars):
    assert iwae.k == 5 and iwae.likelihood == "iwae"
    terms = iwae.nll_terms(bars.test[:128], seed=2)
    assert np.all(terms["iw_gain"].numpy() <= 1e-6)  # log-mean-exp >= mean of logs


@pytest.mark.parametrize("network", ["mlp", "conv"])
@pytest.mark.parametrize("decoder", ["categorical", "discretized_logistic"])
def test_multilevel_decoders_train_on_digits(network, decoder, digits):
    model = zoo.build_model("vae", digits, network=network, decoder=decoder, seed=0)
    x = digits.test[:64]
    before = -model.log_prob(x, seed=0).numpy().mean()
    model.fit(digits.tf_dataset("train", 100, seed=0), epochs=3, verbose=0)
    after = -model.log_prob(x, seed=0).numpy().mean()
    assert after < before
    assert model.decode(tf.zeros([2, 16])).shape == (2, 8, 8, 1)


def test_is_chunks_fit_large_k_on_mnist_sized_images():
    model = zoo.build_model("vae", Fake((28, 28, 1), 2), latent_dim=8, width=32, depth=1)  # no files
    x = np.random.default_rng(0).integers(0, 2, (20, 28, 28, 1)).astype(np.uint8)
    est = model.log_prob_is(x, 5000, seed=0).numpy()
    assert est.shape == (20,) and np.all(np.isfinite(est))
    np.testing.assert_allclose(est, model.log_prob_is(x, 5000, seed=0).numpy(), rtol=1e-6)
