"""GenerativeModel.sampling_cost, the network calls per sample the overview page shows, against the
calls a sampler really makes (counted with the samplers run eagerly)."""
import pytest
import tensorflow as tf
from support import Fake

import zoo

BARS = Fake((4, 4, 1), 2)


@pytest.fixture
def eager():
    tf.config.run_functions_eagerly(True)
    yield
    tf.config.run_functions_eagerly(False)


def _count(obj, name):
    """Wrap obj.name (an instance attribute shadows the method) so each call is counted."""
    calls, inner = [0], getattr(obj, name)

    def counted(*args, **kwargs):
        calls[0] += 1
        return inner(*args, **kwargs)

    setattr(obj, name, counted)
    return calls


@pytest.mark.parametrize("options", [{"method": "ancestral"}, {"method": "ddim"},
                                     {"method": "ddim", "steps": 3}])
def test_diffusion_calls_its_denoiser_once_per_step(eager, options):
    model = zoo.build_model("diffusion", BARS, network="mlp", width=8, depth=1, sample_steps=6, ddim_steps=4,
                            jit_compile=False)
    calls = _count(model, "eps_hat")
    model.sample(2, seed=0, **options)
    assert calls[0] == model.sampling_cost(**options) == {"ancestral": 6, "ddim": options.get("steps", 4)}[
        options["method"]]


@pytest.mark.parametrize("method", ["naive", "fast"])
def test_pixelcnn_writes_one_sub_pixel_per_call(eager, method):
    model = zoo.build_model("pixelcnn", Fake((3, 2, 1), 2), width=4, depth=1, jit_compile=False)
    calls = _count(model, "_naive_step" if method == "naive" else "_horizontal")
    model.sample(2, seed=0, method=method)
    assert calls[0] == model.sampling_cost(method=method) == 6


@pytest.mark.parametrize("family", ["vae", "flow", "gan"])
def test_one_call_families(family):
    model = zoo.build_model(family, BARS)
    assert model.sampling_cost() == 1
    with pytest.raises(ValueError, match="method"):
        model.sampling_cost(method="ddim")  # an option the family's sampler does not take
