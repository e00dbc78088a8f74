"""Conditional generation in the runner (zoo.conditional): -log p(x|y) on a tiny conditional PixelCNN,
the class-per-row grid, label agreement with stand-in "models" whose samples are real images of the
requested class (or of the wrong one) judged by the real classifiers (digits: the cached one behind
fcd; bars: the true model's Bayes classifier), and what the runner recorded for the fixture store's
`pixelcnn_cond` run (tests/test_dashboard.py TINY)."""
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import logsumexp
from support import subset

import zoo
from zoo import conditional as C
from zoo.contract import bits_per_dim
from zoo.data import Dataset, bar_images


@pytest.fixture(scope="module")
def small_bars(bars):
    return subset(bars, 200, 50, 60)


@pytest.fixture(scope="module")
def tiny(small_bars):
    """An untrained conditional PixelCNN on bars (its numbers are what they are; the identities hold)."""
    return zoo.build_model("pixelcnn", small_bars, width=4, depth=1, num_classes=4, jit_compile=False, seed=0)


class StandIn:
    """A "model" of the contract's conditional surface whose sample given label y is one of `pools[y]`
    (real images, cycled), for `shift` = 0; with `shift` s, an image of class y + s mod K instead."""

    needs_labels, name = True, "stand_in"

    def __init__(self, pools, shift=0):
        self.pools, self.shift, self.num_classes, self.calls = pools, shift, len(pools), []

    def sample(self, n, seed=None, labels=None, **options):
        self.calls.append((n, seed, options))
        labels = np.asarray(labels)
        pick = [self.pools[(y + self.shift) % self.num_classes][i % len(self.pools[0])]
                for i, y in enumerate(labels)]
        return tf.constant(np.stack(pick))


def test_cond_nll_is_the_mean_of_minus_log_prob_given_the_labels(tiny, small_bars):
    x, y = small_bars.test, small_bars.labels["test"]
    rows = {n: v for n, v, _ in C.likelihood_rows(tiny, small_bars, "test", batch_size=25)}
    kinds = {n: k for n, _, k in C.likelihood_rows(tiny, small_bars, "test", batch_size=25)}
    cond = tiny.log_prob(x, labels=y).numpy().astype(np.float64)  # [N] in one batch
    assert rows["cond_nll"] == pytest.approx(-cond.mean(), rel=1e-5) and kinds["cond_nll"] == "exact"
    assert rows["cond_bits_per_dim"] == pytest.approx(bits_per_dim(cond.mean(), 16), rel=1e-5)
    assert rows["cond_nll_se"] == pytest.approx(cond.std(ddof=1) / np.sqrt(len(cond)), rel=1e-4)
    marginal = tiny.log_prob(x).numpy()  # the exact log (1/K) sum_y p(x|y)
    assert rows["label_info"] == pytest.approx(np.mean(cond - marginal), abs=1e-4)
    # conditioning on the true label of a random untrained net need not help; it can never beat log K
    assert rows["label_info"] <= np.log(4) + 1e-6
    wrong = tiny.log_prob(x, labels=(y + 1) % 4).numpy()
    assert not np.allclose(cond, wrong)  # the label changes the number: it is log p(x | y), not p(x)
    # the true bars: components whose log-mean-exp is zoo.data's log p(x); their mean at the labels
    lp = C.bars_log_likelihoods(x, small_bars.noise)  # [N, 4]
    assert np.allclose(logsumexp(lp, axis=1) - np.log(4), small_bars.true_log_prob(x))
    assert rows["data_cond_nll"] == pytest.approx(-lp[np.arange(len(y)), y].mean())
    assert rows["data_cond_nll"] < -small_bars.true_log_prob(x).mean()  # the label tells the bar


def test_unconditional_model_or_unlabelled_split_is_refused(small_bars, tiny):
    plain = zoo.build_model("pixelcnn", small_bars, width=4, depth=1, jit_compile=False)
    with pytest.raises(ValueError, match="unconditional"):
        C.likelihood_rows(plain, small_bars, "test")
    unlabelled = Dataset("nolabels", small_bars.train, small_bars.valid, small_bars.test, levels=2)
    with pytest.raises(ValueError, match="no labels for split 'test'"):
        C.sample_rows(tiny, unlabelled, 8)


