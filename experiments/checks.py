"""Checking a config's values against its dataclasses' annotations, for `experiments.config`:
ConfigError (a ValueError naming the key and its path), unknown keys with a did-you-mean, value types
(whole numbers, numbers, strings, Literal choices, unions), minimum values, and how a value is shown
in a message. No TensorFlow."""
from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import re
import types
import typing
from typing import Literal

from zoo.registry import make_config, unknown_key_error


class ConfigError(ValueError):
    """A config the user must fix. The message names the offending key and what it takes (or the valid
    keys); `path` says where that key sits, e.g. ("models", 0, "hparams", "latnt_dim")."""

    path: tuple = ()

    def __init__(self, message: str, path=()):
        super().__init__(message)
        self.path = tuple(path)


class ConfigFileMissing(FileNotFoundError, ConfigError):
    """The config file does not exist (a FileNotFoundError too)."""



def _build(config_cls, values, where: str, path: tuple, base=None):
    """`make_config(config_cls, where, **values)` (over the fields of `base`, if given), with every
    error a ConfigError at `path`: a key that is not a field (did-you-mean), a value of the wrong type,
    a value outside a Literal, or one the class's own checks refuse."""
    values = _mapping(values, where, path)
    names, hints = _field_names(config_cls), _hints(config_cls)
    for key, value in values.items():
        if not isinstance(key, str):  # make_config takes keywords
            raise ConfigError(_unknown_key(key, names, where), path + (key,))
        if key in hints:
            _check_type(value, hints[key], where, path + (key,))
    merged = {**({f.name: getattr(base, f.name) for f in dataclasses.fields(base)} if base else {}), **values}
    try:
        return make_config(config_cls, where, **merged)
    except ConfigError as err:  # the class's own checks (__post_init__)
        raise ConfigError(f"{where}: {err}", path + err.path) from None
    except ValueError as err:  # make_config: an unknown key, or a value outside a Literal
        culprit = [k for k in values if k not in names]
        culprit += [k for k, allowed in _choices(config_cls).items()
                    if k in values and values[k] not in allowed]
        raise ConfigError(str(err), path + tuple(culprit[:1])) from None


def _known_keys(mapping: dict, valid, where: str, path: tuple) -> None:
    for key in mapping:
        if not isinstance(key, str) or key not in valid:
            raise ConfigError(_unknown_key(key, valid, where), path + (key,))


def _unknown_key(key, valid, where: str) -> str:
    yaml_bool = (" (YAML reads a bare yes/no/on/off as true/false: quote it)" if isinstance(key, bool)
                 else "")
    return f"{unknown_key_error('key', key, valid, where=f' in {where}')}{yaml_bool}"


def _mapping(value, where: str, path: tuple) -> dict:
    """`value` as a dict (null = empty); ConfigError for anything else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of keys to values (e.g. {{epochs: 10}}), got "
                          f"{_kind(value)} {_show(value)}", path)
    return dict(value)


def _check_fields(obj, minima: dict) -> None:
    """A config dataclass's own check: each field's type, then the lower bounds of `minima`."""
    for f in dataclasses.fields(obj):
        _check_type(getattr(obj, f.name), _hints(type(obj))[f.name], None, (f.name,))
    for key, low in minima.items():
        value = getattr(obj, key)
        if value is not None and value < low:
            raise ConfigError(f"{key} = {_show(value)}: give a whole number >= {low}", (key,))


def _check_type(value, hint, where: str | None, path: tuple) -> None:
    if not _fits(value, hint):
        yaml_1e = ""
        if isinstance(value, str) and _fits(1.0, hint) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", value):
            yaml_1e = f" (YAML reads {value} as a string: write it with a dot, e.g. 1.0e-3 for 1e-3)"
        prefix = f"{where}: " if where else ""
        raise ConfigError(f"{prefix}{path[-1]} = {_show(value)} is {_kind(value)}; expected "
                          f"{_expected(hint)}{yaml_1e}", path)


def _fits(value, hint) -> bool:
    """Whether `value` (as YAML gives it) has the type a field's annotation asks for; Literal values are
    make_config's to check (with a did-you-mean), annotations not listed here the class's own."""
    origin = typing.get_origin(hint)
    if origin is Literal or hint is typing.Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return _is_int(value)
    if hint is float:
        try:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        except OverflowError:  # an integer too large for a float
            return False
    if hint is str:
        return isinstance(value, str)
    if hint in (list, tuple) or origin in (list, tuple):
        return isinstance(value, (list, tuple))
    if hint is dict or origin is dict:
        return isinstance(value, dict)
    return True


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_EXPECTED = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
             type(None): "null", list: "a list", tuple: "a list", dict: "a mapping"}


def _expected(hint) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_expected(arm) for arm in typing.get_args(hint)))
    return _EXPECTED.get(typing.get_origin(hint) or hint, str(hint))


def _kind(value) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        return "not a finite number"
    if _is_int(value) and abs(value) > 2**1023:
        return "too large a number"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    if isinstance(value, bytes):
        return "binary data"
    if isinstance(value, bool):
        return "a boolean"
    return _EXPECTED.get(type(value), f"a {type(value).__name__}")


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.lru_cache(maxsize=None)
def _hints(config_cls) -> dict:
    return typing.get_type_hints(config_cls)


def _field_names(config_cls) -> tuple:
    return tuple(f.name for f in dataclasses.fields(config_cls))


def _choices(config_cls) -> dict:
    return {k: typing.get_args(h) for k, h in _hints(config_cls).items() if typing.get_origin(h) is Literal}
