"""Gated PixelCNN: causality by exact-zero Jacobians, normalisation over every 4x4 binary image,
pixel_nll, the two samplers, save/load, class conditioning (marginal and label-driven samples), and
the lean traced graph that makes CPU training fast."""
import collections
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from support import Fake, total_mass

import zoo
from zoo.models.pixelcnn import CausalConv2D


def _model(shape, levels, **hp):
    keras.utils.set_random_seed(0)  # reproducible weights
    hp = {"width": 24, "depth": 4, "kernel_size": 3, "jit_compile": False, "seed": 0, **hp}
    return zoo.build_model("pixelcnn", Fake(shape, levels), **hp)


def _images(shape, levels, n, seed=0):
    return np.random.default_rng(seed).integers(0, levels, (n, *shape)).astype(np.uint8)


def _dependence(model, x, labels=None):
    """[D_out, D_in] bool: does sub-pixel t's output (any parameter) move with input sub-pixel s,
    for any of the images x (several, so a ReLU that happens to be off cannot hide a path)?"""
    d, dep = model.num_dims, False
    for image in model.preprocess(x):
        xf = image[None]
        with tf.GradientTape() as tape:
            tape.watch(xf)
            params = model.params(xf, labels)  # [1, H, W, C, P]
        jac = tape.jacobian(params, xf)  # [1, H, W, C, P, 1, H, W, C]
        jac = tf.reshape(tf.transpose(jac[0], [0, 1, 2, 4, 3, 5, 6, 7]), [d, -1, d])  # [D_out, P, D_in]
        dep = dep | (np.abs(jac.numpy()).sum(1) > 0)
    return dep


def _raster_index(h, w, c):
    return np.arange(h * w * c).reshape(h, w, c)


CASES = [((5, 5, 1), 2, {}), ((5, 5, 3), 4, {"decoder": "categorical"}),
         ((5, 5, 3), 4, {"decoder": "discretized_logistic", "num_classes": 3})]


@pytest.mark.parametrize("shape, levels, hp", CASES)
def test_causal_and_no_blind_spot(shape, levels, hp):
    """k=3 with 4 blocks reaches the whole 5x5 past: the output of sub-pixel t depends on exactly
    the sub-pixels before t in raster order (R -> G -> B within a pixel), zeros elsewhere."""
    model = _model(shape, levels, **hp)
    labels = tf.constant([1]) if hp.get("num_classes") else None
    dep = _dependence(model, _images(shape, levels, 3), labels)
    d = model.num_dims
    past = np.arange(d)[None, :] < np.arange(d)[:, None]
    assert not dep[~past].any()  # nothing at or after t: exact zeros
    np.testing.assert_array_equal(dep, past)  # and everything before it: no blind spot
    idx = _raster_index(*shape)
    for c in range(shape[2]):  # spelled out for the centre pixel of every channel
        t = idx[2, 2, c]
        assert dep[t, idx[1, 2]].all() and dep[t, idx[2, 1]].all()  # up, left
        assert dep[t, idx[1, 3]].all()  # up-right
        assert dep[t, idx[2, 2, :c]].all() and not dep[t, idx[2, 2, c:]].any()  # earlier channels only
        assert not dep[t, idx[3:]].any() and not dep[t, idx[2, 3:]].any()


def test_each_stack_alone():
    """Horizontal path only (v->h links zeroed): the current row left of the pixel. Vertical only
    (first horizontal conv zeroed): rows above, including the upper right."""
    shape = (5, 5, 3)
    model, x = _model(shape, 4), _images(shape, 4, 2)
    h, w, c = np.meshgrid(*map(np.arange, shape), indexing="ij")
    h, w, c = h.ravel(), w.ravel(), c.ravel()
    for link in model.links:
        link.kernel.assign(tf.zeros_like(link.kernel))
    left = (w[None] < w[:, None]) | ((w[None] == w[:, None]) & (c[None] < c[:, None]))
    same_row = (h[None] == h[:, None]) & left
    np.testing.assert_array_equal(_dependence(model, x), same_row)
    model = _model(shape, 4)
    model.h_convs[0].kernel.assign(tf.zeros_like(model.h_convs[0].kernel))
    np.testing.assert_array_equal(_dependence(model, x), h[None] < h[:, None])


