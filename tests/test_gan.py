"""The GAN family: two optimizers, k D steps, WGAN-GP, the discretised Gaussian observation model,
the "none" / "ais" likelihood switch, DCGAN on 28x28, and (slow) the measured bars / digits figures."""
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import log_ndtr
from support import subset, total_mass

import zoo
from zoo import data
from zoo.evaluation import evaluate
from zoo.sample_metrics import kl_tv, state_index

TINY = dict(latent_dim=3, width=16, depth=2, jit_compile=False)  # XLA compiling costs more than it saves here


@pytest.fixture(scope="module")
def small(bars):
    """256 / 64 / 64 bars: 4 steps an epoch at batch 64 (counted below), and cheap AIS evaluation."""
    return subset(bars, 256, 64, 64)


def weights(net):
    return [w.copy() for w in net.get_weights()]


def moved(before, net):
    return [not np.array_equal(a, b) for a, b in zip(before, net.get_weights())]


def test_train_step_moves_each_network_with_its_own_optimizer(bars):
    model = zoo.build_model("gan", bars, d_steps=2, **TINY)
    g0, d0 = weights(model.generator), weights(model.discriminator)
    model.fit(bars.tf_dataset("train", 64, seed=0).take(3), epochs=1, verbose=0)
    assert all(moved(g0, model.generator)) and all(moved(d0, model.discriminator))
    assert int(model.d_optimizer.iterations) == 6 and int(model.g_optimizer.iterations) == 3  # k = 2
    assert model.optimizer is model.g_optimizer and model.d_optimizer is not model.g_optimizer
    # a zero learning rate in one optimizer freezes exactly its own network
    for frozen, kwargs in (("discriminator", dict(d_learning_rate=0.0)),
                           ("generator", dict(learning_rate=0.0, d_learning_rate=1e-3))):
        model = zoo.build_model("gan", bars, **TINY, **kwargs)
        g0, d0 = weights(model.generator), weights(model.discriminator)
        model.fit(bars.tf_dataset("train", 64, seed=0).take(2), epochs=1, verbose=0)
        assert any(moved(g0, model.generator)) == (frozen != "generator")
        assert any(moved(d0, model.discriminator)) == (frozen != "discriminator")


def test_history_records_both_losses_and_discriminator_outputs(small):
    model = zoo.build_model("gan", small, learning_rate=0.0, d_learning_rate=1e-2, **TINY)  # G frozen: D wins
    history = model.fit(small.tf_dataset("train", 64, seed=0), validation_data=small.tf_dataset("valid", 64),
                        epochs=2, verbose=0).history
    for name in ("d_loss", "g_loss", "d_real", "d_fake", "val_d_loss"):
        assert len(history[name]) == 2 and np.all(np.isfinite(history[name]))
    for name in ("d_real", "d_fake"):  # probabilities for the non-saturating loss
        assert all(0.0 < v < 1.0 for v in history[name])
    # D tells the frozen G's samples apart (8 seeds: >= 0.17)
    assert history["d_real"][-1] > history["d_fake"][-1] + 0.1
    np.testing.assert_allclose(history["loss"], np.add(history["d_loss"], history["g_loss"]), rtol=1e-5)


def test_wgan_gp_penalty_and_training(small):
    model = zoo.build_model("gan", small, loss="wgan-gp", d_steps=3, **TINY)
    real = model.preprocess(small.train[:32])
    fake = model.generate(tf.random.normal([32, 3]))
    with_gp = float(model._d_loss(real, fake)[0])
    model.hp.gp_weight = 0.0
    without = float(model._d_loss(real, fake)[0])
    assert with_gp > without + 1e-3  # the penalty is >= 0 and not zero at initialisation
    model.hp.gp_weight = 10.0
    history = model.fit(small.tf_dataset("train", 64, seed=0), epochs=2, verbose=0).history
    assert np.all(np.isfinite(history["d_loss"])) and int(model.d_optimizer.iterations) == 3 * 2 * 4


def test_compile_default_uses_beta_half_and_the_runner_schedule(bars):
    model = zoo.build_model("gan", bars, learning_rate=1e-3, d_learning_rate=4e-4, **TINY)
    assert float(model.g_optimizer.learning_rate) == pytest.approx(1e-3)
    assert float(model.d_optimizer.learning_rate) == pytest.approx(4e-4)
    assert model.g_optimizer.beta_1 == model.d_optimizer.beta_1 == 0.5
    model.compile_default(lr_schedule=lambda lr: keras.optimizers.schedules.CosineDecay(lr, decay_steps=100))
    for opt, lr0 in ((model.g_optimizer, 1e-3), (model.d_optimizer, 4e-4)):
        assert isinstance(opt._learning_rate, keras.optimizers.schedules.CosineDecay) and opt.beta_1 == 0.5
        assert float(opt._learning_rate(0)) == pytest.approx(lr0)
        assert float(opt._learning_rate(100)) == pytest.approx(0.0, abs=1e-9)


