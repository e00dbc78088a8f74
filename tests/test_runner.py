"""Configs, the runner and its CLI: validation errors, a smoke run, resume, DIVERGED, FAILED."""
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from experiments import config as cfgmod
from experiments.__main__ import main
from experiments.runner import run_experiment
from zoo.results import open_store

ROOT = Path(__file__).resolve().parent.parent
TINY = {"name": "tiny_bars", "dataset": {"name": "bars", "n_train": 400, "n_valid": 100, "n_test": 100},
        "seeds": [0], "train": {"epochs": 2, "batch_size": 100, "verbose": 0},
        "eval": {"is_k": 20, "n_samples": 16},
        "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 16, "depth": 1}},
                   {"model": "iwae", "label": "iwae_k3",
                    "hparams": {"latent_dim": 2, "width": 16, "depth": 1, "k": 3}}]}


def _write(tmp_path, raw):
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("patch, message", [
    ({"modles": []}, r"unknown key 'modles'.*did you mean 'models'"),
    ({"train": {"epoch": 3}}, r"unknown key 'epoch' in .*train \(did you mean 'epochs'\?\).*batch_size"),
    ({"eval": {"isk": 3}}, r"unknown key 'isk' in .*eval.*is_k"),
    ({"models": [{"model": "vae", "hparams": {"latnt_dim": 2}}]}, r"unknown key 'latnt_dim'.*'latent_dim'"),
    ({"models": [{"model": "vea"}]}, r"unknown model 'vea' \(did you mean 'vae'\?\); valid models: .*vae"),
    ({"models": [{"model": "vae", "lable": "x"}]}, r"unknown key 'lable'.*'label'"),
    ({"models": ["vae", "vae"]}, r"labels must be unique"),
    ({"models": [{"model": "vae", "train": {"epoks": 1}}]}, r"unknown key 'epoks'"),
])
def test_config_errors_name_the_key(patch, message):
    with pytest.raises(ValueError, match=message):
        cfgmod.parse({**TINY, **patch})


def test_missing_config_file_lists_shipped_ones(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"not found; shipped configs .*quick.yaml"):
        cfgmod.load(tmp_path / "nope.yaml")
    assert main(["run", str(tmp_path / "nope.yaml"), "--db", str(tmp_path / "r.sqlite")]) == 2


def test_shipped_configs_parse():
    names = sorted(p.name for p in (ROOT / "experiments" / "configs").glob("*.yaml"))
    assert {"bars.yaml", "quick.yaml", "digits.yaml", "binarized_mnist.yaml"} <= set(names)
    for name in names:
        cfg = cfgmod.load(ROOT / "experiments" / "configs" / name)
        assert cfg.models and cfg.seeds


def test_cli_smoke_run_records_everything(tmp_path):
    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "experiments", "run", str(_write(tmp_path, TINY)), "--db", str(db),
               "--out", str(out)]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = open_store(str(db))
    runs = store.runs()
    assert list(runs["label"]) == ["vae", "iwae_k3"] and set(runs["status"]) == {"FINISHED"}
    assert list(runs["likelihood"]) == ["elbo", "iwae"] and (runs["param_count"] > 0).all()
    m = store.metrics(split="test").set_index(["run_id", "name"])
    vae_id, iwae_id = runs["run_id"]
    assert m.loc[(vae_id, "nll"), "kind"] == "elbo" and m.loc[(iwae_id, "nll"), "kind"] == "iwae"
    assert m.loc[(vae_id, "is_nll"), "kind"] == "iwae" and m.loc[(vae_id, "is_k"), "value"] == 20
    nll = m.loc[(vae_id, "nll"), "value"]
    assert m.loc[(vae_id, "bits_per_dim"), "value"] == pytest.approx(nll / 16 / np.log(2))
    assert nll == pytest.approx(m.loc[(vae_id, "distortion"), "value"] + m.loc[(vae_id, "rate"), "value"])
    assert m.loc[(vae_id, "data_nll"), "value"] == pytest.approx(6.57, abs=0.3)  # bars' true density
    hist = store.history(vae_id)
    assert sorted(hist["epoch"].unique()) == [0, 1]
    assert {"loss", "val_loss", "rate", "distortion", "examples_per_sec"} <= set(hist["name"])
    arts = store.artifacts(vae_id).set_index("name")["path"]
    samples = np.load(arts["samples_npy"])
    assert samples.shape == (16, 4, 4, 1) and samples.dtype == np.uint8
    for name in ("model", "samples_png", "history_csv"):
        assert Path(arts[name]).exists()
    assert any(Path(arts["tensorboard"]).rglob("*tfevents*"))
    curve = pd.read_csv(arts["report_is_vs_k"])  # the IWAE gap closing with k, for the dashboard
    assert list(curve["k"]) == [1, 2, 5, 10, 20]  # up to eval.is_k
    assert curve["nll"].iloc[-1] < curve["nll"].iloc[0]
    np.testing.assert_allclose(curve["nll"], -curve["log_prob"])
    # the plan first, then a line as each run starts and ends
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[runner]")]
    assert "plan: experiment 'tiny_bars' on bars (400 training images, 4x4x1, 2 levels): 2 run(s)" in lines[0]
    assert "1/2 vae" in lines[1] and "no earlier run" in lines[1] and "2/2 iwae_k3" in lines[2]
    assert any(re.search(r"run 2/2 iwae_k3 \(seed 0\): FINISHED in \d+ s \(training", line) for line in lines)


