"""The experiment runner: every model of a config x every seed -> trained, evaluated, recorded.

One run = one (model entry, seed). Its directory `<out>/<experiment>/<label>/seed<k>-run<id>/` holds
`model.keras`, `samples.png` + `samples.npy`, `history.csv`, `tensorboard/`, and while training
`backup/` (BackupAndRestore). The store gets the run row first, each epoch as it ends, then the
metrics and artifact paths. A run interrupted (killed or crashed) is resumed by running the same
command again: the store row is reopened and Keras restores the last finished epoch.
"""
from __future__ import annotations

import subprocess
import time
import traceback
from pathlib import Path

import numpy as np

from experiments.config import ExperimentConfig, run_key

REPO = Path(__file__).resolve().parent.parent


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_experiment(cfg: ExperimentConfig, store, out="runs", extra_callbacks=(), reuse_finished=False) -> list[int]:
    """Train and evaluate every (model, seed) of `cfg`; returns the run ids (FINISHED or not).

    With `reuse_finished`, a run whose exact resolved config already FINISHED is not trained again
    (the benchmark uses this); by default a rerun of a finished config is a new replicate.
    """
    dataset = cfg.load_dataset()
    ids = []
    for spec in cfg.models:
        for seed in cfg.seeds:
            done = _finished(store, run_key(cfg.resolved(spec, seed))) if reuse_finished else None
            ids.append(done or run_one(cfg, spec, seed, dataset, store, Path(out), extra_callbacks))
    return ids


def _finished(store, key) -> int | None:
    runs = store.runs(status="FINISHED")
    ids = runs.loc[runs["run_key"] == key, "run_id"]
    return int(ids.max()) if len(ids) else None


def _init_weights(model, store, cfg, label, seed):
    """Copy the weights of the latest FINISHED run of entry `label` (same experiment and seed)."""
    import zoo

    runs = store.runs(experiment=cfg.name, status="FINISHED")
    runs = runs[(runs["label"] == label) & (runs["seed"] == seed)]
    if runs.empty:
        raise RuntimeError(f"init_from: no FINISHED run of {label!r} (seed {seed}) in experiment {cfg.name!r}; "
                           f"run that entry first")
    path = store.artifacts(int(runs["run_id"].max())).set_index("name")["path"]["model"]
    model.set_weights(zoo.load_model(path).get_weights())


def run_one(cfg, spec, seed, dataset, store, out: Path, extra_callbacks=()) -> int:
    import keras

    import zoo
    from zoo.training import fit

    resolved = cfg.resolved(spec, seed)
    key = run_key(resolved)
    run_id = store.find_resumable(key)
    resumed = run_id is not None
    if not resumed:
        earlier = 0.0
        run_id = store.start_run(experiment=cfg.name, model=spec.model, label=spec.label, dataset=dataset.name,
                                 seed=seed, config=resolved, run_key=key, code_version=code_version())
        store.update_run(run_id, out_dir=str(out / cfg.name / spec.label / f"seed{seed}-run{run_id}"))
    else:
        earlier = store.run(run_id).get("wall_time") or 0.0
        store.resume_run(run_id)
    run_dir = Path(store.run(run_id)["out_dir"])  # its own folder: a backup is never another run's
    if resumed:
        print(f"[runner] resuming run {run_id} ({spec.label}, seed {seed}) from {run_dir}")
    t0 = time.perf_counter()
    try:
        keras.utils.set_random_seed(seed)
        model = zoo.build_model(spec.model, dataset, **{"seed": seed, **spec.hparams})
        store.update_run(run_id, param_count=int(model.count_params()), likelihood=model.likelihood)
        if spec.init_from:
            _init_weights(model, store, cfg, spec.init_from, seed)
        train = cfg.train_for(spec)
        history = fit(model, dataset, train, run_dir, seed=seed,
                      on_epoch=lambda epoch, values: store.log_epoch(run_id, epoch, values),
                      extra_callbacks=extra_callbacks)
        losses = history.history.get("loss", [])
        if losses and not np.all(np.isfinite(losses)):
            store.finish_run(run_id, "DIVERGED", error=f"training loss became {losses[-1]} at epoch "
                             f"{history.epoch[-1] + 1}; lower learning_rate or check the inputs",
                             wall_time=earlier + time.perf_counter() - t0)
            return run_id
        _save_outputs(cfg, model, dataset, store, run_id, run_dir, seed)
        store.finish_run(run_id, "FINISHED", wall_time=earlier + time.perf_counter() - t0)
    except KeyboardInterrupt:
        store.finish_run(run_id, "FAILED", error="interrupted; run the same command again to resume",
                         wall_time=earlier + time.perf_counter() - t0)
        raise
    except Exception:  # noqa: BLE001 - recorded in the store, then the next run goes on
        err = traceback.format_exc()
        print(f"[runner] run {run_id} ({spec.label}, seed {seed}) FAILED:\n{err}")
        store.finish_run(run_id, "FAILED", error=err, wall_time=earlier + time.perf_counter() - t0)
    return run_id


