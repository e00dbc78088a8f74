"""Mixed precision (`train.precision`): training in bfloat16 / float16 on CPU, likelihoods in float32."""
import numpy as np
import pytest
import tensorflow as tf
from support import SMALL as CHEAP

import zoo
from zoo.training import dtype_policy, float32_copy


@pytest.mark.parametrize("name", list(CHEAP))
def test_bfloat16_training_and_float32_likelihood(name, bars):
    """Under mixed_bfloat16 the hidden layers compute in bfloat16 and the output layer in float32;
    a few steps train to a finite loss; the float32 copy's log_prob is float32 and equals, to 1e-4
    relative, a float32 model given the same weights."""
    if name == "mixture":
        pytest.skip("no network layers: EM's parameters and counts are float32 whatever the policy")
    with dtype_policy("mixed_bfloat16"):
        model = zoo.build_model(name, bars, seed=0, jit_compile=False, **CHEAP[name])
    compute = {layer.dtype_policy.compute_dtype for layer in model._flatten_layers() if layer.weights}
    assert "bfloat16" in compute and "float32" in compute, compute
    assert all(w.dtype == "float32" for w in model.weights if w.trainable)  # variables stay float32
    history = model.fit(bars.tf_dataset("train", 64, shuffle=True, seed=0), epochs=1, steps_per_epoch=4,
                        verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    x = bars.test[:32]
    copy = float32_copy(model)
    assert copy.dtype_policy.name == "float32" and model.dtype_policy.name == "mixed_bfloat16"
    plain = zoo.build_model(name, bars, seed=0, jit_compile=False, **CHEAP[name])
    plain.set_weights(model.get_weights())
    lp = copy.log_prob(x, seed=1)
    assert lp.dtype == tf.float32
    np.testing.assert_allclose(lp.numpy(), plain.log_prob(x, seed=1).numpy(), rtol=1e-4)
    assert model.log_prob(x, seed=1).dtype == tf.float32  # the mixed model's own numbers are float32 too


def test_float16_uses_loss_scaling(bars):
    """mixed_float16: every optimizer (the GAN's two included) is a LossScaleOptimizer and a step trains."""
    import keras

    for name in ("vae", "gan"):
        with dtype_policy("mixed_float16"):
            model = zoo.build_model(name, bars, seed=0, jit_compile=False)
        optimizers = [model.optimizer] + ([model.d_optimizer] if name == "gan" else [])
        assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in optimizers), name
        data = bars.tf_dataset("train", 64, shuffle=True, seed=0)
        h = model.fit(data, epochs=1, steps_per_epoch=3, verbose=0)
        assert np.isfinite(h.history["loss"]).all()
    assert keras.config.dtype_policy().name == "float32"  # the policy is restored
