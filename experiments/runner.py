"""The experiment runner: every model of a config x every seed -> trained, evaluated, recorded.

One run = one (model entry, seed). Its directory `<out>/<experiment>/<label>/seed<k>-run<id>/` holds
`model.keras`, `samples.png` + `samples.npy`, `history.csv`, `tensorboard/`, and while training
`backup/` (BackupAndRestore). The store gets the run row first, each epoch as it ends, then the
metrics and artifact paths. A run interrupted (killed or crashed) is resumed by running the same
command again: the store row is reopened and Keras restores the last finished epoch. Workers
(experiments/worker.py) claim runs in the store first, then train each here with `run_one`.
"""
from __future__ import annotations

import dataclasses
import subprocess
import time
import traceback
from pathlib import Path

import numpy as np

from experiments.config import ExperimentConfig, run_key

REPO = Path(__file__).resolve().parent.parent


def code_version() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_experiment(cfg: ExperimentConfig, store, out="runs", extra_callbacks=(),
                   reuse_finished=False) -> list[int]:
    """Train and evaluate every (model, seed) of `cfg`; returns the run ids (FINISHED or not).

    With `reuse_finished`, a run whose exact resolved config already FINISHED is not trained again
    (the benchmark uses this); by default a rerun of a finished config is a new replicate.
    """
    dataset = cfg.load_dataset()
    plan = [(spec, seed) for spec in cfg.models for seed in cfg.seeds]
    print_plan(cfg, plan, dataset, store)
    ids = []
    for i, (spec, seed) in enumerate(plan):
        tag = f"run {i + 1}/{len(plan)} {spec.label} (seed {seed})"
        done = _finished(store, run_key(cfg.resolved(spec, seed))) if reuse_finished else None
        if done:
            print(f"[runner] {tag}: already FINISHED as run {done}, reused")
        ids.append(done or run_one(cfg, spec, seed, dataset, store, Path(out), extra_callbacks, tag=tag))
    return ids


def estimate_seconds(store, cfg, spec, seed) -> tuple[float | None, str]:
    """Wall time of this run guessed from FINISHED runs in the store: the same settings (median), else
    the same entry of the same experiment and dataset scaled by epochs. (None, why) without any."""
    import json

    runs = store.runs(status="FINISHED").dropna(subset=["wall_time"])
    resolved = cfg.resolved(spec, seed)
    same = runs[runs["run_key"] == run_key(resolved)]
    if len(same):
        return float(same["wall_time"].median()), f"{len(same)} earlier run(s) of these settings"
    alike = runs[(runs["experiment"] == cfg.name) & (runs["label"] == spec.label)
                 & (runs["model"] == spec.model) & (runs["dataset"] == resolved["dataset"].get("name"))]
    if len(alike):
        last = alike.iloc[-1]
        scale = resolved["train"]["epochs"] / json.loads(last["config"])["train"]["epochs"]
        return float(last["wall_time"]) * scale, f"run {last['run_id']}, by epochs"
    return None, "no earlier run to go by"


def print_plan(cfg, plan, dataset, store):
    """The plan before any training: each run, its training budget and estimated time."""
    h, w, c = dataset.shape
    print(f"[runner] plan: experiment {cfg.name!r} on {dataset.name} ({len(dataset.train)} training "
          f"images, {h}x{w}x{c}, {dataset.levels} levels): {len(plan)} run(s) of "
          f"{len({s.model for s, _ in plan})} model(s)")
    total, unknown = 0.0, 0
    for i, (spec, seed) in enumerate(plan):
        train = cfg.train_for(spec)
        seconds, basis = estimate_seconds(store, cfg, spec, seed)
        total += seconds or 0.0
        unknown += seconds is None
        guess = f"~{_duration(seconds)} ({basis})" if seconds is not None else basis
        print(f"[runner]   {i + 1}/{len(plan)} {spec.label:<14} {spec.model:<10} seed {seed}  "
              f"{train.epochs} epochs x batch {train.batch_size}  {guess}")
    known = len(plan) - unknown
    print(f"[runner] estimated time: ~{_duration(total)} for the {known} run(s) with an estimate"
          + (f"; {unknown} without one" if unknown else ""))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


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
        raise RuntimeError(f"init_from: no FINISHED run of {label!r} (seed {seed}) "
                           f"in experiment {cfg.name!r}; run that entry first")
    path = store.artifacts(int(runs["run_id"].max())).set_index("name")["path"]["model"]
    model.set_weights(zoo.load_model(path).get_weights())


