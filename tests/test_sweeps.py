"""Sweeps (experiments/sweeps.py through experiments.config.parse): a model entry's `sweep` expands into
labelled entries -- a grid (the product of the lists), `zip` (lists taken together) or both -- each
checked like a hand-written entry; the run config records the swept values; every mistake is one
ConfigError at the key. Then a tiny sweep through the runner."""
import json
import math
import re

import pytest

from experiments.config import ConfigError, parse, run_key

hypothesis = pytest.importorskip("hypothesis")
st = pytest.importorskip("hypothesis.strategies")

BASE = {"name": "sw", "dataset": {"name": "bars", "n_train": 200, "n_valid": 50, "n_test": 50},
        "seeds": [0, 1]}
NET = {"width": 8, "depth": 1, "jit_compile": False}


def _models(*models, families=True):
    return parse({**BASE, "models": list(models)}, families=families).models


def _error(*models, families=True) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse({**BASE, "models": list(models)}, families=families)
    return err.value


def test_a_grid_is_the_product_of_its_lists_with_readable_labels():
    specs = _models({"model": "vae", "hparams": NET,
                     "sweep": {"latent_dim": [2, 5], "kl_weight": [0.5, 1.0]}})
    assert [s.label for s in specs] == ["vae-latent_dim2-kl_weight0.5", "vae-latent_dim2-kl_weight1.0",
                                        "vae-latent_dim5-kl_weight0.5", "vae-latent_dim5-kl_weight1.0"]
    assert [(s.hparams["latent_dim"], s.hparams["kl_weight"]) for s in specs] == \
        [(2, 0.5), (2, 1.0), (5, 0.5), (5, 1.0)]
    assert all(s.hparams["width"] == 8 and s.index == 0 for s in specs)
    assert specs[1].sweep == {"latent_dim": 2, "kl_weight": 1.0}


def test_zipped_lists_go_together_and_combine_with_a_grid():
    zipped = {"k": [1, 5, 50], "learning_rate": [0.001, 0.001, 0.0005]}
    specs = _models({"model": "iwae", "label": "iw", "hparams": NET, "sweep": {"zip": zipped}})
    assert [(s.hparams["k"], s.hparams["learning_rate"]) for s in specs] == \
        [(1, 0.001), (5, 0.001), (50, 0.0005)]
    assert specs[2].label == "iw-k50-learning_rate0.0005"
    both = _models({"model": "iwae", "hparams": NET, "sweep": {"latent_dim": [2, 4], "zip": zipped}})
    assert len(both) == 6 and both[-1].label == "iwae-latent_dim4-k50-learning_rate0.0005"


def test_train_keys_can_be_swept_and_labels_are_safe_directory_names():
    specs = _models({"model": "vae", "hparams": NET,
                     "sweep": {"train.epochs": [1, 3], "network": ["mlp", "conv"]}})
    assert [s.label for s in specs] == ["vae-train.epochs1-network_mlp", "vae-train.epochs1-network_conv",
                                        "vae-train.epochs3-network_mlp", "vae-train.epochs3-network_conv"]
    cfg = parse({**BASE, "train": {"epochs": 9},
                 "models": [{"model": "vae", "sweep": {"train.epochs": [1, 3]}}]})
    assert [cfg.train_for(s).epochs for s in cfg.models] == [1, 3]
    weird = _models({"model": "vae", "sweep": {"obs": [[1, 2], "a/b c"]}}, families=False)
    assert [s.label for s in weird] == ["vae-obs_1__2_", "vae-obs_a_b_c"]  # no / or spaces in a path


