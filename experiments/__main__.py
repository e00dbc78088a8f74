"""Command line: `python -m experiments run CONFIG.yaml [--db URL] [--out DIR]`, `... bench`, `... peers`."""
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
    if argv[:1] == ["peers"]:  # the side-by-side speed benchmark vs plain Keras (peers --help)
        from experiments.peers import bench

        return bench.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train, evaluate and record every model x seed of a config")
    run.add_argument("config", help="YAML file, e.g. experiments/configs/quick.yaml")
    run.add_argument("--db", default=None, help="SQLAlchemy URL or SQLite path (default: $ZOO_DB or "
                                                "experiments/results.sqlite)")
    run.add_argument("--out", default="runs", help="directory for weights, samples, logs (default: runs)")
    run.add_argument("--models", default=None, help="comma-separated labels: run only these entries")
    run.add_argument("--epochs", type=int, default=None, help="override train.epochs for every model")
    sub.add_parser("bench", help="run the configs and print figures vs targets (bench --help)")
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

    from experiments.runner import run_experiment
    from zoo.results import open_store

    store = open_store(args.db)
    ids = run_experiment(cfg, store, out=args.out)
    runs = store.runs().set_index("run_id").loc[ids]
    print(runs[["label", "seed", "status"]].to_string())
    print(f"results in {store.url}")
    return 0 if (runs["status"] == "FINISHED").all() else 1


if __name__ == "__main__":
    sys.exit(main())
