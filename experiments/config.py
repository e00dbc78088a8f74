"""Experiment configs: YAML -> validated dataclasses. Every unknown key is rejected by name.

    name: digits                       # experiment name (groups runs in the store)
    dataset: digits                    # or {name: bars, noise: 0.1, n_train: 5000}
    seeds: [0, 1]
    train: {epochs: 100, batch_size: 128, lr_schedule: cosine, patience: 20}
    eval: {is_k: 1000, batch_size: 500}
    models:                            # each trained on the dataset for every seed
      - model: vae                     # a registry name (zoo.list_models())
        label: vae_conv                # optional display name, unique per experiment
        hparams: {network: conv}       # the family's Config fields
        train: {epochs: 50}            # optional per-model overrides of `train`
        init_from: vae                 # optional: start from that earlier entry's trained weights
        sample: {method: ddim}         # optional: model.sample options for the grid and sample metrics
      - model: iwae
        sweep: {k: [1, 5, 50]}         # optional: one run per value, labelled iwae-k1, iwae-k5, iwae-k50
        # (a grid: the product of all lists; `zip: {k: [..], learning_rate: [..]}`: lists taken together;
        # keys: hyper-parameters and train.<key>, e.g. train.epochs; see experiments/sweeps.py)

Every mistake a user can make in a config raises ConfigError (a ValueError) naming the key, before
anything is trained or written: `load` reads the file with yaml.safe_load (plain YAML, no Python tags).
`parse` checks everything it can without TensorFlow first (keys, value types and ranges, the dataset
and its options, model names, labels), then each family's hyper-parameters and sample options.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Literal

import yaml

from experiments import sweeps
from experiments.checks import (
    ConfigError,
    ConfigFileMissing,
    _build,
    _check_fields,
    _check_type,
    _field_names,
    _hints,
    _is_int,
    _kind,
    _known_keys,
    _mapping,
    _show,
)
from zoo.data import SPLITS, DataError, check_options
from zoo.registry import added_field, config_dict, make_config, unknown_key_error, where_field
from zoo.vocabulary import FAMILY_OF, Precision, Strategy


@dataclasses.dataclass
class TrainConfig:
    epochs: int = 50
    batch_size: int = 128
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine decays to 0 over all epochs
    patience: int = 0  # early stopping on val_loss, restoring the best weights; 0 = off
    steps_per_epoch: int | None = None  # cap an epoch (None = the whole split); validation is capped alike
    verbose: int = 1  # Keras progress bar: 1 = bar, 2 = one line per epoch, 0 = silent
    # TensorBoard: "epoch", or every N training steps (e.g. a GAN's D and G losses, D(real), D(fake) per step;
    # Keras writes the running means of the epoch so far). The store always gets one row per epoch.
    tensorboard_update_freq: str | int = added_field("epoch")
    # validation every N training steps, rounded up to whole epochs (deterministic, so early stopping
    # does not depend on the machine's speed), or "epoch"; "auto" = every AUTO_VALIDATE_STEPS steps.
    # The last epoch always validates; `patience` still counts epochs.
    validate_every: int | str = added_field("auto")
    # the BackupAndRestore checkpoint, at the end of the first epoch after N steps or "30s" of
    # training (or "epoch"); resuming restarts at that epoch boundary. The last epoch always saves.
    checkpoint_every: int | str = added_field("30s")
    # tf.distribute (zoo.distribute): auto, default, mirrored or multi_worker; batch_size is the global
    # batch. Where a run trains, not what: not in the run key (`run --strategy` overrides it)
    strategy: Strategy = where_field("auto")
    # Keras mixed precision for training (float16 with loss scaling); the likelihoods, the final
    # logits and every reported number stay float32 (the runner evaluates a float32 copy)
    precision: Precision = added_field("float32")

    def __post_init__(self):
        _check_fields(self, minima={"epochs": 1, "batch_size": 1, "patience": 0, "steps_per_epoch": 1})
        if self.verbose not in (0, 1, 2):
            raise ConfigError(f"verbose = {_show(self.verbose)}: give 0 (silent), 1 (progress bar) or 2 "
                              f"(one line per epoch)", ("verbose",))
        freq = self.tensorboard_update_freq
        if not (freq in ("epoch", "batch") if isinstance(freq, str) else freq >= 1):
            raise ConfigError(f"tensorboard_update_freq = {_show(freq)}: give 'epoch' or a number of "
                              f"training steps >= 1", ("tensorboard_update_freq",))
        self.checkpoint_rule()
        self._validation_rule()

    def _validation_rule(self) -> float:
        """Training steps between validations; raises ConfigError for a `validate_every` that is not
        "auto", "epoch" or a step count."""
        every = AUTO_VALIDATE_STEPS if self.validate_every == "auto" else self.validate_every
        unit, n = _every(every, "validate_every")
        if unit != "steps":
            raise ConfigError(f"validate_every = {every!r}: validation is scheduled in training steps "
                              f"(the same epochs on every machine); give a number of steps (e.g. 200) "
                              f"or 'epoch'", ("validate_every",))
        return n

    def validation_epochs(self, steps_per_epoch: int) -> list[int]:
        """The 1-based epochs that validate (Keras's `validation_freq` list), the last always among them."""
        per = max(1, math.ceil(self._validation_rule() / steps_per_epoch))
        return sorted({*range(per, self.epochs + 1, per), self.epochs})

    def checkpoint_rule(self) -> tuple[str, float]:
        """("steps", n) or ("seconds", s) between checkpoints; raises ValueError for another form."""
        return _every(self.checkpoint_every, "checkpoint_every")


AUTO_VALIDATE_STEPS = 100


def _every(value, key: str) -> tuple[str, float]:
    """"epoch" -> ("steps", 0), an int -> ("steps", n), "30s" -> ("seconds", 30.0)."""
    if value == "epoch":
        return "steps", 0
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return "steps", value
    if isinstance(value, str) and value.endswith("s") and value[:-1].replace(".", "", 1).isdecimal():
        return "seconds", float(value[:-1])
    raise ConfigError(f"{key} = {_show(value)}: give 'epoch', a number of training steps (e.g. 200) "
                      f"or seconds as a string (e.g. '30s')", (key,))


@dataclasses.dataclass
class EvalConfig:
    batch_size: int = 500
    is_k: int = 0  # importance samples for log_prob_is (0 = skip); latent models and flows
    is_examples: int | None = None  # evaluate log_prob_is on the first N test images (None = all)
    n_samples: int = 64  # size of the saved sample grid
    split: str = "test"
    # samples behind the sample-quality metrics (zoo.sample_metrics: fcd, kid, precision/recall, ...;
    # bars: exact KL/TV); 0 = skip. Lower it where sampling is slow (PixelCNN on 28x28).
    metric_samples: int = added_field(1000)
    # independent estimates averaged per test example (one-draw ELBO / VLB / AIS numbers of a single
    # image are noisy); > 1 also records nll_draw_se, the per-example standard error
    draws: int = added_field(1)
    # numbers of labelled training examples N for M1, the semi-supervised classifier on the latent
    # means (zoo.semisupervised; Kingma et al. 2014 Table 1: 100, 600, 1000, 3000): m1_error_n{N} for
    # every model with an encoder. Empty = skip. The dataset must have labels.
    ssl_labels: tuple = added_field(())

    def __post_init__(self):
        _check_fields(self, minima={"batch_size": 1, "is_k": 0, "is_examples": 1, "n_samples": 1,
                                    "metric_samples": 0, "draws": 1})
        if self.split not in SPLITS:
            raise ConfigError(str(unknown_key_error("split", self.split, SPLITS)), ("split",))
        bad = [n for n in self.ssl_labels if not (_is_int(n) and n >= 1)]
        if bad or len(set(self.ssl_labels)) < len(self.ssl_labels):
            why = f"{_show(bad[0])} is not a positive whole number" if bad else "an N repeats"
            raise ConfigError(f"ssl_labels = {_show(self.ssl_labels)}: {why}; give distinct numbers of "
                              f"labelled training examples, e.g. [100, 600, 1000]", ("ssl_labels",))
        self.ssl_labels = tuple(self.ssl_labels)  # (YAML gives a list: as a tuple, [] is the default ())

    def check_dataset(self, dataset) -> None:
        """ConfigError (key ssl_labels) unless `dataset` (a zoo.data.Dataset) has train and `split`
        labels and as many training examples as the largest N."""
        if not self.ssl_labels:
            return
        missing = [s for s in ("train", self.split) if s not in dataset.labels]
        if missing:
            raise ConfigError(f"eval.ssl_labels = {list(self.ssl_labels)}: dataset {dataset.name!r} has no "
                              f"{' or '.join(missing)} labels; drop ssl_labels or use a labelled dataset "
                              f"(e.g. digits, mnist)", ("eval", "ssl_labels"))
        if max(self.ssl_labels) > len(dataset.train):
            raise ConfigError(f"eval.ssl_labels = {list(self.ssl_labels)}: {dataset.name!r} has "
                              f"{len(dataset.train)} training examples; give N <= {len(dataset.train)}",
                              ("eval", "ssl_labels"))


@dataclasses.dataclass
class ModelSpec:
    model: str
    label: str = ""
    hparams: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)
    init_from: str = ""  # label of an earlier entry: start from its trained weights (same networks)
    sample: dict = dataclasses.field(default_factory=dict)  # options of model.sample for the grid and
    # the sample metrics, e.g. {method: ddim, steps: 50} (the family's `_sample` keywords)
    # in YAML: the values to sweep, e.g. {latent_dim: [2, 5]} (experiments/sweeps.py); after `parse`, one
    # expanded run's swept values, e.g. {latent_dim: 2}, already merged into hparams / train
    sweep: dict = dataclasses.field(default_factory=dict)
    # (set by `parse`, not YAML keys) the entry's position in `models`, and where each swept key sits in it
    index: int = dataclasses.field(default=0, compare=False, metadata={"internal": True})
    swept_at: dict = dataclasses.field(default_factory=dict, compare=False, metadata={"internal": True})