def test_samples_round_the_generator_output_to_levels(digits):
    model = zoo.build_model("gan", digits, **TINY)
    s = model.sample(50, seed=4).numpy()
    z = keras.random.normal([50, 3], seed=model._seed(4))
    expected = np.clip(np.round(model.to_levels(model.generate(z)).numpy()), 0, 16)
    np.testing.assert_array_equal(s, expected)
    assert s.dtype == np.uint8 and s.max() <= 16 and len(np.unique(s)) > 2


def test_observation_model_is_a_discretised_gaussian(bars, digits):
    # bars: P(x | z) sums to 1 over all 2^16 binary images
    model = zoo.build_model("gan", bars, **TINY)
    z = tf.random.normal([1, 1, 3])
    mass = total_mass(lambda x: model.log_px_z(tf.broadcast_to(z, [1, tf.shape(x)[0], 3]), x, 0.3)[0])
    assert mass == pytest.approx(1.0, abs=1e-4)
    # digits: each pixel's mass is the Gaussian mass of its level's bin, end bins open
    model = zoo.build_model("gan", digits, **TINY)
    z = tf.random.normal([1, 4, 3])
    x = digits.test[:4]
    u = model.to_levels(model.generate(z[0])).numpy().astype(np.float64)  # [4, 8, 8, 1]
    sigma = 0.7
    hi = np.where(x == 16, np.inf, (x + 0.5 - u) / sigma)
    lo = np.where(x == 0, -np.inf, (x - 0.5 - u) / sigma)
    flip = lo > 0  # log(Phi(hi) - Phi(lo)) in float64, from the tail farther from the bin
    a, b = log_ndtr(np.where(flip, -hi, lo)), log_ndtr(np.where(flip, -lo, hi))
    expected = (b + np.log1p(-np.exp(a - b))).sum(axis=(1, 2, 3))
    assert expected.max() < -100  # far tails at this sigma: the numerics matter
    np.testing.assert_allclose(model.log_px_z(z, x, sigma).numpy()[0], expected, rtol=1e-4)


def test_plain_gan_has_no_likelihood_and_evaluation_skips_it(small):
    model = zoo.build_model("gan", small, **TINY)
    assert model.likelihood == "none" and model.term_names == ()
    with pytest.raises(ValueError, match=r"has no likelihood \(likelihood='none'\).*ais_steps > 0"):
        model.log_prob(small.test[:4])
    names = {row[0] for row in evaluate(model, small)}
    assert "nll" not in names and "bits_per_dim" not in names and "data_nll" in names  # n/a, never 0


def test_ais_steps_give_an_ais_likelihood(small, tmp_path):
    model = zoo.build_model("gan", small, ais_steps=4, ais_chains=3, ais_leapfrog=2, **TINY)
    assert model.likelihood == "ais" and model.term_names == ("nll",)
    x = small.test[:8]
    nll = model.nll_terms(x, seed=2)["nll"].numpy()
    assert nll.shape == (8,) and np.all(nll > 0)
    np.testing.assert_allclose(model.nll_terms(x, seed=2)["nll"].numpy(), nll, rtol=1e-5)  # seeded
    np.testing.assert_allclose(model.log_prob_ais(x, 4, 3, seed=2).numpy(), -nll, rtol=1e-5)
    rows = {name: (value, kind) for name, value, kind in evaluate(model, small, batch_size=32)}
    assert rows["nll"][1] == "ais" and 0 < rows["nll"][0] < 16 * 10
    assert "pop_nll" not in rows  # no population sweep for AIS
    model.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras")
    np.testing.assert_allclose(loaded.log_prob(x, seed=2).numpy(), -nll, rtol=1e-5)