def test_grid_row_r_holds_samples_requested_with_label_r(tiny):
    per_class = 3
    grid = C.class_rows(tiny, per_class, seed=5)  # [K * 3, 4, 4, 1], class-major
    again = tiny.sample(12, seed=5, labels=np.repeat(np.arange(4), per_class)).numpy()
    assert grid.shape == (12, 4, 4, 1) and np.array_equal(grid, again)  # the same draw, label r in row r
    # by construction: a stand-in that draws the clean bar y for label y fills row r with bar r
    bars = C.class_rows(StandIn([bar_images()[c:c + 1] for c in range(4)]), per_class, seed=0,
                        labels=2)  # a config's `labels` option never overrides the rows' labels
    assert np.array_equal(bars.reshape(4, per_class, 4, 4, 1),
                          np.repeat(bar_images()[:, None], per_class, axis=1))


def test_balanced_labels():
    y = C.balanced_labels(10, 4)
    assert y.tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1] and y.dtype == np.int32


def test_label_agreement_on_bars_is_the_true_models_bayes_classifier(small_bars):
    pools = [bar_images()[c:c + 1] for c in range(4)]  # the clean bar of each class
    right = StandIn(pools)
    rows = {n: (v, k) for n, v, k in C.sample_rows(right, small_bars, 10, batch_size=4, seed=1, steps=7)}
    assert rows["label_agreement"] == (1.0, "bayes")
    assert right.calls == [(4, 20_000, {"steps": 7}), (4, 20_001, {"steps": 7}), (2, 20_002, {"steps": 7})]
    wrong = {n: v for n, v, _ in C.sample_rows(StandIn(pools, shift=1), small_bars, 10, batch_size=4)}
    assert wrong["label_agreement"] == 0.0
    # an image as near two bars as to one (all pixels off: 4 flips from each) is credited 1/4
    blank = StandIn([np.zeros((1, 4, 4, 1), np.uint8)] * 4)
    assert {n: v for n, v, _ in C.sample_rows(blank, small_bars, 8)}["label_agreement"] == 0.25
    # the reference: exact draws of p(x | y) score the Bayes accuracy, between chance and 1
    assert 0.95 < rows["classifier_accuracy"][0] < 1.0


def test_label_agreement_on_digits_uses_the_cached_classifier(digits):
    from zoo.sample_metrics import feature_net

    net = feature_net(digits)  # the cached classifier behind fcd (trained once if the cache lacks it)
    x, y = digits.test, digits.labels["test"]
    said = C.classifier_labels(net, x)
    pools = [x[(y == c) & (said == c)][:5] for c in range(10)]  # real test images it classifies right
    assert all(len(p) == 5 for p in pools)
    rows = {n: (v, k) for n, v, k in C.sample_rows(StandIn(pools), digits, 37, batch_size=10)}
    assert rows["label_agreement"] == (1.0, "classifier")
    wrong = {n: v for n, v, _ in C.sample_rows(StandIn(pools, shift=3), digits, 37, batch_size=10)}
    assert wrong["label_agreement"] == 0.0
    assert rows["classifier_accuracy"] == (pytest.approx(float(np.mean(said == y))), "classifier")


def test_the_runner_recorded_the_conditional_run(store):
    from PIL import Image

    from zoo.images import grid

    runs = store.runs()
    rid = int(runs.loc[runs["label"] == "pixelcnn_cond", "run_id"].iloc[0])
    m = store.metrics([rid], split="test").set_index("name")
    v = m["value"]
    assert v["cond_bits_per_dim"] == pytest.approx(bits_per_dim(-v["cond_nll"], 16))
    assert v["label_info"] == pytest.approx(v["nll"] - v["cond_nll"], abs=1e-4)  # the runner's marginal nll
    assert m.loc["cond_nll", "kind"] == "exact" and m.loc["label_agreement", "kind"] == "bayes"
    assert 0.0 <= v["label_agreement"] <= 1.0 and 0.95 < v["classifier_accuracy"] < 1.0
    assert v["data_cond_nll"] < v["data_nll"]
    others = store.metrics([int(runs.loc[runs["label"] == "pixelcnn", "run_id"].iloc[0])])
    assert not {"cond_nll", "label_agreement"} & set(others["name"])  # unconditional: nothing
    arts = store.artifacts(rid).set_index("name")["path"]
    samples = np.load(arts["samples_by_class_npy"])
    assert samples.shape == (16, 4, 4, 1)  # eval.n_samples 16 // 4 classes = 4 per row
    model = zoo.load_model(arts["model"])
    again = model.sample(16, seed=0, labels=np.repeat(np.arange(4), 4)).numpy()  # the run's seed
    assert np.array_equal(samples, again)  # row r (images 4r..4r+3) requested with label r
    png = np.asarray(Image.open(arts["samples_by_class_png"]))
    assert np.array_equal(png, np.asarray(grid(samples, 2, ncols=4)))  # 4 rows of 4
