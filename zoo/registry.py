"""Model registry: `@register("vae")` on a model class, then `build_model("vae", dataset, **hparams)`.

Each registered class carries a `Config` dataclass (pythae style); its fields are the valid
hyper-parameters, so a mistyped key is rejected with the list of valid ones.
"""
from __future__ import annotations

import dataclasses
import difflib
import typing

_REGISTRY: dict[str, type] = {}


def register(name: str):
    """Class decorator: add a `GenerativeModel` subclass to the zoo under `name`."""

    def wrap(cls):
        import keras

        from zoo.vocabulary import FAMILY_OF

        if name not in FAMILY_OF:
            raise ValueError(f"model name {name!r} has no family: add it to zoo.vocabulary.FAMILY_OF")
        if name in _REGISTRY:
            raise ValueError(f"model name {name!r} is registered twice")
        cls.registry_name = name
        _REGISTRY[name] = keras.saving.register_keras_serializable(package="zoo", name=cls.__name__)(cls)
        return cls

    return wrap


def list_models() -> list[str]:
    _import_families()
    return sorted(_REGISTRY)


def get_model_class(name: str) -> type:
    _import_families()
    if name not in _REGISTRY:
        raise unknown_key_error("model", name, _REGISTRY)
    return _REGISTRY[name]


def unknown_key_error(what: str, key: str, valid, where: str = "", plural: str = "") -> ValueError:
    """The zoo's one wording for a mistyped name, with a close-match suggestion (no TF import)."""
    valid = sorted(map(str, valid))
    close = difflib.get_close_matches(str(key), valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ValueError(f"unknown {what} {key!r}{where}{hint}; "
                      f"valid {plural or what + 's'}: {', '.join(valid) or '(none)'}")


def added_field(default, **kwargs):
    """A config field added after runs were recorded: it enters `config_dict` (and so the run key)
    only when set to another value than `default`, so earlier FINISHED runs keep their keys."""
    return dataclasses.field(default=default, metadata={"key_when_set": True}, **kwargs)


def where_field(default, **kwargs):
    """A config field saying where a run trains, not what it computes (e.g. the tf.distribute
    strategy): never in `config_dict`, so a run keeps its key on any machine."""
    return dataclasses.field(default=default, metadata={"never_in_key": True}, **kwargs)


def config_dict(cfg) -> dict:
    """`dataclasses.asdict(cfg)` without the `added_field`s still at their defaults and without the
    `where_field`s."""
    out = dataclasses.asdict(cfg)
    for f in dataclasses.fields(cfg):
        if f.metadata.get("never_in_key") or (f.metadata.get("key_when_set") and out[f.name] == f.default):
            del out[f.name]
    return out


# Hyper-parameters renamed so that one idea has one name in every family: old name -> new name(s).
RENAMED = {"hidden": ("width", "depth"), "filters": ("width",), "n_layers": ("depth",),
           "n_blocks": ("depth",), "res_blocks": ("depth",)}


def choices(config_cls) -> dict[str, tuple]:
    """{field: its allowed values} for the `Literal[...]` fields of a config dataclass."""
    hints = typing.get_type_hints(config_cls)
    return {f.name: typing.get_args(hints[f.name]) for f in dataclasses.fields(config_cls)
            if typing.get_origin(hints[f.name]) is typing.Literal}


def make_config(config_cls, where: str, **values):
    """Build a config dataclass, rejecting unknown keys and values outside a `Literal[...]` by name.

    Raises ValueError: "unknown key 'latnet_dim' in vae hyper-parameter (did you mean 'latent_dim'?)",
    "unknown network 'mpl' in vae hyper-parameter (did you mean 'mlp'?); valid networks: conv, mlp".
    """
    names = {f.name for f in dataclasses.fields(config_cls)}
    for key in values:
        if key in names:
            continue
        new = [n for n in RENAMED.get(key, ()) if n in names]
        if new:
            raise ValueError(f"unknown key {key!r} in {where}: "
                             f"it was renamed to {' and '.join(map(repr, new))} "
                             f"(the same name in every family); valid keys: {', '.join(sorted(names))}")
        raise unknown_key_error("key", key, names, where=f" in {where}")
    for key, allowed in choices(config_cls).items():
        if key in values and values[key] not in allowed:
            raise unknown_key_error(key, values[key], allowed, where=f" in {where}", plural=f"{key} values")
    return config_cls(**values)


def build_model(name: str, dataset, **hparams):
    """A compiled model of family `name` shaped for `dataset` (a `zoo.data.Dataset`)."""
    cls = get_model_class(name)
    config = make_config(cls.Config, f"{name} hyper-parameter", **hparams)
    model = cls(data_shape=tuple(dataset.shape), levels=int(dataset.levels), **dataclasses.asdict(config))
    model.compile_default()
    return model


def _import_families():
    # Importing the package runs every @register decorator.
    import zoo.models  # noqa: F401
