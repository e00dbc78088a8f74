"""Property: whatever YAML mapping a user writes, the config parser either returns a valid config (one that
also gives every run its key) or raises ConfigError -- never another exception -- whose message names the
offending key, and whose `path` leads to it in the mapping.

The mappings are nested dicts whose keys come from the real config vocabulary (top-level keys, train and
eval fields, entry keys, every family's hyper-parameters, dataset options, sample options) mixed with
random strings and YAML's other key types, and whose values are of random types; each goes through
yaml.safe_dump / yaml.safe_load first, so it is exactly what a file could hold."""
import dataclasses
import inspect

import pytest
import yaml

from experiments import checks, config
from zoo import data
from zoo.registry import get_model_class, list_models

hypothesis = pytest.importorskip("hypothesis")  # (not yet in requirements.txt: pip install hypothesis)
st = pytest.importorskip("hypothesis.strategies")

MODELS = list_models()
FAMILIES = [get_model_class(m) for m in MODELS]
TOP = [f.name for f in dataclasses.fields(config.ExperimentConfig)]
TRAIN = [f.name for f in dataclasses.fields(config.TrainConfig)]
EVAL = [f.name for f in dataclasses.fields(config.EvalConfig)]
ENTRY = [f.name for f in dataclasses.fields(config.ModelSpec)]
HPARAMS = sorted({f.name for cls in FAMILIES for f in dataclasses.fields(cls.Config)})
SAMPLE = sorted({p for cls in FAMILIES for p in inspect.signature(cls._sample).parameters} - {"self", "n"})
DATASETS = data.list_datasets()
OPTIONS = sorted({p for name in DATASETS for p in inspect.signature(data._LOADERS[name]).parameters})
VOCABULARY = sorted(set(TOP + TRAIN + EVAL + ENTRY + HPARAMS + SAMPLE + OPTIONS))
# values a real config uses: the Literal choices, names, schedules ("30s", "epoch", "auto", ...)
WORDS = sorted({str(v) for cls in (config.TrainConfig, config.EvalConfig, *(c.Config for c in FAMILIES))
                for allowed in checks._choices(cls).values() for v in allowed}
               | set(MODELS) | set(DATASETS) | {"epoch", "auto", "30s", "dynamic", "test", "valid", "ddim"})

def _plausible() -> dict:
    """field / option name -> values a real config gives it: the defaults and Literal choices of every
    class that has it (so a value right for one family may be wrong for another)."""
    seen = {}
    for cls in (config.TrainConfig, config.EvalConfig, *(c.Config for c in FAMILIES)):
        for f in dataclasses.fields(cls):
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            seen.setdefault(f.name, []).append(default)
        for name, allowed in checks._choices(cls).items():
            seen[name] += list(allowed)
    for name in DATASETS:
        for p in inspect.signature(data._LOADERS[name]).parameters.values():
            seen.setdefault(p.name, []).extend([p.default, 5, 50])
    for name in SAMPLE:
        seen.setdefault(name, []).extend(["ddim", "fast", 10, 0.0])
    return {k: [v for v in vals if isinstance(v, (type(None), bool, int, float, str, list, tuple))]
            for k, vals in seen.items()}


PLAUSIBLE = _plausible()


def mostly(good, bad, times=4):
    """`good` about `times` times as often as `bad` (st.one_of would pick each about as often)."""
    return st.sampled_from([True] * times + [False]).flatmap(lambda ok: good if ok else bad)


keys = st.one_of(st.sampled_from(VOCABULARY), st.text(max_size=8), st.integers(-2, 2), st.booleans(),
                 st.none())
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 300), st.integers(), st.floats(0, 1),
                    st.floats(), st.text(max_size=8), st.sampled_from(WORDS), st.dates())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys, inner, max_size=3), max_leaves=8)
stray = mostly(st.just({}), st.dictionaries(keys, values, min_size=1, max_size=2), times=6)


def field(name):
    """A value for the key `name`: mostly a plausible one, else anything."""
    return mostly(st.sampled_from(PLAUSIBLE[name]), st.one_of(scalars, values), times=6)