def run_one(cfg, spec, seed, dataset, store, out: Path, extra_callbacks=(), tag=None) -> int:
    import keras

    import zoo
    from zoo.distribute import make_strategy, where
    from zoo.training import dtype_policy, fit, float32_copy

    resolved = cfg.resolved(spec, seed)
    key = run_key(resolved)
    run_id = store.find_resumable(key)
    resumed = run_id is not None
    if not resumed:
        earlier = 0.0
        run_id = store.start_run(experiment=cfg.name, model=spec.model, label=spec.label,
                                 dataset=dataset.name, seed=seed, config=resolved, run_key=key,
                                 code_version=code_version())
        store.update_run(run_id, out_dir=str(out / cfg.name / spec.label / f"seed{seed}-run{run_id}"))
    else:
        row = store.run(run_id)
        earlier, resumed = row.get("wall_time") or 0.0, bool(row.get("epochs_done"))  # else a first go
        store.resume_run(run_id)
    run_dir = Path(store.run(run_id)["out_dir"])  # its own folder: a backup is never another run's
    tag = tag or f"run {spec.label} (seed {seed})"
    print(f"[runner] {tag}: {'resuming' if resumed else 'starting'} as run {run_id} in {run_dir}")
    t0 = time.perf_counter()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)  # an unwritable --out fails here, before training
        model = _trained(run_dir)  # a run stopped after training (a new run's folder has none)
        if model is not None:
            print(f"[runner] {tag}: trained before it stopped ({run_dir / TRAINED}); evaluating only")
            _save_outputs(cfg, spec, model, dataset, store, run_id, run_dir, seed)
            return _finish(store, run_id, run_dir, tag, earlier, t0, t0)
        train = cfg.train_for(spec)
        strategy = make_strategy(train.strategy)  # built, compiled and fitted in its scope
        keras.utils.set_random_seed(seed)
        with strategy.scope(), dtype_policy(train.precision):
            model = zoo.build_model(spec.model, dataset, **{"seed": seed, **spec.hparams})
            store.update_run(run_id, param_count=int(model.count_params()), likelihood=model.likelihood,
                             **where(strategy, train.precision))
            if spec.init_from:
                _init_weights(model, store, cfg, spec.init_from, seed)
            history = fit(model, dataset, train, run_dir, seed=seed,
                          on_epoch=lambda epoch, values: store.log_epoch(run_id, epoch, values),
                          extra_callbacks=extra_callbacks)
        losses = history.history.get("loss", [])
        if losses and not np.all(np.isfinite(losses)):
            store.finish_run(run_id, "DIVERGED", error=f"training loss became {losses[-1]} at epoch "
                             f"{history.epoch[-1] + 1}; lower learning_rate or check the inputs",
                             wall_time=earlier + time.perf_counter() - t0)
            print(f"[runner] {tag}: DIVERGED (training loss {losses[-1]})")
            return run_id
        trained = time.perf_counter()
        model = float32_copy(model)  # evaluated in float32 whatever the training precision
        _keep_trained(model, run_dir)
        _save_outputs(cfg, spec, model, dataset, store, run_id, run_dir, seed)
        _finish(store, run_id, run_dir, tag, earlier, t0, trained)
    except KeyboardInterrupt:
        store.finish_run(run_id, "FAILED", error="interrupted; run the same command again to resume",
                         wall_time=earlier + time.perf_counter() - t0)
        raise
    except OSError as err:  # the output folder: unwritable, full, gone
        where = err.filename or run_dir
        err = (f"{traceback.format_exc()}\ncannot write {where}: {err.strerror or err}; free disk space or "
               f"make the folder writable (or give another --out), then run the same command again")
        print(f"[runner] {tag}: FAILED (run {run_id}):\n{err}")
        store.finish_run(run_id, "FAILED", error=err, wall_time=earlier + time.perf_counter() - t0)
    except Exception:  # noqa: BLE001 - recorded in the store, then the next run goes on
        err = traceback.format_exc()
        print(f"[runner] {tag}: FAILED (run {run_id}):\n{err}")
        store.finish_run(run_id, "FAILED", error=err, wall_time=earlier + time.perf_counter() - t0)
    return run_id


TRAINED = "trained.keras"  # the trained float32 model, kept in the run folder until the run FINISHES


def _keep_trained(model, run_dir: Path) -> None:
    """Save the trained model (atomically) before any output step, then drop the training backup: a
    run killed while it evaluates is finished later without training again (`_trained`)."""
    import shutil

    run_dir.mkdir(parents=True, exist_ok=True)
    partial = run_dir / f"partial-{TRAINED}"
    model.save(partial)
    partial.replace(run_dir / TRAINED)
    shutil.rmtree(run_dir / "backup", ignore_errors=True)


