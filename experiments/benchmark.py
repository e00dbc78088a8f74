"""Benchmark: run the shipped configs (reusing runs already FINISHED in the store) and print the
figures the issues set as targets, next to the targets. Nothing here is timed by a test.

    python -m experiments bench quick                # the README's main job, and where its time goes
    python -m experiments bench bars digits          # minutes on 2 CPU cores
    ZOO_DATA_DIR=../shared/data python -m experiments bench mnist   # about an hour
    python -m experiments bench --report-only all    # print what the store already holds
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import pandas as pd

from experiments.cli import Parser, out_folder
from zoo.data import BARS_NOISE, bars_entropy
from zoo.vocabulary import SAMPLE_METRICS, family

CONFIGS = Path(__file__).parent / "configs"
SUITES = {"quick": "quick.yaml", "bars": "bars.yaml", "digits": "digits.yaml",
          "mnist": "binarized_mnist.yaml"}
# (suite, label, metric, comparison, target, what the issue asks). Comparison "report": a figure with
# nothing to meet; its target is None, a reference number, or the name of the column holding one.
TARGETS = [
    ("bars", "vae", "is_gap_entropy", "<=", 0.1,
     "VAE IS-NLL (k=1000) within 0.1 nats of the entropy 6.5718"),
    ("bars", "vae", "train_seconds", "<=", 120, "... after <= 2 min of CPU"),
    ("bars", "vae", "pop_is_gap", "report", 0.1,
     "VAE IS-NLL (k=1000) gap on all 2^16 states weighted by p(x)"),
    ("bars", "pixelcnn", "pop_gap", "<=", 0.02,
     ("PixelCNN NLL within 0.02 nats of the entropy (KL(p||q) over all 2^16 states; the 10k test split's "
      "own true NLL is itself ~0.024 above the entropy)")),
    ("bars", "flow", "is_gap_entropy", "<=", 0.3, "flow test NLL (IS) within 0.3 nats of the entropy"),
    ("digits", "vae", "is_nll", "<=", 100, "VAE test IS-NLL <= 100 nats (intro_dgm ~101)"),
    ("digits", "pixelcnn", "nll", "<=", 84, "PixelCNN test NLL <= 84 nats (intro_dgm ARM ~88.7)"),
    ("digits", "flow", "nll", "<=", 105,
     "flow test NLL (ELBO over dequantisation) <= 105 nats (intro_dgm RealNVP ~125)"),
    ("bars", "diffusion", "nll_gap_entropy", "<=", 0.3, "diffusion test VLB within 0.3 nats of the entropy"),
    ("bars", "gan", "kl_emp_true", "report", "kl_emp_true_floor",
     "GAN: KL(sample histogram || true p) over the 2^16 states, nats"),
    ("bars", "gan", "nll", "report", None, "GAN test NLL by AIS (discretised Gaussian observation model)"),
    ("digits", "diffusion", "nll", "report", None, "diffusion test VLB, nats of the discrete 17-level data"),
    ("digits", "diffusion", "sampler_speedup", "report", None,
     "DDIM (few steps) vs ancestral sampling, samples/s ratio"),
    ("digits", "gan", "nll", "report", None, "GAN test NLL by AIS"),
    ("digits", "vae", "ais_minus_is", "report", None,
     ("AIS on the VAE decoder minus IS (k=1000), mean log P on the same test images (both lower bounds "
      "of log P(x))")),
    ("mnist", "vae", "is_nll", "<=", 95, "VAE test IS-NLL (k=5000) <= 95 nats"),
    ("mnist", "vae", "train_seconds", "<=", 1800, "... within 30 min on 2 CPU cores"),
    ("mnist", "iwae_k50", "is_nll_minus_vae", "<", 0, "IWAE (k=50) IS-NLL below the VAE's"),
    ("mnist", "pixelcnn", "nll", "report", 81.30,
     "PixelCNN test NLL after the config's CPU budget (paper: 81.30)"),
    ("mnist", "pixelcnn", "sampler_speedup", ">=", 10,
     "fast PixelCNN sampler vs the naive raster loop on 28x28"),
]


# the sample-quality metrics (zoo.vocabulary), then the rows that help read them (zoo.sample_metrics)
SAMPLE_COLUMNS = ("metric_samples", *SAMPLE_METRICS, "kl_emp_true_floor", "tv_emp_true_floor", "kid_se",
                  "nn_train_dist_test", "classifier_accuracy", "autoencoder_mse")
COMPARISONS = {"<=": lambda v, t: v <= t, "<": lambda v, t: v < t, ">=": lambda v, t: v >= t}


def backfill_sample_metrics(store, experiment: str, cfg) -> list[int]:
    """Sample-quality rows for the latest FINISHED runs recorded before the runner computed them: load
    the saved model, draw `cfg.eval.metric_samples` samples, log the rows. Returns the run ids it filled."""
    runs = store.runs(experiment=experiment, status="FINISHED").sort_values("run_id")
    runs = runs.groupby(["label", "seed"]).tail(1)  # the runs the tables show
    done = set(store.metrics(runs["run_id"]).query("name == 'metric_samples'")["run_id"])
    todo = [int(r) for r in runs["run_id"] if r not in done]
    if not todo or not cfg.eval.metric_samples:
        return []
    import zoo
    from zoo.sample_metrics import draw_samples, sample_metrics

    dataset = cfg.load_dataset()
    paths = store.artifacts(todo).query("name == 'model'").set_index("run_id")["path"]
    options = {spec.label: spec.sample for spec in cfg.models}  # as the runner draws them
    filled = []
    for run_id in todo:
        if run_id not in paths.index or not Path(paths[run_id]).exists():
            continue
        row, e = store.run(run_id), cfg.eval
        seed, model = int(row["seed"]), zoo.load_model(paths[run_id])
        drawn = draw_samples(model, e.metric_samples, seed=seed, batch_size=e.batch_size,
                             **options.get(row["label"], {}))
        store.log_metrics(run_id, e.split, sample_metrics(dataset, drawn, split=e.split, seed=seed))
        filled.append(run_id)
    return filled


def ais_cross_check(store, experiment: str, cfg, label="vae", examples=100, steps=500, chains=16, is_k=1000):
    """AIS on the decoder of the latest FINISHED `label` run vs its IS estimate on the same test
    images (Wu et al. 2017's check): logs ais_nll, ais_is_nll (IS on those images) and ais_minus_is."""
    runs = store.runs(experiment=experiment, status="FINISHED")
    runs = runs[runs["label"] == label].sort_values("run_id")
    if runs.empty or "ais_nll" in set(store.metrics([int(runs["run_id"].iloc[-1])])["name"]):
        return None
    import time

    import numpy as np

    import zoo

    run_id = int(runs["run_id"].iloc[-1])
    path = store.artifacts([run_id]).query("name == 'model'")["path"].iloc[0]
    model = zoo.load_model(path)
    x = cfg.load_dataset().test[:examples]
    t0 = time.perf_counter()
    ais = float(np.mean(np.concatenate([model.log_prob_ais(x[s:s + 50], steps, chains, seed=1).numpy()
                                        for s in range(0, len(x), 50)])))
    seconds = time.perf_counter() - t0
    is_ = float(np.mean(model.log_prob_is(x, is_k, seed=1).numpy()))
    store.log_metrics(run_id, "test", [("ais_nll", -ais, "ais"), ("ais_is_nll", -is_, "iwae"),
                                       ("ais_minus_is", ais - is_, None), ("ais_steps", steps, None),
                                       ("ais_examples", len(x), None), ("ais_seconds", seconds, None)])
    return run_id


def _bars_noise(config: str) -> float:
    """The bars' flip probability in a run's config JSON (its dataset entry), else the default."""
    try:
        dataset = json.loads(config).get("dataset")
    except (TypeError, ValueError, AttributeError):
        dataset = None
    return float(dataset.get("noise", BARS_NOISE)) if isinstance(dataset, dict) else BARS_NOISE


def suite_table(store, experiment: str) -> pd.DataFrame:
    """One row per FINISHED run of `experiment` (latest per label/seed), indexed by run_id: label, seed,
    model, likelihood, the test metrics, epochs and train_seconds (summed epoch_seconds), and on bars
    entropy (`zoo.data.bars_entropy` at the run's noise) with is_gap_entropy (IS-NLL, else NLL, minus
    it), nll_gap_entropy and is_gap_data; is_nll_minus_vae when a "vae" label has an is_nll.
    Empty when the experiment has no finished run."""
    runs = store.runs(experiment=experiment, status="FINISHED")
    if runs.empty:
        return pd.DataFrame()
    runs = runs.sort_values("run_id").groupby(["label", "seed"]).tail(1).set_index("run_id")
    wide = store.metrics(list(runs.index)).pivot_table(index="run_id", columns="name", values="value")
    hist = store.history(list(runs.index))
    epochs = hist[hist["name"] == "epoch_seconds"].groupby("run_id")["value"]
    table = runs[["label", "seed", "model", "likelihood", "param_count", "wall_time"]].join(wide)
    table["epochs"] = epochs.count()
    table["train_seconds"] = epochs.sum()
    if "nll" in table:
        best = table["nll"] if "is_nll" not in table else table["is_nll"].fillna(table["nll"])  # IS if any
        bars = runs["dataset"] == "bars"
        if bars.any():
            table["entropy"] = runs.loc[bars, "config"].map(lambda c: bars_entropy(_bars_noise(c)))
            table["is_gap_entropy"] = best - table["entropy"]
            table["nll_gap_entropy"] = table["nll"] - table["entropy"]
        if "data_nll" in table:
            table["is_gap_data"] = best - table["data_nll"]
    if "is_nll" in table and (table["label"] == "vae").any():
        table["is_nll_minus_vae"] = table["is_nll"] - table.loc[table["label"] == "vae", "is_nll"].mean()
    return table


class Verdict(NamedTuple):
    """One TARGETS row judged on a suite table."""

    status: str  # "MET", "MISSED", or "figure" (a report-only number, nothing to meet)
    what: str  # what the issue asks
    metric: str
    value: float  # the mean over the label's runs (seeds)
    target: float | None  # the target; for a figure its reference number, if any
    op: str = "report"  # "<=", "<", ">=", or "report" for a figure
    reference: str | None = None  # a figure's reference column (target is then its mean)


def verdicts(table: pd.DataFrame, suite: str, targets=TARGETS) -> list[Verdict]:
    """The `targets` of `suite` judged on `suite_table(...)`, in TARGETS order. A target whose label has
    no run, or whose metric is missing (no column, or NaN for every run of the label), gives no verdict."""
    out = []
    for s, label, metric, op, target, what in targets:
        if s != suite or table.empty or metric not in table:
            continue
        rows = table[table["label"] == label]
        value = float(rows[metric].mean()) if not rows.empty else math.nan
        if math.isnan(value):
            continue
        if op == "report":
            reference = target if isinstance(target, str) else None
            if reference is not None:
                target = float(rows[reference].mean()) if reference in rows else None
            out.append(Verdict("figure", what, metric, value, target, op, reference))
        else:
            status = "MET" if COMPARISONS[op](value, target) else "MISSED"
            out.append(Verdict(status, what, metric, value, target, op))
    return out


def verdict_line(v: Verdict) -> str:
    """How print_suite shows a verdict: "  target MET   : ... (target <= 0.1)" or "  figure      : ..."."""
    if v.status != "figure":
        return f"  target {v.status:<6}: {v.what}: {v.metric} = {v.value:.4g} (target {v.op} {v.target})"
    ref = None if v.target is None else f"{v.target:.4g}"
    if ref is not None and v.reference:
        ref = f"{v.reference} = {ref}"
    tail = f" (reference {ref})" if ref is not None else ""
    return f"  figure      : {v.what}: {v.metric} = {v.value:.4g}{tail}"


MAIN_JOB_MINUTES = 5  # issue 9: the README's main job (suite "quick") on 2 CPU cores


def time_shares(store, experiment: str) -> pd.DataFrame:
    """Where each run's wall time went (latest FINISHED run per label/seed), seconds and shares:
    training steps (`step_seconds`), validation, checkpoints, other per-epoch bookkeeping (callbacks,
    logs, the store), and the outputs after training (evaluation, samples, sample metrics, reports).
    `share` is the run's part of the experiment's total; `bookkeeping` the non-training part of its
    epochs."""
    runs = store.runs(experiment=experiment, status="FINISHED")
    if runs.empty:
        return pd.DataFrame()
    runs = runs.sort_values("run_id").groupby(["label", "seed"]).tail(1).set_index("run_id")
    hist = store.history(list(runs.index))
    parts = ("epoch_seconds", "step_seconds", "valid_seconds", "checkpoint_seconds")
    sums = hist[hist["name"].isin(parts)].pivot_table(index="run_id", columns="name", values="value",
                                                       aggfunc="sum").reindex(columns=list(parts))
    t = runs[["label", "seed", "wall_time"]].join(sums)
    t["other_epoch_seconds"] = t["epoch_seconds"] - t[list(parts[1:])].sum(axis=1, min_count=1)
    t["outputs_seconds"] = t["wall_time"] - t["epoch_seconds"]
    t["share"] = t["wall_time"] / t["wall_time"].sum()
    t["bookkeeping"] = 1 - t["step_seconds"] / t["epoch_seconds"]
    return t


def print_time_shares(store, suite: str, experiment: str) -> None:
    t = time_shares(store, experiment)
    if t.empty or t["step_seconds"].isna().all():
        return
    total = t["wall_time"].sum()
    print(f"  where the time went ({len(t)} runs, {total / 60:.2f} min of run wall time; bookkeeping = "
          f"validation + checkpoints + other per-epoch work, as a share of the epochs' time):")
    cols = ["label", "wall_time", "share", "step_seconds", "valid_seconds", "checkpoint_seconds",
            "other_epoch_seconds", "bookkeeping", "outputs_seconds"]
    with pd.option_context("display.width", 200, "display.float_format", "{:.3g}".format):
        print(t[cols].to_string(index=False))
    book = 1 - t["step_seconds"].sum() / t["epoch_seconds"].sum()
    print(f"  per-epoch bookkeeping: {book:.1%} of the epochs' time, "
          f"{(t['epoch_seconds'] - t['step_seconds']).sum() / total:.1%} of the wall time")
    if suite == "quick":
        status = "MET" if total <= MAIN_JOB_MINUTES * 60 else "MISSED"
        print(f"  target {status:<6}: the main job's runs in <= {MAIN_JOB_MINUTES} min of wall time: "
              f"{total / 60:.2f} min (add ~10 s for starting Python and TensorFlow)")


def print_suite(store, suite: str, experiment: str) -> None:
    """Print the suite's table, its sample-quality figures and its verdicts (`verdicts`)."""
    table = suite_table(store, experiment)
    print(f"\n== {suite} ({experiment}) ==")
    if table.empty:
        print("no finished runs")
        return
    cols = [c for c in ("label", "seed", "likelihood", "nll", "bits_per_dim", "is_nll", "is_k",
                        "is_gap_entropy", "is_gap_data", "data_nll", "pop_gap", "pop_is_gap", "ais_nll",
                        "epochs", "train_seconds", "wall_time", "train_examples_per_sec", "samples_per_sec",
                        "sampler_speedup", "param_count") if c in table]
    fmt = ("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format)
    with pd.option_context(*fmt):
        print(table[cols].to_string(index=False))
    quality = [c for c in SAMPLE_COLUMNS if c in table]
    if quality:  # zoo.sample_metrics: bars' exact KL/TV of the sample histogram, else feature-space figures
        print("  sample quality (zoo.sample_metrics; *_floor: an exact sampler at the same N):")
        with pd.option_context(*fmt):
            print(table[["label", "seed"] + quality].to_string(index=False))
    if suite in ("quick", "digits"):  # every family with a likelihood (or AIS) number and sample metrics
        full = table.dropna(subset=["nll", "fcd"]) if {"nll", "fcd"} <= set(table) else table.iloc[0:0]
        families = sorted(set(full["model"].map(family)))
        print(f"  families with a likelihood and sample metrics: {len(families)} "
              f"({', '.join(families)})")
    for v in verdicts(table, suite):
        print(verdict_line(v))
    print_time_shares(store, suite, experiment)


def main(argv=None) -> int:
    parser = Parser(prog="python -m experiments bench")
    parser.add_argument("suites", nargs="*", default=["bars", "digits"],
                        help=f"any of {', '.join(SUITES)}, all")
    parser.add_argument("--db", default=None,
                        help="results store (default: $ZOO_DB or experiments/results.sqlite)")
    parser.add_argument("--out", default="runs", type=out_folder)
    parser.add_argument("--report-only", action="store_true", help="print the store's figures, train nothing")
    args = parser.parse_args(argv)
    suites = list(SUITES) if "all" in args.suites else args.suites
    unknown = set(suites) - set(SUITES)
    if unknown:
        names = ", ".join(map(repr, sorted(unknown)))
        parser.error(f"unknown suite(s) {names}; choose from {', '.join(SUITES)} or all")

    from experiments import config as cfgmod
    from zoo.results import open_store

    store = open_store(args.db)
    for suite in suites:
        cfg = cfgmod.load(CONFIGS / SUITES[suite])
        if not args.report_only:
            from experiments.runner import run_experiment

            run_experiment(cfg, store, out=args.out, reuse_finished=True)
            backfill_sample_metrics(store, cfg.name, cfg)
            if suite == "digits":
                ais_cross_check(store, cfg.name, cfg)
        print_suite(store, suite, cfg.name)
    print(f"\nstore: {store.url}")
    return 0
