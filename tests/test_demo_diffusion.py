"""zoo.demos.diffusion: the schedule's numbers against their closed form, the forward marginal's
moments from many draws, the reverse chain replaying `model.sample` exactly (and decoding its last
state), the masks, and inpainting keeping the known sub-pixels (the contract)."""
import math

import keras
import numpy as np
import pytest
from support import Fake

import zoo
from zoo.demos import diffusion as demo


def _model(levels=2, **hp):
    keras.utils.set_random_seed(0)
    hp = {"network": "mlp", "width": 16, "depth": 1, "sample_steps": 12, "ddim_steps": 4, "seed": 0, **hp}
    return zoo.build_model("diffusion", Fake((4, 4, 1), levels), **hp)


@pytest.fixture(scope="module")
def model():
    return _model(schedule="linear", gamma_min=-10.0, gamma_max=8.0)


def test_schedule_table_is_the_closed_form(model):
    """Linear gamma(t) = -10 + 18 t: at t = 0, 1/2, 1 gamma = -10, -1, 8; alpha^2 = sigmoid(-gamma)."""
    table = demo.schedule_table(model, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(table["gamma"], [-10.0, -1.0, 8.0], atol=1e-5)
    np.testing.assert_allclose(table["log_snr"], [10.0, 1.0, -8.0], atol=1e-5)
    np.testing.assert_allclose(table["snr"], [math.exp(10), math.e, math.exp(-8)], rtol=1e-5)
    sig = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    np.testing.assert_allclose(table["alpha"] ** 2, [sig(10), sig(1), sig(-8)], rtol=1e-5)
    np.testing.assert_allclose(table["alpha"] ** 2 + table["sigma"] ** 2, 1.0, atol=1e-6)  # VP
    np.testing.assert_allclose(table["snr"], table["alpha"] ** 2 / table["sigma"] ** 2, rtol=1e-4)
    steps = _model(timesteps=4)  # a 4-step DDPM uses t = i / 4 only
    np.testing.assert_allclose(demo.on_grid(steps, [0.3, 0.9, 1.0]), [0.25, 1.0, 1.0])
    with pytest.raises(ValueError, match=r"times must lie in \[0, 1\]"):
        demo.schedule_table(model, [1.5])


@pytest.mark.parametrize("levels", [2, 17])
def test_forward_marginal_has_mean_alpha_x_and_variance_sigma_squared(levels):
    """z_t ~ q(z_t | x) = N(alpha_t v, sigma_t^2): moments over 20000 draws per sub-pixel within 4 standard
    errors; at t = 0 the draws in data units are the image itself (sigma_0 = 0.0067)."""
    model = _model(levels, schedule="cosine", gamma_min=-10.0)
    x = (np.arange(16).reshape(1, 4, 4, 1) % levels).astype(np.uint8)
    n, times = 20000, [0.0, 0.3, 0.6, 1.0]
    z = demo.forward_process(model, np.repeat(x, n, 0), times, seed=1)  # [T, n, 4, 4, 1]
    assert z.shape == (4, n, 4, 4, 1)
    v = 2.0 * x[0] / (levels - 1) - 1.0
    table = demo.schedule_table(model, times)
    for zt, alpha, sigma in zip(z, table["alpha"], table["sigma"]):
        se_mean, se_var = sigma / math.sqrt(n), sigma ** 2 * math.sqrt(2.0 / n)
        np.testing.assert_allclose(zt.mean(0), alpha * v, atol=4 * se_mean + 1e-6)
        np.testing.assert_allclose(zt.var(0), sigma ** 2, atol=4 * se_var + 1e-9)
    np.testing.assert_allclose(demo.to_data_units(model, z[0, :5]), np.repeat(x, 5, 0),
                               atol=5 * table["sigma"][0] * (levels - 1) / 2)
    assert not np.array_equal(z[1, 0], z[1, 1])  # each image of the batch its own noise


@pytest.mark.parametrize("hp, options", [({}, {}), ({}, {"method": "ddim"}),
                                         ({}, {"method": "ddim", "steps": 5, "eta": 1.0}),
                                         ({"timesteps": 10}, {"method": "ancestral", "steps": 7})])
def test_reverse_chain_ends_at_the_models_own_sample(hp, options):
    model = _model(**hp)
    chain = demo.reverse_chain(model, 64, seed=3, frames=5, **options)
    np.testing.assert_array_equal(chain.sample, model.sample(64, seed=3, **options).numpy())
    assert chain.t[0] == 1.0 and chain.t[-1] == 0.0 and np.all(np.diff(chain.t) < 0)
    assert chain.z.shape == chain.x_hat.shape == (len(chain.t), 64, 4, 4, 1)
    z_1 = chain.z[0].ravel()  # the chain starts from p(z_1) = N(0, I): 1024 draws
    assert abs(z_1.mean()) < 4 / 32 and abs(z_1.var() - 1) < 4 * math.sqrt(2 / 1024)
    # p(x | z_0) with sigma_0 = 0.0067 puts (almost) all its mass on the level nearest z_0 / alpha_0
    alpha_0 = demo.schedule_table(model, [0.0])["alpha"][0]
    nearest = np.clip(np.round(demo.to_data_units(model, chain.z[-1] / alpha_0)), 0, 1)
    assert (nearest == chain.sample).mean() > 0.98


def test_frame_steps_and_chain_errors(model):
    assert demo.frame_steps(16, 5) == [16, 12, 8, 4, 0] and demo.frame_steps(3, 8) == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="frames must be >= 2"):
        demo.frame_steps(16, 1)
    with pytest.raises(ValueError, match="unknown sampling method 'ddpm'"):
        demo.reverse_chain(model, 2, method="ddpm")
    with pytest.raises(ValueError, match="not a diffusion model"):
        demo.reverse_chain(zoo.build_model("vae", Fake((4, 4, 1), 2)), 2)


