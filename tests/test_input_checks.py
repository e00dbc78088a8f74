"""Every Keras entry point of every family checks its images as the contract methods do: a float
array fails before the first step (TypeError), a value >= levels fails with the range named -- also
inside compiled and XLA-compiled steps (XLA drops in-graph asserts, so the data is checked first).
The report behind it: `fit` on digits / 16 as float32 trained to ~180 nats on images cast to 0.
Plus a Hypothesis property: any array is either valid data or refused, never a wrong number."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from support import SMALL, subset

import zoo

ENTRIES = ["fit", "fit_dataset", "fit_generator", "fit_pydataset", "validation_data", "evaluate",
           "train_on_batch", "test_on_batch", "predict"]


@pytest.fixture(scope="module")
def small(bars):
    return subset(bars, 128, 64, 64)


def _model(name, dataset, jit):
    model = zoo.build_model(name, dataset, seed=0, **{**SMALL[name], "jit_compile": jit})
    if name == "gan":
        model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3),
                      jit_compile=jit)
    else:
        model.compile_default()
    return model


class _Batches(keras.utils.PyDataset):
    def __init__(self, x):
        super().__init__()
        self.x = x

    def __len__(self):
        return 2

    def __getitem__(self, i):
        return self.x[i * 32:(i + 1) * 32]


def _call(model, how, x, good):
    """Feed `x` to the model through the Keras entry point `how`."""
    fits = dict(epochs=1, verbose=0)
    if how == "fit":
        return model.fit(x, batch_size=32, **fits)
    if how == "fit_dataset":
        return model.fit(tf.data.Dataset.from_tensor_slices(x).batch(32), **fits)
    if how == "fit_generator":
        return model.fit((x[i:i + 32] for i in range(0, 64, 32)), steps_per_epoch=2, **fits)
    if how == "fit_pydataset":
        return model.fit(_Batches(x), **fits)
    if how == "validation_data":
        return model.fit(good, batch_size=32, validation_data=x, **fits)
    if how == "evaluate":
        return model.evaluate(x, batch_size=32, verbose=0)
    if how == "predict":
        return model.predict(x, batch_size=32, verbose=0)
    return getattr(model, how)(x[:32])


@pytest.mark.parametrize("jit", [True, False], ids=["xla", "graph"])
@pytest.mark.parametrize("name", zoo.list_models())
def test_every_entry_point_refuses_floats_and_out_of_range_values(name, jit, small):
    """Float32 images (the report's digits / 16) and uint8 images with a value of `levels`: every
    entry point raises, naming the problem, and no weight has moved."""
    model = _model(name, small, jit)
    good = small.train[:64]
    before = [w.numpy().copy() for w in model.trainable_weights]
    floats = (good / (small.levels - 1)).astype(np.float32)
    big = good.copy()
    big[5, 1, 2, 0] = small.levels
    for how in ENTRIES:
        if how == "predict" and model.likelihood == "none":
            continue  # a likelihood-free model has no log P(x) to predict
        with pytest.raises(TypeError, match=r"expected uint8 .* got dtype float32"):
            _call(model, how, floats, good)
        with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match=r"outside \[0, 1\]"):
            _call(model, how, big, good)
        if how != "validation_data":  # that one trains an epoch on `good` first
            for w, b in zip(model.trainable_weights, before):
                np.testing.assert_array_equal(w.numpy(), b, err_msg=f"{name} {how}: trained on bad input")


def test_a_compiled_log_prob_checks_the_range_in_the_graph(bars):
    """`log_prob` inside a tf.function (no eager check possible) still refuses a value >= levels."""
    model = zoo.build_model("pixelcnn", bars, width=8, depth=1)
    f = tf.function(lambda x: model.log_prob(x))
    x = bars.test[:4].copy()
    assert np.isfinite(f(x).numpy()).all()
    x[1, 0, 0, 0] = 7
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"outside \[0, 1\]"):
        f(x)


DTYPES = [np.uint8, np.int8, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]


@st.composite
def arrays(draw):
    """Arrays of any of DTYPES, rank 1-5, sizes 0-5 per axis, biased towards the right shape."""
    dtype = draw(st.sampled_from(DTYPES))
    if draw(st.booleans()):
        shape = (draw(st.integers(0, 5)), 4, 4, 1)
    else:
        shape = draw(hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=5))
    elements = st.integers(0, 3) if np.dtype(dtype).kind in "iu" else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


@pytest.fixture(scope="module")
def pixelcnn(bars):
    return zoo.build_model("pixelcnn", bars, width=8, depth=1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(x=arrays())
@example(x=np.zeros((0, 4, 4, 1), np.uint8))  # found by Hypothesis: an empty batch failed in a conv
@example(x=np.full((2, 4, 4, 1), 2, np.uint8))
def test_any_array_is_valid_data_or_refused_with_a_message(pixelcnn, x):
    """log_prob(x) either gets uint8 [B, 4, 4, 1] in {0, 1} and returns B finite negative numbers, or
    raises TypeError / ValueError naming the model and the problem -- never a number for bad data."""
    valid = x.dtype == np.uint8 and x.shape[1:] == (4, 4, 1) and (x.size == 0 or x.max() <= 1)
    if valid:
        lp = pixelcnn.log_prob(x).numpy()
        assert lp.shape == (x.shape[0],) and lp.dtype == np.float32
        assert np.all(np.isfinite(lp)) and np.all(lp <= 0)
    else:
        with pytest.raises((TypeError, ValueError), match=r"pixelcnn: (expected|pixel value)"):
            pixelcnn.log_prob(x)


@pytest.mark.parametrize("name", zoo.list_models())
def test_an_empty_batch_gives_empty_answers(name, small):
    """B = 0 (a filtered batch, a tail): `[0]` log-probs and IS estimates, `[0, H, W, C]` samples."""
    model = zoo.build_model(name, small, **SMALL[name])
    empty = small.test[:0]
    assert model.log_prob(empty).shape == (0,) and model.sample(0).shape == (0, 4, 4, 1)
    assert all(v.shape == (0,) for v in model.nll_terms(empty).values())
    if model.has_importance_sampling:
        assert model.log_prob_is(empty, 3).shape == (0,)
