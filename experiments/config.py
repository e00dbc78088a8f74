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
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Literal

import yaml

from zoo.registry import added_field, config_dict, make_config, where_field
from zoo.vocabulary import Precision, Strategy


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
        self.checkpoint_rule()
        self.validation_epochs(1)

    def validation_epochs(self, steps_per_epoch: int) -> list[int]:
        """The 1-based epochs that validate (Keras's `validation_freq` list), the last always among them.

        Raises ValueError for a `validate_every` that is not "auto", "epoch" or a step count."""
        every = AUTO_VALIDATE_STEPS if self.validate_every == "auto" else self.validate_every
        unit, n = _every(every, "validate_every")
        if unit != "steps":
            raise ValueError(f"train.validate_every = {every!r}: validation is scheduled in training steps "
                             f"(the same epochs on every machine); give a number of steps (e.g. 200) "
                             f"or 'epoch'")
        per = max(1, math.ceil(n / steps_per_epoch))
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
    if isinstance(value, str) and value.endswith("s") and value[:-1].replace(".", "", 1).isdigit():
        return "seconds", float(value[:-1])
    raise ValueError(f"train.{key} = {value!r}: give 'epoch', a number of training steps (e.g. 200) "
                     f"or seconds as a string (e.g. '30s')")


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


@dataclasses.dataclass
class ModelSpec:
    model: str
    label: str = ""
    hparams: dict = dataclasses.field(default_factory=dict)
    train: dict = dataclasses.field(default_factory=dict)
    init_from: str = ""  # label of an earlier entry: start from its trained weights (same networks)
    sample: dict = dataclasses.field(default_factory=dict)  # options of model.sample for the grid and
    # the sample metrics, e.g. {method: ddim, steps: 50} (the family's `_sample` keywords)


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
        """`zoo.data.load` of this config's dataset with its options."""
        from zoo import data

        return data.load(self.dataset["name"], **{k: v for k, v in self.dataset.items() if k != "name"})

    def resolved(self, spec: ModelSpec, seed: int) -> dict:
        """Everything that determines one run (what the store records and the run key hashes)."""
        from zoo.registry import get_model_class

        hp = config_dict(make_config(get_model_class(spec.model).Config, "hparams", **spec.hparams))
        resolved = {"experiment": self.name, "dataset": self.dataset, "model": spec.model,
                    "label": spec.label, "seed": seed, "hparams": hp,
                    "train": config_dict(self.train_for(spec)), "eval": config_dict(self.eval)}
        for key in ("init_from", "sample"):  # (only when set, so older run keys stay valid)
            if getattr(spec, key):
                resolved[key] = getattr(spec, key)
        return resolved


def run_key(resolved: dict) -> str:
    return hashlib.sha1(json.dumps(resolved, sort_keys=True, default=str).encode()).hexdigest()[:16]


def parse(raw: dict, where: str = "config") -> ExperimentConfig:
    """Validate a config dict (as read from YAML); errors name the bad key and the valid ones."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a mapping at the top level, got {type(raw).__name__}")
    raw = dict(raw)
    for key in ("name", "dataset", "models"):
        if key not in raw:
            raise ValueError(f"{where}: missing required key {key!r}")
    dataset = raw.pop("dataset")
    dataset = {"name": dataset} if isinstance(dataset, str) else dict(dataset)
    if "name" not in dataset:
        raise ValueError(f"{where}: dataset needs a 'name' (e.g. dataset: digits)")
    train = make_config(TrainConfig, f"{where}: train", **(raw.pop("train", None) or {}))
    evaluation = make_config(EvalConfig, f"{where}: eval", **(raw.pop("eval", None) or {}))
    models = [_model_spec(m, i, where) for i, m in enumerate(raw.pop("models") or [])]
    if not models:
        raise ValueError(f"{where}: 'models' is empty; list at least one of the registered models")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"{where}: model labels must be unique, got {labels}; "
                         f"set 'label' on repeated models")
    seeds = raw.pop("seeds", [0])
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    cfg = make_config(ExperimentConfig, where, dataset=dataset, models=models, seeds=seeds, train=train,
                      eval=evaluation, **raw)
    for i, spec in enumerate(models):
        if spec.init_from and spec.init_from not in labels[:i]:
            raise ValueError(f"{where}: models[{spec.label}].init_from names {spec.init_from!r}, "
                             f"which is not an earlier entry; earlier labels: {labels[:i]}")
        make_config(TrainConfig, f"{where}: models[{spec.label}].train", **spec.train)
    return cfg


def _model_spec(raw, index, where) -> ModelSpec:
    from zoo.registry import get_model_class

    if isinstance(raw, str):
        raw = {"model": raw}
    spec = make_config(ModelSpec, f"{where}: models[{index}]", **raw)
    try:
        cls = get_model_class(spec.model)
    except ValueError as err:
        raise ValueError(f"{where}: models[{index}]: {err}") from None
    make_config(cls.Config, f"{where}: models[{index}] ({spec.model}) hparams", **spec.hparams)
    try:
        cls.check_options("sample", spec.sample)
    except ValueError as err:
        raise ValueError(f"{where}: models[{index}].sample: {err}") from None
    spec.label = spec.label or spec.model
    return spec


def load(path) -> ExperimentConfig:
    path = Path(path)
    if not path.exists():
        configs = sorted(p.name for p in (Path(__file__).parent / "configs").glob("*.yaml"))
        raise FileNotFoundError(f"config file {str(path)!r} not found; "
                                f"shipped configs (experiments/configs/): {', '.join(configs)}")
    return parse(yaml.safe_load(path.read_text()), where=str(path))


