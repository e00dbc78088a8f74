"""M1 (a classifier on latent means, Kingma et al. 2014) and a model's own classifier: their test errors,
the runner's `semi_supervised` step, and `eval.ssl_labels` in configs."""
import numpy as np
import pytest
import yaml

from experiments import config as cfgmod
from zoo.data import Dataset
from zoo.semisupervised import PAPER_TABLE1, classifier_error, latent_features, m1_error, paper_rows, ssl_rows


def _blobs(n, classes=10, noise=0.05, seed=0):
    """Features that separate the classes: one-hot of the label plus small noise, `[n, classes]`."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    return np.eye(classes)[y] + noise * rng.normal(size=(n, classes)), y


def test_m1_on_separable_features_makes_no_error():
    x, y = _blobs(1000)
    xt, yt = _blobs(500, seed=1)
    assert m1_error(x, y, xt, yt, n=100) == 0.0
    assert m1_error(x, y, xt, yt, n=10) == 0.0  # one label per class is enough here


def test_m1_on_noise_is_at_chance():
    rng = np.random.default_rng(0)
    y, yt = rng.integers(0, 10, 1000), rng.integers(0, 10, 2000)
    err = m1_error(rng.normal(size=(1000, 8)), y, rng.normal(size=(2000, 8)), yt, n=600)
    assert 0.85 < err < 0.95  # chance: 0.9 for 10 classes


class _Stub:
    """A model stand-in: `encode` gives (mean, sigma) of shape [B, 2, 2]; `classify` says class 0."""

    has_encoder = can_classify = True

    def encode(self, x):
        mu = np.repeat(x.reshape(len(x), -1)[:, :1].astype(float), 4, axis=1).reshape(-1, 2, 2)
        return mu, np.ones_like(mu)

    def classify(self, x):
        return np.eye(3)[np.zeros(len(x), int)]  # [B, K]


def _dataset():
    """Images whose first pixel is the label (3 classes), so the stub's mean separates them."""
    rng = np.random.default_rng(0)
    y = {s: rng.integers(0, 3, n) for s, n in (("train", 90), ("valid", 9), ("test", 60))}
    x = {s: np.broadcast_to(v[:, None, None, None], (len(v), 2, 2, 1)).astype(np.uint8) for s, v in y.items()}
    return Dataset("stub", **x, levels=3, labels=y)


def test_features_take_the_first_of_a_tuple_flattened_in_batches():
    ds = _dataset()
    z = latent_features(_Stub(), ds.train, batch_size=7)
    assert z.shape == (90, 4)
    np.testing.assert_array_equal(z[:, 0], ds.labels["train"])


def test_ssl_rows_m1_and_own_classifier():
    ds = _dataset()
    rows = ssl_rows(_Stub(), ds, [3, 30], seed=0)
    got = {name: (value, kind) for name, value, kind in rows}
    assert set(got) == {"m1_error_n3", "m1_error_n30", "ssl_error"}
    assert {k for _, k in got.values()} == {"classifier"}
    assert got["m1_error_n30"][0] == 0.0
    assert got["ssl_error"][0] == pytest.approx(np.mean(ds.labels["test"] != 0))  # it always says 0
    assert classifier_error(_Stub(), ds.test, ds.labels["test"], batch_size=7) == got["ssl_error"][0]
    no_labels = Dataset("stub", ds.train, ds.valid, ds.test, levels=3)
    assert ssl_rows(_Stub(), no_labels, [3]) == []
    bare = type("Bare", (), {"has_encoder": False, "can_classify": False})()
    assert [n for n, _, _ in ssl_rows(bare, ds, [3])] == []  # no encoder, no classifier


def test_paper_table_is_kingma_table_1():
    assert set(PAPER_TABLE1) == {"M1+TSVM", "M2", "M1+M2"}
    assert {n for by_n in PAPER_TABLE1.values() for n in by_n} == {100, 600, 1000, 3000}
    assert PAPER_TABLE1["M1+M2"][100] == (3.33, 0.14) and PAPER_TABLE1["M2"][3000] == (3.92, 0.63)
    assert len(paper_rows()) == 12