def test_the_run_config_records_the_swept_values_and_other_run_keys_stay():
    plain = {"model": "vae", "hparams": {"latent_dim": 3, **NET}}
    swept = {"model": "iwae", "hparams": NET, "sweep": {"k": [1, 5], "train.epochs": [2]}}
    cfg = parse({**BASE, "models": [plain, swept]})
    resolved = cfg.resolved(cfg.models[2], 1)
    assert resolved["sweep"] == {"k": 5, "train.epochs": 2} and resolved["label"] == "iwae-k5-train.epochs2"
    assert resolved["hparams"]["k"] == 5 and resolved["train"]["epochs"] == 2
    alone = parse({**BASE, "models": [plain]})
    for other in (alone, parse({**BASE, "models": [{**plain, "sweep": None}]}),
                  parse({**BASE, "models": [{**plain, "sweep": {}}]})):
        assert "sweep" not in other.resolved(other.models[0], 0)
        assert run_key(other.resolved(other.models[0], 0)) == run_key(cfg.resolved(cfg.models[0], 0))
    assert set(cfg.resolved(cfg.models[0], 0)) == {"experiment", "dataset", "model", "label", "seed",
                                                   "hparams", "train", "eval"}
    keys = {run_key(cfg.resolved(s, seed)) for s in cfg.models for seed in cfg.seeds}
    assert len(keys) == 3 * 2


@pytest.mark.parametrize("entry, path, message", [
    ({"model": "vae", "sweep": {"latnt_dim": [2]}}, ("sweep", "latnt_dim"),
     r"models\[1\]\.sweep\.latnt_dim: unknown key 'latnt_dim' .*'latent_dim'.*valid keys: .*width"),
    ({"model": "vae", "sweep": {"train.epoch": [2]}}, ("sweep", "train.epoch"),
     r"models\[1\]\.sweep\.train\.epoch: .*did you mean 'train.epochs'.*train\.batch_size"),
    ({"model": "vae", "sweep": {"train.strategy": ["auto", "default"]}}, ("sweep", "train.strategy"),
     r"where a run trains.*cannot be swept"),
    ({"model": "vae", "sweep": {"latent_dim": []}}, ("sweep", "latent_dim"), r"= \[\]: give a non-"),
    ({"model": "vae", "sweep": {"latent_dim": 4}}, ("sweep", "latent_dim"), r"latent_dim = 4: give a non-"),
    ({"model": "vae", "sweep": {"latent_dim": [2, 2]}}, ("sweep", "latent_dim"), r"2 repeats"),
    ({"model": "vae", "sweep": {"zip": {"k": [1, 5], "latent_dim": [2]}}}, ("sweep", "zip"),
     r"zipped lists have different lengths \(k: 2, latent_dim: 1\)"),
    ({"model": "vae", "sweep": {"zip": {}}}, ("sweep", "zip"), r"give the lists swept together"),
    ({"model": "vae", "sweep": {"zip": {"k": [1, 5, 1], "width": [8, 9, 8]}}}, ("sweep", "zip"),
     r"positions 1 and 3 give the same values \{'k': 1, 'width': 8\}"),
    ({"model": "vae", "sweep": {"k": [1], "zip": {"k": [2]}}}, ("sweep", "zip", "k"), r"'k' is swept twice"),
    ({"model": "vae", "hparams": {"latent_dim": 2}, "sweep": {"latent_dim": [2, 5]}}, ("sweep", "latent_dim"),
     r"'latent_dim' is swept and set in this entry's hparams"),
    ({"model": "vae", "train": {"epochs": 2}, "sweep": {"train.epochs": [2, 5]}}, ("sweep", "train.epochs"),
     r"'epochs' is swept and set in this entry's train"),
    ({"model": "vae", "sweep": {"latent_dim": ["two", 5]}}, ("sweep", "latent_dim"),
     r"models\[1\]\.sweep\.latent_dim \(run vae-latent_dim_two\): latent_dim = 'two' is a string"),
    ({"model": "vae", "sweep": {"network": ["mlp", "mpl"]}}, ("sweep", "network"), r"did you mean 'mlp'"),
    ({"model": "vae", "sweep": {"zip": {"train.epochs": [1, 0]}}}, ("sweep", "zip", "train.epochs"),
     r"models\[1\]\.sweep\.train\.epochs \(run vae-train\.epochs0\): epochs = 0: give a whole number >= 1"),
    ({"model": "vae", "sweep": {"obs": ["a b", "a/b"]}}, ("sweep",), r"give the same label 'vae-obs_a_b'"),
    ({"model": "vae", "sweep": [2, 5]}, ("sweep",), r"sweep: expected a mapping"),
    ({"model": "vae", "sweep": {"seed": [0, 1]}}, ("sweep", "seed"), r"give the experiment's seeds"),
    ({"model": "vae", "sweep": {"a": list(range(40)), "b": list(range(40))}}, ("sweep",),
     r"expands into 1,600 runs per seed; at most 1,000"),
])
def test_every_mistake_is_one_config_error_at_the_key(entry, path, message):
    err = _error({"model": "pixelcnn"}, entry)  # the second entry: named models[1]
    assert err.path == ("models", 1, *path)
    assert re.search(message, str(err)), str(err)