ENTRY_KEYS = tuple(f.name for f in dataclasses.fields(ModelSpec) if not f.metadata.get("internal"))
# TrainConfig fields -> whether a sweep may set them (not where a run trains: train.strategy)
TRAIN_SWEEPABLE = {f.name: not f.metadata.get("never_in_key") for f in dataclasses.fields(TrainConfig)}


@dataclasses.dataclass
class ExperimentConfig:
    name: str
    dataset: dict
    models: list
    seeds: list = dataclasses.field(default_factory=lambda: [0])
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    eval: EvalConfig = dataclasses.field(default_factory=EvalConfig)

    def train_for(self, spec: ModelSpec) -> TrainConfig:
        return dataclasses.replace(self.train, **spec.train)

    def load_dataset(self):
        """`zoo.data.load` of this config's dataset with its options, loaded once per config: the CLI
        loads it before it opens the store (a data error then writes nothing), the runner reuses it.
        Raises zoo.data.DataError (a ValueError) for data that cannot be had, ConfigError for
        `eval.ssl_labels` the dataset cannot serve (`EvalConfig.check_dataset`)."""
        from zoo import data

        key = json.dumps(self.dataset, sort_keys=True, default=str)
        cached = self.__dict__.get("_dataset")
        if cached is None or cached[0] != key:
            options = {k: v for k, v in self.dataset.items() if k != "name"}
            cached = self.__dict__["_dataset"] = (key, data.load(self.dataset["name"], **options))
        self.eval.check_dataset(cached[1])
        return cached[1]

    def resolved(self, spec: ModelSpec, seed: int) -> dict:
        """Everything that determines one run (what the store records and the run key hashes)."""
        from zoo.registry import get_model_class

        hp = config_dict(make_config(get_model_class(spec.model).Config, "hparams", **spec.hparams))
        resolved = {"experiment": self.name, "dataset": self.dataset, "model": spec.model,
                    "label": spec.label, "seed": seed, "hparams": hp,
                    "train": config_dict(self.train_for(spec)), "eval": config_dict(self.eval)}
        for key in ("init_from", "sample", "sweep"):  # (only when set, so older run keys stay valid)
            if getattr(spec, key):
                resolved[key] = getattr(spec, key)
        return resolved