def _trained(run_dir: Path):
    """The model `_keep_trained` saved for this run, or None (training did not end, or it FINISHED)."""
    import zoo

    return zoo.load_model(run_dir / TRAINED) if (run_dir / TRAINED).is_file() else None


def _finish(store, run_id, run_dir: Path, tag, earlier, t0, trained) -> int:
    """FINISHED in the store; the kept trained model is no longer needed (`model.keras` is the output)."""
    store.finish_run(run_id, "FINISHED", wall_time=earlier + time.perf_counter() - t0)
    (run_dir / TRAINED).unlink(missing_ok=True)
    total = time.perf_counter() - t0
    print(f"[runner] {tag}: FINISHED in {_duration(total)} (training {_duration(trained - t0)}, "
          f"evaluation and outputs {_duration(total - (trained - t0))})")
    return run_id


REPORT_EXAMPLES = 200  # test images behind the bound-anatomy reports (IS vs k, pixel NLL map, ...)


def _fixed_subset(x, n):
    """The same `n` images of `x` for every run, drawn at random (some test splits are ordered)."""
    return x[np.sort(np.random.default_rng(0).permutation(len(x))[:n])]


@dataclasses.dataclass
class Finished:
    """A trained run on its way to the store: what every output step reads."""

    cfg: ExperimentConfig
    spec: object  # its ModelSpec
    model: object
    dataset: object
    store: object
    run_id: int
    run_dir: Path
    seed: int

    def artifact(self, name: str, filename: str) -> Path:
        """The path of a file of this run, recorded in the store as artifact `name`."""
        path = self.run_dir / filename
        self.store.log_artifact(self.run_id, name, str(path))
        return path


def calibrate(run: Finished):
    """Evaluation-time settings fitted on validation images (GAN: AIS sigma) -- part of the saved model."""
    run.store.log_metrics(run.run_id, "valid", run.model.calibrate(run.dataset.valid, seed=run.seed))


def save_model(run: Finished):
    run.model.save(run.artifact("model", "model.keras"))


def save_history(run: Finished):
    """The per-epoch values as a CSV, and the TensorBoard folder."""
    history = run.store.history([run.run_id]).pivot(index="epoch", columns="name", values="value")
    history.to_csv(run.artifact("history_csv", "history.csv"))
    run.artifact("tensorboard", "tensorboard")


def split_metrics(run: Finished):
    """zoo.evaluation.evaluate on the config's split; prints the headline figures."""
    from zoo.evaluation import evaluate

    e = run.cfg.eval
    rows = evaluate(run.model, run.dataset, split=e.split, batch_size=e.batch_size, is_k=e.is_k,
                    is_examples=e.is_examples, seed=run.seed, draws=e.draws)
    run.store.log_metrics(run.run_id, e.split, rows)
    summary = ", ".join(f"{n}={v:.4g}" for n, v, _ in rows if n in ("nll", "bits_per_dim", "is_nll"))
    print(f"[runner] run {run.run_id} {run.model.name} seed {run.seed}: "
          f"{e.split} {summary} ({run.model.likelihood})")


def sample_grid(run: Finished):
    """The saved sample grid (PNG + NPY), and how fast it was drawn."""
    from zoo.evaluation import sampling_speed
    from zoo.images import grid

    speed, samples = sampling_speed(run.model, run.cfg.eval.n_samples, seed=run.seed, **run.spec.sample)
    np.save(run.artifact("samples_npy", "samples.npy"), samples)
    grid(samples, run.dataset.levels).save(run.artifact("samples_png", "samples.png"))
    run.store.log_metrics(run.run_id, "train", [("samples_per_sec", speed, None)])


def sample_quality(run: Finished):
    """Sample-quality metrics (zoo.sample_metrics) on `eval.metric_samples` fresh samples."""
    from zoo.sample_metrics import draw_samples, sample_metrics

    e = run.cfg.eval
    if e.metric_samples:
        drawn = draw_samples(run.model, e.metric_samples, seed=run.seed, batch_size=e.batch_size,
                             **run.spec.sample)
        rows = sample_metrics(run.dataset, drawn, split=e.split, seed=run.seed)
        run.store.log_metrics(run.run_id, e.split, rows)


def speeds(run: Finished):
    """Training throughput (median over epochs) and, with several samplers, their speed-up."""
    from zoo.evaluation import sampler_comparison

    throughput = run.store.history([run.run_id]).query("name == 'examples_per_sec'")["value"]
    run.store.log_metrics(run.run_id, "train", [("train_examples_per_sec", float(throughput.median()), None)]
                          + sampler_comparison(run.model, seed=run.seed))


