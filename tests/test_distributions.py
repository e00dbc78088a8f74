"""zoo.distributions: the per-pixel laws every decoder shares."""
import numpy as np
import pytest
import tensorflow as tf

from zoo.distributions import pixel_log_prob, pixel_mean


@pytest.mark.parametrize("levels", [2, 17])
def test_discretized_logistic_centres_on_every_level_and_sums_to_one(levels):
    """A sharp logistic whose mean is level k puts almost all its mass on k, for k = 0 .. L-1 alike
    (the end levels too), and its pixel_mean is k."""
    half = (levels - 1) / 2.0
    k = np.arange(levels, dtype=np.float32)
    raw = np.arctanh(np.clip((k - half) / half, -1 + 1e-6, 1 - 1e-6))  # tanh^-1 of the wanted mean
    params = np.stack([raw, np.full(levels, -6.0, np.float32)], -1)  # [L, 2]: a mean per level, sharp
    params = tf.constant(params[:, None, None, None, :])  # [L, 1, 1, 1, 2]
    x = np.arange(levels, dtype=np.uint8)
    pixel = [pixel_log_prob("discretized_logistic", params, np.full((1, 1, 1, 1), v, np.uint8), levels)
             for v in x]
    probs = np.exp(np.stack([p.numpy().reshape(-1) for p in pixel], -1))  # [mean level, x]
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs.argmax(-1), x)
    assert probs[np.arange(levels), x].min() > 0.9
    np.testing.assert_allclose(pixel_mean("discretized_logistic", params, levels).numpy().ravel(), k,
                               atol=1e-3)