def run_key(resolved: dict) -> str:
    return hashlib.sha1(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


REQUIRED = {"name": "name: my_experiment", "dataset": "dataset: digits", "models": "models: [vae]"}


def parse(raw: dict, where: str = "config", families: bool = True) -> ExperimentConfig:
    """Validate a config dict (as read from YAML). Raises ConfigError naming the bad key and the valid
    ones (or what the value should be); nothing else, whatever the mapping holds. With `families` False
    the entries' hyper-parameters and sample options are left to `check_families` (which imports
    TensorFlow): everything else is checked without it."""
    if not isinstance(raw, dict):
        empty = " (the file is empty)" if raw is None else ""
        raise ConfigError(f"{where}: expected a mapping of {', '.join(_field_names(ExperimentConfig))} at "
                          f"the top level, got {_kind(raw)}{empty}")
    _known_keys(raw, _field_names(ExperimentConfig), where, ())
    for key, example in REQUIRED.items():
        if key not in raw:
            raise ConfigError(f"{where}: missing required key {key!r} (e.g. {example})", (key,))
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: name = {_show(name)}: give the experiment's name as a non-empty string "
                          f"(it groups the runs in the store)", ("name",))
    dataset = _dataset(raw["dataset"], where)
    seeds = _seeds(raw.get("seeds", [0]), where)
    train = _build(TrainConfig, raw.get("train"), f"{where}: train", ("train",))
    evaluation = _build(EvalConfig, raw.get("eval"), f"{where}: eval", ("eval",))
    models = _model_specs(raw["models"], train, where)
    cfg = ExperimentConfig(name=name, dataset=dataset, models=models, seeds=seeds, train=train,
                           eval=evaluation)
    if families:
        check_families(cfg, where)
    return cfg