def mapping(names):
    """A mapping of some of `names` (mostly plausible values), now and then with a stray key."""
    names = [n for n in names if n in PLAUSIBLE]
    return st.builds(lambda picked, extra: {**picked, **extra},
                     st.lists(st.sampled_from(names), unique=True, max_size=3).flatmap(
                         lambda chosen: st.fixed_dictionaries({k: field(k) for k in chosen})),
                     stray)


def section(names):
    """`mapping(names)`, or now and then not a mapping at all."""
    return mostly(mapping(names), st.one_of(scalars, values), times=8)


entries = st.one_of(
    st.sampled_from(MODELS),
    mostly(st.fixed_dictionaries({"model": mostly(st.sampled_from(MODELS), scalars, times=8)}, optional={
        "label": mostly(st.sampled_from(["a", "b", *MODELS]), scalars),
        "hparams": section(HPARAMS), "train": section(TRAIN), "sample": section(SAMPLE),
        "init_from": mostly(st.sampled_from(["a", *MODELS]), scalars)}), values))
datasets = mostly(
    st.one_of(st.sampled_from(DATASETS),
              st.builds(lambda name, options: {"name": name, **options},
                        mostly(st.sampled_from(DATASETS), scalars, times=8), mapping(OPTIONS))),
    values)
configs = st.builds(
    lambda base, extra, drop: {k: v for k, v in {**base, **extra}.items() if k != drop},
    st.fixed_dictionaries(
        {"name": mostly(st.just("exp"), scalars, times=8), "dataset": datasets,
         "models": mostly(st.lists(entries, min_size=1, max_size=3), values, times=8)},
        optional={"seeds": mostly(st.lists(st.integers(0, 5), min_size=1, max_size=3),
                                  st.one_of(scalars, values)),
                  "train": section(TRAIN), "eval": section(EVAL)}),
    stray,  # stray keys, maybe real ones with odd values
    mostly(st.none(), st.sampled_from(["name", "dataset", "models"]), times=12))


def _as_yaml(raw):
    """`raw` as a YAML file would give it back (yaml.safe_load of yaml.safe_dump)."""
    return yaml.safe_load(yaml.safe_dump(raw, sort_keys=False, allow_unicode=True))


def _check(raw):
    try:
        cfg = config.parse(raw)
    except config.ConfigError as err:
        assert type(err) is config.ConfigError, type(err)
        message, path = str(err), err.path
        assert path, f"no path for: {message}"
        at = raw
        for step in path[:-1]:  # the path leads to the offending key's mapping (or list) in the config
            at = at[step]
        assert str(path[-1]) in message or repr(path[-1]) in message, (path, message)
        assert "\n" not in message
        return False
    assert isinstance(cfg, config.ExperimentConfig) and cfg.models and cfg.seeds
    assert isinstance(cfg.train, config.TrainConfig) and isinstance(cfg.eval, config.EvalConfig)
    labels = [m.label for m in cfg.models]
    assert len(set(labels)) == len(labels) and cfg.dataset["name"] in DATASETS
    for spec in cfg.models:
        for seed in cfg.seeds:
            assert len(config.run_key(cfg.resolved(spec, seed))) == 16
    return True


@hypothesis.settings(max_examples=200, deadline=None, suppress_health_check=[
    hypothesis.HealthCheck.too_slow, hypothesis.HealthCheck.data_too_large])
@hypothesis.given(configs)
def test_any_yaml_mapping_parses_or_names_the_key(raw):
    _check(_as_yaml(raw))


@hypothesis.settings(max_examples=100, deadline=None)
@hypothesis.given(st.text(max_size=60))
def test_any_file_loads_or_raises_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("yaml") / "config.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        config.load(path)
    except config.ConfigError as err:
        assert type(err) is config.ConfigError and "\n" not in str(err)


def test_the_generator_reaches_valid_configs():
    """The property above is not vacuous: the strategy yields configs that parse."""
    found = hypothesis.find(configs, lambda raw: _check(_as_yaml(raw)),
                            settings=hypothesis.settings(max_examples=2000, deadline=None, database=None))
    assert config.parse(_as_yaml(found)).models