def test_traced_forward_graph_is_lean():
    """The CPU speed-up of issue 9 as graph structure, not timing. Depth 6, grayscale: Pad ops only for
    the vertical (r+1) x k, the link (one row down) and the horizontal 1 x (r+1) convolutions, 3 per
    block, none for the other 1x1 ones; every Conv2D feeds only its BiasAdd (grappler fuses the two
    into one oneDNN kernel, and the bias gradient into the filter gradient); no StridedSlice (its
    gradient is slow on CPU); no AddV2 for an absent bias or residual; no multiply by an all-ones
    mask (one channel: every mask B is all ones, only h0's mask A is applied)."""
    model = _model((8, 8, 1), 17, width=16, depth=6)
    graph = tf.function(model.params).get_concrete_function(tf.TensorSpec([128, 8, 8, 1])).graph
    ops = graph.get_operations()
    count = collections.Counter(op.type for op in ops)
    convs = [op for op in ops if op.type == "Conv2D"]
    assert len(convs) == 31 and count["BiasAdd"] == 31  # v, link, h per block; 5 h_out, 6 skip, 2 head
    assert all([c.type for c in conv.outputs[0].consumers()] == ["BiasAdd"] for conv in convs)
    one_by_one = [conv for conv in convs if tuple(conv.inputs[1].shape[:2]) == (1, 1)]
    padded = [conv for conv in one_by_one if conv.inputs[0].op.type == "Pad"]
    assert len(one_by_one) == 19 and len(padded) == 6  # the links; not h_out, skip, head
    assert count["Pad"] == 18 and count["StridedSlice"] == 0
    assert count["AddV2"] == 15  # h-conv + link (6), skip sum (5), residual (4)
    assert count["Mul"] == 12  # 5 vertical gates (the last is unused), 6 horizontal, h0's mask
    assert sum(count.values()) < 350  # 463 before issue 9 (TF-internal Const, ReadVariableOp... too)


def test_receptive_rows_bound_the_fast_sampler_crop():
    """With 2 blocks of k=3, row i sees input rows i-3..i-1 (not i-4): the fast sampler's 4-row crop."""
    model = _model((10, 4, 1), 2, depth=2)
    assert model.sample_rows == 4
    dep = _dependence(model, _images((10, 4, 1), 2, 3)).reshape(10, 4, 10, 4)
    assert dep[9, :, 6].any() and not dep[9, :, :6].any()


@pytest.fixture(scope="module")
def trained(bars):
    model = _model((4, 4, 1), 2, width=16, depth=3, learning_rate=3e-3)
    model.fit(bars.tf_dataset("train", 100, seed=0), epochs=8, verbose=0)
    return model


@pytest.fixture(scope="module")
def conditional(bars):  # the bars label is the column of the bar
    model = _model((4, 4, 1), 2, width=16, depth=3, learning_rate=3e-3, num_classes=4)
    model.fit(bars.tf_dataset("train", 100, seed=0, with_labels=True), epochs=4, verbose=0)
    return model


def test_probabilities_sum_to_one_untrained():
    assert abs(total_mass(_model((4, 4, 1), 2, width=16, depth=3)) - 1.0) < 1e-3


def test_trained_on_bars_sums_to_one_and_nears_entropy(trained, bars):
    assert abs(total_mass(trained) - 1.0) < 1e-3
    nll = -trained.log_prob(bars.test).numpy().mean()
    assert bars.entropy - 0.1 < nll < bars.entropy + 0.2  # 8 epochs; the truth is 6.57, uniform 11.09


@pytest.mark.parametrize("shape, levels, hp", CASES)
def test_pixel_nll_sums_to_minus_log_prob(shape, levels, hp):
    model = _model(shape, levels, **hp)
    x = _images(shape, levels, 6)
    pix = model.pixel_nll(x).numpy()
    assert pix.shape == (6, *shape) and np.all(pix >= -1e-5)  # each factor is a probability <= 1
    np.testing.assert_allclose(pix.sum((1, 2, 3)), -model.log_prob(x).numpy(), rtol=1e-5)
    terms = model.nll_terms(x)
    assert tuple(terms) == ("nll",) and model.likelihood == "exact"
    if hp.get("num_classes"):  # the map given labels sums to -log p(x | y)
        y = np.arange(6) % 3
        np.testing.assert_allclose(model.pixel_nll(x, labels=y).numpy().sum((1, 2, 3)),
                                   -model.log_prob(x, labels=y).numpy(), rtol=1e-5)


@pytest.mark.parametrize("shape, levels, hp", [((8, 8, 1), 17, {}), ((10, 4, 3), 4, {"depth": 2}),
                                               ((10, 4, 3), 4, {"depth": 2, "num_classes": 3,
                                                                "decoder": "discretized_logistic"})])