# --- the runner step ----------------------------------------------------------------------------
DIGITS = {"name": "ssl", "dataset": "digits", "train": {"epochs": 3, "batch_size": 100, "verbose": 0},
          "eval": {"ssl_labels": [100, 600]},
          "models": [{"model": "vae", "hparams": {"latent_dim": 8, "width": 64, "depth": 1}}]}


def test_the_runner_step_records_m1_errors_of_a_trained_vae(digits, tmp_path):
    import keras

    import zoo
    from experiments.runner import OUTPUT_STEPS, Finished, semi_supervised
    from zoo.results import open_store

    assert semi_supervised in OUTPUT_STEPS
    cfg = cfgmod.parse(DIGITS)
    keras.utils.set_random_seed(0)
    model = zoo.build_model("vae", digits, seed=0, **cfg.models[0].hparams)
    model.fit(digits.tf_dataset("train", 100, seed=0), epochs=5, verbose=0)
    store = open_store(str(tmp_path / "s.sqlite"))
    rid = store.start_run(experiment="ssl", model="vae", label="vae", dataset="digits", seed=0,
                          config=cfg.resolved(cfg.models[0], 0), run_key="k")
    semi_supervised(Finished(cfg, cfg.models[0], model, digits, store, rid, tmp_path, 0))
    m = store.metrics([rid]).set_index("name")
    store.dispose()
    assert set(m.index) == {"m1_error_n100", "m1_error_n600"}
    assert set(m["kind"]) == {"classifier"} and set(m["split"]) == {"test"}
    assert (m["value"] >= 0).all() and (m["value"] < 0.6).all()  # far better than chance (0.9)


# --- config ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("value, message", [
    ([0], r"ssl_labels = \[0\]: 0 is not a positive whole number"),
    ([100, 1.5], r"ssl_labels = .*1.5 is not a positive whole number"),
    ([100, 100], r"ssl_labels = \[100, 100\]: an N repeats"),
    ("100", r"ssl_labels = '100' is a string; expected a list"),
])
def test_bad_ssl_labels_name_the_key(value, message):
    with pytest.raises(cfgmod.ConfigError, match=message) as err:
        cfgmod.parse({**DIGITS, "eval": {"ssl_labels": value}}, families=False)
    assert err.value.path == ("eval", "ssl_labels")


def test_ssl_labels_need_a_labelled_dataset_large_enough():
    bars = cfgmod.parse({**DIGITS, "dataset": {"name": "bars", "n_train": 50}}, families=False)
    with pytest.raises(cfgmod.ConfigError, match=r"eval.ssl_labels = \[100, 600\]: 'bars' has 50 training "
                                                 r"examples; give N <= 50"):
        bars.load_dataset()
    ds = _dataset()
    with pytest.raises(cfgmod.ConfigError, match=r"dataset 'stub' has no train or test labels; drop "
                                                 r"ssl_labels"):
        cfgmod.EvalConfig(ssl_labels=[10]).check_dataset(Dataset("stub", ds.train, ds.valid, ds.test, 3))
    cfgmod.EvalConfig().check_dataset(Dataset("stub", ds.train, ds.valid, ds.test, 3))  # none asked: fine


def test_ssl_labels_enter_the_run_key_only_when_set(tmp_path):
    plain = cfgmod.parse({**DIGITS, "eval": {}}, families=False)
    empty = cfgmod.parse({**DIGITS, "eval": {"ssl_labels": []}}, families=False)
    asked = cfgmod.parse(DIGITS, families=False)
    spec = plain.models[0]
    assert "ssl_labels" not in plain.resolved(spec, 0)["eval"]
    assert cfgmod.run_key(plain.resolved(spec, 0)) == cfgmod.run_key(empty.resolved(spec, 0))
    assert asked.resolved(spec, 0)["eval"]["ssl_labels"] == (100, 600)
    assert cfgmod.run_key(plain.resolved(spec, 0)) != cfgmod.run_key(asked.resolved(spec, 0))
    path = tmp_path / "c.yaml"  # from a file too; the CLI stops before the store opens
    path.write_text(yaml.safe_dump({**DIGITS, "dataset": {"name": "bars", "n_train": 50}}))
    from experiments.__main__ import main

    assert main(["run", str(path), "--db", str(tmp_path / "r.sqlite")]) == 2
    assert not (tmp_path / "r.sqlite").exists()