def test_tune_obs_sigma_takes_the_best_validation_value(digits):
    model = zoo.build_model("gan", digits, ais_steps=3, ais_chains=2, ais_leapfrog=2, **TINY)
    scores = model.tune_obs_sigma(digits.valid[:16], sigmas=(0.05, 3.0))
    assert set(scores) == {0.05, 3.0} and model.hp.obs_sigma == max(scores, key=scores.get)
    assert scores[3.0] > scores[0.05]  # an untrained G is far from every image: a wide sigma wins
    model.hp.obs_sigma = 0.5
    rows = dict((n, v) for n, v, _ in model.calibrate(digits.valid, examples=8))  # the runner's hook
    assert rows["obs_sigma"] == model.hp.obs_sigma and model.hp.obs_sigma != 0.5 and rows["valid_ais_nll"] > 0
    assert zoo.build_model("gan", digits, **TINY).calibrate(digits.valid) == []  # no AIS, nothing to tune


def test_dcgan_option_on_28x28(bars):
    rng = np.random.default_rng(0)
    images = {s: (rng.random((n, 28, 28, 1)) < 0.3).astype(np.uint8) for s, n in
              (("train", 32), ("valid", 8), ("test", 8))}
    ds = data.Dataset("fake28", **images, levels=2)
    model = zoo.build_model("gan", ds, network="dcgan", channels=[4, 8], latent_dim=4, jit_compile=False)
    assert model.sample(3, seed=0).shape == (3, 28, 28, 1)
    history = model.fit(ds.tf_dataset("train", 16, seed=0), epochs=1, verbose=0).history
    assert np.isfinite(history["d_loss"][0])
    assert np.all(np.isfinite(model.log_prob_ais(ds.test[:2], steps=2, chains=2, seed=0).numpy()))
    with pytest.raises(ValueError, match="divisible by 8"):
        zoo.build_model("gan", bars, network="dcgan", channels=[4, 8, 16])


# --- measurements (slow; run with -m slow -s) -----------------------------------------------
def empirical_kl(samples, dataset):
    """KL(empirical || true) in nats over the 2^16 bars states."""
    q = np.bincount(state_index(samples), minlength=2 ** 16) / len(samples)
    return kl_tv(q, dataset.true_log_prob(data.all_binary_images()))[0]


@pytest.mark.slow
def test_measure_bars_gan():
    ds = data.load("bars", noise=0.1, n_train=10000, n_valid=2000, n_test=10000)
    keras.utils.set_random_seed(0)
    model = zoo.build_model("gan", ds, latent_dim=16, width=128, depth=2, learning_rate=5e-4, seed=0,
                            ais_steps=100, ais_chains=16)
    t0 = time.perf_counter()
    model.fit(ds.tf_dataset("train", 100, seed=0), epochs=120, verbose=0)
    train_s = time.perf_counter() - t0
    kl = empirical_kl(model.sample(10000, seed=1).numpy(), ds)
    reference = empirical_kl(data.load("bars", n_train=10000, n_valid=0, n_test=0, seed=123).train, ds)
    scores = model.tune_obs_sigma(ds.valid[:500], sigmas=(0.1, 0.2, 0.3, 0.4, 0.5, 0.7), steps=50, chains=8)
    t0 = time.perf_counter()
    nll = {name: value for name, value, _ in evaluate(model, ds, batch_size=1000)}
    print(f"\nbars GAN: trained {train_s:.0f}s; KL(empirical || true) of 10000 samples {kl:.3f} nats "
          f"(10000 true samples: {reference:.3f}); obs_sigma grid {scores} -> {model.hp.obs_sigma}; "
          f"AIS(T=100, C=16) test NLL {nll['nll']:.3f} +- {nll['nll_se']:.3f} nats "
          f"(data_nll {nll['data_nll']:.3f}, entropy {ds.entropy:.3f}) in {time.perf_counter() - t0:.0f}s")
    assert kl < 1.5 and ds.entropy < nll["nll"] < 16 * np.log(2) + 2


def test_per_step_losses_reach_tensorboard(small, tmp_path):
    """With train.tensorboard_update_freq = 1, every step's D/G losses and D(real)/D(fake) are logged."""
    import collections

    from experiments.config import TrainConfig
    from zoo.training import fit

    model = zoo.build_model("gan", small, **TINY)
    fit(model, small, TrainConfig(epochs=2, batch_size=64, verbose=0, tensorboard_update_freq=1), tmp_path)
    tags = collections.Counter(v.tag for f in (tmp_path / "tensorboard" / "train").iterdir()
                               for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value)
    for name in ("d_loss", "g_loss", "d_real", "d_fake"):
        assert tags[f"batch_{name}"] == 2 * 4 and tags[f"epoch_{name}"] == 2  # 256 images / 64 = 4 steps
