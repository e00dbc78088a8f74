"""Image grids with numpy + PIL only (no TensorFlow: the dashboard uses this too)."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image


def grid(images, levels: int, ncols: int | None = None, pad: int = 1,
         scale: int | None = None) -> Image.Image:
    """uint8 `[N, H, W, C]` images in [0, levels-1] -> one PIL image, tiled row by row."""
    x = np.asarray(images)
    if x.ndim != 4:
        raise ValueError(f"expected images [N, H, W, C], got shape {x.shape}")
    n, h, w, c = x.shape
    ncols = ncols or max(1, math.ceil(math.sqrt(n)))
    nrows = max(1, math.ceil(n / ncols))
    x = (x.astype(np.float32) * (255.0 / max(1, levels - 1))).round().astype(np.uint8)
    canvas = np.full((nrows * (h + pad) + pad, ncols * (w + pad) + pad, c), 128, np.uint8)
    for i in range(n):
        r, col = divmod(i, ncols)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        canvas[top:top + h, left:left + w] = x[i]
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas)
    scale = scale or max(1, 256 // max(canvas.shape[:2]))
    return img.resize((img.width * scale, img.height * scale), Image.NEAREST) if scale > 1 else img
