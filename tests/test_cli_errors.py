"""Every user error on the command line (`python -m experiments ...`) exits 2 with exactly one stderr line
`error: ...` that names the problem and the fix, never a traceback, and writes nothing to the store.

Each case runs the CLI in its own process; the cases start together (one fixture). Most stop before
TensorFlow is imported (a fraction of a second each); the few that need a model family's own check (its
hyper-parameters, and so every store error, which comes after them) import it. `peers` handles its own
options (tests/test_peers.py); its usage errors are one line like the others'."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
GOOD = {"name": "cli_errors", "dataset": {"name": "bars", "n_train": 100, "n_valid": 20, "n_test": 20},
        "train": {"epochs": 1, "batch_size": 50, "verbose": 0}, "eval": {"metric_samples": 0},
        "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 8, "depth": 1}}]}


def _with(**patch):
    return yaml.safe_dump({**GOOD, **patch}, sort_keys=False)


# id -> (config file text or None, command-line arguments ({cfg} = the config, {tmp} = the folder),
#        substrings the error line must contain)
CASES = {
    # the bug report, and the config file itself
    "dataset typo": (_with(dataset="digts"), ["run", "{cfg}"], ["digts", "did you mean 'digits'"]),
    "config missing": (None, ["run", "{tmp}/nope.yaml"], ["nope.yaml", "not found", "quick.yaml"]),
    "config is a folder": (None, ["run", "{tmp}"], ["is a folder", "YAML file"]),
    "not YAML": ("name: [unclosed\n", ["run", "{cfg}"], ["not valid YAML", "line 2"]),
    "not UTF-8": (b"\xff\xfe name: x", ["run", "{cfg}"], ["not UTF-8"]),
    "python tag (safe_load)": ('!!python/object/apply:os.system ["touch {tmp}/pwned"]\n', ["run", "{cfg}"],
                               ["no !!python tags", "safe_load"]),
    "not a mapping": ("- vae\n- iwae\n", ["run", "{cfg}"], ["expected a mapping", "got a list"]),
    "empty file": ("", ["run", "{cfg}"], ["the file is empty"]),
    # keys and values at every level
    "top-level key typo": (_with(modles=[]), ["run", "{cfg}"], ["'modles'", "did you mean 'models'"]),
    "missing models": (yaml.safe_dump({"name": "x", "dataset": "bars"}), ["run", "{cfg}"],
                       ["missing required key 'models'"]),
    "train key typo": (_with(train={"epoch": 3}), ["run", "{cfg}"], ["'epoch'", "did you mean 'epochs'"]),
    "train value type": (_with(train={"epochs": "ten"}), ["run", "{cfg}"],
                         ["epochs = 'ten'", "whole number"]),
    "train value range": (_with(train={"batch_size": 0}), ["run", "{cfg}"], ["batch_size = 0", ">= 1"]),
    "eval split typo": (_with(eval={"split": "tset"}), ["run", "{cfg}"], ["'tset'", "did you mean 'test'"]),
    "seeds": (_with(seeds=["zero"]), ["run", "{cfg}"], ["seeds", "'zero'"]),
    "model typo": (_with(models=["vea"]), ["run", "{cfg}"], ["'vea'", "did you mean 'vae'"]),
    "entry key typo": (_with(models=[{"model": "vae", "lable": "a"}]), ["run", "{cfg}"],
                       ["'lable'", "did you mean 'label'"]),
    "per-model train": (_with(models=[{"model": "vae", "train": {"epochs": -1}}]), ["run", "{cfg}"],
                        ["models[vae].train", "epochs = -1"]),
    "m2 classes vs the data": (_with(models=[{"model": "m2", "hparams": {"num_classes": 10}}]),
                               ["run", "{cfg}"], ["num_classes = 10", "bars has 4 classes"]),
    "m2 labels vs the split": (_with(models=[{"model": "m2", "hparams": {"labelled": 500,
                                                                       "num_classes": 4}}]),
                               ["run", "{cfg}"], ["labelled = 500", "100 training"]),
    "hparam 1e-3 is a string": ("name: x\ndataset: bars\n"  # (imports TensorFlow: the family's check)
                                "models: [{model: vae, hparams: {learning_rate: 1e-3}}]\n",
                                ["run", "{cfg}"], ["learning_rate = '1e-3'", "1.0e-3"]),
    # the dataset: options and files
    "dataset option value": (_with(dataset={"name": "bars", "n_train": -5}), ["run", "{cfg}"],
                             ["n_train", "-5", ">= 1"]),
    "dataset option typo": (_with(dataset={"name": "bars", "nosie": 0.2}), ["run", "{cfg}"],
                            ["'nosie'", "did you mean 'noise'"]),
    "dataset option beyond the data": (_with(dataset={"name": "mnist", "n_valid": 1000}), ["run", "{cfg}"],
                                       ["mnist", "n_valid must be in [1, 29]"]),
    "even pixelcnn kernel": (_with(models=[{"model": "pixelcnn", "hparams": {"kernel_size": 2}}]),
                             ["run", "{cfg}"], ["models[0] (pixelcnn) hparams", "odd kernel_size", "got 2"]),
    "flow scales for the image": (_with(models=[{"model": "flow", "hparams": {"n_scales": 3}}]),
                                  ["run", "{cfg}"], ["3 scales need height and width divisible by 8",
                                                     "got 4x4"]),
    "conv vae for the image": (_with(models=[{"model": "vae", "hparams": {"network": "conv",
                                                                        "channels": [8, 8, 8]}}]),
                               ["run", "{cfg}"], ["3 stride-2 stages", "divisible by 8", "got 4x4"]),
    "gan d_steps": (_with(models=[{"model": "gan", "hparams": {"d_steps": 0}}]), ["run", "{cfg}"],
                    ["d_steps must be >= 1"]),
    "data file missing": (_with(dataset="binarized_mnist"), ["run", "{cfg}"],
                          ["{tmp}/no_data/binarized_mnist.npz", "ZOO_DATA_DIR"]),
    # the command line
    "unknown command": (None, ["rnu", "x.yaml"], ["unknown command 'rnu'", "did you mean 'run'"]),
    "no command": (None, [], ["required"]),
    "unknown option": (_with(), ["run", "{cfg}", "--bogus", "3"], ["unrecognized arguments: --bogus"]),
    "--epochs not a number": (_with(), ["run", "{cfg}", "--epochs", "ten"], ["--epochs", "'ten'"]),
    "--epochs 0": (_with(), ["run", "{cfg}", "--epochs", "0"], ["--epochs", "0: give a whole number >= 1"]),
    "--strategy typo": (_with(), ["run", "{cfg}", "--strategy", "mirorred"],
                        ["'mirorred'", "did you mean 'mirrored'"]),
    "--lease": (_with(), ["worker", "{cfg}", "--lease", "-5"], ["--lease", "'-5'", "seconds"]),
    "--models typo": (_with(), ["run", "{cfg}", "--models", "vea"], ["'vea'", "did you mean 'vae'"]),
    "--out is a file": (_with(), ["run", "{cfg}", "--out", "{tmp}/a_file"], ["--out", "a_file", "is a file"]),
    "--out under a file": (_with(), ["run", "{cfg}", "--out", "{tmp}/a_file/runs"],
                           ["no folder can be made"]),
    "--db not a database": (_with(), ["run", "{cfg}", "--db", "{tmp}/a_file"], ["a_file", "not a database"]),
    "--db scheme": (_with(), ["run", "{cfg}", "--db", "mysqll://u@h/db"], ["mysqll", "postgresql+psycopg"]),
    # the other subcommands
    "doctor arguments": (None, ["doctor", "--gpu"], ["unrecognized arguments: --gpu", "doctor --help"]),
    "bench suite": (None, ["bench", "bras"], ["'bras'", "quick"]),
    "bench --out": (None, ["bench", "--out", "{tmp}/a_file"], ["--out", "is a file"]),
    "scaling family": (None, ["scaling", "--family", "vea"], ["'vea'", "did you mean 'vae'"]),
    "scaling steps": (None, ["scaling", "--steps", "1"], ["--steps", "1: give a whole number >= 2"]),
}


def _env(tmp: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
            "ZOO_DATA_DIR": str(tmp / "no_data"),
            "ZOO_CACHE_DIR": str(tmp / "a_file" / "cache"),  # under a file: a download cannot even start
            "KERAS_HOME": str(tmp / "keras"), "ZOO_DB": str(tmp / "default.sqlite")}


def _keras_cache(tmp: Path) -> None:
    """A 30-image mnist in the Keras cache (the real one has 60000 training images)."""
    (tmp / "keras" / "datasets").mkdir(parents=True)
    x, y = np.zeros((30, 28, 28), np.uint8), np.zeros(30, np.uint8)
    np.savez(tmp / "keras" / "datasets" / "mnist.npz", x_train=x, y_train=y, x_test=x[:5], y_test=y[:5])


def _start(case: str, text, args: list, base: Path) -> tuple:
    tmp = base / f"case{list(CASES).index(case)}"
    tmp.mkdir()
    (tmp / "a_file").write_text("not a folder, not a database")
    _keras_cache(tmp)
    cfg = tmp / "cfg.yaml"
    if isinstance(text, bytes):
        cfg.write_bytes(text)
    elif text is not None:
        cfg.write_text(text.replace("{tmp}", str(tmp)))
    argv = [a.replace("{cfg}", str(cfg)).replace("{tmp}", str(tmp)) for a in args]
    if not any(a.startswith("--out") for a in argv) and argv[:1] in (["run"], ["worker"]):
        argv += ["--out", str(tmp / "out")]
    if not any(a.startswith("--db") for a in argv) and argv[:1] in (["run"], ["worker"]):
        argv += ["--db", str(tmp / "store.sqlite")]
    proc = subprocess.Popen([sys.executable, "-m", "experiments", *argv], cwd=tmp, env=_env(tmp),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return tmp, proc


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    """case -> (its folder, exit status, stdout, stderr), every case run at once."""
    base = tmp_path_factory.mktemp("cli_errors")
    started = {case: _start(case, text, args, base) for case, (text, args, _) in CASES.items()}
    done = {}
    try:
        for case, (tmp, proc) in started.items():
            out, err = proc.communicate(timeout=600)
            done[case] = (tmp, proc.returncode, out, err)
    finally:
        for _, proc in started.values():
            if proc.poll() is None:
                proc.kill()
    return done


@pytest.mark.parametrize("case", list(CASES))
def test_user_error_is_one_line_exit_2(case, outcomes):
    tmp, status, out, err = outcomes[case]
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == 2 and len(lines) == 1, f"exit {status}, stderr:\n{err}\nstdout:\n{out[-2000:]}"
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for expected in CASES[case][2]:
        assert expected.replace("{tmp}", str(tmp)) in lines[0], lines[0]
    assert not (tmp / "store.sqlite").exists() and not (tmp / "default.sqlite").exists()  # nothing written
    assert not (tmp / "out").exists() and not (tmp / "pwned").exists()


def test_a_bad_config_leaves_the_store_as_it_was(tmp_path):
    """A store that already holds a run: bad configs and arguments aimed at it change nothing in it."""
    from zoo.results import open_store

    db = tmp_path / "store.sqlite"
    store = open_store(str(db))
    run_id = store.start_run(experiment="kept", model="vae", label="vae", dataset="bars", seed=0,
                             config={"dataset": {"name": "bars"}}, run_key="kept-run", code_version="x")
    store.log_metrics(run_id, "test", [("nll", 6.6, "elbo")])
    store.finish_run(run_id, "FINISHED", wall_time=1.0)
    before_runs, before_metrics = store.runs(), store.metrics()
    store.dispose()
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    (tmp_path / "a_file").write_text("x")
    bad = {"typo.yaml": _with(name="kept", dataset="digts"),  # stops before TensorFlow
           "hparams.yaml": _with(name="kept", models=[{"model": "vae", "hparams": {"widht": 8}}])}
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    env = {**_env(tmp_path), "ZOO_DB": str(db)}
    commands = [["run", "typo.yaml"], ["worker", "typo.yaml", "--db", str(db)], ["run", "hparams.yaml"],
                ["run", "typo.yaml", "--out", "a_file"]]
    procs = [subprocess.Popen([sys.executable, "-m", "experiments", *c], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in commands]
    for command, proc in zip(commands, procs):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 2 and err.startswith("error: ") and err.count("\n") == 1, (command, err)
    for name, content in files.items():
        assert (tmp_path / name).read_bytes() == content, f"{name} changed"
    store = open_store(str(db))
    assert store.runs().equals(before_runs) and store.metrics().equals(before_metrics)
    assert list(store.runs()["status"]) == ["FINISHED"]
