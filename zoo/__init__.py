"""The generative-model zoo: one likelihood contract (zoo.contract), data (zoo.data), models
(zoo.models, through the registry), training/evaluation, and the results store (zoo.results).

Importing `zoo` is cheap and TensorFlow-free (the dashboard relies on it): its submodules load on
first access (`import zoo; zoo.data.load("digits")`), and the model functions below import
TensorFlow on first use.
"""
import importlib
import pkgutil


def __getattr__(name: str):
    """`zoo.<submodule>` imported on first access (PEP 562); other names raise AttributeError."""
    if not name.startswith("_") and name in _submodules():
        return importlib.import_module(f"{__name__}.{name}")  # the import also sets it on the package
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _submodules())


def _submodules() -> set[str]:
    """Names of the modules and subpackages in zoo/ (e.g. data, results, models)."""
    return {m.name for m in pkgutil.iter_modules(__path__)}


def list_models() -> list[str]:
    """Names of every registered model family."""
    from zoo.registry import list_models as _list

    return _list()


def build_model(name: str, dataset, **hparams):
    """A compiled `GenerativeModel` of family `name` for `dataset`, ready for `model.fit`."""
    from zoo.registry import build_model as _build

    return _build(name, dataset, **hparams)


def load_model(path):
    """`keras.saving.load_model(path, safe_mode=True)` of a saved zoo model (no code from the file: a
    Lambda's pickled function is refused), after registering every family (a bare
    `keras.saving.load_model` in a fresh process cannot find the zoo's classes)."""
    import keras

    import zoo.models  # noqa: F401  (the @register decorators make the .keras file loadable)

    return keras.saving.load_model(path, safe_mode=True)