def test_samplers_agree_and_stay_in_range(shape, levels, hp):
    model = _model(shape, levels, **hp)  # (10, 4, 3) with 2 blocks: the fast sampler crops 4 rows
    fast = model.sample(5, seed=3).numpy()
    assert fast.dtype == np.uint8 and fast.shape == (5, *shape) and fast.max() <= levels - 1
    np.testing.assert_array_equal(fast, model.sample(5, seed=3, method="naive").numpy())
    np.testing.assert_array_equal(fast, model.sample(5, seed=3).numpy())
    assert not np.array_equal(fast, model.sample(5, seed=4).numpy())
    assert len(np.unique(fast)) > 1
    if hp.get("num_classes"):
        y = [2, 0, 1, 1, 2]
        np.testing.assert_array_equal(model.sample(5, seed=3, labels=y).numpy(),
                                      model.sample(5, seed=3, labels=y, method="naive").numpy())
    with pytest.raises(ValueError, match="unknown sampling method"):
        model.sample(1, method="slow")


def test_save_load_round_trip(tmp_path):
    model = _model((5, 5, 3), 4, num_classes=3, decoder="discretized_logistic")
    x = _images((5, 5, 3), 4, 8)
    model.compile_default(jit_compile=False)
    model.fit(tf.data.Dataset.from_tensor_slices((x, np.arange(8) % 3)).batch(4), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert type(loaded) is type(model) and loaded.num_classes == 3
    np.testing.assert_allclose(loaded.log_prob(x).numpy(), model.log_prob(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(loaded.log_prob(x, labels=2).numpy(), model.log_prob(x, labels=2).numpy(),
                               rtol=1e-6)
    np.testing.assert_array_equal(loaded.sample(3, seed=1).numpy(), model.sample(3, seed=1).numpy())
    layer = model.h_convs[1]  # the masked layer alone: rebuilt from its config, same mask
    clone = CausalConv2D.from_config(layer.get_config())
    clone.build((None, 5, 5, 24))
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(clone.kernel_mask, layer.kernel_mask)
    h = tf.random.normal([2, 5, 5, 24])
    np.testing.assert_allclose(clone(h).numpy(), layer(h).numpy(), rtol=1e-6)


def test_conditional_marginal_is_logsumexp_over_labels(conditional, bars):
    x = bars.test[:200]
    cond = np.stack([conditional.log_prob(x, labels=y).numpy() for y in range(4)])  # [4, B]
    np.testing.assert_allclose(conditional.log_prob(x).numpy(), logsumexp(cond, 0) - math.log(4), rtol=1e-5)
    np.testing.assert_allclose(conditional.log_prob(x, labels=1).numpy(), cond[1], rtol=1e-6)
    assert abs(total_mass(conditional) - 1.0) < 1e-3  # the marginal is normalised
    assert abs(total_mass(conditional, labels=3) - 1.0) < 1e-3  # and so is p(x | y = 3)
    # training on (x, y) made the label informative: the true column explains x best
    assert (cond.argmax(0) == bars.labels["test"][:200]).mean() > 0.8
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\]"):
        conditional.log_prob(x[:2], labels=4)


def test_conditional_samples_follow_the_label(conditional):
    s = conditional.sample(40, seed=0, labels=np.repeat(np.arange(4), 10)).numpy()[..., 0]  # [40, 4, 4]
    column = s.mean(1).argmax(-1)  # the most-filled column of each sample
    assert (column == np.repeat(np.arange(4), 10)).mean() > 0.8


@pytest.mark.slow
def test_conditional_digits_samples_are_classified_as_their_label(digits):
    """A conditional model trained ~2 min on digits; a logistic regression trained on the real train
    split labels its samples as the requested digit far above chance (10%)."""
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=5000).fit(digits.train.reshape(1000, -1), digits.labels["train"])
    assert clf.score(digits.test.reshape(len(digits.test), -1), digits.labels["test"]) > 0.85  # 0.90
    keras.utils.set_random_seed(0)
    model = zoo.build_model("pixelcnn", digits, num_classes=10, seed=0)
    model.fit(digits.tf_dataset("train", 64, seed=0, with_labels=True), epochs=20, verbose=0)
    wanted = np.repeat(np.arange(10), 10)
    samples = model.sample(100, seed=0, labels=wanted).numpy()
    accuracy = (clf.predict(samples.reshape(100, -1)) == wanted).mean()
    print(f"accuracy of the classifier on conditional samples: {accuracy:.2f}")
    assert accuracy > 0.5


def test_pixel_nll_report_is_the_mean_map_of_the_exact_nll():
    model = zoo.build_model("pixelcnn", Fake((4, 5, 1), 2), width=8, depth=2, seed=0)
    x = np.random.default_rng(0).integers(0, 2, (7, 4, 5, 1)).astype(np.uint8)
    table = model.reports(x)["pixel_nll"]
    assert len(table) == 20 and set(table.columns) == {"row", "col", "channel", "nats"}
    np.testing.assert_allclose(table["nats"].sum(), -model.log_prob(x).numpy().mean(), rtol=1e-4)
