"""Sweeps: one model entry of an experiment config expanded into labelled runs, one per swept value.

    models:
      - model: vae
        hparams: {width: 256, depth: 2}
        sweep: {latent_dim: [2, 5, 10, 20]}        # 4 entries: vae-latent_dim2, ..., vae-latent_dim20
      - model: iwae
        sweep:                                     # a grid (the product of its lists) and one zip group
          latent_dim: [8, 16]                      # (lists taken element by element, equal lengths):
          zip: {k: [1, 5, 50], train.epochs: [60, 40, 20]}   # 2 x 3 = 6 entries, iwae-latent_dim8-k1-...

Swept keys: the family's hyper-parameters (merged into the entry's `hparams`) and `train.<key>`, a field
of TrainConfig (train.epochs, train.batch_size, ...: merged into the entry's `train`; not train.strategy,
which says where a run trains, not what it computes; not seed: the experiment's `seeds` are the seed
spread). A key is swept or set in `hparams` / `train`, not both; a grid's values are distinct, and so
are a zip's positions. `parse` expands the entries before it checks them, so every expanded entry is
checked like a hand-written one; an error in a swept value names `models[i].sweep.<key>` (ConfigError).

Labels: `<label>-<key><value>` for each swept key in the order written (`<key>_<value>` when the value
starts with a letter: vae-network_conv); characters other than letters, digits and `. _ + -` become `_`
(the runner puts labels in paths). The labels must be unique in the experiment.

Each run's config records its swept values, e.g. "sweep": {"latent_dim": 2} (`ExperimentConfig.resolved`),
so the dashboard's Sweeps page can put the runs of one sweep side by side. `init_from` naming a swept
entry maps per value: each run starts from the source's run with the same values of the source's swept
keys (so this entry must sweep those keys too); `init_from` may also name one run (vae-latent_dim2).
No TensorFlow here.
"""
from __future__ import annotations

import itertools
import json
import math
import re

from experiments.checks import ConfigError, _mapping, _show
from zoo.registry import unknown_key_error

ZIP = "zip"  # the key of the group of lists swept together
TRAIN = "train."  # the prefix of a swept TrainConfig field
MAX_RUNS = 1000  # runs (per seed) one entry may expand into: a typo like [1, ..., 10000] is refused
UNSAFE = re.compile(r"[^A-Za-z0-9._+-]")
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
EXAMPLE = "e.g. sweep: {latent_dim: [2, 5, 10]} or sweep: {zip: {k: [1, 5], learning_rate: [0.001, 0.0005]}}"


def expand(sweep, hparams: dict, train: dict, train_keys, at: str, path: tuple) -> tuple[list[dict], dict]:
    """(points, swept_at): the swept values of each run ({key: value}, keys in the order written;
    [{}] for no sweep) and where each swept key sits in the entry ({"k": ("sweep", "zip", "k")}).
    `hparams` / `train`: the entry's own (a swept key must not be set there too); `train_keys`: the
    TrainConfig fields, each True when it may be swept. Raises ConfigError at the offending key for a
    sweep that is not a mapping of non-empty lists of distinct values, a `train.` key that is not a
    sweepable field, a key swept twice or also set by hand, zipped lists of unequal lengths, or more
    than MAX_RUNS runs."""
    sweep = _mapping(sweep, f"{at}.sweep", path + ("sweep",))
    factors, swept_at = [], {}
    for key, values in sweep.items():
        if key == ZIP:
            where = path + ("sweep", ZIP)
            group = _mapping(values, f"{at}.sweep.zip", where)
            if not group:
                raise ConfigError(f"{at}.sweep.zip = {_show(values)}: give the lists swept together, e.g. "
                                  f"zip: {{k: [1, 5, 50], learning_rate: [0.001, 0.001, 0.0005]}}", where)
            lists = {k: _values(k, v, (hparams, train, train_keys), swept_at, at, where + (k,), False)
                     for k, v in group.items()}
            lengths = {k: len(v) for k, v in lists.items()}
            if len(set(lengths.values())) > 1:
                raise ConfigError(f"{at}.sweep.zip: the zipped lists have different lengths "
                                  f"({', '.join(f'{k}: {n}' for k, n in lengths.items())}); give each "
                                  f"the same number of values (one run per position)", where)
            rows = [dict(zip(lists, row)) for row in zip(*lists.values())]
            seen = [_text(row) for row in rows]
            again = next((i for i, t in enumerate(seen) if t in seen[:i]), None)
            if again is not None:
                raise ConfigError(f"{at}.sweep.zip: positions {seen.index(seen[again]) + 1} and {again + 1} "
                                  f"give the same values {rows[again]}; make them differ (each position is "
                                  f"one run)", where)
            factors.append(rows)
            swept_at.update({k: ("sweep", ZIP, k) for k in lists})
        else:
            listed = _values(key, values, (hparams, train, train_keys), swept_at, at, path + ("sweep", key))
            factors.append([{key: v} for v in listed])
            swept_at[key] = ("sweep", key)
    runs = math.prod(len(f) for f in factors)
    if runs > MAX_RUNS:
        raise ConfigError(f"{at}.sweep expands into {runs:,} runs per seed; at most {MAX_RUNS:,}: shorten "
                          f"its lists (or zip lists that go together instead of crossing them)",
                          path + ("sweep",))
    points = [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*factors)]
    return points, swept_at


