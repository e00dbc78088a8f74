"""The L-sample VAE (Burda et al. 2016, sec. 5: the ELBO averaged over L draws per example, as costly as the
IWAE with k = L) and the decoder choice (a discretised Gaussian p(x|z), scale learned or fixed)."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from support import subset

import zoo

SMALL = {"latent_dim": 2, "width": 16, "depth": 1, "seed": 0}


def _same_noise(seed, shape):
    """The eps ~ N(0, I) draws `model.nll_terms(x, seed=seed)` makes: the model's replay generator reset
    to [seed, 0] (`GenerativeModel._seed`), then one `keras.random.normal` of `shape`."""
    gen = keras.random.SeedGenerator(0)
    gen.state.assign(tf.constant([seed, 0], gen.state.dtype))
    return keras.random.normal(shape, seed=gen).numpy()


@pytest.mark.parametrize("kl", ["analytic", "mc"])
@pytest.mark.parametrize("draws", [1, 4])
def test_l_draws_average_l_single_draw_terms_with_the_same_noise(bars, kl, draws):
    """distortion = -(1/L) sum_l log p(x|z_l) and rate = the KL (analytic) or (1/L) sum_l log q(z_l|x) -
    log p(z_l) (mc), z_l = mu + sigma eps_l for the very eps the model draws: the L-sample ELBO is the mean
    of L one-draw ELBOs, not another bound; L = 1 is the VAE as before."""
    model = zoo.build_model("vae", bars, samples=draws, kl=kl, **SMALL)
    x = bars.test[:6]
    terms = {k: v.numpy() for k, v in model.nll_terms(x, seed=13).items()}
    mu, sigma = (t.numpy() for t in model.encode(x))  # [B, d] each
    eps = _same_noise(13, (draws, *mu.shape))  # [L, B, d]
    z = mu + sigma * eps
    one = -np.stack([model.log_px_given_z(z[i][None], x).numpy()[0] for i in range(draws)])  # [L, B]
    np.testing.assert_allclose(terms["distortion"], one.mean(0), rtol=1e-5)
    log_q = -0.5 * (eps ** 2 + np.log(2 * np.pi) + 2 * np.log(sigma)).sum(-1)  # [L, B]
    log_p = -0.5 * (z ** 2 + np.log(2 * np.pi)).sum(-1)
    kl_closed = 0.5 * (mu ** 2 + sigma ** 2 - 1 - 2 * np.log(sigma)).sum(-1)
    want_rate = kl_closed if kl == "analytic" else (log_q - log_p).mean(0)
    np.testing.assert_allclose(terms["rate"], want_rate, rtol=1e-4, atol=1e-5)
    if draws > 1:
        assert one.std(0).min() > 1e-3  # the draws differ: the mean is over L distinct terms


def test_gradient_variance_falls_as_one_over_l(bars):
    """The L-sample ELBO's gradient is the mean of L independent one-draw gradients: its variance over the
    noise (summed over every weight) is 1/L of one draw's. Measured: 60 gradients each of L = 1 and L = 8
    on the same weights and images; ratio ~ 0.125."""
    x = bars.test[:64]
    weights = zoo.build_model("vae", bars, **SMALL).get_weights()
    variances = {}
    for draws in (1, 8):
        model = zoo.build_model("vae", bars, samples=draws, **SMALL)
        model.set_weights(weights)
        @tf.function
        def gradient(xb, model=model):  # fresh noise from the model's own stream at each call
            with tf.GradientTape() as tape:
                loss = model.mean_nll(model.nll_terms(xb, training=True))
            return tf.concat([tf.reshape(g, [-1]) for g in tape.gradient(loss, model.trainable_weights)], 0)

        grads = np.stack([gradient(x).numpy() for _ in range(60)])
        variances[draws] = grads.var(0, ddof=1).sum()
    ratio = variances[8] / variances[1]
    print(f"gradient variance, L = 8 over L = 1: {ratio:.3f}")
    assert 1 / 16 < ratio < 1 / 4, ratio


class _Counting:
    """A decoder that counts its calls and the codes each decodes."""

    def __init__(self, net):
        self.net, self.rows = net, []

    def __call__(self, z):
        self.rows.append(int(z.shape[0]))
        return self.net(z)


@pytest.mark.parametrize("name, hp", [("vae", {"samples": 5}), ("iwae", {"k": 5})])
def test_equal_cost_one_decoder_pass_over_l_times_b_codes(bars, name, hp):
    """A training step of the VAE with L = 5 and of the IWAE with k = 5 decodes the same 5 x B codes in one
    batched call (Burda et al.'s equal-cost comparison); sampling still costs one decoder call."""
    model = zoo.build_model(name, bars, **SMALL, **hp)
    counting = _Counting(model.decoder)
    object.__setattr__(model, "decoder", counting)  # (no Keras tracking: a spy, not a layer)
    model.nll_terms(bars.test[:7], seed=0, training=True)
    assert counting.rows == [5 * 7]
    counting.rows.clear()
    model.sample(9, seed=0)
    assert counting.rows == [9] and model.sampling_cost() == 1


def test_bad_samples_and_decoder_sigma_are_refused_by_name(digits):
    gauss = {"decoder": "discretized_gaussian"}
    for hp, words in [({"samples": 0}, "samples"), ({"samples": 2.5}, "samples"),
                      ({"decoder_sigma": 1.0}, "decoder_sigma = 1.0 is the scale of decoder 'discretized_g"),
                      ({**gauss, "decoder_sigma": "fixed"}, "decoder_sigma must be"),
                      ({**gauss, "decoder_sigma": 0.0}, "decoder_sigma must be")]:
        with pytest.raises(ValueError, match=words):
            zoo.build_model("vae", digits, **hp)
    with pytest.raises(ValueError, match="iwae draws k samples"):
        zoo.build_model("iwae", digits, samples=3)


@pytest.mark.parametrize("sigma", ["learned", 1.0])
def test_a_discretised_gaussian_decoder_trains_and_a_fixed_scale_stays_fixed(digits, sigma):
    """On the digits (17 levels) the Gaussian decoder's test -ELBO falls in 3 epochs; with decoder_sigma
    fixed, every sub-pixel's scale is that many levels before and after training (no weight for it)."""
    from zoo.distributions import _loc_scale

    data = subset(digits, 500, 50, 64)
    model = zoo.build_model("vae", data, decoder="discretized_gaussian", decoder_sigma=sigma, latent_dim=4,
                            width=64, depth=1, jit_compile=False, seed=0)
    before = -model.log_prob(data.test, seed=0).numpy().mean()
    model.fit(data.tf_dataset("train", 100, seed=0), epochs=3, verbose=0)
    after = -model.log_prob(data.test, seed=0).numpy().mean()
    assert after < before
    scale = _loc_scale(model.decoder(tf.random.normal([4, 4])), data.levels)[1].numpy()
    if sigma == "learned":
        assert scale.std() > 1e-3  # a scale per sub-pixel, from the decoder
    else:
        np.testing.assert_allclose(scale, sigma, rtol=1e-5)
