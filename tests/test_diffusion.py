"""Diffusion: the forward process and posterior against their closed forms, the VLB terms, the bound
summed over every 4x4 binary image, DDIM(eta=1) against the ancestral sampler, inpainting, reports."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from support import Fake, mean_bound, total_mass

import zoo
from zoo import diffusion_maths as dm
from zoo.data import all_binary_images
from zoo.sample_metrics import state_index

TINY = dict(network="mlp", width=64, depth=2, schedule="cosine", gamma_min=-6.0, sample_steps=64,
            ddim_steps=8, seed=0)


@pytest.fixture(scope="module")
def model(bars):
    keras.utils.set_random_seed(0)
    m = zoo.build_model("diffusion", bars, **TINY, timesteps=64, learning_rate=3e-3)  # a 64-step DDPM
    m.fit(bars.tf_dataset("train", 100, seed=0), epochs=8, verbose=0)
    return m


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_schedule_endpoints_and_derivative(kind):
    s = dm.NoiseSchedule(kind, -6.0, 8.0)
    np.testing.assert_allclose(s.gamma([0.0, 1.0]).numpy(), [-6.0, 8.0], atol=1e-4)
    t = tf.constant(np.linspace(0.02, 0.98, 25), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(t)
        g = s.gamma(t)
    assert np.all(np.diff(g.numpy()) > 0)  # the log-SNR falls as t grows
    np.testing.assert_allclose(s.gamma_prime(t).numpy(), tape.gradient(g, t).numpy(), rtol=1e-3)
    alpha, sigma = dm.alpha_sigma(g)
    np.testing.assert_allclose((alpha ** 2 + sigma ** 2).numpy(), 1.0, atol=1e-6)  # variance preserving
    np.testing.assert_allclose(np.log(sigma ** 2 / alpha ** 2), g.numpy(), atol=1e-3)


def test_forward_process_matches_its_closed_form():
    """Moments of z_t ~ q(z_t | x) from many draws, directly and through q(z_s | x) then q(z_t | z_s)."""
    n, x = 20000, tf.constant([[[[-1.0], [1.0]], [[0.25], [0.0]]]])  # [1, 2, 2, 1]
    xs = tf.tile(x, [n, 1, 1, 1])
    g_s, g_t = tf.fill([n], -1.5), tf.fill([n], 0.7)
    a_s, s_s = (float(v[0]) for v in dm.alpha_sigma(g_s))
    a_t, s_t = (float(v[0]) for v in dm.alpha_sigma(g_t))
    direct = dm.q_sample(xs, g_t, tf.random.stateless_normal(xs.shape, [1, 2])).numpy()
    z_s = dm.q_sample(xs, g_s, tf.random.stateless_normal(xs.shape, [3, 4]))
    two_step = dm.forward_step(z_s, g_s, g_t, tf.random.stateless_normal(xs.shape, [5, 6])).numpy()
    se_mean, se_var = s_t / np.sqrt(n), s_t ** 2 * np.sqrt(2.0 / n)
    for z in (direct, two_step):
        np.testing.assert_allclose(z.mean(0), a_t * x[0].numpy(), atol=4 * se_mean)
        np.testing.assert_allclose(z.var(0), s_t ** 2, atol=4 * se_var)
    # q(z_s | z_t, x): Gaussian conditioning of the joint (z_s, z_t), Cov = alpha_{t|s} sigma_s^2.
    z_t = tf.constant(np.random.default_rng(0).standard_normal((1, 2, 2, 1)), tf.float32)
    mean, var = dm.q_posterior(z_t, x, g_s[:1], g_t[:1])
    cov = a_t / a_s * s_s ** 2
    np.testing.assert_allclose(mean.numpy(), a_s * x + cov / s_t ** 2 * (z_t - a_t * x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(var.numpy(), s_s ** 2 - cov ** 2 / s_t ** 2, rtol=1e-4)


def test_ddim_with_eta_one_is_the_ancestral_step_and_eta_zero_is_deterministic():
    rng = np.random.default_rng(1)
    z, eps_hat, noise = (tf.constant(rng.standard_normal((3, 4, 4, 1)), tf.float32) for _ in range(3))
    g_s, g_t = tf.constant([-2.0, 0.0, 3.0]), tf.constant([-1.0, 1.5, 3.5])
    np.testing.assert_allclose(dm.ddim_step(z, eps_hat, g_s, g_t, noise, eta=1.0).numpy(),
                               dm.ancestral_step(z, eps_hat, g_s, g_t, noise).numpy(), rtol=1e-5, atol=1e-5)
    a = dm.ddim_step(z, eps_hat, g_s, g_t, noise, eta=0.0).numpy()
    np.testing.assert_array_equal(a, dm.ddim_step(z, eps_hat, g_s, g_t, -noise, eta=0.0).numpy())
    # eta = 0 keeps the predicted noise: x_hat and eps_hat of z_s are those of z_t
    np.testing.assert_allclose(dm.x_from_eps(tf.constant(a), eps_hat, g_s).numpy(),
                               dm.x_from_eps(z, eps_hat, g_t).numpy(), rtol=1e-4, atol=1e-4)


def test_decoder_is_a_distribution_over_the_levels():
    values = tf.linspace(-1.0, 1.0, 17)
    z_0 = tf.constant(np.random.default_rng(2).normal(0, 1.5, (2, 3, 3, 1)), tf.float32)
    probs = tf.nn.softmax(dm.decoder_logits(z_0, tf.constant([-8.0, -2.0]), values)).numpy()
    assert probs.shape == (2, 3, 3, 1, 17)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    x = np.arange(17, dtype=np.uint8).reshape(1, 17, 1, 1)  # every level once, z_0 at alpha_0 v exactly
    a0 = float(dm.alpha_sigma(tf.constant(-12.0))[0])
    nll = dm.reconstruction_nll(x, a0 * tf.reshape(values, [1, 17, 1, 1]), tf.constant([-12.0]), values)
    assert 0.0 <= float(nll[0]) < 1e-3  # sharp decoder, right level


@pytest.mark.parametrize("timesteps", [0, 20])
def test_terms_are_finite_and_sum_to_minus_log_prob(bars, timesteps):
    m = zoo.build_model("diffusion", bars, **{**TINY, "timesteps": timesteps})
    x = bars.test[:32]
    terms = m.nll_terms(x, seed=3)
    assert tuple(terms) == ("prior", "diffusion", "reconstruction") and m.likelihood == "vlb"
    for v in terms.values():
        assert v.shape == (32,) and np.all(np.isfinite(v.numpy())) and np.all(v.numpy() >= 0)
    np.testing.assert_allclose(-sum(v.numpy() for v in terms.values()), m.log_prob(x, seed=3).numpy(),
                               rtol=1e-5)
    # an untrained categorical denoiser knows only the likelihood: about log 2 nats per pixel
    assert 0.3 * 16 * np.log(2) < terms["diffusion"].numpy().mean() < 1.5 * 16 * np.log(2)
    kl_prior = 16 * 0.5 * (tf.sigmoid(-8.0).numpy() - np.log(tf.sigmoid(8.0)) + tf.sigmoid(8.0).numpy() - 1)
    np.testing.assert_allclose(terms["prior"].numpy(), kl_prior, rtol=1e-3)


def test_trained_bound_is_near_the_entropy(model, bars):
    nll = -mean_bound(model, bars.test, draws=1).mean()
    assert bars.entropy < nll + 0.1 and nll < bars.entropy + 1.3  # about 7.5 after this short training


def test_bound_is_below_the_samplers_own_log_prob(model, bars):
    """The T-step VLB bounds log p_theta(x) of exactly the T-step ancestral sampler, so exp(VLB(x)) must
    not exceed the frequency of x among its samples: checked on the 68 likeliest images (the 4 clean
    bars and their 64 one-flip neighbours), each bound averaged over 64 draws; and within 1 nat of it."""
    n, r = 20000, 64
    freq = np.bincount(state_index(model.sample(n, seed=0).numpy()), minlength=2 ** 16) / n
    x = all_binary_images(4, 4)
    top = np.argsort(-bars.true_log_prob(x))[:68]
    draws = mean_bound(model, np.repeat(x[top], r, 0), draws=1).reshape(68, r)
    bound, log_f = draws.mean(1), np.log(freq[top])
    se = np.sqrt(draws.var(1, ddof=1) / r + (1 - freq[top]) / (freq[top] * n))  # both estimates' errors
    gap = bound - log_f
    assert np.all(gap < 4 * se) and gap.mean() < 3 * np.sqrt(np.sum(se ** 2)) / 68
    assert gap.mean() > -1.0  # not vacuous (about -0.5 nats)
    mass = freq[top].sum()
    assert np.exp(bound).sum() <= mass + 3 * np.sqrt(mass * (1 - mass) / n)  # the same, summed


@pytest.mark.slow
def test_bound_sums_below_one_over_all_images(model):
    """sum_x exp(VLB(x)) <= 1 over all 2^16 images. The per-image bound has a large Monte-Carlo spread
    and exp of a noisy estimate is biased up (Jensen): with one draw (of 16 strata) per image the sum
    is about 3 (measured 2.8 - 3.0), so each image averages 16 draws (0.54 - 0.59; 32 draws 0.50 - 0.58)."""
    total = total_mass(model, draws=16, seed=1)
    assert 0.3 < total <= 1.0  # a bound on a distribution, and not vacuous after this short training


def test_samples_look_like_bars_and_ddim_eta1_matches_ancestral(model):
    """DDIM over all the ancestral steps with eta = 1 draws from the same distribution."""
    n = 3000
    anc = model.sample(n, seed=1).numpy().reshape(n, 16).astype(float)
    ddim = model.sample(n, seed=2, method="ddim", steps=model.ancestral_steps, eta=1.0).numpy().reshape(n, 16)
    assert model.ancestral_steps == 64
    assert 0.25 < anc.mean() < 0.4  # a quarter on plus 10% flips: 0.325 in the data
    se = np.sqrt(2 * 0.25 / n)
    assert np.abs(anc.mean(0) - ddim.mean(0)).max() < 4.5 * se  # 16 pixel marginals
    count_a, count_d = (np.bincount(s.sum(1).astype(int), minlength=17) / n for s in (anc, ddim))
    assert np.abs(count_a - count_d).max() < 4.5 * np.sqrt(2 * 0.25 / n)  # histogram of lit pixels
    bars4 = np.zeros((4, 16))
    for c in range(4):
        bars4[c, c::4] = 1
    near = (np.abs(anc[:, None] - bars4[None]).sum(-1).min(1) <= 2).mean()
    assert near > 0.6  # 0.79 of the data lies within 2 flips of a bar
    fast = model.sample(500, seed=3, method="ddim").numpy()  # eta = 0, ddim_steps = 8
    np.testing.assert_array_equal(fast, model.sample(500, seed=3, method="ddim").numpy())
    assert 0.2 < fast.mean() < 0.45
    with pytest.raises(ValueError, match="unknown sampling method 'ddpm'"):
        model.sample(2, method="ddpm")


def test_inpainting_keeps_known_pixels_and_conditions_on_them(model):
    n = 300
    bar0, bar3 = np.zeros((n, 4, 4, 1), np.uint8), np.zeros((n, 4, 4, 1), np.uint8)
    bar0[:, :, 0], bar3[:, :, 3] = 1, 1
    mask = np.zeros((4, 4, 1), bool)
    mask[:, :2] = True  # the two left columns are known
    for x, lo, hi in ((bar0, 0.0, 0.2), (bar3, 0.35, 0.65)):  # 5 RePaint jumps per step harmonise the halves
        out = model.inpaint(x, mask, seed=0, method="ddim", steps=16, eta=1.0, resample=5).numpy()
        np.testing.assert_array_equal(out[:, :, :2], x[:, :, :2])
        # the bar in a known column leaves the rest at the 10% noise; no bar there: one appears on the right
        assert lo < out[:, :, 2:].mean() < hi
    out = model.inpaint(bar3[:8], mask, seed=1, resample=2).numpy()  # ancestral, RePaint jumps
    np.testing.assert_array_equal(out[:, :, :2], bar3[:8, :, :2])


def test_timestep_report(model, bars):
    """The loss per timestep on a 50-point grid averages to the diffusion term (its integral over t)."""
    x = bars.test[:200]
    tables = []
    for m in (model, zoo.build_model("diffusion", bars, **TINY)):  # 64 steps; continuous time, untrained
        table = m.reports(x, seed=0)["timestep_loss"]
        assert list(table.columns) == ["t", "log_snr", "nats"] and len(table) == 50
        assert np.all(np.diff(table["log_snr"]) < 0) and np.all(table["nats"] >= 0)
        diffusion = np.mean([m.nll_terms(x, seed=s)["diffusion"].numpy().mean() for s in range(4)])
        assert abs(table["nats"].mean() - diffusion) < 0.1 * diffusion
        tables.append(table["t"].to_numpy())
    steps = tables[0] * 64  # the discrete model reports whole steps, up to t = 1
    assert tables[0][-1] == 1.0 and np.allclose(steps, np.round(steps)) and tables[1][0] == 0.01


@pytest.mark.parametrize("shape, levels, kw", [((28, 28, 1), 2, dict(channels=[8, 16, 16])),
                                               ((8, 8, 3), 256, dict(denoiser="eps", attention=True))])
def test_unet_shapes_and_sampling(shape, levels, kw):
    m = zoo.build_model("diffusion", Fake(shape, levels), **kw, ddim_steps=3, eval_t_samples=2, seed=0)
    x = np.random.default_rng(0).integers(0, levels, (2, *shape)).astype(np.uint8)
    lp = m.log_prob(x, seed=0).numpy()
    assert lp.shape == (2,) and np.all(np.isfinite(lp)) and np.all(lp < 0)
    s = m.sample(2, seed=0, method="ddim").numpy()
    assert s.shape == (2, *shape) and s.dtype == np.uint8 and s.max() <= levels - 1
    with pytest.raises(ValueError, match="divisible by 4"):
        zoo.build_model("diffusion", Fake((6, 6, 1), 2), network="unet", channels=[8, 8, 8])


def test_simple_loss_trains_and_config_errors(bars):
    m = zoo.build_model("diffusion", bars, **TINY, loss="simple", denoiser="eps", learning_rate=3e-3,
                        jit_compile=False)
    x = bars.train[:500]
    before = np.mean([m.nll_terms(x, seed=s)["diffusion"].numpy().mean() for s in range(2)])
    m.fit(bars.tf_dataset("train", 100, seed=0), epochs=1, verbose=0)
    after = np.mean([m.nll_terms(x, seed=s)["diffusion"].numpy().mean() for s in range(2)])
    assert after < 0.7 * before  # the eps network learns from L_simple (it starts at eps_hat = 0)
    with pytest.raises(ValueError, match="unknown denoiser 'x'"):
        zoo.build_model("diffusion", bars, denoiser="x")
    with pytest.raises(ValueError, match="unknown schedule 'cos'"):
        zoo.build_model("diffusion", bars, schedule="cos")
    with pytest.raises(ValueError, match="at most T = 20 steps"):
        zoo.build_model("diffusion", bars, **{**TINY, "timesteps": 20}).sample(2, steps=40)
