"""Beyond one device, measured: `python -m experiments scaling [--family vae] [--steps 40] [--rounds 3]
[--skip-workers]`. Prints three tables (figures, no targets):

1. training examples/s of `--family` on the digits with 1 vs 2 replicas (MirroredStrategy; on a machine
   without GPUs the CPU is split into 2 logical devices, ZOO_CPU_DEVICES=2; with GPUs, all of them), same
   global batch, each setting in its own process, the median of `--rounds` fits after a warm-up, each
   timed from its first step's end to its last's (the peers benchmark's `fit_rate`);
2. the same with float32 vs mixed_bfloat16 (and mixed_float16 on a GPU) on one replica;
3. the wall time of a 6-run grid (3 small bars models x 2 seeds) run by 1 worker vs 2 workers sharing
   one SQLite store, each worker limited to cores/workers TensorFlow threads so they do not oversubscribe.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.cli import Parser, choice, whole

ROOT = Path(__file__).resolve().parent.parent
GRID = {"name": "scaling_grid", "dataset": {"name": "bars", "n_train": 2000, "n_valid": 200, "n_test": 200},
        "seeds": [0, 1], "train": {"epochs": 4, "batch_size": 100, "verbose": 0}, "eval": {"is_k": 10},
        "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 32, "depth": 1}},
                   {"model": "pixelcnn", "hparams": {"width": 16, "depth": 2}},
                   {"model": "gan", "hparams": {"width": 32, "depth": 1}}]}


def rate(family: str, strategy: str, precision: str, steps: int, rounds: int, batch: int) -> dict:
    """In this process: examples/s of `family` trained under `strategy` and `precision`."""
    import keras

    import zoo
    from experiments.peers.bench import fit_rate
    from zoo import data
    from zoo.distribute import make_strategy
    from zoo.training import dtype_policy

    strat = make_strategy(strategy)  # first: it may split the CPU before TensorFlow starts
    dataset = data.load("digits")
    with strat.scope(), dtype_policy(precision):
        model = zoo.build_model(family, dataset, seed=0)
    pipeline = dataset.tf_dataset("train", batch, shuffle=True, repeat=True, seed=0)
    fit_rate(model, pipeline, steps, batch)  # warm-up: compiles
    rates = [fit_rate(model, pipeline, steps, batch)[0] for _ in range(rounds)]  # as the peers benchmark
    keras.backend.clear_session()
    return {"replicas": strat.num_replicas_in_sync, "precision": precision,
            "examples/s": round(statistics.median(rates))}


def _child(family, strategy, precision, steps, rounds, batch, env=None) -> dict:
    code = ("import json, sys; from experiments.scaling import rate; "
            "print('RESULT', json.dumps(rate(*sys.argv[1:3], sys.argv[3], *map(int, sys.argv[4:]))))")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    command = [sys.executable, "-c", code, family, strategy, precision, str(steps), str(rounds), str(batch)]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, env=env)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{family} {strategy} {precision} failed:\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][7:])


def workers_wall(n: int, cores: int) -> float:
    """Seconds for `n` workers (started together) to finish GRID in a fresh SQLite store."""
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "grid.yaml"
        cfg.write_text(yaml.safe_dump(GRID))
        threads = str(max(1, cores // n))
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2",
               "TF_NUM_INTRAOP_THREADS": threads, "TF_NUM_INTEROP_THREADS": threads}
        command = [sys.executable, "-m", "experiments", "worker", str(cfg), "--db", f"{tmp}/s.sqlite",
                   "--out", f"{tmp}/out"]
        t0 = time.perf_counter()
        procs = [subprocess.Popen(command, cwd=tmp, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for _ in range(n)]
        errors = [p.communicate()[1] for p in procs]
        wall = time.perf_counter() - t0
        if any(p.returncode for p in procs):
            raise RuntimeError(f"a worker failed:\n{[e[-1500:] for e in errors]}")
    return wall


def main(argv=None) -> int:
    from zoo.vocabulary import FAMILY_OF

    parser = Parser(prog="python -m experiments scaling", description=__doc__.split("\n")[0])
    parser.add_argument("--family", default="vae", type=choice("family", FAMILY_OF, plural="families"))
    parser.add_argument("--steps", type=whole(2), default=40)
    parser.add_argument("--rounds", type=whole(1), default=3)
    parser.add_argument("--batch-size", type=whole(1), default=256, help="the global batch")
    parser.add_argument("--skip-workers", action="store_true", help="skip the 1 vs 2 workers grid")
    args = parser.parse_args(argv)
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    split = {} if gpus > 1 else {"ZOO_CPU_DEVICES": "2"}
    where = f"{gpus} GPU(s)" if gpus > 1 else "the CPU split in 2 logical devices"
    one = _child(args.family, "default", "float32", args.steps, args.rounds, args.batch_size)
    two = _child(args.family, "mirrored", "float32", args.steps, args.rounds, args.batch_size, split)
    print(f"1. {args.family}, global batch {args.batch_size}: 1 replica {one['examples/s']} ex/s, "
          f"{two['replicas']} replicas ({where}) {two['examples/s']} ex/s: "
          f"{two['examples/s'] / one['examples/s']:.2f}x")
    precisions = ["mixed_bfloat16"] + (["mixed_float16"] if gpus else [])
    low = [_child(args.family, "default", p, args.steps, args.rounds, args.batch_size) for p in precisions]
    print(f"2. {args.family}, one replica: float32 {one['examples/s']} ex/s; " + "; ".join(
        f"{r['precision']} {r['examples/s']} ex/s ({r['examples/s'] / one['examples/s']:.2f}x)" for r in low))
    if not args.skip_workers:
        cores = os.cpu_count() or 1
        walls = {n: workers_wall(n, cores) for n in (1, 2)}
        print(f"3. a 6-run grid (3 bars models x 2 seeds, {GRID['train']['epochs']} epochs): 1 worker "
              f"{walls[1]:.0f} s, 2 workers {walls[2]:.0f} s ({walls[1] / walls[2]:.2f}x), "
              f"{cores} cores, TF threads = cores / workers")
    return 0
