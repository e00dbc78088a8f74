"""Sample-quality metrics (zoo.sample_metrics): the distances on known feature sets, the cached digits
classifier end to end, the autoencoder fallback, bars' exact KL / TV, and the runner / benchmark rows."""
import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from zoo import data
from zoo import sample_metrics as sm


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """ZOO_CACHE_DIR in a temporary folder for the whole module (the classifier is trained once)."""
    old = os.environ.get("ZOO_CACHE_DIR")
    os.environ["ZOO_CACHE_DIR"] = str(tmp_path_factory.mktemp("zoo_cache"))
    yield Path(os.environ["ZOO_CACHE_DIR"])
    if old is None:
        del os.environ["ZOO_CACHE_DIR"]
    else:
        os.environ["ZOO_CACHE_DIR"] = old


def _corrupt(x, p, levels, rng):
    """Replace each pixel with probability p by a uniform level."""
    x = x.copy()
    hit = rng.random(x.shape) < p
    x[hit] = rng.integers(0, levels, hit.sum())
    return x


# --- distances on feature arrays ---------------------------------------------------------------
def test_frechet_distance_zero_on_itself_closed_form_and_monotone_in_noise():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 8))
    assert sm.frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    # N(0, I) vs N(m, s^2 I) in d dims: |m|^2 + d (1 - s)^2
    y = 0.5 + 2.0 * rng.normal(size=(4000, 8))
    assert sm.frechet_distance(x, y) == pytest.approx(8 * 0.25 + 8 * 1.0, rel=0.05)
    values = [sm.frechet_distance(x, x + s * rng.normal(size=x.shape)) for s in (0.1, 0.3, 1.0, 3.0)]
    assert np.all(np.diff(values) > 0), values


def _mmd_direct(a, b):
    k = lambda u, v: (u @ v.T / a.shape[1] + 1.0) ** 3  # noqa: E731
    n, m = len(a), len(b)
    kaa, kbb = k(a, a), k(b, b)
    return ((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
            - 2 * k(a, b).mean())


def test_kid_is_the_unbiased_mmd_and_its_jackknife():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(23, 3)), rng.normal(0.3, 1.0, size=(17, 3))
    value, se = sm.kid(a, b, groups=4)
    assert value == pytest.approx(_mmd_direct(a, b), rel=1e-10)
    loo = [_mmd_direct(a[np.arange(23) % 4 != g], b[np.arange(17) % 4 != g]) for g in range(4)]
    assert se == pytest.approx(np.sqrt(3 / 4 * np.sum((np.array(loo) - np.mean(loo)) ** 2)), rel=1e-8)


def test_kid_of_two_halves_is_zero_within_its_se_and_the_se_is_calibrated():
    rng = np.random.default_rng(2)
    pool = rng.normal(size=(400, 6))
    values, ses = [], []
    for _ in range(40):
        perm = rng.permutation(400)
        v, se = sm.kid(pool[perm[:200]], pool[perm[200:]])
        values.append(v)
        ses.append(se)
    assert abs(values[0]) < 3 * ses[0]
    assert abs(np.mean(values)) < 3 * np.std(values) / np.sqrt(40)  # unbiased: centred on 0
    assert 0.5 < np.mean(ses) / np.std(values) < 2.0, (np.mean(ses), np.std(values))
    v, se = sm.kid(pool[:200], pool[200:] + 1.0)
    assert v > 5 * se


