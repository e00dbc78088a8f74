"""Command line: `python -m experiments run CONFIG.yaml [--db URL] [--out DIR]`, `... worker CONFIG.yaml
--db URL --out DIR` (any number of them share the config's runs), `... bench`, `... peers`, `... scaling`,
`... doctor`.

A user's mistake (a bad argument, config, dataset, data file, output folder or store) exits with status 2
and one line on stderr, `error: ...`, naming the problem and the fix; a traceback means a bug. `run` and
`worker` check everything (the config, the dataset, --out) before they open the store, so a mistake
writes nothing there."""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import math
import os
import sys

from experiments.cli import Parser, choice, error, out_folder, whole

# Subcommands with their own options (argparse's REMAINDER drops leading --flags): module, help line.
DELEGATED = {
    "bench": ("experiments.benchmark", "run the configs and print figures vs targets (bench --help)"),
    "scaling": ("experiments.scaling",
                "examples/s on 1 vs 2 replicas and in bfloat16; 1 vs 2 workers (figures)"),
    "doctor": ("experiments.doctor", "devices, versions, the strategy auto picks, whether XLA compiles"),
    "peers": ("experiments.peers.bench", "each family next to a plain Keras peer: examples/s (peers --help)"),
}
COMMANDS = ("run", "worker", *DELEGATED)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # no TensorFlow C++ info / warning lines on stderr
    from zoo.registry import unknown_key_error

    if argv and not argv[0].startswith("-") and argv[0] not in COMMANDS:
        return error(f"{unknown_key_error('command', argv[0], COMMANDS)} (see python -m experiments --help)")
    if argv[:1] and argv[0] in DELEGATED:
        return _delegate(argv[0], argv[1:])
    try:
        args = _parser().parse_args(argv)
    except SystemExit as stop:  # a usage error (one line already printed) or --help
        return stop.code

    from experiments.config import ConfigError, check_families, load
    from zoo.data import DataError

    try:  # the config, the command line's changes to it, the dataset: all before the store opens
        cfg = load(args.config, families=False)  # first what needs no TensorFlow
        _check_labels(cfg, args.models)
        dataset = cfg.load_dataset()  # loaded once: the runner reuses it
        check_families(cfg, where=args.config, shape=dataset.shape, dataset=dataset)  # (imports TF)
        _apply_options(cfg, args)
    except (ConfigError, DataError) as err:
        return error(err)
    try:  # made first (a multi-worker strategy must precede every other TensorFlow op) and checked
        from zoo.distribute import is_chief, make_strategy

        strategies = list(dict.fromkeys(cfg.train_for(m).strategy for m in cfg.models))
        for name in strategies:
            make_strategy(name)
    except ValueError as err:
        return error(err)
    if "multi_worker" in strategies and not is_chief():  # trains in step; the chief records the runs
        import tempfile

        args.out = tempfile.mkdtemp(prefix="zoo-worker-")
        args.db = f"sqlite:///{args.out}/store.sqlite"
        print(f"[runner] not the chief of TF_CONFIG's cluster: training in step, records in {args.out}")

    from zoo.results import DEFAULT_LEASE, StoreError, open_store

    try:
        store = open_store(args.db, lease=getattr(args, "lease", None) or DEFAULT_LEASE)
    except StoreError as err:
        return error(err)
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


def _parser() -> Parser:
    from zoo.vocabulary import STRATEGIES  # TensorFlow-free

    parser = Parser(prog="python -m experiments", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    run = sub.add_parser("run", help="train, evaluate and record every model x seed of a config")
    worker = sub.add_parser("worker", help="claim runs of a config's grid one at a time until none is "
                                           "left; start any number (one --db and one shared --out)")
    for p in (run, worker):
        p.add_argument("config", help="YAML file, e.g. experiments/configs/quick.yaml")
        p.add_argument("--db", default=None, help="SQLAlchemy URL or SQLite path (default: $ZOO_DB or "
                                                  "experiments/results.sqlite); workers on several machines: "
                                                  "postgresql+psycopg://USER@HOST:PORT/DB")
        p.add_argument("--out", default="runs", type=out_folder,
                       help="directory for weights, samples, logs (default: runs); "
                            "workers must share it (checkpoints resume from there)")
        p.add_argument("--models", default=None, help="comma-separated labels: run only these entries")
        p.add_argument("--epochs", type=whole(1), default=None, help="override train.epochs for every model")
        p.add_argument("--strategy", default=None, type=choice("strategy", STRATEGIES, plural="strategies"),
                       metavar="{" + ",".join(STRATEGIES) + "}",
                       help="override train.strategy (tf.distribute) for every model: auto = all "
                            "GPUs when 2+, mirrored, or multi_worker (TF_CONFIG: README 'Several hosts')")
    worker.add_argument("--lease", type=_seconds, default=None,
                        help="seconds a claim lasts after the run's last heartbeat (each epoch); a dead "
                             "worker's run is taken over after it (default: 600); exceed the longest epoch")
    for name, (_, help_line) in DELEGATED.items():
        sub.add_parser(name, help=help_line)
    return parser


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give the seconds a claim lasts, e.g. --lease 600")
    return value


def _check_labels(cfg, models: str | None) -> None:
    """ConfigError for a label of --models that the config does not have."""
    from experiments.config import ConfigError
    from zoo.registry import unknown_key_error

    labels = [m.label for m in cfg.models]
    for label in models.split(",") if models else ():
        if not any(_names(m, label.strip()) for m in cfg.models):
            unknown = unknown_key_error("label", label.strip(), labels, plural="labels in this config")
            raise ConfigError(f"--models {models}: {unknown}")


def _names(spec, label: str) -> bool:
    """Whether --models `label` names entry `spec`: its label, or the base label of its sweep (`vae`
    names vae-latent_dim2, vae-latent_dim5, ...)."""
    return spec.label == label or bool(spec.sweep) and spec.label.startswith(label + "-")


def _apply_options(cfg, args) -> None:
    """--models (checked by `_check_labels`), --epochs and --strategy on the config."""
    if args.models:
        wanted = [label.strip() for label in args.models.split(",")]
        cfg.models = [m for m in cfg.models if any(_names(m, w) for w in wanted)]
    if args.epochs is not None:
        cfg.train = dataclasses.replace(cfg.train, epochs=args.epochs)
        for m in cfg.models:
            m.train.pop("epochs", None)
    if args.strategy is not None:
        cfg.train = dataclasses.replace(cfg.train, strategy=args.strategy)
        for m in cfg.models:
            m.train.pop("strategy", None)


# --- the subcommands with their own options -------------------------------------------------------------
def _delegate(command: str, argv: list) -> int:
    """`command`'s own main (its parser is a `cli.Parser`: usage errors on one line); the user errors it
    raises (config, data, store) are one `error:` line too, exit status 2."""
    from experiments.config import ConfigError
    from zoo.data import DataError
    from zoo.results import StoreError

    try:
        return importlib.import_module(DELEGATED[command][0]).main(argv)
    except SystemExit as stop:  # its parser's usage error (one line already printed) or --help
        return stop.code
    except (ConfigError, DataError, StoreError) as err:
        return error(err)


if __name__ == "__main__":
    sys.exit(main())
