"""A class-conditional run on the Samples page: its class-per-row grid (the runner's `samples_by_class.png`,
one row per label y = 0..K-1, zoo.conditional) with the row labels drawn beside it, and next to it the
numbers that judge it: label agreement, the classifier's accuracy on real data, -log p(x | y), and the
label's information. No TensorFlow: numpy and Pillow.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import artifacts, data, ui

GRID = "samples_by_class_png"
SAMPLES = "samples_by_class_npy"
TILES = (  # (label, metric, help): units in the help
    ("label agreement", "label_agreement",
     "share of the samples, drawn with labels balanced over the classes, that the classifier puts in the "
     "class asked for (a fraction; bars: the true model's Bayes classifier, ties shared)"),
    ("classifier accuracy", "classifier_accuracy",
     "the same classifier on real data with its labels: what real images of each class score (bars: exact)"),
    ("-log p(x|y)", "cond_nll", "mean over the test images of -log p(x | y) with their true labels, nats"),
    ("bits/dim given y", "cond_bits_per_dim", "the same in bits per sub-pixel"),
    ("label info", "label_info",
     "mean of log p(x|y) - log p(x) in nats: the run's nll minus -log p(x|y); at most log K (exact models)"),
)


def grid_rows(n_images: int, image_hw: tuple, png_hw: tuple) -> int | None:
    """The number of rows K of the `zoo.images.grid` picture (pad 1, its default scale) of `n_images`
    images of `image_hw` (h, w), K rows of n_images / K, whose size is `png_hw` (H, W) pixels; None when
    no layout (or more than one) fits."""
    h, w = image_hw
    fits = []
    for k in range(1, n_images + 1):
        if n_images % k:
            continue
        canvas = (k * (h + 1) + 1, n_images // k * (w + 1) + 1)
        scale = max(1, 256 // max(canvas))
        if (canvas[0] * scale, canvas[1] * scale) == tuple(png_hw):
            fits.append(k)
    return fits[0] if len(fits) == 1 else None


def label_rows(pixels: np.ndarray, rows: int) -> np.ndarray:
    """`pixels` of a grid uint8 `[H, W]` or `[H, W, C]` with a white strip on its left holding label r
    at the height of row r, r = 0..rows-1 (equal bands of H / rows): `[H, S + W(, C)]`, the grid unchanged
    on the right."""
    from PIL import Image, ImageDraw, ImageFont

    height = pixels.shape[0]
    band = height / rows
    size = int(np.clip(band * 0.6, 8, 28))
    try:
        font = ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: its fixed bitmap font
        font = ImageFont.load_default()
    width = int(max(font.getbbox(str(rows - 1))[2], size)) + 8
    strip = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(strip)
    for r in range(rows):
        draw.text((width - 4, (r + 0.5) * band), str(r), fill=0, font=font, anchor="rm")
    strip = np.asarray(strip, np.uint8)
    if pixels.ndim == 3:
        strip = np.repeat(strip[..., None], pixels.shape[2], axis=2)
        if pixels.shape[2] == 4:
            strip[..., 3] = 255
    return np.concatenate([strip, pixels], axis=1)


def labelled_grid(arts: pd.DataFrame, run: pd.Series) -> artifacts.Read:
    """Read(value=(the grid's pixels with row labels, K)) of a conditional run, or why not: the PNG and
    the NPY artifacts must both read and agree on a K-row layout."""
    png = artifacts.read_image(arts, run, GRID)
    if not png.ok:
        return png
    npy = artifacts.read_samples(arts, run, SAMPLES)
    if not npy.ok:
        return npy
    k = grid_rows(len(npy.value), npy.value.shape[1:3], png.value.shape[:2])
    if k is None:
        return artifacts.Read(why=f"{png.file} ({GRID}): its size {list(png.value.shape[:2])} fits no "
                                  f"class-per-row layout of the {len(npy.value)} samples in {npy.file}",
                              file=png.file)
    return artifacts.Read((label_rows(png.value, k), k), file=png.file, path=png.path)


def show(url: str, arts: pd.DataFrame, run: pd.Series) -> None:
    """One conditional run: the labelled grid on the left, its metric tiles on the right."""
    left, right = st.columns([3, 2])
    caption = f"{run['name']} ({run['badge']})"
    got = labelled_grid(arts, run)
    with left:
        if got.ok:
            grid, k = got.value
            st.image(grid, caption=f"{caption}: row y = samples given label y, y = 0 .. {k - 1}",
                     width="stretch", output_format="PNG")
        else:
            ui.placeholder(caption, got.why)
    m = data.run_metrics(url, int(run["run_id"]))
    with right:
        for label, name, help in TILES:
            ui.metric(st, label, m, name, help)