def save_reports(run: Finished):
    """Bound-anatomy tables (IS vs k, pixel NLL map, loss per timestep, ...) as CSV artifacts."""
    from zoo.evaluation import IS_KS, reports

    x = _fixed_subset(run.dataset.split(run.cfg.eval.split), REPORT_EXAMPLES)
    is_ks = [k for k in IS_KS if k <= max(run.cfg.eval.is_k, 1)]  # L_k rising with k, up to eval.is_k
    _save_tables(run, reports(run.model, x, seed=run.seed, is_ks=is_ks))


def _save_tables(run: Finished, tables: dict):
    """Each report table as CSV artifact `report_<name>`."""
    for name, table in tables.items():
        table.to_csv(run.artifact(f"report_{name}", f"{name}.csv"), index=False)


def lecture_outputs(run: Finished):
    """The lectures' demonstrations the dashboard draws without TensorFlow (zoo.demos): estimators of
    log p(x) against k, inference gaps, the sampling cost; metrics on the eval split, report tables."""
    from zoo.demos import runner_outputs

    e = run.cfg.eval
    split = run.dataset.split(e.split)
    x = _fixed_subset(split, REPORT_EXAMPLES)
    rows, tables = runner_outputs(run.model, run.dataset, x, seed=run.seed, sample_options=run.spec.sample,
                                  metric_x=split[:e.is_examples or None], is_k=max(e.is_k, 1))
    run.store.log_metrics(run.run_id, run.cfg.eval.split, rows)
    _save_tables(run, tables)


def semi_supervised(run: Finished):
    """Semi-supervised test error (zoo.semisupervised, Kingma et al. 2014 Table 1), fractions of the
    eval split misclassified, kind "classifier": `m1_error_n{N}` for each N of `eval.ssl_labels` when
    the model has an encoder (`encode`; M1: an RBF SVM on the latent means of N labelled training
    images, `labelled_subset(labels, N, seed=0)`: those the m2 family trains with, whatever the run's
    seed), and `ssl_error` of a `can_classify` model's own q(y|x) (M2)."""
    from zoo.semisupervised import ssl_rows

    e = run.cfg.eval
    rows = ssl_rows(run.model, run.dataset, e.ssl_labels, split=e.split, batch_size=e.batch_size)
    run.store.log_metrics(run.run_id, e.split, rows)
    if rows:
        print(f"[runner] run {run.run_id} semi-supervised {e.split} error: "
              + ", ".join(f"{n}={v:.4f}" for n, v, _ in rows))




def conditional(run: Finished):
    """A class-conditional model (num_classes > 0; zoo.conditional): cond_nll = -log p(x|y) with the true
    labels (and label_info), label_agreement of `eval.metric_samples` samples with balanced requested
    labels, and the class-per-row grid `samples_by_class.png` / `.npy` (eval.n_samples // K per row)."""
    from zoo.conditional import class_rows, likelihood_rows, sample_rows
    from zoo.images import grid

    e, model, options = run.cfg.eval, run.model, run.spec.sample
    if not model.needs_labels:
        return
    nll = run.store.metrics([run.run_id], e.split, ["nll"])["value"]  # split_metrics' marginal -log p(x)
    rows = likelihood_rows(model, run.dataset, e.split, e.batch_size, seed=run.seed, draws=e.draws,
                           nll=float(nll.iloc[0]) if len(nll) else None)
    if e.metric_samples:
        rows += sample_rows(model, run.dataset, e.metric_samples, e.split, run.seed, e.batch_size, **options)
    run.store.log_metrics(run.run_id, e.split, rows)
    per_class = max(1, e.n_samples // model.num_classes)
    samples = class_rows(model, per_class, seed=run.seed, **options)
    np.save(run.artifact("samples_by_class_npy", "samples_by_class.npy"), samples)
    png = run.artifact("samples_by_class_png", "samples_by_class.png")
    grid(samples, run.dataset.levels, ncols=per_class).save(png)
    print(f"[runner] run {run.run_id} conditional {e.split}: "
          + ", ".join(f"{n}={v:.4g}" for n, v, _ in rows))


OUTPUT_STEPS = (calibrate, save_model, save_history, split_metrics, sample_grid, sample_quality, speeds,
                save_reports, lecture_outputs, semi_supervised, conditional)


def _save_outputs(cfg, spec, model, dataset, store, run_id, run_dir, seed):
    """After training: each of OUTPUT_STEPS in turn, everything recorded in the store."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run = Finished(cfg, spec, model, dataset, store, run_id, run_dir, seed)
    seconds = {}
    for step in OUTPUT_STEPS:
        t0 = time.perf_counter()
        step(run)
        seconds[step.__name__] = time.perf_counter() - t0
    print("[runner] outputs: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
