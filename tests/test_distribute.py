"""tf.distribute: every family's training step is replica-correct, evaluation does not depend on the
strategy, and two workers of a MultiWorkerMirroredStrategy on localhost ports stay in step. Both run
in subprocesses (tests/replicas.py): the CPU is split into logical devices before TensorFlow starts."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.distribute import STRATEGIES, make_strategy

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = str(ROOT / "tests" / "replicas.py")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_two_replicas_apply_the_one_device_update(tmp_path):
    """One SGD step on the same global batch of 256: the update on 2 mirrored replicas has the norm
    of the one-device update (within the training noise; exactly for the noise-free PixelCNN),
    while the same step without the 1/replicas scaling is twice as large -- the check sees it.
    Evaluation (log_prob, AIS, IS, samples) gives the same numbers under either strategy. The
    replicas' copies of every weight agree afterwards, also after a flow's first step from scratch
    (ActNorm's data-dependent init; it once kept each replica's own half-batch statistics)."""
    out = tmp_path / "updates.json"
    proc = subprocess.run([sys.executable, SCRIPT, "update", str(out)], env=ENV, capture_output=True,
                          text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())
    assert rows.pop("flow_first_step")["replica_spread"] == 0.0  # ActNorm's init: global-batch statistics
    assert set(rows) == {"vae", "iwae", "pixelcnn", "flow", "diffusion", "gan", "m2"}
    for name, row in rows.items():
        assert row["replica_spread"] == 0.0, (name, row)
        assert row["norm"] > 0, name
        assert 0.9 < row["ratio"] < 1.1, (name, row)
        assert 1.8 < row["bug_ratio"] < 2.2, (name, row)
        assert row["log_prob_diff"] < 1e-4 and row["is_diff"] < 1e-4, (name, row)  # nats, same seeds
        assert row["sample_diff"] == 0, (name, row)  # uint8 images
    assert rows["pixelcnn"]["cosine"] > 0.99999 and abs(rows["pixelcnn"]["ratio"] - 1) < 1e-4


def test_em_on_two_replicas_equals_one_device(tmp_path):
    """The mixture's EM (no gradient step, so not in the update test above): 3 epochs over 1024 bars
    images in global batches of 256 on 2 mirrored replicas give one device's parameters and per-epoch
    losses (statistics summed over the replicas; measured: probabilities 1.6e-6 apart, losses 2e-6),
    while keeping the first replica's statistics only or averaging them (pseudocount 0.5) measured
    0.097 and 0.0024 apart. Evaluation agrees too; no statistics are left after `fit`."""
    out = tmp_path / "em.json"
    proc = subprocess.run([sys.executable, SCRIPT, "em", str(out)], env=ENV, capture_output=True, text=True,
                          timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    row = json.loads(out.read_text())
    assert row["moved"] > 0.1  # EM changed the parameters: the comparison is not vacuous
    assert row["param_diff"] < 1e-4, row
    np.testing.assert_allclose(row["loss_two"], row["loss_one"], atol=1e-4)
    assert row["replica_spread"] == 0.0 and row["stats_left"] == 0.0, row
    assert row["log_prob_diff"] < 1e-4 and row["sample_diff"] == 0, row


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def test_two_workers_on_localhost_end_with_identical_weights(tmp_path):
    """MultiWorkerMirroredStrategy from TF_CONFIG, 2 processes: a VAE trains 6 steps and both
    workers hold the same weights (which moved from their initial values)."""
    ports = ",".join(map(str, _free_ports(2)))
    procs = [subprocess.Popen([sys.executable, SCRIPT, "worker", str(i), ports, str(tmp_path / f"w{i}.npz")],
                              env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-3000:]
    w0, w1 = (np.load(tmp_path / f"w{i}.npz") for i in range(2))
    assert int(w0["replicas"]) == 2
    names = [k for k in w0.files if k != "replicas"]
    assert len(names) > 4
    for k in names:
        np.testing.assert_array_equal(w0[k], w1[k])


def test_strategy_choices_and_errors(monkeypatch):
    """auto on a CPU-only machine is the default strategy; multi_worker without TF_CONFIG and an
    unknown name are refused with the fix."""
    import tensorflow as tf

    assert STRATEGIES == ("auto", "default", "mirrored", "multi_worker")
    assert make_strategy("auto") is tf.distribute.get_strategy()
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="needs TF_CONFIG"):
        make_strategy("multi_worker")
    with pytest.raises(ValueError, match="mirrored"):
        make_strategy("mirored")


def test_runner_trains_a_grid_on_two_mirrored_replicas_in_bfloat16(tmp_path):
    """`run --strategy mirrored` on a CPU split in 2 (ZOO_CPU_DEVICES=2), in mixed bfloat16: the runs
    finish with finite bounds on the bars' scale; the precision is part of the run key, the strategy
    is not."""
    import yaml

    from zoo.results import open_store

    bars = {"name": "bars", "n_train": 400, "n_valid": 100, "n_test": 100}
    train = {"epochs": 2, "batch_size": 100, "verbose": 0, "precision": "mixed_bfloat16"}
    raw = {"name": "mirrored_bars", "dataset": bars, "seeds": [0], "train": train, "eval": {"is_k": 10},
           "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 16, "depth": 1}},
                      {"model": "gan", "hparams": {"width": 16, "depth": 1, "ais_steps": 5,
                                                   "ais_chains": 2}}]}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    db = tmp_path / "s.sqlite"
    command = [sys.executable, "-m", "experiments", "run", str(cfg), "--db", str(db), "--out",
               str(tmp_path / "out"), "--strategy", "mirrored"]
    proc = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**ENV, "ZOO_CPU_DEVICES": "2"}, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = open_store(str(db))
    runs = store.runs()
    assert list(runs["status"]) == ["FINISHED", "FINISHED"], runs
    nll = store.metrics(split="test").query("name == 'nll'").set_index("run_id")["value"]
    assert np.isfinite(nll).all() and (nll > 5).all() and (nll < 20).all(), nll  # bars: entropy 6.57 nats
    assert list(runs["replicas"]) == [2, 2] and list(runs["dtype_policy"]) == ["mixed_bfloat16"] * 2
    assert list(runs["devices"]) == ["CPU:0,CPU:1"] * 2 and runs["versions"].str.contains("tensorflow").all()
    trains = [json.loads(c)["train"] for c in runs["config"]]
    assert all("strategy" not in t and t["precision"] == "mixed_bfloat16" for t in trains), trains


def test_run_with_multi_worker_records_once_from_the_chief(tmp_path):
    """`run --strategy multi_worker` on 2 localhost processes: both train in step and exit 0; only the
    chief (worker 0) records the run in the shared store, FINISHED once."""
    import yaml

    from zoo.results import open_store

    raw = {"name": "mw_bars", "dataset": {"name": "bars", "n_train": 400, "n_valid": 100, "n_test": 100},
           "seeds": [0], "train": {"epochs": 2, "batch_size": 100, "verbose": 0}, "eval": {"is_k": 10},
           "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 16, "depth": 1}}]}
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(raw))
    db, workers = tmp_path / "s.sqlite", [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        tf_config = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})
        command = [sys.executable, "-m", "experiments", "run", str(cfg), "--db", str(db), "--out",
                   str(tmp_path / "out"), "--strategy", "multi_worker"]
        procs.append(subprocess.Popen(command, cwd=tmp_path, env={**ENV, "TF_CONFIG": tf_config},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "not the chief" in outs[1][0] and "not the chief" not in outs[0][0]
    runs = open_store(str(db)).runs()
    assert list(runs["status"]) == ["FINISHED"], runs


def test_doctor_reports_devices_strategy_and_xla():
    """`python -m experiments doctor` names the devices, versions and auto's strategy, and compiles a
    tiny XLA step whose loss decreases (exit 0)."""
    proc = subprocess.run([sys.executable, "-m", "experiments", "doctor"], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "devices: /device:CPU:0 (CPU)" in out and "tensorflow 2.20.0" in out
    assert "strategy auto -> _DefaultDistributionStrategy on CPU:0 (1 replica(s))" in out
    assert "XLA: compiles and runs a tiny training step" in out and "did NOT decrease" not in out


def test_scaling_benchmark_measures_a_family_in_process():
    """The scaling benchmark's measurement (`experiments.scaling.rate`) trains and times a family under
    a strategy and a precision: one replica here, a positive rate, the policy restored after."""
    import keras

    from experiments.scaling import rate

    row = rate("vae", "default", "mixed_bfloat16", steps=3, rounds=1, batch=64)
    assert row["replicas"] == 1 and row["precision"] == "mixed_bfloat16" and row["examples/s"] > 0
    assert keras.config.dtype_policy().name == "float32"
