"""The VAE's KL weight beta (`kl_weight`): it changes the training loss distortion + beta * rate only;
`log_prob` and the terms stay the true ELBO (UBC lecture 16 / Günnemann: beta = 0 is a plain
autoencoder with a noisy code)."""
import numpy as np
import pytest
import tensorflow as tf
from support import Fake

import zoo

SMALL = dict(latent_dim=2, width=16, depth=1, seed=3, jit_compile=False)


def _pair(bars, beta):
    """A beta-VAE and a beta = 1 VAE with the same weights and the same training-noise stream."""
    a = zoo.build_model("vae", bars, kl_weight=beta, **SMALL)
    b = zoo.build_model("vae", bars, kl_weight=1.0, **SMALL)
    b.set_weights(a.get_weights())
    return a, b


def _gradients(model, x):
    with tf.GradientTape() as tape:
        loss, terms = model._training_loss(tf.constant(x), None)
    grads = tape.gradient(loss, model.trainable_weights)
    return loss, terms, [g.numpy() for g in grads]


def test_beta_changes_the_encoder_gradient_by_the_rate_gradient_only(bars):
    """grad(distortion + 1 * rate) - grad(distortion + 0 * rate) = grad(rate): exactly the rate's
    gradient, which reaches the encoder only (the rate KL(q(z|x) || p(z)) has no decoder weights)."""
    x = bars.test[:64]
    ae, vae = _pair(bars, 0.0)
    loss0, terms0, g0 = _gradients(ae, x)
    loss1, terms1, g1 = _gradients(vae, x)
    for name in ("distortion", "rate"):  # the same noise: the same true terms
        np.testing.assert_allclose(terms0[name].numpy(), terms1[name].numpy(), rtol=1e-6)
    rate = tf.reduce_mean(terms1["rate"]).numpy()
    assert rate > 0.01  # the check is not vacuous
    assert loss0.numpy() == pytest.approx(tf.reduce_mean(terms0["distortion"]).numpy(), rel=1e-6)
    assert loss1.numpy() == pytest.approx(loss0.numpy() + rate, rel=1e-6)
    with tf.GradientTape() as tape:  # the rate's own gradient, same weights and the same draw
        mu, sigma = vae._posterior(tf.constant(x))
        kl = tf.reduce_mean(0.5 * tf.reduce_sum(mu ** 2 + sigma ** 2 - 1.0 - 2.0 * tf.math.log(sigma), -1))
    encoder = {id(w) for w in vae.encoder.trainable_weights}
    g_rate = iter(tape.gradient(kl, vae.encoder.trainable_weights))
    assert len(encoder) == len(vae.decoder.trainable_weights) == len(g0) // 2 > 0
    for w, a, b in zip(vae.trainable_weights, g0, g1):
        if id(w) in encoder:  # the model lists the encoder's weights first, in the encoder's order
            np.testing.assert_allclose(b - a, next(g_rate).numpy(), rtol=1e-3, atol=1e-6)
        else:
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-7)
    assert max(np.abs(b - a).max() for a, b in zip(g0, g1)) > 1e-4


@pytest.mark.parametrize("beta", [0.0, 0.5, 4.0])
def test_log_prob_is_the_elbo_whatever_beta(bars, beta):
    x = bars.test[:128]
    model, vae = _pair(bars, beta)
    np.testing.assert_allclose(model.log_prob(x, seed=7).numpy(), vae.log_prob(x, seed=7).numpy(), rtol=1e-6)
    terms = model.nll_terms(x, seed=7)
    np.testing.assert_allclose(model.log_prob(x, seed=7).numpy(),
                               -(terms["distortion"] + terms["rate"]).numpy(), rtol=1e-6)
    mu, sigma = (t.numpy() for t in model.encode(x))  # the rate is the unweighted closed-form KL
    kl = 0.5 * np.sum(mu ** 2 + sigma ** 2 - 1.0 - 2.0 * np.log(sigma), axis=-1)
    np.testing.assert_allclose(terms["rate"].numpy(), kl, rtol=1e-4, atol=1e-5)


def test_the_trackers_show_the_true_terms_not_the_weighted_loss(bars):
    model = zoo.build_model("vae", bars, kl_weight=0.0, **SMALL)
    logs = model.train_on_batch(bars.train[:100], return_dict=True)
    assert logs["rate"] > 0.01
    assert logs["loss"] == pytest.approx(logs["distortion"] + logs["rate"], rel=1e-5)


def test_an_autoencoder_spends_more_rate_than_a_vae(bars):
    """Trained alike, beta = 0 leaves the rate unchecked (the code spreads out and sigma shrinks), so its
    KL(q(z|x) || p(z)) ends far above the beta = 1 model's, which pays for every nat of it."""
    rates = {}
    for beta in (0.0, 1.0):
        model = zoo.build_model("vae", bars, kl_weight=beta, latent_dim=2, width=32, depth=1, seed=0,
                                learning_rate=3e-3, jit_compile=False)
        model.fit(bars.tf_dataset("train", 100, seed=0), epochs=4, verbose=0)
        rates[beta] = float(model.nll_terms(bars.test[:500], seed=0)["rate"].numpy().mean())
    assert rates[0.0] > rates[1.0] + 5.0, rates


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "1"])
def test_the_config_refuses_a_bad_kl_weight(bad):
    with pytest.raises(ValueError, match="kl_weight must be a finite number >= 0"):
        zoo.build_model("vae", Fake((4, 4, 1), 2), kl_weight=bad)


def test_iwae_refuses_a_kl_weight_other_than_one():
    with pytest.raises(ValueError, match="iwae trains on L_k.*kl_weight must be 1.*use model 'vae'"):
        zoo.build_model("iwae", Fake((4, 4, 1), 2), kl_weight=0.0)
    assert zoo.build_model("iwae", Fake((4, 4, 1), 2), kl_weight=1).hp.kl_weight == 1


def test_a_saved_model_keeps_its_kl_weight(bars, tmp_path):
    model = zoo.build_model("vae", bars, kl_weight=0.25, **SMALL)
    model.fit(bars.tf_dataset("train", 100, seed=0), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = zoo.load_model(tmp_path / "m.keras")
    assert loaded.hp.kl_weight == 0.25 and loaded.get_config()["kl_weight"] == 0.25
    x = bars.test[:32]
    np.testing.assert_allclose(loaded.log_prob(x, seed=5).numpy(), model.log_prob(x, seed=5).numpy(),
                               rtol=1e-6)
    ae, vae = _pair(bars, 0.25)
    assert vae.hp.kl_weight == 1.0  # the default: the ELBO