def _values(key, values, entry: tuple, swept_at: dict, at: str, path: tuple, distinct: bool = True) -> list:
    """The list of values of one swept key, after checking the key (see `expand`); `entry`: (its
    hparams, its train, the TrainConfig fields that may be swept); `distinct`: refuse a repeated value
    (a zipped list may repeat one: its positions differ in another list)."""
    hparams, train, train_keys = entry
    name = f"{at}.sweep{'.zip' if ZIP in path[-2:-1] else ''}{shown(key)}"
    if not isinstance(key, str) or not key or key == ZIP:
        raise ConfigError(f"{at}.sweep: key {_show(key)}: give a hyper-parameter name (e.g. latent_dim) or "
                          f"train.<key> (e.g. train.epochs) with a list of values; {EXAMPLE}", path)
    if key.startswith(TRAIN):
        field = key[len(TRAIN):]
        if train_keys.get(field) is False:
            raise ConfigError(f"{name}: train.{field} says where a run trains, not what it computes (it is "
                              f"not in the run key), so it cannot be swept; set it in train", path)
        if field not in train_keys:
            valid = [TRAIN + k for k, ok in train_keys.items() if ok]
            raise ConfigError(f"{name}: {unknown_key_error('key', key, valid, where=' in train')}", path)
        if field in train:
            raise ConfigError(f"{name}: {field!r} is swept and set in this entry's train; drop it from "
                              f"train (the sweep gives each run its value)", path)
    elif key == "seed":
        raise ConfigError(f"{name}: the seed is not swept here: give the experiment's seeds (seeds: "
                          f"[0, 1, 2]); every entry runs once per seed", path)
    elif "." in key:
        raise ConfigError(f"{name}: {key!r} is neither a hyper-parameter nor train.<key>; give e.g. "
                          f"latent_dim or train.epochs", path)
    elif key in hparams:
        raise ConfigError(f"{name}: {key!r} is swept and set in this entry's hparams; drop it from hparams "
                          f"(the sweep gives each run its value)", path)
    if key in swept_at:
        raise ConfigError(f"{name}: {key!r} is swept twice (in the grid and under zip); sweep it once", path)
    if not isinstance(values, list) or not values:
        home = "train" if key.startswith(TRAIN) else "hparams"
        example = key if NAME.fullmatch(key) else "latent_dim"
        raise ConfigError(f"{name} = {_show(values)}: give a non-empty list of values, e.g. {example}: "
                          f"[2, 5, 10] (a single value belongs in {home})", path)
    seen = [_text(v) for v in values]
    repeated = [v for v, t in zip(values, seen) if seen.count(t) > 1 and distinct]
    if repeated:
        raise ConfigError(f"{name} = {_show(values)}: {_show(repeated[0])} repeats; give distinct values "
                          f"(each is one run)", path)
    return list(values)


def shown(key) -> str:
    """`.key` for a name (latent_dim, train.epochs), else `[repr]` (a key with a space, a newline...)."""
    return f".{key}" if isinstance(key, str) and NAME.fullmatch(key) else f"[{key!r}]"


def _text(value) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def label(base: str, point: dict) -> str:
    """`<base>-<key><value>` for each swept key, e.g. vae-latent_dim2, vae-network_conv,
    iwae-k5-learning_rate0.001; safe as a directory name."""
    parts = [base]
    for key, value in point.items():
        text = ("true" if value else "false") if isinstance(value, bool) else \
            str(value) if isinstance(value, (int, float, str)) else _text(value)
        sep = "_" if text[:1].isalpha() else ""
        parts.append(UNSAFE.sub("_", f"{key}{sep}{text}"))
    return "-".join(parts)


def source_run(point: dict, source: dict[str, dict]) -> str | None:
    """The label of the run of a swept source entry (`source`: {run label: its swept values}) whose values
    are `point`'s for the source's keys; None when `point` lacks one of those keys or that value."""
    for run, values in source.items():
        if all(k in point and _text(point[k]) == _text(v) for k, v in values.items()):
            return run
    return None
