"""Diffusion in motion (Bruna, lecture 16: diffusion after Sohl-Dickstein et al. 2015; the zoo's VDM
notation, Kingma et al. 2021): the forward process of a test image, the reverse chain of a sample,
and inpainting with a mask the user picks.

    forward   q(z_t | x) = N(alpha_t v, sigma_t^2 I),  v = 2 x / (L - 1) - 1,
              alpha_t^2 = sigmoid(-gamma_t), sigma_t^2 = sigmoid(gamma_t), SNR(t) = alpha_t^2 / sigma_t^2
    reverse   p(z_0..1) = p(z_1) prod_i p(z_{s_i} | z_{t_i})        (Bruna: p(x^(0..T)) = p(x^(T)) prod ...)
              with the prediction x_hat(z_t) = (z_t - sigma_t eps_hat(z_t, t)) / alpha_t at each state
    inpaint   `model.inpaint(x, known)`: RePaint (Lugmayr et al. 2022), the known sub-pixels kept exactly

Pictures are in data units: level = (z + 1) (L - 1) / 2, the inverse of the model's preprocessing
(so z_t's signal alpha_t v shrinks towards the middle level as t grows and the noise takes over).
The reverse chain replays the model's own sampler step by step (its `p_sample` / `ddim_sample`,
noise and seeds): its last frame is `model.sample(n, seed=seed)` exactly.
"""
from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from zoo import diffusion_maths as dm

MASKS = ("top", "bottom", "left", "right", "centre", "random")  # the region hidden (to be filled)


def _check(model) -> None:
    if not hasattr(model, "schedule") or not hasattr(model, "p_sample"):
        raise ValueError(f"{type(model).__name__} is not a diffusion model (no noise schedule or "
                         f"p_sample); pass a model of the diffusion family")


def on_grid(model, times) -> np.ndarray:
    """Times `[T]` in [0, 1] as the model uses them: rounded to i / T for a T-step (discrete) model.
    Raises ValueError for a time outside [0, 1]."""
    t = np.asarray(times, np.float64).ravel()
    if t.size and (t.min() < 0 or t.max() > 1):
        raise ValueError(f"times must lie in [0, 1], got {t.min():.3g} .. {t.max():.3g}")
    steps = model.hp.timesteps
    return (np.round(t * steps) / steps if steps else t).astype(np.float32)


def schedule_table(model, times) -> pd.DataFrame:
    """The noise schedule at `times` (on the model's grid): columns t, gamma (= -log SNR), log_snr, snr,
    alpha, sigma (alpha^2 + sigma^2 = 1; VDM sec. 2). One row per time."""
    _check(model)
    t = on_grid(model, times)
    gamma = model.schedule.gamma(tf.constant(t)).numpy().astype(np.float64)
    alpha, sigma = (v.numpy().astype(np.float64) for v in dm.alpha_sigma(tf.constant(gamma, tf.float32)))
    return pd.DataFrame({"t": t, "gamma": gamma, "log_snr": -gamma, "snr": np.exp(-gamma),
                         "alpha": alpha, "sigma": sigma})


def to_data_units(model, z) -> np.ndarray:
    """z in the model's [-1, 1] space -> float levels (z + 1) (L - 1) / 2 (not clipped)."""
    return (np.asarray(z, np.float32) + 1.0) * (model.levels - 1) / 2.0


def forward_process(model, x, times, seed: int = 0) -> np.ndarray:
    """Draws z_t ~ q(z_t | x) = N(alpha_t v, sigma_t^2 I) for each t of `times` (on the model's grid),
    `[T, B, H, W, C]` float in the model's units (v in [-1, 1] for t = 0); `to_data_units` maps them
    to levels. x uint8 `[B, H, W, C]`. Raises TypeError / ValueError for bad images or times."""
    _check(model)
    xf = model.preprocess(model.check_input(x))  # [B, H, W, C]
    t = on_grid(model, times)
    b = tf.shape(xf)[0]
    eps = tf.random.stateless_normal(tf.concat([[len(t)], tf.shape(xf)], 0), seed=[int(seed), 1])
    gammas = model.schedule.gamma(tf.constant(t))  # [T]
    return np.stack([dm.q_sample(xf, tf.fill([b], g), e).numpy() for g, e in zip(gammas, eps)])


@dataclasses.dataclass
class Chain:
    """A reverse chain: `t` `[F]` of each kept state (1 = pure noise first), `z` `[F, n, H, W, C]` the
    states z_t, `x_hat` `[F, n, H, W, C]` the network's prediction of x at each (model units), `sample`
    uint8 `[n, H, W, C]` the decoded image x ~ p(x | z_0) (= `model.sample(n, seed=seed)`)."""

    t: np.ndarray
    z: np.ndarray
    x_hat: np.ndarray
    sample: np.ndarray


