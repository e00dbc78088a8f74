"""What the dashboard reads from the store: through `zoo.results` only (cached with st.cache_data,
so a page rerun does not hit the database), the leaderboard built from it, and the real images of a
run's dataset (`zoo.data`, TensorFlow-free). The files the store's artifacts name are read by
`dashboard.artifacts`. Config JSON from the store is parsed with json only.
The names it shows (likelihood kinds, families, sample metrics) come from `zoo.vocabulary`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa
import streamlit as st

from zoo import data as zdata
from zoo import results
from zoo.vocabulary import KINDS, SAMPLE_METRICS, UNKNOWN_COLOUR, Kind, family

REPO = Path(__file__).resolve().parent.parent
TTL = 30  # seconds a cached store read lives: new epochs and runs appear without a restart
QUICK_RUN = "python -m experiments run experiments/configs/quick.yaml"  # the README's main job


# --- which store ------------------------------------------------------------------------------
def db_url(argv=None) -> str:
    """`--db URL` (after `--` on the streamlit command line), else $ZOO_DB, else the default store."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db", default=None)
    args, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return str(args.db or os.environ.get("ZOO_DB") or results.DEFAULT_DB)


def _missing_sqlite(url: str) -> bool:
    """True for a SQLite file that does not exist (the dashboard never creates one)."""
    if "://" not in url:
        return not Path(url).expanduser().exists()
    u = sa.make_url(url)
    db = u.database or ""
    return u.get_backend_name() == "sqlite" and db not in ("", ":memory:") and not db.startswith("file:") \
        and not Path(db).expanduser().exists()


def _store(url: str):
    """The store at `url`; for a missing SQLite file a fresh empty in-memory one (typed empty frames)."""
    return results.open_store("sqlite://") if _missing_sqlite(url) else _open_store(url)


@st.cache_resource(show_spinner=False)
def _open_store(url: str):
    return results.open_store(url)


# --- labels ---------------------------------------------------------------------------------
def badge(kind, k=None) -> str:
    """The kind of number a run reports: exact / ELBO / IWAE-k / VLB / AIS / n/a ("?" before it is known)."""
    if not isinstance(kind, str):
        return "?"
    label = KINDS[kind].badge if kind in KINDS else kind
    return f"{label}-{int(k)}" if kind == "iwae" and k is not None and pd.notna(k) else label


def badge_kind(label: str) -> Kind | None:
    """The likelihood kind of a badge ("IWAE-5" -> the iwae Kind), or None for an unknown badge."""
    base = str(label).split("-")[0]
    return next((kind for kind in KINDS.values() if kind.badge == base), None)


def badge_colour(label: str) -> str:
    """The hex colour of a badge (charts); grey for an unknown one."""
    kind = badge_kind(label)
    return kind.colour if kind else UNKNOWN_COLOUR


def badge_markdown_colour(label: str) -> str:
    """The Streamlit markdown colour of a badge (`:orange-badge[ELBO]`); gray for an unknown one."""
    kind = badge_kind(label)
    return kind.markdown if kind else "gray"


def _json(text) -> dict:
    """A JSON object from the store (a run's config), else {}: parsed with json alone, never eval."""
    try:
        got = json.loads(text) if isinstance(text, str) else {}
    except (ValueError, RecursionError):
        return {}
    return got if isinstance(got, dict) else {}


def _entry(cfg: dict, key: str) -> dict:
    return cfg.get(key) if isinstance(cfg.get(key), dict) else {}