REPORT_EXAMPLES = 200  # test images behind the bound-anatomy reports (IS vs k, pixel NLL map, ...)


def _fixed_subset(x, n):
    """The same `n` images of `x` for every run, drawn at random (some test splits are ordered)."""
    return x[np.sort(np.random.default_rng(0).permutation(len(x))[:n])]


def _save_outputs(cfg, model, dataset, store, run_id, run_dir, seed):
    """Weights, samples, history CSV, then the test metrics, all recorded in the store."""
    from zoo.evaluation import evaluate, reports, sampler_comparison, sampling_speed
    from zoo.images import grid

    run_dir.mkdir(parents=True, exist_ok=True)
    e = cfg.eval
    store.log_metrics(run_id, "valid", model.calibrate(dataset.valid, seed=seed))  # before saving: part of the model
    model.save(run_dir / "model.keras")
    store.log_artifact(run_id, "model", str(run_dir / "model.keras"))
    store.history([run_id]).pivot(index="epoch", columns="name", values="value").to_csv(run_dir / "history.csv")
    store.log_artifact(run_id, "history_csv", str(run_dir / "history.csv"))
    store.log_artifact(run_id, "tensorboard", str(run_dir / "tensorboard"))
    rows = evaluate(model, dataset, split=e.split, batch_size=e.batch_size, is_k=e.is_k,
                    is_examples=e.is_examples, seed=seed)
    store.log_metrics(run_id, e.split, rows)
    speed, samples = sampling_speed(model, e.n_samples, seed=seed)
    np.save(run_dir / "samples.npy", samples)
    grid(samples, dataset.levels).save(run_dir / "samples.png")
    store.log_artifact(run_id, "samples_npy", str(run_dir / "samples.npy"))
    store.log_artifact(run_id, "samples_png", str(run_dir / "samples.png"))
    if e.metric_samples:  # sample quality next to the likelihoods (zoo.sample_metrics)
        from zoo.sample_metrics import draw_samples, sample_metrics
        drawn = draw_samples(model, e.metric_samples, seed=seed, batch_size=e.batch_size)
        store.log_metrics(run_id, e.split, sample_metrics(dataset, drawn, split=e.split, seed=seed))
    throughput = store.history([run_id]).query("name == 'examples_per_sec'")["value"]
    store.log_metrics(run_id, "train", [("samples_per_sec", speed, None),
                                        ("train_examples_per_sec", float(throughput.median()), None)]
                      + sampler_comparison(model, seed=seed))
    for name, table in reports(model, _fixed_subset(dataset.split(e.split), REPORT_EXAMPLES), seed=seed).items():
        table.to_csv(run_dir / f"{name}.csv", index=False)
        store.log_artifact(run_id, f"report_{name}", str(run_dir / f"{name}.csv"))
    summary = ", ".join(f"{n}={v:.4g}" for n, v, _ in rows if n in ("nll", "bits_per_dim", "is_nll"))
    print(f"[runner] run {run_id} {model.name} seed {seed}: {e.split} {summary} ({model.likelihood})")