def frame_steps(steps: int, frames: int) -> list[int]:
    """Loop indices i (steps .. 0; state z at t_i = i / steps) of `frames` states evenly spread."""
    if frames < 2:
        raise ValueError(f"frames must be >= 2 (the first and last states), got {frames}")
    return sorted({int(round(i)) for i in np.linspace(steps, 0, frames)}, reverse=True)


def reverse_chain(model, n: int, seed: int = 0, frames: int = 8, method: str = "ancestral", steps=None,
                  eta: float = 0.0) -> Chain:
    """The sampler's states from z_1 ~ N(0, I) to z_0 at `frames` evenly spread steps, with x_hat(z_t),
    and the decoded sample: `method` "ancestral" or "ddim", `steps` and `eta` as `model.sample`'s
    (the same seeds, noise and step functions: the sample equals `model.sample(n, seed, method=...,
    steps=..., eta=...)`). Raises ValueError for bad options (as `sample`)."""
    _check(model)
    options = {"method": method, "steps": steps, "eta": eta} if method == "ddim" else {"method": method,
                                                                                        "steps": steps}
    model.check_options("sample", options)
    base = keras.random.randint([2], 0, 2 ** 30, seed=model._seed(seed), dtype="int32")  # as `_sample`
    total = model._steps(method, steps)  # int32 tensor, as the sampler's loop takes it
    z, loop, last = model._start(n, base)
    g = model.schedule.gamma

    @tf.function
    def step(z, i):
        t, s = model._step_times(i, total, n)
        noise = model._noise(loop, i, z)
        return model.ddim_sample(z, t, s, noise, tf.constant(float(eta))) if method == "ddim" else \
            model.p_sample(z, t, s, noise)

    keep, ts, zs, xs = frame_steps(int(total), frames), [], [], []
    for i in range(int(total), -1, -1):
        if i in keep:
            t = tf.fill([n], model._grid(i, total))
            ts.append(float(t[0]))
            zs.append(z.numpy())
            xs.append(dm.x_from_eps(z, model.eps_hat(z, t), g(t)).numpy())
        if i > 0:
            z = step(z, tf.constant(i))
    sample = tf.cast(tf.clip_by_value(model._decode(z, last), 0, model.levels - 1), tf.uint8)
    return Chain(np.array(ts, np.float32), np.stack(zs), np.stack(xs), sample.numpy())


def known_mask(name: str, shape, seed: int = 0) -> np.ndarray:
    """bool `[H, W, C]`: True where a sub-pixel is KNOWN (kept), False in the region `name` hides:
    "top" / "bottom" / "left" / "right" half (rows or columns; the half rounded up), "centre" (the
    middle half of the rows and of the columns), "random" (each pixel, all its channels, hidden with
    probability 1/2, by `seed`). Raises ValueError for another name."""
    h, w, c = (int(s) for s in shape)
    rows, cols = np.indices((h, w))
    hidden = {"top": rows < (h + 1) // 2, "bottom": rows >= h // 2, "left": cols < (w + 1) // 2,
              "right": cols >= w // 2,
              "centre": ((rows >= h // 4) & (rows < h - h // 4) & (cols >= w // 4) & (cols < w - w // 4)),
              "random": np.random.default_rng(seed).random((h, w)) < 0.5}.get(name)
    if hidden is None:
        raise ValueError(f"unknown mask {name!r}; choose one of {', '.join(MASKS)}")
    return np.repeat(~hidden[..., None], c, axis=-1)


def checker(shape, levels: int) -> np.ndarray:
    """float `[H, W, C]`: how a hidden (or not yet written) sub-pixel is drawn: a checkerboard of
    0.3 and 0.7 x (L - 1), the "nothing here" of image editors, apart from the grid's mid-grey padding."""
    h, w, c = (int(s) for s in shape)
    board = np.where(np.indices((h, w)).sum(0) % 2 == 0, 0.3, 0.7) * (levels - 1)  # [H, W]
    return np.repeat(board[..., None], c, axis=-1).astype(np.float32)


def inpaint(model, x, mask: str, seed: int = 0, **options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(known `[H, W, C]` bool, masked float `[B, H, W, C]` with the hidden sub-pixels drawn as the
    `checker`, inpainted uint8 `[B, H, W, C]`) of images x uint8 `[B, H, W, C]`, through
    `model.inpaint(x, known, seed=seed, **options)` (method, steps, eta, resample). Raises ValueError
    for an unknown mask or option."""
    _check(model)
    x = model.check_input(x).numpy()
    known = known_mask(mask, model.data_shape, seed)
    masked = np.where(known, x.astype(np.float32), checker(model.data_shape, model.levels))
    return known, masked, model.inpaint(x, known, seed=seed, **options).numpy()
