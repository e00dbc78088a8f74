"""The registry of peers: each zoo family (with the hyper-parameters the shipped configs give it) next
to a plain Keras baseline of the same network, written in the style of its keras-io example.

    @peer("vae", family="vae", loss="...", example="https://keras.io/examples/generative/vae/")
    def build(dataset, zoo, jit_compile) -> (compiled keras.Model, preprocess)

`zoo` is the zoo model it is compared with: the baseline is sized from its resolved config `zoo.hp`
(and, where the published architecture differs, from its parameter count); `preprocess` maps a
uint8 batch to what the baseline's `fit` takes (its example's preprocessing, run in the tf.data
pipeline)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

CONFIGS = Path(__file__).resolve().parent.parent / "configs"


@dataclasses.dataclass(frozen=True)
class Peer:
    name: str  # the row label, e.g. "vae_conv"
    family: str  # the zoo registry name
    build: Callable  # (dataset, zoo model, jit_compile) -> (compiled baseline, preprocess)
    loss: str  # one line: what the baseline optimises
    example: str  # the keras-io example it follows
    hparams: dict  # set over the config's hyper-parameters (e.g. {"network": "conv"})
    tolerance: float = 0.10  # |params zoo - params peer| / params zoo


PEERS: dict[str, Peer] = {}
# families without a peer, and why (the speed comparison covers the others)
NO_PEER = {"m2": "keras-io has no semi-supervised VAE example to compare with",
           "mixture": "not a network: EM has no gradient step for a Keras baseline to race"}


def peer(name: str, family: str, loss: str, example: str, hparams: dict | None = None,
         tolerance: float = 0.10):
    """Decorator: register the baseline builder under `name`, compared with zoo family `family`."""

    def wrap(build):
        if name in PEERS:
            raise ValueError(f"peer {name!r} is registered twice")
        PEERS[name] = Peer(name, family, build, loss, example, dict(hparams or {}), tolerance)
        return build

    return wrap


def config_hparams(family: str, dataset: str) -> dict:
    """The hyper-parameters the shipped config for `dataset` (experiments/configs/*.yaml) gives the
    first model of `family`; {} (the zoo defaults) when no config trains that family on that data."""
    from experiments import config as config_mod

    for path in sorted(CONFIGS.glob("*.yaml")):
        cfg = config_mod.load(path)
        if cfg.dataset.get("name") != dataset:
            continue
        for spec in cfg.models:
            if spec.model == family:
                return dict(spec.hparams)
    return {}


def zoo_hparams(entry: Peer, dataset: str) -> dict:
    """The zoo model's hyper-parameters for a peer row: the config's, then the entry's own."""
    return {**config_hparams(entry.family, dataset), **entry.hparams}
