"""Every family's automatic choices (diffusion `network="auto"`, flow `n_scales=0`, pixel laws
`decoder="auto"`) build, train a step and give a finite log P(x) on any image shape: odd, tiny and
non-square sizes, 1 and 3 channels, 2 and 256 levels. An explicit choice that cannot fit the shape
refuses by name; auto still resolves as before on the shapes results were recorded on."""
import numpy as np
import pytest

import zoo
from zoo.data import Dataset
from zoo.models.diffusion import Diffusion
from zoo.models.flow import RealNVP

# Tiny networks whose sizes leave every auto choice as the defaults make it (the U-Net keeps two
# resolutions, as the default channels=[32, 64]); no XLA: compiling costs more than the step here.
TINY = {"vae": dict(width=8, depth=1, latent_dim=2), "iwae": dict(width=8, depth=1, latent_dim=2, k=2),
        "pixelcnn": dict(width=6, depth=1),
        "flow": dict(width=4, n_couplings=1, deq_couplings=1, deq_mixtures=2),
        "diffusion": dict(width=8, depth=1, channels=[4, 8], time_dim=8, eval_t_samples=1),
        "gan": dict(width=8, depth=1, latent_dim=2)}  # AIS (seconds to trace): in test_gan_ais_on_odd_shape
# (H, W, C), levels: odd, tiny and non-square shapes (the 9x9 U-Net was the reported failure)
SHAPES = [((9, 9, 1), 2), ((7, 7, 3), 256), ((5, 5, 1), 256), ((3, 3, 3), 256), ((1, 1, 1), 2),
          ((13, 11, 3), 256), ((12, 9, 1), 2), ((6, 10, 1), 256), ((2, 2, 3), 2)]


def ident(value):
    """Test ids: (9, 9, 1) -> 9x9x1, [32, 64] -> 32-64, [(3, 5, 4)] -> 3x5x4."""
    if isinstance(value, tuple):
        return "x".join(map(str, value))
    return "-".join(map(ident, value)) if isinstance(value, list) else str(value)


def random_dataset(shape, levels, n=8):
    """`n` uniform random images of `shape` in every split."""
    rng = np.random.default_rng(0)
    splits = (rng.integers(0, levels, (n, *shape), dtype=np.uint8) for _ in range(3))
    return Dataset(f"random{shape}", *splits, levels=levels)


@pytest.mark.parametrize("shape, levels", SHAPES, ids=ident)
@pytest.mark.parametrize("name", sorted(TINY))
def test_auto_builds_trains_and_scores_any_shape(name, shape, levels):
    ds = random_dataset(shape, levels)
    model = zoo.build_model(name, ds, **TINY[name], jit_compile=False, seed=0)
    logs = model.fit(ds.train, batch_size=8, epochs=1, verbose=0).history  # one step
    assert np.isfinite(logs["loss"][0])
    if model.likelihood == "none":  # a plain GAN
        return
    log_prob = model.log_prob(ds.test, seed=0)
    assert log_prob.shape == (8,) and log_prob.dtype == "float32"
    assert np.all(np.isfinite(log_prob.numpy()))


def test_gan_ais_on_odd_shape():
    ds = random_dataset((13, 11, 3), 256)
    model = zoo.build_model("gan", ds, **TINY["gan"], ais_steps=2, ais_chains=2, ais_leapfrog=1,
                            jit_compile=False)
    model.fit(ds.train, batch_size=8, epochs=1, verbose=0)
    log_prob = model.log_prob(ds.test, seed=0)
    assert log_prob.shape == (8,) and log_prob.dtype == "float32" and np.all(np.isfinite(log_prob.numpy()))


@pytest.mark.parametrize("shape, channels, network", [
    ((4, 4, 1), [32, 64], "mlp"), ((8, 8, 1), [32, 64], "unet"), ((28, 28, 1), [32, 64], "unet"),
    ((32, 32, 3), [32, 64], "unet"), ((9, 9, 1), [32, 64], "mlp"), ((12, 9, 1), [32, 64], "mlp"),
    ((10, 10, 1), [32, 64], "unet"), ((10, 10, 1), [8, 8, 8], "mlp"), ((12, 12, 1), [8, 8, 8], "unet")],
                         ids=ident)
def test_diffusion_auto_network(shape, channels, network):
    """Bars 4x4, digits 8x8, MNIST 28x28 and CIFAR 32x32 keep their recorded networks; the U-Net only
    where its len(channels) - 1 halvings divide the sides."""
    assert Diffusion.auto_network(shape, channels) == network


@pytest.mark.parametrize("shape, n_scales, z_shapes", [
    ((4, 4, 1), 1, [(2, 2, 4)]), ((8, 8, 1), 1, [(4, 4, 4)]), ((28, 28, 1), 2, [(14, 14, 2), (7, 7, 8)]),
    ((32, 32, 3), 3, [(16, 16, 6), (8, 8, 12), (4, 4, 48)]), ((6, 10, 1), 1, [(3, 5, 4)]),
    ((9, 9, 1), 0, [(9, 9, 1)]), ((12, 9, 3), 0, [(12, 9, 3)])], ids=ident)
def test_flow_auto_scales(shape, n_scales, z_shapes):
    """Bars, digits, MNIST and CIFAR keep their recorded scales; an odd side cannot squeeze."""
    ds = random_dataset(shape, 2, n=2)
    model = zoo.build_model("flow", ds, width=2, n_couplings=1, deq_couplings=0)
    assert model.n_scales == RealNVP.auto_scales(*shape[:2]) == n_scales
    assert model.z_shapes == z_shapes
    np.testing.assert_allclose(model.decode(model.encode(ds.test)).numpy(), ds.test, atol=1e-3)


def test_built_diffusion_records_its_network():
    assert zoo.build_model("diffusion", random_dataset((8, 8, 1), 17), channels=[4, 8]).network == "unet"
    assert zoo.build_model("diffusion", random_dataset((9, 9, 1), 17), width=8).network == "mlp"


@pytest.mark.parametrize("name, hparams, match", [
    ("diffusion", dict(network="unet"), r"U-Net with 2 resolutions.*divisible by 2, got 9x9.*network='mlp'"),
    ("flow", dict(n_scales=1), r"1 scales need.*divisible by 2, got 9x9.*n_scales"),
    ("vae", dict(network="conv"), r"divisible by 4, got 9x9.*network='mlp'"),
    ("gan", dict(network="dcgan"), r"divisible by 4, got 9x9.*network='mlp'")],
                         ids=["diffusion-unet", "flow-n_scales1", "vae-conv", "gan-dcgan"])
def test_explicit_impossible_choice_is_refused_by_name(name, hparams, match):
    with pytest.raises(ValueError, match=match):
        zoo.build_model(name, random_dataset((9, 9, 1), 2), **hparams)