def _whole(v):
    """`v` if it is a whole number (IWAE's k), else None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return int(v) if isinstance(v, int) or (np.isfinite(v) and v == int(v)) else None


def _real(v) -> float:
    """`v` as a float if it is a number (not a bool), else NaN."""
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan


# --- cached store reads: each filtered in SQL to what a page shows --------------------------------
ALL = "All experiments"  # the sidebar's experiment choice that filters nothing
LEADERBOARD_METRICS = ("nll", "nll_se", "bits_per_dim", "is_nll", "is_k", "data_nll", "pop_gap",
                       *SAMPLE_METRICS, "samples_per_sec")  # what `leaderboard` shows (+ runs columns)


@st.cache_data(ttl=TTL, show_spinner=False)
def counts(url: str) -> pd.DataFrame:
    """How many runs per (dataset, experiment, status): a GROUP BY in the store, for the sidebar's
    choices and captions (no run is read)."""
    return _store(url).count_runs(("dataset", "experiment", "status"))


def _experiment(experiment):
    return None if experiment in (None, ALL) else experiment


@st.cache_data(ttl=TTL, show_spinner=False)
def runs(url: str, dataset: str | None = None, experiment: str | None = None) -> pd.DataFrame:
    """The runs of `dataset` and `experiment` (None or ALL: every one; filtered in SQL), plus `family`,
    `k` (IWAE's training k), `latent_dim`, `kl_weight` (a VAE's beta; NaN for other families), `samples`
    (a vae's L draws per example), `decoder` and `decoder_sigma` (the pixel law p(x|z) and a discretised
    Gaussian's scale, "learned" or in levels), `badge`,
    `name` ("#3 vae s0") and `data_options` (the dataset entry of its config as JSON, for `real_images`).
    The config JSON of these runs only is parsed, then dropped."""
    df = _store(url).runs(dataset=dataset, experiment=_experiment(experiment))
    cfg = df.pop("config").map(_json)
    hp = cfg.map(lambda c: _entry(c, "hparams"))
    df["k"] = hp.map(lambda h: _whole(h.get("k")))
    df["latent_dim"] = hp.map(lambda h: _whole(h.get("latent_dim")))
    df["family"] = df["model"].map(family)
    df["kl_weight"] = [_real(h.get("kl_weight", 1.0)) if f == "VAE" else np.nan  # (1: before kl_weight)
                       for h, f in zip(hp, df["family"])]
    df["samples"] = [_whole(h.get("samples", 1)) if m == "vae" else None  # the VAE's L (1: before L)
                     for h, m in zip(hp, df["model"])]
    df["decoder"] = hp.map(lambda h: h.get("decoder") if isinstance(h.get("decoder"), str) else None)
    df["decoder_sigma"] = hp.map(lambda h: str(h.get("decoder_sigma", "learned")))  # a Gaussian decoder's
    df["badge"] = [badge(lk, k) for lk, k in zip(df["likelihood"], df["k"])]
    df["name"] = [f"#{i} {lab} s{s}" for i, lab, s in zip(df["run_id"], df["label"], df["seed"])]
    df["data_options"] = [json.dumps(_entry(c, "dataset") or {"name": d}, sort_keys=True, default=str)
                          for c, d in zip(cfg, df["dataset"])]
    return df


@st.cache_data(ttl=TTL, show_spinner=False)
def wide(url: str, dataset: str | None = None, experiment: str | None = None,
         names: tuple | None = None) -> pd.DataFrame:
    """`runs(url, dataset, experiment)` plus one column per test metric and the train-split ones (speeds)
    not named in test; `names`: only those metrics. Only these runs' metrics are read (SQL)."""
    df = runs(url, dataset, experiment)
    m = _store(url).metrics(split=["test", "train"], names=None if names is None else list(names),
                            dataset=dataset, experiment=_experiment(experiment))
    for split in ("test", "train"):
        part = m[m["split"] == split].pivot(index="run_id", columns="name", values="value")
        part = part[[c for c in part.columns if c not in df.columns]]
        df = df.merge(part, how="left", left_on="run_id", right_index=True)
    return df


@st.cache_data(ttl=TTL, show_spinner=False)
def run_metrics(url: str, run_id: int) -> pd.Series:
    """One run's test metrics, then its train-split ones not named in test: {name: value}."""
    m = _store(url).metrics([int(run_id)], split=["test", "train"])
    m = m.sort_values("split", key=lambda s: s.ne("test"), kind="stable").drop_duplicates("name")
    return pd.Series(m["value"].to_numpy(), index=m["name"].to_numpy(), dtype=float)


@st.cache_data(ttl=TTL, show_spinner=False)
def run_metric_rows(url: str, run_id: int) -> pd.DataFrame:
    """Every metric row of one run: split, name, value, kind, units (as the store records them)."""
    m = _store(url).metrics([int(run_id)])
    return m[["split", "name", "value", "kind", "units"]].reset_index(drop=True)


@st.cache_data(ttl=TTL, show_spinner=False)
def history(url: str, run_ids: tuple, names: tuple | None = None) -> pd.DataFrame:
    """Per-epoch values (run_id, epoch, name, value) of `run_ids` (`names`: only those)."""
    return _store(url).history(list(run_ids), None if names is None else list(names))


@st.cache_data(ttl=TTL, show_spinner=False)
def artifacts(url: str, run_ids: tuple | None = None, names: tuple | None = None, dataset: str | None = None,
              experiment: str | None = None, status: str | None = None) -> pd.DataFrame:
    """Artifact rows (run_id, name, path) of `run_ids` (`names`: only those), or of the runs of
    `dataset` / `experiment` / `status`: only the rows a page looks up are read (SQL)."""
    return _store(url).artifacts(None if run_ids is None else list(run_ids),
                                 None if names is None else list(names), dataset=dataset,
                                 experiment=_experiment(experiment), status=status)


@st.cache_data(ttl=TTL, show_spinner=False)
def ssl_errors(url: str, dataset: str | None = None, experiment: str | None = None) -> pd.DataFrame:
    """Semi-supervised test errors of the FINISHED runs of `dataset` and `experiment`
    (zoo.semisupervised), one row per (run, method, N): run_id, experiment, model (the label), seed,
    method ("M1" for `m1_error_n{N}`, "own classifier" for an M2 run's `ssl_error` at N = its
    hparams.labelled; none for labelled 0), N, error (%). The N are read from the runs' config
    (eval.ssl_labels), then only those metrics of these runs (SQL)."""
    from zoo.semisupervised import M1_METRIC, SSL_METRIC

    store, experiment = _store(url), _experiment(experiment)
    r = store.runs(dataset=dataset, experiment=experiment, status="FINISHED",
                   columns=["experiment", "label", "seed", "config"])
    cfg = r.pop("config").map(_json)
    asked = [_entry(c, "eval").get("ssl_labels") for c in cfg]
    ns = sorted({n for a in asked if isinstance(a, list) for n in map(_whole, a) if n})
    names = {M1_METRIC.format(n=n): n for n in ns}
    m = store.metrics(split="test", names=[*names, SSL_METRIC], dataset=dataset, experiment=experiment,
                      status="FINISHED")
    labelled = dict(zip(r["run_id"], cfg.map(lambda c: _whole(_entry(c, "hparams").get("labelled")) or None)))
    m1 = m["name"] != SSL_METRIC
    m = m.assign(method=np.where(m1, "M1", "own classifier"),
                 N=np.where(m1, m["name"].map(names), m["run_id"].map(labelled)), error=100 * m["value"])
    m = m.dropna(subset=["N", "error"]).astype({"N": int}).merge(r, on="run_id")
    m = m.rename(columns={"label": "model"})
    return m[["run_id", "experiment", "model", "seed", "method", "N", "error"]]


# --- sweeps (the Sweeps page) -------------------------------------------------------------------
RUN_ONLY = ("label", "seed", "sweep", "init_from")  # config keys in which the runs of one sweep differ


@st.cache_data(ttl=TTL, show_spinner=False)
def sweeps(url: str, dataset: str | None = None, experiment: str | None = None) -> pd.DataFrame:
    """The sweeps among the FINISHED runs of `dataset` and `experiment`: one row per (sweep, run, swept
    key) with columns sweep (a name, e.g. "vae over latent_dim"), declared, run_id, key and value (as
    the config gives it). Declared: the runs of a config entry's `sweep` (experiments/sweeps.py), whose
    configs agree but for the swept values (recorded as "sweep": {key: value}), label, seed and
    init_from. Not declared: runs of one model whose configs differ in one hyper-parameter only (e.g.
    digits.yaml's vae and vae_2d). A sweep has 2+ values. Only these runs' configs are read (SQL)."""
    r = _store(url).runs(dataset=dataset, experiment=_experiment(experiment), status="FINISHED",
                         columns=["label", "model", "config"])
    groups = {}  # (declared, signature) -> [(run_id, label, {key: value})]
    for rid, label, model, cfg in zip(r["run_id"], r["label"], r["model"], r["config"].map(_json)):
        swept, hp, tr = _entry(cfg, "sweep"), dict(_entry(cfg, "hparams")), dict(_entry(cfg, "train"))
        rest = {k: v for k, v in cfg.items() if k not in ("hparams", "train", *RUN_ONLY)}
        if swept:  # the swept values out of the signature
            for key in swept:
                (tr if key.startswith("train.") else hp).pop(key.removeprefix("train."), None)
            sig = json.dumps([model, list(swept), rest, hp, tr], sort_keys=True, default=str)
            groups.setdefault((True, sig), []).append((rid, label, swept))
            continue
        common = json.dumps([model, rest, tr, cfg.get("init_from")], sort_keys=True, default=str)
        for key in hp:
            others = json.dumps({k: v for k, v in hp.items() if k != key}, sort_keys=True, default=str)
            groups.setdefault((False, common + key + others), []).append((rid, label, {key: hp[key]}))
    rows, names = [], set()
    for (declared, _), runs in sorted(groups.items(), key=lambda g: (not g[0][0], g[1][0][0])):
        if len({json.dumps(v, sort_keys=True, default=str) for _, _, v in runs}) < 2:
            continue  # one value: no sweep
        keys, labels = list(runs[0][2]), sorted({lab for _, lab, _ in runs})
        name = (f"{_sweep_base(labels, keys[0])} over {' × '.join(keys)}" if declared else
                f"{keys[0]}: {', '.join(labels[:3])}{', ...' if len(labels) > 3 else ''}")
        first, n = name, 1
        while name in names:  # two sweeps of one name (e.g. a config changed between runs): numbered
            n, name = n + 1, f"{first} #{n + 1}"
        names.add(name)
        rows += [dict(sweep=name, declared=declared, run_id=rid, key=k, value=v)
                 for rid, _, values in runs for k, v in values.items()]
    out = pd.DataFrame(rows, columns=["sweep", "declared", "run_id", "key"])
    out["value"] = pd.Series([row["value"] for row in rows], dtype=object)  # as written: 2 stays 2, not 2.0
    return out


def _sweep_base(labels: list[str], first_key: str) -> str:
    """The entry label of a sweep's runs (<label>-<key><value>...): their common start, cut before
    -<first swept key>."""
    prefix = os.path.commonprefix(labels)
    cut = prefix.rfind(f"-{first_key}")
    return prefix[:cut] if cut > 0 else prefix.rstrip("-_") or labels[0]


@st.cache_data(ttl=TTL, show_spinner=False)
def metric_rows(url: str, run_ids: tuple) -> pd.DataFrame:
    """The metrics of `run_ids` (run_id, split, name, value, kind, units): each name's test row, else
    its train row (speeds). Read for these runs only (SQL)."""
    m = _store(url).metrics(list(run_ids), split=["test", "train"])
    m = m.sort_values("split", key=lambda s: s.ne("test"), kind="stable")
    return m.drop_duplicates(["run_id", "name"]).reset_index(drop=True)


# --- data sets (no TensorFlow) ----------------------------------------------------------------
@st.cache_data(show_spinner="Loading real images ...", max_entries=8)
def real_images(data_options: str, split: str = "test", n: int = 16):
    """(first `n` images of `split`, levels) of a run's dataset, or None when it is not on disk."""
    opts = _json(data_options)
    name = opts.pop("name", None)
    try:
        if not isinstance(name, str) or not zdata.available_offline(name):
            return None
        ds = zdata.load(name, **opts)  # options checked by zoo.data (a bad one is a DataError)
    except (OSError, ValueError, TypeError, MemoryError):
        return None
    return ds.split(split)[:n], ds.levels


# --- the leaderboard --------------------------------------------------------------------------
WHERE = {name: "train precision" if name == "dtype_policy" else name for name in results.WHERE_COLUMNS}


def leaderboard(w: pd.DataFrame, aggregate: bool = False,
                where: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(ranked, apart): FINISHED runs ranked by test nats (a likelihood-free model gets no rank and
    NaN, shown "n/a"); everything else (FAILED, DIVERGED, RUNNING) apart, never ranked. With
    `aggregate`, one ranked row per (experiment, label): means over seeds and the seed sd. With
    `where`, the columns of `WHERE`: host, devices, replicas, train precision (the Keras dtype policy)
    and library versions ("?" for a run recorded before they were; aggregated: the distinct values)."""
    fin, rest = w[w["status"] == "FINISHED"], w[w["status"] != "FINISHED"]
    col = lambda name: fin[name] if name in fin else np.nan  # noqa: E731
    t = pd.DataFrame({"run": fin["run_id"], "experiment": fin["experiment"], "model": fin["label"],
                      "family": fin["family"], "kind": fin["badge"], "seed": fin["seed"],
                      "nats": col("nll"), "± se": col("nll_se"), "bits/dim": col("bits_per_dim"),
                      "IS-NLL": col("is_nll"), "IS k": col("is_k"),
                      "gap to optimum": col("nll") - col("data_nll"), "population gap": col("pop_gap")})
    for name in SAMPLE_METRICS:
        t[name] = col(name)
    t["params"], t["train s"], t["samples/s"] = col("param_count"), col("wall_time"), col("samples_per_sec")
    if where:  # after the nats columns, where a wide table still shows them
        at = list(t.columns).index("bits/dim") + 1
        for i, (name, label) in enumerate(WHERE.items()):
            t.insert(at + i, label, fin[name].map(
                lambda v: "?" if pd.isna(v) else str(int(v) if isinstance(v, float) else v)))
    no_likelihood = ["nats", "± se", "bits/dim", "gap to optimum", "population gap"]
    t.loc[fin["likelihood"] == "none", no_likelihood] = np.nan
    optional = ["IS-NLL", "IS k", "gap to optimum", "population gap", *SAMPLE_METRICS]
    t = t.drop(columns=[c for c in optional if t[c].isna().all()])
    if aggregate and not t.empty:
        keys = ["experiment", "model", "family", "kind"]
        text = [label for label in WHERE.values() if label in t]
        num = [c for c in t.columns if c not in keys + text + ["run", "seed", "± se"]]
        g = t.groupby(keys, sort=False)
        agg = g[num].mean()
        for label in text:
            agg[label] = g[label].agg(lambda v: ", ".join(sorted(set(v))))
        agg.insert(1, "± sd", g["nats"].std())
        agg.insert(0, "seeds", g.size())
        t = agg.reset_index()
    t = t.sort_values("nats", na_position="last").reset_index(drop=True)
    t.insert(0, "rank", t["nats"].rank(method="min").astype("Int64"))
    apart = pd.DataFrame({"run": rest["run_id"], "experiment": rest["experiment"], "model": rest["label"],
                          "family": rest["family"], "status": rest["status"], "seed": rest["seed"],
                          "epochs done": rest["epochs_done"],
                          "error": rest["error"].map(lambda e: e.strip().splitlines()[-1][:200]
                                                     if isinstance(e, str) and e.strip() else "")})
    return t, apart.reset_index(drop=True)