def check_families(cfg: ExperimentConfig, where: str = "config", shape=None, dataset=None) -> None:
    """Each entry's hyper-parameters and sample options, checked by its family (imports the model
    families, so TensorFlow), and given the dataset's image `shape` (H, W, C) their values
    (`check_hparams`: e.g. an even PixelCNN kernel, flow scales the image cannot halve into), given
    the loaded `dataset` what they need of it (`check_data`: e.g. M2's labels and num_classes);
    ConfigError names the key."""
    for spec in cfg.models:
        _check_family(spec, spec.index, where, shape, dataset)


def _dataset(value, where) -> dict:
    if isinstance(value, str):
        value = {"name": value}
    elif not isinstance(value, dict):
        raise ConfigError(f"{where}: dataset = {_show(value)}: give a dataset name (e.g. dataset: digits) "
                          f"or a mapping (e.g. dataset: {{name: bars, noise: 0.1}})", ("dataset",))
    if "name" not in value:
        raise ConfigError(f"{where}: dataset needs a 'name' (e.g. dataset: digits, or dataset: "
                          f"{{name: bars, noise: 0.1}})", ("dataset", "name"))
    try:
        check_options(value["name"], {k: v for k, v in value.items() if k != "name"})
    except DataError as err:
        raise ConfigError(f"{where}: dataset: {err}",
                          ("dataset",) + (() if err.option is None else (err.option,))) from None
    return dict(value)


def _seeds(value, where) -> list:
    seeds = value if isinstance(value, list) else [value]
    for seed in seeds:
        if not (_is_int(seed) and 0 <= seed < 2**32):
            raise ConfigError(f"{where}: seeds: {_show(seed)} is not a seed; give whole numbers in "
                              f"[0, 2**32 - 1], e.g. seeds: [0, 1]", ("seeds",))
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds = {_show(value)}: give one or more distinct seeds, "
                          f"e.g. seeds: [0, 1]", ("seeds",))
    return seeds


