"""Command line: `python -m experiments run CONFIG.yaml [--db URL] [--out DIR]`, `... worker CONFIG.yaml
--db URL --out DIR` (any number of them share the config's runs), `... bench`, `... peers`."""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # its own options (argparse's REMAINDER drops leading --flags)
        from experiments import benchmark

        return benchmark.main(argv[1:])
    if argv[:1] == ["scaling"]:  # 1 vs 2 replicas, float32 vs bfloat16, 1 vs 2 workers (figures)
        from experiments import scaling

        return scaling.main(argv[1:])
    if argv[:1] == ["doctor"]:  # devices, versions, strategy, XLA: the first thing on a new box
        from experiments import doctor

        return doctor.main(argv[1:])
    if argv[:1] == ["peers"]:  # the side-by-side speed benchmark vs plain Keras (peers --help)
        from experiments.peers import bench

        return bench.main(argv[1:])
    from zoo.vocabulary import STRATEGIES  # TensorFlow-free

    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train, evaluate and record every model x seed of a config")
    worker = sub.add_parser("worker", help="claim runs of a config's grid one at a time until none is "
                                           "left; start any number (one --db and one shared --out)")
    for p in (run, worker):
        p.add_argument("config", help="YAML file, e.g. experiments/configs/quick.yaml")
        p.add_argument("--db", default=None, help="SQLAlchemy URL or SQLite path (default: $ZOO_DB or "
                                                  "experiments/results.sqlite); workers on several machines: "
                                                  "postgresql+psycopg://USER@HOST:PORT/DB")
        p.add_argument("--out", default="runs", help="directory for weights, samples, logs (default: runs); "
                                                     "workers must share it (checkpoints resume from there)")
        p.add_argument("--models", default=None, help="comma-separated labels: run only these entries")
        p.add_argument("--epochs", type=int, default=None, help="override train.epochs for every model")
        p.add_argument("--strategy", default=None, choices=STRATEGIES,
                       help="override train.strategy (tf.distribute) for every model: auto = all "
                            "GPUs when 2+, mirrored, or multi_worker (TF_CONFIG: README 'Several hosts')")
    worker.add_argument("--lease", type=float, default=None,
                        help="seconds a claim lasts after the run's last heartbeat (each epoch); a dead "
                             "worker's run is taken over after it (default: 600); exceed the longest epoch")
    sub.add_parser("bench", help="run the configs and print figures vs targets (bench --help)")
    sub.add_parser("scaling", help="examples/s on 1 vs 2 replicas and in bfloat16; 1 vs 2 workers (figures)")
    sub.add_parser("doctor", help="devices, versions, the strategy auto picks, whether XLA compiles")
    sub.add_parser("peers", help="each family next to a plain Keras peer: examples/s (peers --help)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from experiments import config as config_mod

    try:
        cfg = config_mod.load(args.config)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.models:
        wanted = args.models.split(",")
        unknown = sorted(set(wanted) - {m.label for m in cfg.models})
        if unknown:
            print(f"error: --models names {unknown}; labels in this config: {[m.label for m in cfg.models]}",
                  file=sys.stderr)
            return 2
        cfg.models = [m for m in cfg.models if m.label in wanted]
    if args.epochs is not None:
        cfg.train = dataclasses.replace(cfg.train, epochs=args.epochs)
        for m in cfg.models:
            m.train.pop("epochs", None)
    if args.strategy is not None:
        cfg.train = dataclasses.replace(cfg.train, strategy=args.strategy)
        for m in cfg.models:
            m.train.pop("strategy", None)
    try:  # made first (a multi-worker strategy must precede every other TensorFlow op) and checked
        from zoo.distribute import is_chief, make_strategy

        strategies = list(dict.fromkeys(cfg.train_for(m).strategy for m in cfg.models))
        for name in strategies:
            make_strategy(name)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if "multi_worker" in strategies and not is_chief():  # trains in step; the chief records the runs
        import tempfile

        args.out = tempfile.mkdtemp(prefix="zoo-worker-")
        args.db = f"sqlite:///{args.out}/store.sqlite"
        print(f"[runner] not the chief of TF_CONFIG's cluster: training in step, records in {args.out}")

    from zoo.results import DEFAULT_LEASE, StoreError, open_store

    if getattr(args, "lease", None) is not None and args.lease <= 0:
        print(f"error: --lease {args.lease:g}: give the seconds a claim lasts, e.g. --lease 600",
              file=sys.stderr)
        return 2
    try:
        store = open_store(args.db, lease=getattr(args, "lease", None) or DEFAULT_LEASE)
    except StoreError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "worker":
        from experiments.worker import grid, work

        work(cfg, store, out=args.out)
        runs = store.runs(experiment=cfg.name)
        runs = runs[runs["run_key"].isin(list(grid(cfg)))].drop_duplicates("run_key", keep="last")
        runs = runs.set_index("run_id")  # the grid's runs: the latest of each key
    else:
        from experiments.runner import run_experiment

        ids = run_experiment(cfg, store, out=args.out)
        runs = store.runs().set_index("run_id").loc[ids]
    print(runs[["label", "seed", "status"]].to_string())
    print(f"results in {store.shown_url}")
    return 0 if (runs["status"] == "FINISHED").all() else 1


if __name__ == "__main__":
    sys.exit(main())