def test_the_plan_estimates_from_earlier_runs_in_the_store(tmp_path, capsys):
    from experiments.runner import print_plan
    from zoo import data

    store = open_store(str(tmp_path / "r.sqlite"))
    cfg = cfgmod.parse(TINY)
    for spec, wall in zip(cfg.models, (30.0, 50.0)):
        resolved = cfg.resolved(spec, 0)
        rid = store.start_run(experiment=cfg.name, model=spec.model, label=spec.label, dataset="bars", seed=0,
                              config=resolved, run_key=cfgmod.run_key(resolved), code_version="x")
        store.finish_run(rid, "FINISHED", wall_time=wall)
    cfg.train.epochs = 4  # the vae entry: same entry, twice the epochs -> scaled
    cfg.models[1].train = {"epochs": 2}  # the iwae entry keeps its settings -> the same run key
    print_plan(cfg, [(m, 0) for m in cfg.models], data.load("bars", n_train=400), store)
    out = capsys.readouterr().out
    assert "~60 s (run 1, by epochs)" in out and "~50 s (1 earlier run(s) of these settings)" in out
    assert "estimated time: ~110 s for the 2 run(s) with an estimate" in out


def test_sample_options_of_an_entry_are_checked_at_load():
    raw = {**TINY, "models": [{"model": "vae", "sample": {"method": "ddim"}}]}
    with pytest.raises(ValueError, match=r"models\[0\]\.sample: unknown sample option 'method'"):
        cfgmod.parse(raw)
    raw = {**TINY, "models": [{"model": "diffusion", "sample": {"method": "ddmi"}}]}
    with pytest.raises(ValueError, match=r"unknown sampling method 'ddmi'.*did you mean 'ddim'"):
        cfgmod.parse(raw)


class _Crash(keras.callbacks.Callback):
    def __init__(self, at_epoch, exc=RuntimeError):
        super().__init__()
        self.at, self.exc, self.seen = at_epoch, exc, []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at:
            raise self.exc("simulated crash")


def _vae_only(epochs, **train):
    raw = {**TINY, "models": TINY["models"][:1],
           "train": {**TINY["train"], "epochs": epochs, "checkpoint_every": "epoch", **train}}
    return cfgmod.parse(raw)


def test_crash_is_failed_then_resumes_where_it_stopped(tmp_path):
    store = open_store(str(tmp_path / "r.sqlite"))
    cfg = _vae_only(epochs=4)
    crash = _Crash(at_epoch=1)
    [run_id] = run_experiment(cfg, store, out=tmp_path / "out", extra_callbacks=[crash])
    row = store.run(run_id)
    assert row["status"] == "FAILED" and "simulated crash" in row["error"]
    assert sorted(store.history(run_id)["epoch"].unique()) == [0, 1]  # recorded epochs are kept

    again = _Crash(at_epoch=-1)
    assert run_experiment(cfg, store, out=tmp_path / "out", extra_callbacks=[again]) == [run_id]
    assert again.seen == [2, 3]  # BackupAndRestore: training continued after the last finished epoch
    row = store.run(run_id)
    assert row["status"] == "FINISHED" and row["attempts"] == 2 and row["error"] is None
    assert sorted(store.history(run_id)["epoch"].unique()) == [0, 1, 2, 3]
    assert len(store.runs()) == 1