def _model_specs(raw, train: TrainConfig, where) -> list[ModelSpec]:
    """The entries of `models`, checked without TensorFlow: keys, model names, labels, init_from and
    each entry's `train` overrides (merged over `train`). A swept entry is expanded first (one spec per
    run, experiments/sweeps.py); each expanded spec is then checked like a hand-written entry."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{where}: models = {_show(raw)}: give a non-empty list of entries, e.g. "
                          f"models: [vae] (registered models: {', '.join(sorted(FAMILY_OF))})", ("models",))
    specs, swept = [], {}  # swept: entry label -> {run label: its swept values}
    entries = []  # the entry labels, in order
    for i, entry in enumerate(raw):
        path, at = ("models", i), f"{where}: models[{i}]"
        if isinstance(entry, str):
            entry = {"model": entry}
        if not isinstance(entry, dict):
            raise ConfigError(f"{at} = {_show(entry)}: give a model name (e.g. - vae) or a mapping with "
                              f"'model' (e.g. - {{model: vae, hparams: {{latent_dim: 8}}}})", path)
        _known_keys(entry, ENTRY_KEYS, at, path)
        if "model" not in entry:
            raise ConfigError(f"{at}: missing required key 'model' (one of {', '.join(sorted(FAMILY_OF))})",
                              path + ("model",))
        if not isinstance(entry["model"], str) or entry["model"] not in FAMILY_OF:
            raise ConfigError(f"{at}: {unknown_key_error('model', entry['model'], FAMILY_OF)}",
                              path + ("model",))
        values = {}
        hints = _hints(ModelSpec)
        for key in ENTRY_KEYS:
            value = entry.get(key)
            if value is None and key != "model":
                continue  # left out (or null): the default
            if key in ("hparams", "train", "sample", "sweep"):
                value = _mapping(value, f"{at}.{key}", path + (key,))
            else:
                _check_type(value, hints[key], at, path + (key,))
            values[key] = value
        base = ModelSpec(**values, index=i)
        base.label = base.label or base.model
        if base.label in entries:
            raise ConfigError(f"{where}: model labels must be unique, got {entries + [base.label]}; set "
                              f"'label' on repeated models", path + ("label",))
        entries.append(base.label)
        points, swept_at = sweeps.expand(base.sweep, base.hparams, base.train, TRAIN_SWEEPABLE, at, path)
        for point in points:
            spec = _run_spec(base, point, swept_at)
            try:
                _build(TrainConfig, spec.train, f"{where}: models[{spec.label}].train", path + ("train",),
                       base=train)
            except ConfigError as err:
                raise _in_sweep(err, spec, "train", where) from None
            specs.append(spec)
        if base.sweep:
            swept[base.label] = {s.label: s.sweep for s in specs[len(specs) - len(points):]}
    labels = [m.label for m in specs]
    for i, spec in enumerate(specs):
        twin = specs[labels.index(spec.label)]
        if twin is not spec and twin.index == spec.index:  # two values of one sweep, one label
            raise ConfigError(f"{where}: models[{spec.index}].sweep: the values {twin.sweep} and "
                              f"{spec.sweep} give the same label {spec.label!r} (labels keep letters, "
                              f"digits and . _ + -); make the values differ in those",
                              ("models", spec.index, "sweep"))
        if spec.label in labels[:i]:
            raise ConfigError(f"{where}: model labels must be unique, got {labels}; set 'label' on "
                              f"repeated models (a sweep's runs are labelled <label>-<key><value>)",
                              ("models", spec.index, "label"))
        if spec.init_from in swept and spec.init_from not in labels:  # a swept entry: its run of our values
            runs = swept[spec.init_from]
            source = sweeps.source_run(spec.sweep, runs)
            if source is None:
                raise ConfigError(f"{where}: models[{spec.index}].init_from names the swept entry "
                                  f"{spec.init_from!r} (runs {', '.join(runs)}); sweep this entry over the "
                                  f"same keys and values ({', '.join(next(iter(runs.values())))}: each run "
                                  f"starts from the run of its values) or name one of those runs",
                                  ("models", spec.index, "init_from"))
            spec.init_from = source
        if spec.init_from and spec.init_from not in labels[:i]:
            raise ConfigError(f"{where}: models[{spec.label}].init_from names {spec.init_from!r}, which is "
                              f"not an earlier entry; earlier labels: {labels[:i]}",
                              ("models", spec.index, "init_from"))
    return specs


def _run_spec(base: ModelSpec, point: dict, swept_at: dict) -> ModelSpec:
    """One run of an entry: `point` (its swept values) merged into the entry's hparams and train."""
    if not point:
        return dataclasses.replace(base, train=dict(base.train))
    hp = {k: v for k, v in point.items() if not k.startswith(sweeps.TRAIN)}
    tr = {k[len(sweeps.TRAIN):]: v for k, v in point.items() if k.startswith(sweeps.TRAIN)}
    return dataclasses.replace(base, label=sweeps.label(base.label, point), hparams={**base.hparams, **hp},
                               train={**base.train, **tr}, sweep=dict(point), swept_at=swept_at)


