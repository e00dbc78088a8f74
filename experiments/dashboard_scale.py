"""The dashboard at scale: a big store written through `zoo.results`, then every page rendered in
Streamlit's AppTest, timed cold (cache cleared, a new session) and warm (the same session again), with
the rows each page's store reads returned.

    python -m experiments.dashboard_scale [--runs 5000 --epochs 100 --curves 10 --db PATH]

The store (default /tmp/zoo-dashboard-scale/store.sqlite) is built once and reused while it holds the
runs and history rows the options ask for. A realistic mix: several experiments on bars, digits and
binarized MNIST; all six model names with the likelihood kinds the runner records (vae elbo, iwae iwae,
pixelcnn exact, flow elbo, diffusion vlb, gan ais or none); mostly FINISHED runs with the runner's test /
train / valid metrics and artifacts, some FAILED (a traceback), DIVERGED and still RUNNING. The artifacts
name files that do not exist (the pages show placeholders). Each run's epochs are written in one
transaction (`Store.log_epochs`), and the builder's connections skip the fsync per commit (the store is
disposable): about a minute for 5,000 x 100 x 10 on 2 cores.

The table: per page, the first render (new session, data cache cleared) and the second (warm), in
seconds; the size of the rendered page (protobuf KB, what a browser is sent); how many store reads the
first render made and the rows they returned, by the table each selects from. `--app` renders another
checkout's dashboard (a before / after table); `--repeat N` shows the median of N cold renders.
`build` is what tests/test_dashboard_scale.py uses for its small store; `count_reads` counts the rows
the store's read methods return.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import sqlalchemy as sa

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from zoo import results  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
PAGES = sorted(p.stem for p in (ROOT / "dashboard" / "views").glob("*.py"))  # every page of the app
DEFAULT_DB = Path("/tmp/zoo-dashboard-scale/store.sqlite")

# experiment -> (dataset, its config entry, share of the runs)
EXPERIMENTS = {
    "quick": ("digits", {"name": "digits"}, 0.25),
    "digits_sweep": ("digits", {"name": "digits"}, 0.20),
    "bars": ("bars", {"name": "bars"}, 0.15),
    "bars_seeds": ("bars", {"name": "bars", "n_train": 4000, "n_valid": 500, "n_test": 2000}, 0.15),
    "binarized_mnist": ("binarized_mnist", {"name": "binarized_mnist"}, 0.25),
}
LEVELS = {"digits": 17, "bars": 2, "binarized_mnist": 2}
DIMS = {"digits": 64, "bars": 16, "binarized_mnist": 784}
MODELS = ("vae", "iwae", "pixelcnn", "flow", "diffusion", "gan")
# (label, likelihood, hparams) variants per model name, as the configs in experiments/configs name them
VARIANTS = {
    "vae": [("vae", "elbo", {"latent_dim": 16}), ("vae_l2", "elbo", {"latent_dim": 2})],
    "iwae": [(f"iwae_k{k}", "iwae", {"latent_dim": 16, "k": k}) for k in (3, 5, 10)],
    "pixelcnn": [("pixelcnn", "exact", {"width": 64}), ("pixelcnn_wide", "exact", {"width": 128})],
    "flow": [("flow", "elbo", {"dequantization": "variational"}),
             ("flow_uniform", "elbo", {"dequantization": "uniform"})],
    "diffusion": [("diffusion", "vlb", {"sample_steps": 1000}),
                  ("diffusion_ddim", "vlb", {"ddim_steps": 50})],
    "gan": [("gan_ais", "ais", {"ais_steps": 20}), ("gan", "none", {"ais_steps": 0})],
}
# the per-epoch values the runner's fit records, per model name (training, validation, timing)
CURVES = {
    "vae": ["loss", "rate", "distortion", "val_loss", "val_rate", "val_distortion", "learning_rate",
            "examples_per_sec", "epoch_seconds", "step_seconds", "valid_seconds", "checkpoint_seconds"],
    "iwae": ["loss", "rate", "distortion", "iw_gain", "val_loss", "val_rate", "val_distortion", "val_iw_gain",
             "learning_rate", "examples_per_sec", "epoch_seconds", "step_seconds"],
    "pixelcnn": ["loss", "nll", "val_loss", "val_nll", "learning_rate", "examples_per_sec", "epoch_seconds",
                 "step_seconds", "valid_seconds", "checkpoint_seconds"],
    "flow": ["loss", "prior", "logdet", "logit", "dequantization", "val_loss", "val_prior", "val_logdet",
             "learning_rate", "examples_per_sec", "epoch_seconds", "step_seconds"],
    "diffusion": ["loss", "prior", "diffusion", "reconstruction", "val_loss", "val_prior", "val_diffusion",
                  "val_reconstruction", "learning_rate", "examples_per_sec", "epoch_seconds"],
    "gan": ["loss", "d_loss", "g_loss", "d_real", "d_fake", "val_d_loss", "val_g_loss", "val_d_real",
            "val_d_fake", "examples_per_sec", "learning_rate", "epoch_seconds"],
}
TERMS = {"vae": ("distortion", "rate"), "iwae": ("distortion", "rate", "iw_gain"),
         "flow": ("prior", "logdet", "logit", "dequantization"),
         "diffusion": ("prior", "diffusion", "reconstruction")}
REPORT = {"vae": "is_vs_k", "iwae": "is_vs_k", "flow": "is_vs_k", "pixelcnn": "pixel_nll",
          "diffusion": "timestep_loss"}
SAMPLE = ("classifier_accuracy", "fcd", "kid", "kid_se", "precision", "recall", "nn_train_dist",
          "nn_train_dist_test", "nn_closer_than_test")
TRACEBACK = ("Traceback (most recent call last):\n  File \"experiments/runner.py\", line 150, in run_one\n"
             "    model = zoo.build_model(spec.model, dataset, **{\"seed\": seed, **spec.hparams})\n"
             "ValueError: kernel_size must be odd, got 2; use 3, 5 or 7\n")


@dataclasses.dataclass(frozen=True)
class Plan:
    """One run of the store to build."""

    experiment: str
    dataset: str
    model: str
    label: str
    likelihood: str
    hparams: dict
    seed: int
    status: str
    epochs: int  # epochs recorded
    nll: float  # the final test nats it converges to


def plan(n_runs: int, epochs: int, seed: int = 0) -> list[Plan]:
    """The runs of the store, drawn from `seed` (so a store of the same options is the same store)."""
    rng = np.random.default_rng(seed)
    names = list(EXPERIMENTS)
    share = np.array([EXPERIMENTS[e][2] for e in names])
    out, seeds = [], Counter()
    for i in range(n_runs):
        experiment = names[rng.choice(len(names), p=share / share.sum())]
        dataset = EXPERIMENTS[experiment][0]
        model = MODELS[i % len(MODELS)]
        label, likelihood, hparams = VARIANTS[model][rng.integers(len(VARIANTS[model]))]
        u = rng.random()
        status = "FINISHED" if u < 0.86 else "FAILED" if u < 0.92 else "DIVERGED" if u < 0.96 else "RUNNING"
        done = epochs if status == "FINISHED" else int(rng.integers(0 if status == "FAILED" else 1, epochs))
        base = {"bars": 6.6, "digits": 24.0, "binarized_mnist": 80.0}[dataset]
        s = seeds[experiment, label]
        seeds[experiment, label] += 1
        out.append(Plan(experiment, dataset, model, label, likelihood, hparams, s, status, done,
                        base * (1.0 + 0.02 * MODELS.index(model)) + float(rng.gamma(2.0, 0.05 * base))))
    return out


def config(p: Plan, epochs: int) -> dict:
    """The resolved config the runner records for the run (experiments.config's shape)."""
    return {"dataset": EXPERIMENTS[p.experiment][1],
            "eval": {"batch_size": 500, "is_examples": None, "is_k": 100, "metric_samples": 500,
                     "n_samples": 64, "split": "test"},
            "experiment": p.experiment,
            "hparams": {"activation": "gelu", "depth": 2, "jit_compile": "auto", "learning_rate": 0.001,
                        "network": "mlp", "seed": None, "width": 256, **p.hparams},
            "label": p.label, "model": p.model, "seed": p.seed,
            "train": {"batch_size": 64, "epochs": epochs, "lr_schedule": "cosine", "patience": 0,
                      "precision": "float32", "steps_per_epoch": None, "strategy": "auto", "verbose": 1}}


def curves(p: Plan, n: int) -> list[str]:
    names = CURVES[p.model][:n]
    return names + [f"extra_{i}" for i in range(n - len(names))]


def history(p: Plan, names: list[str], rng) -> dict[int, dict[str, float]]:
    """{epoch: {name: value}}: losses falling towards the run's nats, noisy; D(real), D(fake) towards 1/2."""
    e = np.arange(p.epochs, dtype=float)
    fall = np.exp(-e / max(p.epochs / 5, 1.0))
    cols = {}
    for name in names:
        base = name.removeprefix("val_")
        noise = rng.normal(0, 0.01, p.epochs)
        if base in ("d_real", "d_fake"):
            v = 0.5 + (0.4 if base == "d_real" else -0.3) * fall + noise
        elif base in ("loss", "nll"):
            v = p.nll * (1 + 0.8 * fall) + noise * p.nll
        elif base == "learning_rate":
            v = 1e-3 * 0.5 * (1 + np.cos(np.pi * e / max(p.epochs, 1)))
        elif base.endswith("_sec"):
            v = 20000 * (1 + noise)
        elif base.endswith("_seconds"):
            v = 1.5 * (1 + 5 * noise)
        else:
            v = p.nll * 0.3 * (1 + 0.5 * fall) * (1 + noise)
        if p.status == "DIVERGED" and base == "loss" and len(v):
            v[-1] = math.nan
        cols[name] = v
    return {int(i): {n: float(cols[n][i]) for n in names} for i in range(p.epochs)}


def metrics(p: Plan, rng) -> dict[str, list]:
    """{split: [(name, value, kind)]}: what the runner's output steps record for a FINISHED run."""
    kind, nll = p.likelihood, p.nll
    test = []
    if kind != "none":
        test += [("nll", nll, kind), ("log_prob", -nll, kind),
                 ("bits_per_dim", nll / (DIMS[p.dataset] * math.log(2)), kind), ("nll_se", 0.02 * nll, None)]
        parts = TERMS.get(p.model, ())
        w = rng.dirichlet(np.ones(len(parts))) if parts else []
        test += [(t, float(nll * f) if t != "iw_gain" else -0.01 * nll, kind) for t, f in zip(parts, w)]
        if p.model in ("vae", "iwae", "flow"):
            test += [("is_nll", nll * 0.98, "iwae"),
                     ("is_bits_per_dim", nll * 0.98 / DIMS[p.dataset], "iwae"),
                     ("is_k", 100.0, None), ("is_examples", 2000.0, None), ("is_seconds", 3.0, None)]
    if p.dataset == "bars":
        test += [("data_nll", 6.58, "exact")]
        if kind != "none":
            test += [("pop_nll", nll + 0.01, kind), ("pop_gap", nll - 6.5718, kind)]
        test += [("kl_emp_true", float(rng.gamma(2, 0.05)), None),
                 ("tv_emp_true", float(rng.random() / 4), None)]
    test += [("metric_samples", 500.0, None)] + [(n, float(rng.random()), "classifier") for n in SAMPLE]
    train = [("samples_per_sec", float(rng.gamma(5, 200)), None), ("train_examples_per_sec", 20000.0, None)]
    if p.model in ("pixelcnn", "diffusion"):
        train += [("sampler_speedup", float(rng.gamma(5, 2)), None)]
    out = {"test": test, "train": train}
    if p.model == "gan":
        out["valid"] = [("obs_sigma", 0.2, None), ("valid_ais_nll", nll, "ais"),
                        ("obs_sigma_at_grid_edge", 0.0, None)]
    return out


def _fast_writes(store) -> None:
    """A disposable store: no fsync per commit on the builder's own connections (the dashboard opens it
    normally). Nothing else of the store changes."""
    if store.engine.dialect.name == "sqlite":
        store.engine.dispose()
        sa.event.listen(store.engine, "connect", lambda conn, _: conn.execute("PRAGMA synchronous=OFF"))


def expected_counts(plans: list[Plan], curves_per_epoch: int) -> dict[str, int]:
    return {"runs": len(plans), "history": sum(p.epochs for p in plans) * curves_per_epoch}


def counts(store) -> dict[str, int]:
    """Rows per table (the builder's check that a store on disk is the one asked for)."""
    with store.engine.connect() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in (results.runs_table, results.metrics_table, results.history_table,
                          results.artifacts_table)}


