"""Many workers, one store: `python -m experiments worker CONFIG --db URL --out DIR`, as many as you like.

Each worker enters the config's grid (every model x seed) in the store as PENDING runs -- each run key
once, whoever comes first -- then claims one run at a time (`Store.claim_run`, a conditional UPDATE),
trains and records it with the runner's `run_one`, and takes the next. Its claim is a lease renewed at
every epoch; a worker that dies loses it when the lease lapses, and another worker resumes the run from
its BackupAndRestore checkpoint in the run's folder under `--out`, which every worker must therefore
share (the same path on every machine). A worker waits while other workers hold live claims (one may
die) and stops when nothing in the grid is left to claim.
"""
from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from experiments.config import ExperimentConfig, run_key
from experiments.runner import code_version, run_one


def grid(cfg: ExperimentConfig) -> dict:
    """run key -> (model spec, seed), in the config's order."""
    return {run_key(cfg.resolved(spec, seed)): (spec, seed) for spec in cfg.models for seed in cfg.seeds}


def enter_grid(cfg: ExperimentConfig, store, out, dataset_name: str) -> list[int]:
    """The grid as PENDING runs (`Store.add_pending`: each key once); returns their run ids."""
    rows, out, version = [], Path(out).resolve(), code_version()
    for key, (spec, seed) in grid(cfg).items():
        rows.append(dict(experiment=cfg.name, model=spec.model, label=spec.label, dataset=dataset_name,
                         seed=seed, config=cfg.resolved(spec, seed), run_key=key, code_version=version,
                         out_dir=str(out / cfg.name / spec.label / f"seed{seed}-run{{run_id}}")))
    return store.add_pending(rows)


def _ready(cfg, store, plan: dict) -> list[str]:
    """The keys that can start now: an `init_from` entry waits for its source entry to be FINISHED."""
    done = store.runs(experiment=cfg.name, status="FINISHED")
    done = set(zip(done["label"], done["seed"]))
    return [key for key, (spec, seed) in plan.items() if not spec.init_from or (spec.init_from, seed) in done]


def _claimed_elsewhere(store, keys) -> pd.DataFrame:
    """Runs of `keys` RUNNING under a live claim of another owner."""
    runs = store.runs(status="RUNNING")
    live = runs["lease_expires"].notna() & (runs["lease_expires"] > pd.Timestamp.now(tz="UTC"))
    return runs[runs["run_key"].isin(list(keys)) & live & (runs["owner"] != store.owner)]


def work(cfg: ExperimentConfig, store, out="runs", extra_callbacks=(), poll: float | None = None
         ) -> list[int]:
    """Claim, train and record runs of `cfg`'s grid until none is left; returns the ids this worker ran.

    `poll`: seconds between looks while other workers hold claims (default: a quarter of the lease,
    at most 5 s).
    """
    poll = min(store.lease / 4, 5.0) if poll is None else poll
    dataset = cfg.load_dataset()
    plan = grid(cfg)
    ids = enter_grid(cfg, store, out, dataset.name)
    name = f"worker {store.owner}"
    print(f"[{name}] experiment {cfg.name!r}: {len(ids)} run(s) in the grid (runs {ids}), "
          f"store {store.shown_url}, out {Path(out).resolve()}")
    mine, waited = [], None
    while True:
        run_id = store.claim_run(_ready(cfg, store, plan))
        if run_id is None:
            others = _claimed_elsewhere(store, plan)
            if others.empty:  # a claim may have lapsed between the two looks: one more try
                run_id = store.claim_run(_ready(cfg, store, plan))
                if run_id is None:
                    break
            else:
                if list(others["run_id"]) != waited:
                    waited = list(others["run_id"])
                    print(f"[{name}] nothing to claim; waiting on run(s) {waited} of other workers "
                          f"(one may die)")
                time.sleep(poll)
                continue
        spec, seed = plan[store.run(run_id)["run_key"]]
        mine.append(run_one(cfg, spec, seed, dataset, store, Path(out), extra_callbacks,
                            tag=f"{name}: run {run_id} {spec.label} (seed {seed})"))
    waiting = store.runs(status="PENDING")
    waiting = list(waiting.loc[waiting["run_key"].isin(list(plan)), "run_id"])
    print(f"[{name}] nothing left to claim; ran {len(mine)} run(s): {mine}"
          + (f"; run(s) {waiting} wait for an init_from entry that did not finish" if waiting else ""))
    return mine