def test_swept_labels_must_stay_unique_across_entries():
    err = _error({"model": "vae", "sweep": {"latent_dim": [2, 5]}},
                 {"model": "iwae", "label": "vae-latent_dim5"})
    assert err.path == ("models", 1, "label") and "labels must be unique" in str(err)
    err = _error({"model": "vae", "sweep": {"latent_dim": [2]}},
                 {"model": "vae", "sweep": {"kl_weight": [1.0]}})
    assert err.path == ("models", 1, "label")  # two entries labelled vae: set label on one


def test_init_from_a_swept_entry_maps_per_value_or_is_refused():
    source = {"model": "vae", "hparams": NET, "sweep": {"latent_dim": [2, 5]}}
    specs = _models(source, {"model": "vae", "label": "ft", "init_from": "vae", "hparams": NET,
                             "sweep": {"latent_dim": [2, 5], "kl_weight": [0.5, 2.0]}})
    assert {s.label: s.init_from for s in specs[2:]} == {
        "ft-latent_dim2-kl_weight0.5": "vae-latent_dim2", "ft-latent_dim2-kl_weight2.0": "vae-latent_dim2",
        "ft-latent_dim5-kl_weight0.5": "vae-latent_dim5", "ft-latent_dim5-kl_weight2.0": "vae-latent_dim5"}
    one = _models(source, {"model": "vae", "label": "ft", "init_from": "vae-latent_dim5"})  # one run by name
    assert one[-1].init_from == "vae-latent_dim5"
    for follower in ({"model": "vae", "label": "ft", "init_from": "vae"},  # which of the sweep's runs?
                     {"model": "vae", "label": "ft", "init_from": "vae", "sweep": {"latent_dim": [3]}}):
        err = _error(source, follower)
        assert err.path == ("models", 1, "init_from")
        assert "names the swept entry 'vae' (runs vae-latent_dim2, vae-latent_dim5)" in str(err)


# --- properties ----------------------------------------------------------------------------------
KEYS = ["latent_dim", "width", "depth", "kl_weight", "learning_rate", "train.epochs", "train.batch_size"]
lists = st.lists(st.integers(1, 50), min_size=1, max_size=4, unique=True)


@st.composite
def sweeps(draw):
    """A grid over some keys and, now and then, a zip group of equal-length lists over others."""
    keys = draw(st.lists(st.sampled_from(KEYS), unique=True, min_size=1, max_size=4))
    n_zip = draw(st.integers(0, len(keys) - 1))
    sweep = {k: draw(lists) for k in keys[n_zip:]}
    if n_zip:
        n = draw(st.integers(1, 3))
        sweep["zip"] = {k: draw(st.lists(st.integers(1, 50), min_size=n, max_size=n, unique=True))
                        for k in keys[:n_zip]}
    return sweep


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(sweeps())
def test_a_sweep_expands_into_the_product_of_its_list_lengths_with_unique_labels(sweep):
    specs = _models({"model": "vae", "sweep": sweep}, "iwae", families=False)
    zipped = sweep.get("zip", {})
    n = math.prod(len(v) for k, v in sweep.items() if k != "zip") * (len(next(iter(zipped.values())))
                                                                       if zipped else 1)
    assert len(specs) == n + 1 and specs[-1].label == "iwae"
    labels = [s.label for s in specs]
    assert len(set(labels)) == len(labels) and all("/" not in label and " " not in label for label in labels)
    for spec in specs[:-1]:
        assert set(spec.sweep) == {k for k in sweep if k != "zip"} | set(zipped)
        for key, value in spec.sweep.items():
            got = spec.train.get(key[6:]) if key.startswith("train.") else spec.hparams.get(key)
            assert got == value
    combos = {json.dumps(s.sweep, sort_keys=True) for s in specs[:-1]}
    assert len(combos) == n  # every combination once


