"""zoo.demos.pixelcnn: the sampler's partial canvases end at `model.sample` and spend -log p(x) nats
in all; the receptive field (autodiff) is exactly zero at the pixel and after it, and non-zero exactly
on the part of the past the gated stacks reach; one class per row of a conditional model's grid."""
import keras
import numpy as np
import pytest
from support import Fake

import zoo
from zoo.demos import pixelcnn as demo
from zoo.demos.diffusion import checker


def _model(shape, levels, **hp):
    keras.utils.set_random_seed(0)
    hp = {"width": 24, "depth": 4, "kernel_size": 3, "jit_compile": False, "seed": 0, **hp}
    return zoo.build_model("pixelcnn", Fake(shape, levels), **hp)


def _images(shape, levels, n, seed=0):
    return np.random.default_rng(seed).integers(0, levels, (n, *shape)).astype(np.uint8)


COND = {"num_classes": 3, "decoder": "discretized_logistic"}


@pytest.mark.parametrize("shape, levels, hp, labels", [((4, 4, 1), 2, {}, None), ((3, 3, 3), 4, COND, None),
                                                       ((3, 3, 3), 4, COND, [2, 0, 1, 1, 2])])
def test_partial_canvases_end_at_the_sample_and_spend_its_nats(shape, levels, hp, labels):
    model = _model(shape, levels, **hp)
    out = demo.partial_canvases(model, 5, seed=3, snapshots=5, labels=labels)
    final = model.sample(5, seed=3, labels=labels).numpy()  # the fast sampler: the same draws
    np.testing.assert_array_equal(out.canvases[-1], final)
    d = int(np.prod(shape))
    assert list(out.counts) == demo.snapshot_counts(d, 5) and out.counts[0] == 0 and out.counts[-1] == d
    # raster order, never revisited: the canvas after k sub-pixels is the final image with the rest 0
    np.testing.assert_array_equal(out.canvases, np.where(out.written[:, None], final[None], 0))
    assert out.written[1].sum() == out.counts[1] and out.written.reshape(5, -1)[1, :out.counts[1]].all()
    picture = demo.shown(out, levels)  # [S, n, H, W, C]
    written = np.broadcast_to(out.written[:, None], picture.shape)
    np.testing.assert_array_equal(picture[written], out.canvases[written])
    np.testing.assert_array_equal(picture[0], np.broadcast_to(checker(shape, levels), picture[0].shape))
    if hp:  # a conditional model: the labels drawn (as `sample` draws them) or given
        assert out.labels.shape == (5,) and (labels is None or list(out.labels) == labels)
    nats = out.nats.pivot(index="written", columns="image", values="nats")
    np.testing.assert_allclose(nats.loc[0], 0.0)
    assert (np.diff(nats.to_numpy(), axis=0) >= -1e-6).all()  # -log p(x_<k) grows with k
    np.testing.assert_allclose(nats.loc[d], -model.log_prob(final, labels=out.labels).numpy(), rtol=1e-5)


def test_partial_canvases_errors():
    model = _model((4, 4, 1), 2, depth=1)
    with pytest.raises(ValueError, match=r"must lie in \[0, 16\]"):
        demo.partial_canvases(model, 2, counts=[0, 17])
    with pytest.raises(ValueError, match="snapshots must be >= 2"):
        demo.partial_canvases(model, 2, snapshots=1)
    with pytest.raises(ValueError, match="unconditional"):
        demo.partial_canvases(model, 2, labels=[0, 1])
    with pytest.raises(ValueError, match="not a PixelCNN"):
        demo.partial_canvases(zoo.build_model("vae", Fake((4, 4, 1), 2)), 2)


def test_reach_of_the_gated_stacks():
    """Depth 1, k = 3 (the dashboard fixture's): pixel (3, 3) sees rows 1-2 at columns 2-3 and (3, 2)."""
    small = _model((4, 4, 1), 2, depth=1)
    want = np.zeros((4, 4, 1), bool)
    want[1:3, 2:4], want[3, 2] = True, True
    np.testing.assert_array_equal(demo.reach(small, 3, 3), want)
    assert not demo.reach(small, 0, 0).any()
    full = _model((5, 5, 3), 4)  # 4 blocks of k = 3 reach the whole past
    past = np.arange(75).reshape(5, 5, 3) < 5 * 3 * 3 + 2 * 3 + 1  # before (3, 2, 1) in raster order
    np.testing.assert_array_equal(demo.reach(full, 3, 2, 1), past)
    with pytest.raises(ValueError, match=r"outside the 4x4x1 image; pick row < 4"):
        demo.reach(small, 4, 0)


@pytest.mark.parametrize("shape, levels, hp", [((5, 5, 3), 4, COND), ((9, 6, 1), 17, {"depth": 2})])
def test_receptive_field_is_causal_and_has_no_blind_spot(shape, levels, hp):
    """The gradient of a sub-pixel's parameters w.r.t. the input: exact zeros at the sub-pixel and after
    it (the masks), non-zero on every sub-pixel `reach` names (no blind spot) and nowhere else. 9x6
    with 2 blocks: rows more than 3 above are out of range, so the field is a strict part of the past."""
    model = _model(shape, levels, **hp)
    x = _images(shape, levels, 3)
    labels = [0, 1, 2] if hp.get("num_classes") else None
    h, w, c = shape
    raster = np.arange(h * w * c).reshape(shape)
    for row, col, chan in [(0, 0, 0), (2, 2, 1 % c), (h - 1, w - 1, c - 1), (h - 1, 1, 0)]:
        field = demo.receptive_field(model, x, row, col, chan, labels=labels)
        assert field.shape == shape and (field >= 0).all()
        assert (field[raster >= raster[row, col, chan]] == 0).all()  # causality: exact zeros
        np.testing.assert_array_equal(field > 0, demo.reach(model, row, col, chan))
    if not hp.get("num_classes"):
        assert demo.reach(model, h - 1, w - 1).sum() < raster[h - 1, w - 1, 0]  # a strict part of the past
    table = demo.field_table(field)
    assert len(table) == h * w * c and table["gradient"].sum() == pytest.approx(field.sum())


def test_class_grid_has_one_class_per_row(bars):
    model = _model((4, 4, 1), 2, width=16, depth=3, num_classes=4, learning_rate=3e-3)
    labels, grid = demo.class_grid(model, 3, seed=1)
    assert list(labels) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] and grid.shape == (12, 4, 4, 1)
    np.testing.assert_array_equal(grid, model.sample(12, seed=1, labels=labels).numpy())
    model.fit(bars.tf_dataset("train", 100, seed=0, with_labels=True), epochs=4, verbose=0)
    labels, grid = demo.class_grid(model, 10, seed=0)
    column = grid[..., 0].mean(1).argmax(-1)  # the bars label is the bar's column
    assert (column == labels).mean() > 0.8
    with pytest.raises(ValueError, match="unconditional"):
        demo.class_grid(_model((4, 4, 1), 2, depth=1), 2)
    with pytest.raises(ValueError, match="per_class must be >= 1"):
        demo.class_grid(model, 0)