def _in_sweep(err: ConfigError, spec: ModelSpec, section: str, where: str, at: str = "") -> ConfigError:
    """`err` about key `err.path[3]` of the spec's `section` (hparams or train), moved to that key in
    the entry's sweep when it was swept (path and message: models[i].sweep.<key>); else unchanged."""
    key = err.path[3] if len(err.path) > 3 else None
    swept = key if section == "hparams" else f"{sweeps.TRAIN}{key}"
    if not isinstance(key, str) or swept not in spec.sweep:
        return err
    text = str(err)
    for prefix in (f"{at}: ", f"{where}: models[{spec.label}].{section}: "):
        text = text.removeprefix(prefix)
    text = text.replace(f" in {at} ", " ") if at else text  # make_config's "unknown network 'x' in <at>"
    return ConfigError(f"{where}: models[{spec.index}].sweep.{swept} (run {spec.label}): {text}",
                       ("models", spec.index, *spec.swept_at[swept], *err.path[4:]))


def _check_family(spec: ModelSpec, index: int, where, shape=None, dataset=None) -> None:
    """The family's hyper-parameters and sample options of one entry (imports the model families)."""
    from zoo.registry import get_model_class

    path = ("models", index)
    try:
        cls = get_model_class(spec.model)
    except ValueError as err:
        raise ConfigError(f"{where}: models[{index}]: {err}", path + ("model",)) from None
    at = f"{where}: models[{index}] ({spec.model}{f', run {spec.label}' if spec.sweep else ''}) hparams"
    names = _field_names(cls.Config)
    for key in spec.sweep:  # a swept key that is no hyper-parameter: named where it was written
        if not key.startswith(sweeps.TRAIN) and key not in names:
            unknown = unknown_key_error("key", key, names, where=f" among the {spec.model} hyper-parameters")
            raise ConfigError(f"{where}: models[{index}].sweep{sweeps.shown(key)}: {unknown} (or "
                              f"train.<key>, e.g. train.epochs)", path + spec.swept_at[key])
    try:
        hp = _build(cls.Config, spec.hparams, at, path + ("hparams",))
    except ConfigError as err:
        raise _in_sweep(err, spec, "hparams", where, at) from None
    try:
        if shape is not None:
            cls.check_hparams(hp, shape)
        if dataset is not None:
            cls.check_data(hp, dataset)
    except ValueError as err:
        raise ConfigError(f"{at}: {err}", path + ("hparams",)) from None
    try:
        cls.check_options("sample", spec.sample)
    except ValueError as err:
        raise ConfigError(f"{where}: models[{index}].sample: {err}", path + ("sample",)) from None


# --- checking a mapping against a config dataclass ---------------------------------------------------
def load(path, families: bool = True) -> ExperimentConfig:
    """The config in the YAML file `path` (yaml.safe_load: plain YAML only), checked by `parse` (see
    its `families`). ConfigError names any problem: the file missing (ConfigFileMissing), unreadable,
    not YAML, or a bad key or value."""
    path = Path(path)
    if not path.exists():
        configs = sorted(p.name for p in (Path(__file__).parent / "configs").glob("*.yaml"))
        raise ConfigFileMissing(f"config file {str(path)!r} not found; "
                                f"shipped configs (experiments/configs/): {', '.join(configs)}")
    if path.is_dir():
        raise ConfigError(f"config {str(path)!r} is a folder; give a YAML file, e.g. "
                          f"experiments/configs/quick.yaml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config {str(path)!r} is not UTF-8 text ({err.reason} at byte {err.start}); "
                          f"give a YAML file") from None
    except OSError as err:
        raise ConfigError(f"cannot read config {str(path)!r}: {err.strerror or err}; check the path and its "
                          f"permissions") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(filter(None, (getattr(err, "context", None), getattr(err, "problem", None))))
        problem = " ".join((problem or str(err)).split())
        tag = ("; only plain YAML is read (yaml.safe_load): no !!python tags" if "constructor for the tag"
               in problem else "")
        raise ConfigError(f"config {str(path)!r}{at}: not valid YAML: {problem}{tag}") from None
    return parse(raw, where=str(path), families=families)