def test_the_checker_draws_hidden_sub_pixels_apart_from_levels_and_padding():
    board = demo.checker((2, 3, 2), 11)
    np.testing.assert_allclose(board[..., 0], [[3, 7, 3], [7, 3, 7]])
    assert (board[..., 1] == board[..., 0]).all()


def test_masks_hide_the_named_region():
    top, left, centre = (demo.known_mask(m, (4, 4, 1)) for m in ("top", "left", "centre"))
    assert not top[:2].any() and top[2:].all() and not left[:, :2].any() and left[:, 2:].all()
    assert np.array_equal(~demo.known_mask("bottom", (4, 4, 1)), ~top[::-1])
    assert np.array_equal(~demo.known_mask("right", (5, 5, 1)), ~demo.known_mask("left", (5, 5, 1))[:, ::-1])
    assert not centre[1:3, 1:3].any() and centre.sum() == 12
    rgb = demo.known_mask("random", (8, 8, 3), seed=2)
    assert (rgb == rgb[..., :1]).all() and 16 < rgb[..., 0].sum() < 48  # whole pixels, about half known
    assert np.array_equal(rgb, demo.known_mask("random", (8, 8, 3), seed=2))
    with pytest.raises(ValueError, match="unknown mask 'middle'; choose one of top, bottom"):
        demo.known_mask("middle", (4, 4, 1))


@pytest.mark.parametrize("mask, options", [("top", {"method": "ddim", "resample": 2}), ("random", {})])
def test_inpainting_keeps_the_known_sub_pixels_exactly(model, bars, mask, options):
    x = bars.test[:8]
    known, masked, out = demo.inpaint(model, x, mask, seed=1, **options)
    assert out.dtype == np.uint8 and out.shape == x.shape
    np.testing.assert_array_equal(out[:, known], x[:, known])  # the contract: the known ones back exactly
    np.testing.assert_array_equal(masked[:, known], x[:, known])
    board = np.broadcast_to(demo.checker((4, 4, 1), 2), x.shape)  # hidden: drawn as the checker
    np.testing.assert_array_equal(masked[:, ~known], board[:, ~known])
    np.testing.assert_array_equal(out, model.inpaint(x, known, seed=1, **options).numpy())