def build(db: str | os.PathLike, runs: int = 5000, epochs: int = 100, n_curves: int = 10, seed: int = 0,
          log=print) -> dict:
    """Build the store at `db` (a SQLite file) through zoo.results' write API, or reuse it when it
    already holds the rows these options make. Returns {"built": bool, "seconds": float, table: rows}."""
    db = Path(db)
    plans = plan(runs, epochs, seed)
    want = expected_counts(plans, n_curves)
    if db.exists():
        store = results.open_store(str(db))
        have = counts(store)
        store.dispose()
        if all(have[k] == v for k, v in want.items()):
            log(f"reusing {db}: " + ", ".join(f"{v:,} {k}" for k, v in have.items()))
            return {"built": False, "seconds": 0.0, **have}
        log(f"{db} holds other counts ({have}); building it again")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    db.parent.mkdir(parents=True, exist_ok=True)
    store = results.open_store(str(db))
    _fast_writes(store)
    seconds = write(store, plans, epochs, n_curves, db.parent / "runs", seed, log)
    have = counts(store)
    store.dispose()
    assert all(have[k] == v for k, v in want.items()), (have, want)
    log(f"built {db} in {seconds:.1f} s: " + ", ".join(f"{v:,} {k}" for k, v in have.items()))
    return {"built": True, "seconds": seconds, **have}


