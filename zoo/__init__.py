"""The generative-model zoo: one likelihood contract (zoo.contract), data (zoo.data), models
(zoo.models, through the registry), training/evaluation, and the results store (zoo.results).

Importing `zoo` is cheap and TensorFlow-free (the dashboard relies on it); the model functions
below import TensorFlow on first use.
"""


def list_models() -> list[str]:
    """Names of every registered model family."""
    from zoo.registry import list_models as _list

    return _list()


def build_model(name: str, dataset, **hparams):
    """A compiled `GenerativeModel` of family `name` for `dataset`, ready for `model.fit`."""
    from zoo.registry import build_model as _build

    return _build(name, dataset, **hparams)


def load_model(path):
    """`keras.saving.load_model(path)` of a saved zoo model, after registering every family (a bare
    `keras.saving.load_model` in a fresh process cannot find the zoo's classes)."""
    import keras

    import zoo.models  # noqa: F401  (the @register decorators make the .keras file loadable)

    return keras.saving.load_model(path)