anything = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-3, 60), st.text(max_size=4),
                                  st.sampled_from(KEYS + ["zip", "k", "network"])),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
                            st.one_of(st.sampled_from(KEYS + ["zip", "k", "network"]), st.text(max_size=4)),
                            inner, max_size=3), max_leaves=8)


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(st.one_of(sweeps(), anything))
def test_any_sweep_parses_or_raises_a_config_error_at_its_key(sweep):
    raw = {**BASE, "models": [{"model": "vae", "sweep": sweep}]}
    try:
        cfg = parse(raw)
    except ConfigError as err:
        at = raw
        for step in err.path[:-1]:  # the path leads to the offending key in the mapping
            at = at[step]
        assert str(err.path[-1]) in str(err) or repr(err.path[-1]) in str(err)
        assert "\n" not in str(err)
        return
    assert all(len(run_key(cfg.resolved(s, 0))) == 16 for s in cfg.models)


# --- through the runner ----------------------------------------------------------------------------
def test_a_tiny_sweep_runs_and_each_run_records_its_swept_value(tmp_path, monkeypatch):
    from experiments import runner
    from zoo.results import open_store

    monkeypatch.setattr(runner, "OUTPUT_STEPS", (runner.split_metrics,))  # the test nats; no reports here

    raw = {**BASE, "seeds": [0], "train": {"epochs": 1, "batch_size": 100, "verbose": 0},
           "eval": {"is_k": 0, "n_samples": 4, "metric_samples": 0, "batch_size": 100},
           "models": [{"model": "vae", "hparams": NET, "sweep": {"latent_dim": [1, 2]}}]}
    store = open_store(str(tmp_path / "s.sqlite"))
    ids = runner.run_experiment(parse(raw), store, out=str(tmp_path / "runs"))
    runs = store.runs().set_index("run_id").loc[ids]
    assert list(runs["label"]) == ["vae-latent_dim1", "vae-latent_dim2"]
    assert list(runs["status"]) == ["FINISHED", "FINISHED"], list(runs["error"])
    configs = runs["config"].map(json.loads)
    assert [c["sweep"] for c in configs] == [{"latent_dim": 1}, {"latent_dim": 2}]
    assert [c["hparams"]["latent_dim"] for c in configs] == [1, 2]
    assert all(f"/vae-latent_dim{d}/" in p for d, p in zip((1, 2), runs["out_dir"]))
    nll = store.metrics(ids, split="test", names=["nll"]).set_index("run_id")["value"]
    assert nll.notna().all() and (nll > 0).all()


def test_models_option_names_a_sweep_by_its_base_label():
    """`run --models vae` selects every run of the vae sweep; an expanded label selects one run."""
    import argparse

    from experiments.__main__ import _apply_options, _check_labels

    raw = {"name": "s", "dataset": "bars", "models": [
        {"model": "vae", "hparams": {"width": 8, "depth": 1}, "sweep": {"latent_dim": [1, 2]}},
        {"model": "iwae", "label": "vae_like", "hparams": {"width": 8, "depth": 1}}]}
    for wanted, labels in [("vae", ["vae-latent_dim1", "vae-latent_dim2"]),
                           ("vae-latent_dim2", ["vae-latent_dim2"]), ("vae_like", ["vae_like"])]:
        cfg = parse(raw, families=False)
        _check_labels(cfg, wanted)
        _apply_options(cfg, argparse.Namespace(models=wanted, epochs=None, strategy=None))
        assert [m.label for m in cfg.models] == labels
    with pytest.raises(ConfigError, match="unknown label 'va'"):
        _check_labels(parse(raw, families=False), "va")