@pytest.mark.parametrize("model, train", [
    ({"model": "vae", "hparams": {"latent_dim": 2, "width": 16, "depth": 1}}, {}),
    ({"model": "vae", "hparams": {"latent_dim": 2, "width": 16, "depth": 1}},
     {"lr_schedule": "cosine", "steps_per_epoch": 3}),  # a repeated stream; the schedule continues
    ({"model": "gan", "hparams": {"latent_dim": 2, "width": 16, "depth": 1, "ais_steps": 2, "ais_chains": 2}},
     {}),  # two optimizers, the noise stream
], ids=["vae", "vae-cosine-capped", "gan"])
def test_a_resumed_run_continues_as_the_uninterrupted_run(tmp_path, model, train):
    """6 epochs straight through, and 6 epochs killed after the 3rd then resumed from its checkpoint:
    every epoch's numbers agree (data order, noise stream, optimizer and learning-rate schedule all
    continue). The report: a bars VAE resumed at epoch 3 recorded loss 8.0510 against 8.0729."""
    raw = {**TINY, "models": [model], "eval": {"is_k": 0, "n_samples": 4},
           "train": {**TINY["train"], "epochs": 6, "checkpoint_every": "epoch", **train}}
    histories = []
    for crash_at in (-1, 2):
        store = open_store(str(tmp_path / f"r{crash_at}.sqlite"))
        out = tmp_path / f"out{crash_at}"
        crash = [_Crash(at_epoch=crash_at)]
        [run_id] = run_experiment(cfgmod.parse(raw), store, out=out, extra_callbacks=crash)
        if crash_at >= 0:
            again = _Crash(at_epoch=-1)
            assert run_experiment(cfgmod.parse(raw), store, out=out, extra_callbacks=[again]) == [run_id]
            assert again.seen == [3, 4, 5] and store.run(run_id)["status"] == "FINISHED"
        h = store.history(run_id).pivot(index="epoch", columns="name", values="value")
        histories.append(h.drop(columns=[c for c in h if "seconds" in c or "per_sec" in c]))
    straight, resumed = histories
    assert list(resumed.index) == list(range(6)) and list(resumed.columns) == list(straight.columns)
    np.testing.assert_allclose(resumed.to_numpy(), straight.to_numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("stop_after", ["artifact model", pytest.param("metric nll", marks=pytest.mark.slow)],
                         ids=["while-evaluating", "while-drawing-samples"])  # (the second: 74 s, slow)
def test_killed_after_training_finishes_without_training_again(tmp_path, stop_after):
    """SIGKILL once training has ended -- after the model is saved (evaluation under way), or after
    the test metrics (samples being drawn) -- then the same command again: it evaluates the trained
    model it kept, trains nothing, and records each metric and artifact once."""
    import signal
    import time

    raw = {**TINY, "models": TINY["models"][:1], "eval": {"is_k": 2000, "is_examples": 100, "n_samples": 16},
           "train": {**TINY["train"], "epochs": 3}}
    cfg, db, out = _write(tmp_path, raw), tmp_path / "r.sqlite", tmp_path / "out"
    command = [sys.executable, "-m", "experiments", "run", str(cfg), "--db", str(db), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    kind, name = stop_after.split()
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            store = open_store(str(db))
            table = store.artifacts() if kind == "artifact" else store.metrics(split="test")
            store.dispose()
            if name in set(table["name"]):
                break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    store = open_store(str(db))
    [run_id] = store.runs()["run_id"]
    history = store.history(run_id)
    assert store.run(run_id)["status"] == "RUNNING" and sorted(history["epoch"].unique()) == [0, 1, 2]
    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "evaluating only" in again.stdout and "Epoch" not in again.stdout
    row = store.run(run_id)
    assert row["status"] == "FINISHED" and row["attempts"] == 2 and len(store.runs()) == 1
    pd.testing.assert_frame_equal(store.history(run_id), history)  # nothing trained again
    metrics = store.metrics(run_id)
    assert not metrics.duplicated(["split", "name"]).any()
    assert {"nll", "is_nll", "bits_per_dim"} <= set(metrics.query("split == 'test'")["name"])
    arts = store.artifacts(run_id)
    assert not arts["name"].duplicated().any()
    assert {"model", "samples_png", "samples_npy", "history_csv"} <= set(arts["name"])
    assert all(Path(p).exists() for p in arts["path"])
    run_dir = Path(row["out_dir"])
    assert not (run_dir / "trained.keras").exists() and not (run_dir / "backup").exists()


@pytest.mark.parametrize("fault", ["disk full", "folder blocked"])
def test_an_unwritable_output_fails_the_run_naming_the_path(tmp_path, monkeypatch, fault):
    """The second run's outputs cannot be written (the disk fills while it saves its samples; or its
    folder's place is taken by a file): it ends FAILED with the path and the fix as the error's last
    line, the first run and the store are intact, and once the space is back the same command
    finishes it."""
    import errno

    store = open_store(str(tmp_path / "r.sqlite"))
    cfg = cfgmod.parse({**TINY, "train": {**TINY["train"], "epochs": 1}, "eval": {"is_k": 5, "n_samples": 4}})
    out = tmp_path / "out"
    blocked = out / "tiny_bars" / "iwae_k3"
    if fault == "disk full":
        real = np.save

        def full(path, *args, **kwargs):
            if "iwae_k3" in str(path):
                raise OSError(errno.ENOSPC, "No space left on device", str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(np, "save", full)
    else:
        blocked.parent.mkdir(parents=True)
        blocked.write_text("not a folder")
    vae, iwae = run_experiment(cfg, store, out=out)
    assert store.run(vae)["status"] == "FINISHED" and len(store.metrics(vae)) > 5
    row = store.run(iwae)
    last = row["error"].strip().splitlines()[-1]
    assert row["status"] == "FAILED" and last.startswith("cannot write ") and str(blocked) in last, last
    assert ("No space left on device" if fault == "disk full" else "Not a directory") in last
    assert "free disk space or make the folder writable" in last
    monkeypatch.undo()
    if fault != "disk full":
        blocked.unlink()
    reopened = open_store(str(tmp_path / "r.sqlite"))
    assert reopened.run(vae)["status"] == "FINISHED"
    assert run_experiment(cfg, reopened, out=out) [1] == iwae
    assert reopened.run(iwae)["status"] == "FINISHED" and reopened.run(iwae)["attempts"] == 2


@pytest.mark.parametrize("every, crash_at, resumed_at", [(8, 2, 2), (12, 1, 0), ("1000s", 2, 0)])
def test_checkpoint_every_steps_or_seconds_resumes_at_the_last_checkpoint(tmp_path, every, crash_at,
                                                                          resumed_at):
    # 400 images / batch 100 = 4 steps an epoch: every 8 steps = after epochs 2 and 4 (1-based)
    store = open_store(str(tmp_path / "r.sqlite"))
    cfg = _vae_only(epochs=4, checkpoint_every=every)
    run_experiment(cfg, store, out=tmp_path / "out", extra_callbacks=[_Crash(at_epoch=crash_at)])
    again = _Crash(at_epoch=-1)
    [run_id] = run_experiment(cfg, store, out=tmp_path / "out", extra_callbacks=[again])
    assert again.seen == list(range(resumed_at, 4))
    assert store.run(run_id)["status"] == "FINISHED"


def test_validation_every_n_steps_and_the_epoch_time_split(tmp_path):
    store = open_store(str(tmp_path / "r.sqlite"))
    [run_id] = run_experiment(_vae_only(epochs=5, validate_every=8), store, out=tmp_path / "out")
    hist = store.history(run_id).pivot(index="epoch", columns="name", values="value")
    assert hist["val_loss"].dropna().index.tolist() == [1, 3, 4]  # 1-based epochs 2, 4 and the last
    assert hist["loss"].notna().all()
    parts = hist[["step_seconds", "valid_seconds", "checkpoint_seconds"]].sum(axis=1)
    assert (parts <= hist["epoch_seconds"] + 1e-6).all() and (hist["step_seconds"] > 0).all()
    assert (hist.loc[[0, 2], "valid_seconds"] == 0).all() and (hist.loc[[1, 3, 4], "valid_seconds"] > 0).all()


@pytest.mark.parametrize("key, value, message", [
    ("validate_every", "30s", r"validate_every = '30s'.*training steps"),
    ("checkpoint_every", "often", r"checkpoint_every = 'often'.*'epoch', a number of training steps"),
])
def test_bad_bookkeeping_frequency_is_one_clear_error(key, value, message):
    with pytest.raises(ValueError, match=message):
        _vae_only(epochs=2, **{key: value})


def test_interrupt_marks_failed_and_propagates(tmp_path):
    store = open_store(str(tmp_path / "r.sqlite"))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(_vae_only(epochs=3), store, out=tmp_path / "out",
                       extra_callbacks=[_Crash(at_epoch=0, exc=KeyboardInterrupt)])
    row = store.runs().iloc[0]
    assert row["status"] == "FAILED" and "resume" in row["error"]


class _Poison(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        self.model.set_weights([np.full(w.shape, np.nan, w.dtype) if w.dtype.kind == "f" else w
                                for w in self.model.get_weights()])


def test_nan_loss_ends_run_as_diverged(tmp_path):
    store = open_store(str(tmp_path / "r.sqlite"))
    [run_id] = run_experiment(_vae_only(epochs=3), store, out=tmp_path / "out", extra_callbacks=[_Poison()])
    row = store.run(run_id)
    assert row["status"] == "DIVERGED" and "nan" in row["error"].lower()
    assert store.metrics(run_id).empty  # no test numbers for a diverged model
    assert store.find_resumable(row["run_key"]) is None


def test_changed_config_is_a_new_run_that_never_restores_an_old_backup(tmp_path):
    store = open_store(str(tmp_path / "r.sqlite"))
    [first] = run_experiment(_vae_only(epochs=4), store, out=tmp_path / "out",
                             extra_callbacks=[_Crash(at_epoch=1)])
    watch = _Crash(at_epoch=-1)
    [second] = run_experiment(_vae_only(epochs=3), store, out=tmp_path / "out", extra_callbacks=[watch])
    assert second != first and watch.seen == [0, 1, 2]  # trained from scratch, in its own folder
    assert store.run(first)["status"] == "FAILED" and store.run(second)["status"] == "FINISHED"
    assert store.run(first)["out_dir"] != store.run(second)["out_dir"]


class _InitialWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.by_model = {}

    def on_train_begin(self, logs=None):
        self.by_model[self.model.name] = [w.copy() for w in self.model.get_weights()]


def test_init_from_starts_from_an_earlier_entrys_weights(tmp_path):
    store = open_store(str(tmp_path / "r.sqlite"))
    raw = {**TINY, "models": [TINY["models"][0], {**TINY["models"][1], "init_from": "vae",
                                                  "train": {"epochs": 1}}]}
    initial = _InitialWeights()
    vae_id, iwae_id = run_experiment(cfgmod.parse(raw), store, out=tmp_path / "out",
                                     extra_callbacks=[initial])
    trained_vae = keras.saving.load_model(store.artifacts(vae_id).set_index("name")["path"]["model"])
    start = initial.by_model["iwae"]
    assert len(start) == len(trained_vae.get_weights())
    for a, b in zip(start, trained_vae.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not all(np.array_equal(a, b) for a, b in zip(initial.by_model["vae"], start))
    with pytest.raises(ValueError, match=r"init_from names 'nope'.*earlier labels: \['vae'\]"):
        cfgmod.parse({**raw, "models": [TINY["models"][0], {**TINY["models"][1], "init_from": "nope"}]})


def test_bench_report_only_prints_store_figures(tmp_path, capsys):
    db = tmp_path / "r.sqlite"
    assert main(["bench", "--report-only", "bars", "--db", str(db)]) == 0
    assert "no finished runs" in capsys.readouterr().out
    assert main(["bench", "--report-only", "nope", "--db", str(db)]) == 2  # a usage error, one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unknown suite(s) 'nope'")


def test_added_config_fields_enter_the_run_key_only_when_set():
    import dataclasses

    from zoo.registry import added_field, config_dict

    @dataclasses.dataclass
    class Old:
        a: int = 1

    @dataclasses.dataclass
    class New(Old):
        b: int = added_field(0)

    assert config_dict(New()) == dataclasses.asdict(Old()) and config_dict(New(b=3)) == {"a": 1, "b": 3}