def test_precision_recall_and_nearest_distance():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(600, 4))
    p, r = sm.precision_recall(real[:300], real[300:])
    assert p > 0.8 and r > 0.8
    p, r = sm.precision_recall(real[:300], rng.normal(6.0, 1.0, size=(300, 4)))
    assert p < 0.02 and r < 0.02
    # mode collapse: samples on a small part of the real support -> precision high, recall low
    p, r = sm.precision_recall(real[:300], 0.2 * rng.normal(size=(300, 4)))
    assert p > 0.9 and r < 0.3
    b = rng.normal(size=(50, 4))
    brute = np.sqrt(((real[:, None] - b[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(sm.nearest_dist(real, b), brute, rtol=1e-6, atol=1e-6)


# --- bars: exact KL / TV -------------------------------------------------------------------------
def test_bars_kl_tv_exact_on_a_hand_made_histogram(bars):
    images = data.all_binary_images(4, 4)
    np.testing.assert_array_equal(sm.state_index(images), np.arange(2 ** 16))
    a, b = images[0b0001000100010001], images[12345]  # the first column bar, and some noisy image
    samples = np.stack([a, a, a, b])  # q^ = (3/4, 1/4)
    log_pa, log_pb = bars.true_log_prob(np.stack([a, b]))
    p_all = np.exp(bars.true_log_prob(images))
    kl = 0.75 * (np.log(0.75) - log_pa) + 0.25 * (np.log(0.25) - log_pb)  # KL(q^ || p): finite
    pa, pb = np.exp(log_pa), np.exp(log_pb)
    tv = 0.5 * (abs(0.75 - pa) + abs(0.25 - pb) + (1 - pa - pb))
    rows = {n: v for n, v, _ in sm.bars_rows(bars, samples)}
    assert rows["kl_emp_true"] == pytest.approx(kl, rel=1e-9)
    assert rows["tv_emp_true"] == pytest.approx(tv, rel=1e-9)
    assert p_all.sum() == pytest.approx(1.0, abs=1e-9)
    # an exact sampler scores near the floor; a sampler ignoring the bars is far above it
    rng = np.random.default_rng(0)
    true_draws = images[rng.choice(2 ** 16, 2000, p=p_all / p_all.sum())]
    rows = {n: v for n, v, _ in sm.sample_metrics(bars, true_draws)}
    assert rows["metric_samples"] == 2000 and "fcd" not in rows  # bars: exact metrics, no classifier
    assert rows["tv_emp_true"] == pytest.approx(rows["tv_emp_true_floor"], rel=0.1)
    uniform = images[rng.integers(0, 2 ** 16, 2000)]
    far = {n: v for n, v, _ in sm.sample_metrics(bars, uniform)}
    assert far["tv_emp_true"] > rows["tv_emp_true"] + 0.2 and far["kl_emp_true"] > rows["kl_emp_true"] + 1.0


# --- the cached classifier on digits -------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_net(cache, digits):
    return sm.feature_net(digits)


def test_classifier_is_cached_and_reused(cache, digits, digits_net, monkeypatch):
    assert digits_net.trained and digits_net.kind == "classifier"
    assert digits_net.path.parent == cache / "classifiers" and digits_net.path.suffix == ".keras"
    assert digits_net.path.name.startswith("digits-8x8x1-17lv-classifier-") and digits_net.path.exists()

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache holds the classifier")

    monkeypatch.setattr(sm, "_build", no_training)
    again = sm.feature_net(digits)
    assert not again.trained and again.path == digits_net.path
    np.testing.assert_allclose(again.features(digits.test[:50]), digits_net.features(digits.test[:50]),
                               atol=1e-5)
    other = dataclasses.replace(digits, train=digits.train[::-1].copy())  # other data -> another key
    assert sm.cache_path(other, "classifier") != digits_net.path


def test_digits_metrics_real_vs_real_vs_noise(cache, digits, digits_net):
    rng = np.random.default_rng(0)

    def metrics(x):
        return {n: v for n, v, _ in sm.sample_metrics(digits, x)}

    fresh, copies = metrics(digits.valid), metrics(digits.train)
    noisy = [metrics(_corrupt(digits.train, p, 17, rng)) for p in (0.1, 0.3, 1.0)]
    assert fresh["classifier_accuracy"] > 0.85  # the feature extractor is sane
    assert fresh["fcd"] < 1.0 and abs(fresh["kid"]) < 3 * fresh["kid_se"] + 0.01
    fcd = [copies["fcd"]] + [m["fcd"] for m in noisy]
    kid = [copies["kid"]] + [m["kid"] for m in noisy]
    assert np.all(np.diff(fcd) > 0) and np.all(np.diff(kid) > 0), (fcd, kid)
    assert fresh["precision"] > 0.6 and fresh["recall"] > 0.6
    assert noisy[-1]["precision"] < 0.15 and noisy[-1]["recall"] < 0.3  # k-NN balls of outliers are wide
    assert copies["nn_closer_than_test"] == 1.0 and copies["nn_train_dist"] < 1e-3  # memorised
    assert 0.35 < fresh["nn_closer_than_test"] < 0.65 and noisy[-1]["nn_closer_than_test"] < 0.05


def test_unlabelled_data_falls_back_to_an_autoencoder(cache, digits):
    small = data.Dataset("digits_unlabelled", train=digits.train[:300], valid=digits.valid[:50],
                         test=digits.test[:200], levels=17)
    rows = {n: (v, k) for n, v, k in sm.sample_metrics(small, digits.valid[:200])}
    assert {"fd_ae", "autoencoder_mse", "kid", "precision"} <= set(rows) and "fcd" not in rows
    assert rows["fd_ae"][1] == "autoencoder" and rows["autoencoder_mse"][0] < 0.1
    noise = np.random.default_rng(0).integers(0, 17, (200, 8, 8, 1)).astype(np.uint8)
    assert {n: v for n, v, _ in sm.sample_metrics(small, noise)}["fd_ae"] > 2 * rows["fd_ae"][0]
    assert sm.feature_net(small).path.name.startswith("digits_unlabelled-8x8x1-17lv-autoencoder-")


def test_draw_samples_uses_a_fresh_seed_per_batch(bars):
    import tensorflow as tf

    class Stub:
        seeds = []

        def sample(self, n, seed=None):
            self.seeds.append(seed)
            return tf.fill([n, 2, 2, 1], tf.constant(len(self.seeds), tf.uint8))

    x = sm.draw_samples(Stub(), 7, seed=1, batch_size=3)
    assert x.shape == (7, 2, 2, 1) and x.dtype == np.uint8 and list(x[:, 0, 0, 0]) == [1, 1, 1, 2, 2, 2, 3]
    assert len(set(Stub.seeds)) == 3
    with pytest.raises(ValueError, match="uint8 samples"):
        sm.sample_metrics(bars, x.astype(np.float32))


# --- runner and benchmark ------------------------------------------------------------------------
def test_runner_logs_sample_metrics_and_benchmark_backfills(tmp_path, cache, capsys):
    from experiments import config as cfgmod
    from experiments.benchmark import backfill_sample_metrics, print_suite
    from experiments.runner import run_experiment
    from zoo.registry import config_dict
    from zoo.results import metrics_table, open_store

    assert "metric_samples" not in config_dict(cfgmod.EvalConfig())  # default: earlier run keys unchanged
    raw = {"name": "bars_quality", "dataset": {"name": "bars", "n_train": 300, "n_valid": 100, "n_test": 100},
           "train": {"epochs": 1, "batch_size": 100, "verbose": 0},
           "eval": {"n_samples": 4, "metric_samples": 300},
           "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 8, "depth": 1}}]}
    store = open_store(str(tmp_path / "r.sqlite"))
    [run_id] = run_experiment(cfgmod.parse(raw), store, out=tmp_path / "out")
    m = store.metrics(run_id, split="test").set_index("name")["value"]
    assert m["metric_samples"] == 300 and 0 < m["tv_emp_true"] <= 1 and np.isfinite(m["kl_emp_true"])
    assert m["tv_emp_true"] > m["tv_emp_true_floor"]  # one epoch of a tiny VAE is not an exact sampler

    quality = ("metric_samples", "kl_emp_true", "tv_emp_true", "kl_emp_true_floor", "tv_emp_true_floor")
    with store.engine.begin() as conn:  # as if the run had finished before the runner computed them
        conn.execute(metrics_table.delete().where(metrics_table.c.name.in_(quality)))
    assert backfill_sample_metrics(store, "bars_quality", cfgmod.parse(raw)) == [run_id]
    again = store.metrics(run_id, split="test").set_index("name")["value"]
    for name in quality:  # the saved model, the same seeds: the runner's numbers again
        assert again[name] == pytest.approx(m[name], rel=1e-9), name
    assert backfill_sample_metrics(store, "bars_quality", cfgmod.parse(raw)) == []
    print_suite(store, "bars", "bars_quality")
    assert "sample quality" in capsys.readouterr().out.split("kl_emp_true")[0]
