"""The Samples page for a class-conditional run (dashboard/conditional.py): the runner's class-per-row
grid with its row labels, and the label agreement and -log p(x|y) beside it, equal to the store's --
on the fixture store's `pixelcnn_cond` run (tests/test_dashboard.py TINY: 4 bars, 4 samples a row)."""
import io

import numpy as np
import pytest
from PIL import Image
from test_dashboard import app

from dashboard import conditional as cond
from zoo.images import grid


@pytest.fixture
def shown_bytes(monkeypatch):
    """{media file id: the bytes st.image stored}, to read back what a page showed."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    seen, original = {}, MemoryMediaFileStorage.load_and_get_id

    def spy(self, data, *args, **kwargs):
        file_id = original(self, data, *args, **kwargs)
        seen[file_id] = data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return seen


def test_samples_page_shows_the_class_grid_with_labels_and_its_numbers(db, store, monkeypatch, shown_bytes):
    runs = store.runs()
    rid = int(runs.loc[runs["label"] == "pixelcnn_cond", "run_id"].iloc[0])
    at = app(db, "samples", monkeypatch)
    assert not [s for s in at.subheader if "one class per row" in s.value]  # no conditional run picked
    at.multiselect(key="samples_runs").set_value([f"#{rid} pixelcnn_cond s0"]).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [im for im in at.image if "row y = samples given label y, y = 0 .. 3" in im.captions[0]]
    assert len(shown) == 1
    file_id = shown[0].value[0].rsplit("/", 1)[1].split(".")[0]
    pixels = np.asarray(Image.open(io.BytesIO(shown_bytes[file_id])))
    path = store.artifacts(rid).set_index("name")["path"]["samples_by_class_png"]
    stored = np.asarray(Image.open(path))
    assert pixels.shape[0] == stored.shape[0] and pixels.shape[1] > stored.shape[1]
    assert np.array_equal(pixels[:, -stored.shape[1]:], stored)  # the store's grid, untouched
    strip = pixels[:, :-stored.shape[1]]  # the labels 0..3, one per row band
    assert all((band < 128).any() for band in np.array_split(strip, 4)) and (strip[:2] == 255).all()

    m = store.metrics([rid], split="test").set_index("name")["value"]
    tiles = {t.label: t.value for t in at.metric}
    for label, name, _ in cond.TILES:
        assert tiles[label] == f"{m[name]:.4g}", name  # label_agreement, cond_nll, ... as stored


def test_grid_rows_reads_the_layout_of_zoo_images_grid():
    for k, per, hw in [(4, 4, (4, 4)), (10, 6, (8, 8)), (3, 1, (28, 28)), (10, 1, (4, 4))]:
        png = np.asarray(grid(np.zeros((k * per, *hw, 1), np.uint8), 2, ncols=per))
        assert cond.grid_rows(k * per, hw, png.shape) == k
    assert cond.grid_rows(16, (4, 4), (100, 37)) is None  # no layout fits: no labels guessed


def test_label_rows_keeps_the_grid_and_labels_each_band():
    rgb = np.full((90, 40, 3), 7, np.uint8)
    out = cond.label_rows(rgb, 3)
    assert out.shape[0] == 90 and out.shape[2] == 3 and np.array_equal(out[:, -40:], rgb)
    assert all((band[:, :-40] < 128).any() for band in np.array_split(out, 3))
