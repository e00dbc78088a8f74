"""The contract's shape: public methods in the base class only, hooks and declared capabilities in
the families, typed choice fields, one name per idea, averaged draws."""
import dataclasses
import re
from pathlib import Path

import keras
import numpy as np
import pytest

import zoo
from zoo import data
from zoo.contract import GenerativeModel
from zoo.registry import RENAMED, choices, get_model_class, register

ROOT = Path(__file__).resolve().parent.parent
MODELS = zoo.list_models()
PUBLIC = ("nll_terms", "log_prob", "bits_per_dim", "sample", "inpaint", "log_prob_is", "train_step",
          "test_step", "call", "compile_default")
OWN_STEP = {"gan": ("train_step", "test_step", "compile_default"),  # two networks, two optimizers (keras-io)
            "mixture": ("train_step",)}  # EM: the step is an E-step, no gradient


@pytest.fixture(scope="module")
def tiny():
    return data.load("bars", n_train=64, n_valid=16, n_test=16)


@pytest.mark.parametrize("name", MODELS)
def test_no_family_overrides_a_public_contract_method(name):
    cls = get_model_class(name)
    for method in PUBLIC:
        if method in OWN_STEP.get(name, ()):
            continue
        assert getattr(cls, method) is getattr(GenerativeModel, method), f"{name} overrides {method}"


def test_callers_use_public_entry_points_only():
    """No `model._hook(...)` or private attribute of a model outside the models (capabilities instead)."""
    for path in [*ROOT.glob("zoo/*.py"), *ROOT.glob("experiments/*.py"), *ROOT.glob("dashboard/**/*.py")]:
        text = path.read_text()
        assert not re.search(r"\bmodel\._(?!_)", text), f"{path.name} reaches into a model's private parts"
        assert "_log_weights is not" not in text and "getattr(model" not in text, path.name


@pytest.mark.parametrize("name", MODELS)
def test_capabilities_are_declared_and_honoured(name, tiny):
    model = zoo.build_model(name, tiny, jit_compile=False)
    x = tiny.test[:4]
    assert isinstance(model.sample_methods, tuple) and isinstance(model.needs_labels, bool)
    if model.has_importance_sampling:
        assert model.log_prob_is(x, 3, seed=0).shape == (4,)
    else:
        with pytest.raises(NotImplementedError, match="no importance-sampling"):
            model.log_prob_is(x, 3)
    if model.has_encoder:
        code = model.encode(x)
        assert (code[0] if isinstance(code, tuple) else code).shape[0] == 4
    else:
        with pytest.raises(NotImplementedError, match="has no encoder"):
            model.encode(x)
    if not model.can_inpaint:
        with pytest.raises(NotImplementedError, match="cannot inpaint"):
            model.inpaint(x, np.ones(x.shape[1:], bool))
    with pytest.raises(ValueError, match="unknown sample option 'metod'"):
        model.sample(2, metod="fast")
    if model.sample_methods:
        with pytest.raises(ValueError, match="unknown sampling method 'nope'"):
            model.sample(2, method="nope")
    if not model.needs_labels and model.likelihood != "none":
        with pytest.raises(ValueError, match="unconditional"):
            model.log_prob(x, labels=0)


@pytest.mark.parametrize("name", MODELS)
def test_every_choice_field_is_checked_with_a_did_you_mean(name, tiny):
    fields = choices(get_model_class(name).Config)
    assert fields, f"{name} declares no Literal choice field"
    for key, allowed in fields.items():
        wrong = str(allowed[0]) + "x"
        with pytest.raises(ValueError, match=rf"unknown {key} '{wrong}'.*did you mean '{allowed[0]}'"):
            zoo.build_model(name, tiny, **{key: wrong})


def test_one_name_per_idea_and_old_names_point_to_the_new():
    for name in MODELS:
        names = {f.name for f in dataclasses.fields(get_model_class(name).Config)}
        assert not names & set(RENAMED), f"{name} still uses an old name"
    ds = data.load("bars", n_train=8, n_valid=8, n_test=8)
    with pytest.raises(ValueError, match="'hidden'.*renamed to 'width' and 'depth'"):
        zoo.build_model("vae", ds, hidden=[64, 64])
    with pytest.raises(ValueError, match="'n_layers'.*renamed to 'depth'"):
        zoo.build_model("pixelcnn", ds, n_layers=3)


def test_a_registry_name_needs_a_family():
    with pytest.raises(ValueError, match="no family.*zoo.vocabulary.FAMILY_OF"):
        register("not_a_family")(type("X", (GenerativeModel,), {}))


def test_lr_schedule_is_checked_when_the_config_loads():
    from experiments.config import parse

    raw = {"name": "e", "dataset": "bars", "models": ["vae"], "train": {"lr_schedule": "cosin"}}
    with pytest.raises(ValueError, match="unknown lr_schedule 'cosin'.*did you mean 'cosine'"):
        parse(raw)
    raw = {"name": "e", "dataset": "bars", "models": [{"model": "vae", "train": {"lr_schedule": "step"}}]}
    with pytest.raises(ValueError, match="unknown lr_schedule 'step'"):
        parse(raw)


def test_draws_average_independent_estimates(tiny):
    model = zoo.build_model("vae", tiny, jit_compile=False)
    x = tiny.test[:16]
    gen = keras.random.SeedGenerator(5)
    one_by_one = np.mean([model.log_prob(x, seed=gen).numpy() for _ in range(4)], axis=0)
    averaged = model.log_prob(x, seed=keras.random.SeedGenerator(5), draws=4).numpy()
    np.testing.assert_allclose(averaged, one_by_one, rtol=1e-5)  # the same four draws, averaged
    spread = lambda d: np.std([model.log_prob(x, draws=d).numpy() for _ in range(8)], axis=0).mean()  # noqa: E731
    assert spread(16) < 0.5 * spread(1)  # sd / sqrt(16) in expectation
    terms = model.nll_terms(x, seed=1, draws=3)
    total = -sum(t.numpy() for t in terms.values())
    np.testing.assert_allclose(total, model.log_prob(x, seed=1, draws=3).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="draws must be >= 1"):
        model.log_prob(x, draws=0)


def test_evaluate_reports_the_per_example_standard_error_over_draws(tiny):
    from zoo.evaluation import evaluate

    model = zoo.build_model("vae", tiny, jit_compile=False)
    one = dict((n, v) for n, v, _ in evaluate(model, tiny, batch_size=16))
    many = dict((n, v) for n, v, _ in evaluate(model, tiny, batch_size=16, draws=8))
    assert "nll_draw_se" not in one and many["draws"] == 8 and many["nll_draw_se"] > 0
    # the per-example spread of one draw is about sqrt(8) times the standard error of the 8-draw mean
    gen = keras.random.SeedGenerator(3)
    sd1 = np.std([model.log_prob(tiny.test, seed=gen).numpy() for _ in range(8)], axis=0, ddof=1).mean()
    assert 0.5 < many["nll_draw_se"] * np.sqrt(8) / sd1 < 2.0
    pixelcnn = zoo.build_model("pixelcnn", tiny, jit_compile=False, width=8, depth=1)
    exact = dict((n, v) for n, v, _ in evaluate(pixelcnn, tiny, batch_size=16, draws=8))
    assert "nll_draw_se" not in exact  # an exact log-likelihood has nothing to average