def write(store, plans: list[Plan], epochs: int, n_curves: int, out: Path, seed: int = 0, log=print) -> float:
    """Record `plans` in `store` (any backend) as the runner would, through the public write API, with
    all of a run's epochs in one transaction (`log_epochs`); artifacts under `out` (never written).
    Returns the seconds it took."""
    rng = np.random.default_rng(seed + 1)
    t0 = time.perf_counter()
    where = dict(host="bench-host", devices="CPU:0", replicas=1, dtype_policy="float32",
                 versions="tensorflow 2.x, keras 3.x, numpy 2.x")
    for i, p in enumerate(plans):
        cfg = config(p, epochs)
        key = hashlib.sha1(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]
        rid = store.start_run(experiment=p.experiment, model=p.model, label=p.label, dataset=p.dataset,
                              seed=p.seed, config=cfg, run_key=key, code_version="bench")
        folder = out / p.experiment / p.label / f"seed{p.seed}-run{rid}"
        store.update_run(rid, out_dir=str(folder), likelihood=p.likelihood,
                         param_count=int(rng.integers(1e4, 1e6)), **where)
        if p.epochs:
            store.log_epochs(rid, history(p, curves(p, n_curves), rng))
        if p.status == "FINISHED":
            for split, rows in metrics(p, rng).items():
                store.log_metrics(rid, split, rows)
            names = ["model", "history_csv", "tensorboard", "samples_npy", "samples_png"]
            files = ["model.keras", "history.csv", "tensorboard", "samples.npy", "samples.png"]
            if p.model in REPORT:
                names.append(f"report_{REPORT[p.model]}")
                files.append(f"{REPORT[p.model]}.csv")
            for name, file in zip(names, files):
                store.log_artifact(rid, name, folder / file)  # never written: the pages show placeholders
            store.finish_run(rid, "FINISHED", wall_time=float(rng.gamma(4, 60)))
        elif p.status == "FAILED":
            store.finish_run(rid, "FAILED", error=TRACEBACK, wall_time=5.0)
        elif p.status == "DIVERGED":
            store.finish_run(rid, "DIVERGED", error=f"training loss became nan at epoch {p.epochs}; lower "
                             "learning_rate or check the inputs", wall_time=10.0)
        if (i + 1) % max(1, len(plans) // 10) == 0:
            log(f"  {i + 1:,} / {len(plans):,} runs, {time.perf_counter() - t0:.0f} s")
    return time.perf_counter() - t0


# --- what the pages read ---------------------------------------------------------------------
@contextlib.contextmanager
def count_reads():
    """Within: every read of a Store that goes through `Store._frame` (every frame-returning reader)
    is recorded as (reader, tables, rows returned) in the yielded list."""
    from zoo.results.store import Store

    got, frame = [], Store._frame

    def counted(self, query):
        df = frame(self, query)
        tables = tuple(f.name for f in query.get_final_froms())  # not those of a subquery in WHERE
        got.append((sys._getframe(1).f_code.co_name, tables, len(df)))
        return df

    Store._frame = counted
    try:
        yield got
    finally:
        Store._frame = frame


def rows_by_table(reads) -> dict[str, int]:
    """Rows returned per table read ({table: rows}; the table a query selects from, not one it only
    filters by in a subquery)."""
    out = defaultdict(int)
    for _, tables, n in reads:
        for t in tables:
            out[t] += n
    return dict(out)


def payload(node) -> int:
    """Bytes of the protobuf messages a rendered AppTest tree (or node) holds: what a browser is sent."""
    proto = getattr(node, "proto", None)
    size = len(proto.SerializeToString()) if proto is not None else 0
    return size + sum(payload(child) for child in getattr(node, "children", {}).values())


def render(db, page: str, timeout: float = 600, quiet: bool = False, app: str | os.PathLike = APP):
    """A new AppTest session of the dashboard on `db`, switched to `page` before its first run (so only
    that page is drawn), with the data cache cleared: (AppTest, first-render s, reads, second-render s,
    reads). $ZOO_DB names `db` for the two runs, then is restored (a later `at.run()` needs it set).
    `quiet`: no Streamlit warnings (bare mode, no runtime) on stderr."""
    import streamlit as st
    from streamlit.logger import set_log_level
    from streamlit.testing.v1 import AppTest

    before, os.environ["ZOO_DB"] = os.environ.get("ZOO_DB"), str(db)  # the store the app opens
    try:
        at = AppTest.from_file(str(app), default_timeout=timeout)
        if quiet:
            set_log_level("error")
        st.cache_data.clear()
        at.switch_page(f"views/{page}.py")
        with count_reads() as cold:
            t0 = time.perf_counter()
            at.run()
            first = time.perf_counter() - t0
        with count_reads() as warm:
            t0 = time.perf_counter()
            at.run()
            second = time.perf_counter() - t0
    finally:
        if before is None:
            os.environ.pop("ZOO_DB")
        else:
            os.environ["ZOO_DB"] = before
    return at, first, cold, second, warm


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.dashboard_scale", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--curves", type=int, default=10, help="per-epoch values per run and epoch")
    parser.add_argument("--db", default=str(DEFAULT_DB), help="the SQLite file to build or reuse")
    parser.add_argument("--pages", nargs="*", default=PAGES, choices=PAGES)
    parser.add_argument("--app", default=str(APP),
                        help="the dashboard's app.py (e.g. another checkout's, for a before / after table)")
    parser.add_argument("--repeat", type=int, default=1, help="render each page this many times (cold); "
                        "the table shows the median")
    args = parser.parse_args(argv)
    args.app = str(Path(args.app).resolve())  # AppTest resolves a relative path from this file
    built = build(args.db, args.runs, args.epochs, args.curves)
    if built["built"]:
        print(f"build: {built['seconds']:.1f} s")
    tables = {k: built[k] for k in ("runs", "metrics", "history", "artifacts")}
    print(f"store: {args.db}: " + ", ".join(f"{v:,} {k}" for k, v in tables.items()))
    print(f"app: {args.app}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    render(args.db, "teach_bars", quiet=True, app=args.app)  # warm-up: imports, the engine, bars (not timed)
    head = f"{'page':<16} {'first s':>8} {'second s':>9} {'page KB':>8} {'queries':>7} " + " ".join(
        f"{t + ' rows':>14}" for t in tables) + "  exceptions"
    print(head)
    print("-" * len(head))
    total = 0.0
    for page in args.pages:
        got = [render(args.db, page, quiet=True, app=args.app) for _ in range(args.repeat)]
        at, first, cold, second, warm = sorted(got, key=lambda g: g[1])[len(got) // 2]
        total += first
        by = rows_by_table(cold)
        errors = "; ".join(str(e.value)[:80] for e in at.exception) or "-"
        print(f"{page:<16} {first:>8.2f} {second:>9.2f} {payload(at._tree) / 1024:>8.0f} {len(cold):>7} "
              + " ".join(f"{by.get(t, 0):>14,}" for t in tables) + f"  {errors}", flush=True)
    print(f"all pages, first renders: {total:.1f} s (load average {os.getloadavg()[0]:.1f} at the end)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
