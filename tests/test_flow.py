"""RealNVP flow: invertibility, log-dets against autodiff Jacobians, the dequantisation bound on
exhaustive 4x4 binary data, importance sampling, the terms, samples and save/load."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from support import Fake, autodiff_logdet, check_is1_is_the_elbo, mean_bound, total_mass

import zoo
from zoo.data import all_binary_images
from zoo.models.flow import ActNorm, Coupling

SMALL = dict(network="mlp", width=64, depth=1, seed=0)


@pytest.fixture(scope="module")
def flow(bars):
    model = zoo.build_model("flow", bars, **SMALL, learning_rate=5e-3)
    model.fit(bars.tf_dataset("train", 100, seed=0), epochs=20, verbose=0)
    return model


def _perturbed(model, x, std=0.03, seed=0):
    """Initialise actnorm on `x`, then jiggle every trainable weight (zero-init layers included)."""
    model.log_prob(x, seed=0)
    rng = np.random.default_rng(seed)
    for w in model.trainable_weights:
        w.assign(w.numpy() + std * rng.standard_normal(w.shape).astype(np.float32))
    return model


@pytest.mark.parametrize("shape, levels, kw", [((4, 4, 1), 2, SMALL), ((8, 8, 1), 17, {}),
                                               ((28, 28, 1), 2, dict(width=8, deq_couplings=0))])
def test_decode_inverts_encode(shape, levels, kw):
    model = zoo.build_model("flow", Fake(shape, levels), **kw)
    x = np.random.default_rng(0).integers(0, levels, (6, *shape)).astype(np.uint8)
    _perturbed(model, x)
    z = model.encode(x)
    assert z.shape == (6, np.prod(shape))
    logit = model.to_logit(tf.constant(x, tf.float32) + 0.5)[0].numpy().reshape(6, -1)
    moved = model.encode(x).numpy() - logit
    assert np.abs(moved).mean() > 0.1  # not the identity
    np.testing.assert_allclose(model.decode(z).numpy(), x, atol=1e-4)
    if shape[0] == 28:
        assert model.z_shapes == [(14, 14, 2), (7, 7, 8)]  # one factor-out, then the last scale


@pytest.mark.parametrize("shape, network, mixtures", [((4, 4, 1), "mlp", 0), ((8, 8, 1), "conv", 4)])
def test_each_log_det_matches_the_autodiff_jacobian(shape, network, mixtures):
    model = zoo.build_model("flow", Fake(shape, 17), network=network, width=16, deq_mixtures=mixtures, seed=0)
    x = np.random.default_rng(1).integers(0, 17, (3, *shape)).astype(np.uint8)
    _perturbed(model, x, std=0.1)
    h = model.to_logit(tf.constant(x, tf.float32) + 0.3)[0]
    checked = 0
    for step in model.steps:
        out, ld = step.forward(h)
        reference = autodiff_logdet(lambda t: step.forward(t)[0], h.numpy())
        np.testing.assert_allclose(ld.numpy(), reference, atol=2e-3)
        if isinstance(step, Coupling):
            assert np.ptp(ld.numpy()) > 1e-3  # the scale really depends on the input (a constant gives ~1e-7)
        np.testing.assert_allclose(step.inverse(out).numpy(), h.numpy(), atol=1e-4)
        h, checked = out, checked + 1
    assert checked == 13 and sum(isinstance(s, ActNorm) for s in model.steps) == 6
    # q(u|x): conditional couplings then a sigmoid, against the Jacobian du/deps.
    eps = np.random.default_rng(2).standard_normal((3, *shape)).astype(np.float32)
    u, ld = model.dequantizer_forward(tf.constant(eps), x)
    reference = autodiff_logdet(lambda e: model.dequantizer_forward(e, x)[0], eps)
    np.testing.assert_allclose(ld.numpy(), reference, atol=2e-3)
    # The whole v -> z map: -(prior + logdet + logit) = log N(z) + log|det dz/dv|.
    v = tf.constant(x, tf.float32) + 0.3
    terms = model._terms(v)
    z = model.flow_forward(model.to_logit(v)[0])[0].numpy()
    log_n = -0.5 * (z ** 2).sum(-1) - 0.5 * z.shape[1] * np.log(2 * np.pi)
    full = log_n + autodiff_logdet(lambda t: model.flow_forward(model.to_logit(t)[0])[0], v.numpy())
    np.testing.assert_allclose(-(terms["prior"] + terms["logdet"] + terms["logit"]).numpy(), full,
                               rtol=1e-4, atol=2e-2)


def test_bound_sums_below_one_over_all_images(flow, bars):
    x = all_binary_images(4, 4)
    total = total_mass(flow, draws=4)
    assert 0.5 < total <= 1.0  # a bound on a distribution; trained, not vacuous (about 0.14 untrained)
    is_total = np.exp(np.mean([flow.log_prob_is(x, 4, seed=s).numpy() for s in range(2)], 0)).sum()
    assert total + 0.03 < is_total <= 1.0  # E L_4 <= log P(x) too, and tighter (about 0.73 -> 0.85)
    assert -mean_bound(flow, bars.test[:1000], draws=4).mean() < bars.entropy + 1.2


@pytest.mark.parametrize("dequantization", ["uniform", "variational"])
def test_one_sample_weight_is_the_bound_with_the_same_noise(bars, dequantization):
    model = _perturbed(zoo.build_model("flow", bars, **SMALL, dequantization=dequantization), bars.test[:32])
    x = bars.test[:32]
    terms = model.nll_terms(x, seed=1)
    assert np.all(terms["dequantization"].numpy() == 0.0) == (dequantization == "uniform")  # log q(u|x)
    np.testing.assert_allclose(model.log_prob_is(x, 1, seed=1).numpy(), model.log_prob(x, seed=1).numpy(),
                               rtol=1e-5)
    lw = model._log_weights(model.check_input(x), 3, model._seed(2)).numpy()
    assert lw.shape == (3, 32) and np.all(lw.std(0) > 1e-3)  # u differs between the draws


def test_importance_sampling_tightens_the_bound(flow, bars):
    x = bars.test[:1000]
    elbo_x, is1_x = check_is1_is_the_elbo(flow, x)
    elbo, is1, is64 = elbo_x.mean(), is1_x.mean(), flow.log_prob_is(x, 64, seed=1).numpy().mean()
    assert is64 > elbo + 0.2 and is64 > is1 + 0.2  # about 0.4 nats tighter after this short training
    assert is64 < -bars.entropy + 0.05  # a lower bound: not (noticeably) above the truth


def test_terms_samples_and_save_load(flow, bars, tmp_path):
    x = bars.test[:64]
    terms = flow.nll_terms(x, seed=3)
    assert tuple(terms) == ("prior", "logdet", "logit", "dequantization") and flow.likelihood == "elbo"
    np.testing.assert_allclose(-sum(t.numpy() for t in terms.values()), flow.log_prob(x, seed=3).numpy(),
                               rtol=1e-5)
    s = flow.sample(500, seed=4).numpy()
    assert s.dtype == np.uint8 and s.shape == (500, 4, 4, 1) and s.max() <= 1
    assert 0.2 < s.mean() < 0.45  # bars: a quarter on, plus 10% flips (0.325 in the data)
    flow.save(tmp_path / "flow.keras")
    loaded = keras.saving.load_model(tmp_path / "flow.keras")
    np.testing.assert_allclose(loaded.log_prob(x, seed=5).numpy(), flow.log_prob(x, seed=5).numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(loaded.sample(8, seed=1).numpy(), flow.sample(8, seed=1).numpy())
    assert float(loaded.steps[0].initialized.numpy()) == 1.0  # actnorm stays as trained, no re-init
