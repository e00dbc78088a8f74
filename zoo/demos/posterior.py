"""The posterior and its "area" (Paquet's opening deck: Inference, Evidence, Strategy), by quadrature.

For a latent-variable model with a 1-D or 2-D latent, p(x|z) p(z) is evaluated on a grid of z and

    p(x)      = ∫ p(x|z) p(z) dz  ≈ sum_g p(x|z_g) p(z_g) ΔV       the evidence: the curve's area
    p(z|x)    = p(x|z) p(z) / p(x)                                   Bayes (Isachenko, lecture 5)
    ELBO(x)   = E_q[log p(x, z) - log q(z|x)]                        (K&W eq. 3; Paquet "Jensen")
    log p(x)  = ELBO(x) + KL(q(z|x) || p(z|x))                       (Isachenko: variational decomposition)

ELBO and KL use the same grid (q renormalised on it), so the last identity holds to float64
rounding whatever the grid; the grid's own error is `quad_error` (the evidence again from every
other grid point). With a smooth integrand on a uniform grid whose ends carry no mass, the
midpoint rule converges faster than any power of the spacing, so log p(x) is exact up to that
error: the likelihood of a latent-variable model, without a bound. TensorFlow only through the model.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
from scipy.special import logsumexp

PRIOR_SPAN = 6.0  # the grid covers the prior N(0, I) to +-6 per axis (mass outside: 2e-9 per axis)
Q_SPAN = 8.0  # ... and each q(z|x) to mu +- 8 sigma
POINTS = {1: 2001, 2: 201}  # default grid points per axis (1-D, 2-D)
REFINE_NATS = 30.0  # a refined grid spans the z where log p(x, z) is within this of its peak
BUDGET = 200_000  # (grid points x images) per decoder call


def latent_dim(model) -> int:
    """The latent size d of a model with a decoder p(x|z), checked: ValueError for a model without
    `has_decoder` (PixelCNN, flow, diffusion) or with d > 2 (a grid of points^d decoder calls)."""
    name = getattr(model, "name", type(model).__name__)
    if not getattr(model, "has_decoder", False):
        raise ValueError(f"{name} has no latent decoder p(x|z) (has_decoder is False): the posterior by "
                         f"quadrature needs a VAE or IWAE (or a GAN, without q)")
    d = int(model.prior.event_shape[-1])
    if d > 2:
        raise ValueError(f"{name} has a {d}-D latent: quadrature over z needs latent_dim 1 or 2 (e.g. the "
                         f"bars config's VAE, latent_dim 1); use log_prob_is or log_prob_ais instead")
    return d


@dataclasses.dataclass(frozen=True)
class Grid:
    """A uniform grid of cell midpoints: `axes` (d arrays `[P]`), `z` `[G, d]` (G = P^d, the last
    axis fastest), `log_dv` the log cell volume."""

    axes: tuple
    z: np.ndarray
    log_dv: float


def latent_grid(model, x=None, points: int | None = None) -> Grid:
    """A grid over the prior's +-PRIOR_SPAN and, given images x (uint8 `[B, H, W, C]`), each
    q(z|x)'s mu +- Q_SPAN sigma (the posterior can be narrow and far out): `points` per axis
    (default POINTS[d]). Raises ValueError as `latent_dim` does, or for points < 8."""
    d = latent_dim(model)
    points = int(points or POINTS[d])
    if points < 8:
        raise ValueError(f"a quadrature grid needs at least 8 points per axis, got {points}")
    lo, hi = np.full(d, -PRIOR_SPAN), np.full(d, PRIOR_SPAN)
    if x is not None and model.offers("encode"):
        mu, sigma = (np.asarray(t, np.float64) for t in model.encode(x))  # [B, d] each
        lo = np.minimum(lo, (mu - Q_SPAN * sigma).min(0))
        hi = np.maximum(hi, (mu + Q_SPAN * sigma).max(0))
    return _uniform(lo, hi, points)


def _uniform(lo, hi, points: int) -> Grid:
    """`points` cell midpoints per axis over the box [lo, hi] (`[d]` each)."""
    step = (hi - lo) / points  # [d]
    axes = tuple(lo[i] + step[i] * (np.arange(points) + 0.5) for i in range(len(lo)))
    z = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(lo))  # [G, d]
    return Grid(axes, z, float(np.log(step).sum()))


def _refined(grid: Grid, log_joint, mu, sigma) -> Grid | None:
    """The same number of points over the box (plus a cell each side) where log p(x, z) is within
    REFINE_NATS of its peak for some image, and each q's mu +- Q_SPAN sigma: a narrow posterior gets
    a fine grid. None when the box is not much smaller than `grid`."""
    keep = (log_joint >= log_joint.max(0) - REFINE_NATS).any(1)  # [G]
    step = np.array([a[1] - a[0] for a in grid.axes])
    lo, hi = grid.z[keep].min(0) - step, grid.z[keep].max(0) + step
    if mu is not None:
        lo, hi = np.minimum(lo, (mu - Q_SPAN * sigma).min(0)), np.maximum(hi, (mu + Q_SPAN * sigma).max(0))
    points = len(grid.axes[0])
    if np.all(hi - lo > 0.5 * points * step):
        return None
    return _uniform(lo, hi, points)


def log_likelihood_grid(model, grid: Grid, x, budget: int = BUDGET) -> np.ndarray:
    """log p(x_b | z_g) `[G, B]` float64 nats, through the contract's `model.log_px_given_z`, in
    calls of at most `budget` (points x images) decoder evaluations."""
    x = np.asarray(model.check_input(x))
    b = len(x)
    n = max(1, budget // max(1, b))
    parts = []
    for start in range(0, len(grid.z), n):
        z = grid.z[start:start + n].astype(np.float32)  # [n, d]
        z = np.broadcast_to(z[:, None, :], (len(z), b, z.shape[1]))  # [n, B, d]
        parts.append(np.asarray(model.log_px_given_z(z, x), np.float64))
    return np.concatenate(parts, 0)


def log_normal(z, mu, sigma) -> np.ndarray:
    """log N(z_g; mu_b, diag sigma_b^2) `[G, B]` in float64 for z `[G, d]`, mu and sigma `[B, d]`."""
    u = (z[:, None, :] - mu[None]) / sigma[None]  # [G, B, d]
    return (-0.5 * u ** 2 - np.log(sigma)[None] - 0.5 * math.log(2 * math.pi)).sum(-1)


def evidence(grid: Grid, log_lik, log_prior=None) -> np.ndarray:
    """log p(x) = log sum_g p(x|z_g) p(z_g) ΔV `[B]` nats from log p(x|z_g) `[G, B]` (any source:
    `log_likelihood_grid`, or a table of every image); `log_prior` `[G]` defaults to N(0, I)."""
    if log_prior is None:
        log_prior = log_normal(grid.z, np.zeros((1, grid.z.shape[1])), np.ones((1, grid.z.shape[1])))[:, 0]
    return logsumexp(np.asarray(log_lik, np.float64) + log_prior[:, None], axis=0) + grid.log_dv


@dataclasses.dataclass(frozen=True)
class Posterior:
    """Quadrature results for B images on one grid; densities are log, float64, per unit volume.

    log_lik, log_post, log_q `[G, B]`: log p(x|z), log p(z|x), log q(z|x) (q renormalised on the
    grid; None without an encoder); log_prior `[G]`; log_px, elbo, kl, quad_error, edge_mass `[B]`
    (nats; elbo and kl None without an encoder); mu, sigma `[B, d]` of q."""

    grid: Grid
    log_lik: np.ndarray
    log_prior: np.ndarray
    log_px: np.ndarray
    log_post: np.ndarray
    quad_error: np.ndarray  # the grid's error: the largest change dropping every other point
    edge_mass: np.ndarray  # the posterior mass in the grid's outermost cells (should be ~0)
    log_q: np.ndarray | None = None
    elbo: np.ndarray | None = None
    kl: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None

    @property
    def log_joint(self) -> np.ndarray:
        """log p(x, z) = log p(x|z) + log p(z), `[G, B]`."""
        return self.log_lik + self.log_prior[:, None]


def _joint(model, grid: Grid, x):
    """(log p(x|z_g) `[G, B]`, log p(z_g) `[G]`) in float64 nats."""
    log_prior = np.asarray(model.prior.log_prob(grid.z.astype(np.float32)), np.float64)
    return log_likelihood_grid(model, grid, x), log_prior


def _integrals(log_joint, log_q, log_dv):
    """(log p(x), ELBO, KL(q || p(z|x))) `[B]` from log p(x, z) and log q(z|x) (or None) `[G, B]`
    on cells of log volume `log_dv`, q renormalised on the grid."""
    log_px = logsumexp(log_joint, axis=0) + log_dv
    if log_q is None:
        return log_px, None, None
    log_q = log_q - (logsumexp(log_q, axis=0) + log_dv)
    weight = np.exp(log_q + log_dv)  # [G, B], sums to 1 over g
    elbo = np.where(weight > 0, weight * (log_joint - log_q), 0.0).sum(0)
    kl = np.where(weight > 0, weight * (log_q - (log_joint - log_px)), 0.0).sum(0)
    return log_px, elbo, kl


def posterior(model, x, points: int | None = None, refine: bool = True) -> Posterior:
    """p(x|z)p(z), p(x), p(z|x), q(z|x), ELBO and KL(q || p(z|x)) on a grid (`latent_grid`; with
    `refine`, then a grid of as many points over where the posterior and q are) for images x uint8
    `[B, H, W, C]`; see the module docstring. `quad_error` is the largest change of log p(x), ELBO or
    KL when every other grid point is dropped. Raises ValueError for a model without a decoder or
    with a latent of more than 2 dimensions (`latent_dim`)."""
    mu = sigma = log_q = None
    if model.offers("encode"):
        mu, sigma = (np.asarray(t, np.float64) for t in model.encode(x))  # [B, d]
    grid = latent_grid(model, x, points)
    log_lik, log_prior = _joint(model, grid, x)
    fine = _refined(grid, log_lik + log_prior[:, None], mu, sigma) if refine else None
    if fine is not None:
        grid = fine
        log_lik, log_prior = _joint(model, grid, x)
    d = len(grid.axes)
    log_joint = log_lik + log_prior[:, None]
    if mu is not None:
        log_q = log_normal(grid.z, mu, sigma)
    log_px, elbo, kl = _integrals(log_joint, log_q, grid.log_dv)
    shape = (len(grid.axes[0]),) * d
    every_other = np.zeros(shape, bool)
    every_other[(slice(None, None, 2),) * d] = True
    every_other = every_other.reshape(-1)
    coarse = _integrals(log_joint[every_other], None if log_q is None else log_q[every_other],
                        grid.log_dv + d * math.log(2))
    quad_error = np.max([np.abs(a - b) for a, b in zip(coarse, (log_px, elbo, kl)) if a is not None], 0)
    edges = np.zeros(shape, bool)
    for axis in range(d):
        edges[(slice(None),) * axis + (0,)] = edges[(slice(None),) * axis + (-1,)] = True
    log_post = log_joint - log_px
    edge = np.exp(logsumexp(log_post[edges.reshape(-1)], axis=0) + grid.log_dv)
    if log_q is not None:
        log_q = log_q - (logsumexp(log_q, axis=0) + grid.log_dv)
    return Posterior(grid=grid, log_lik=log_lik, log_prior=log_prior, log_px=log_px, log_post=log_post,
                     quad_error=quad_error, edge_mass=edge, log_q=log_q, elbo=elbo, kl=kl, mu=mu, sigma=sigma)


def curves(post: Posterior, b: int = 0) -> pd.DataFrame:
    """One image's densities on the grid, for a chart: columns z (1-D) or z1, z2 (2-D), then
    "p(x|z)p(z)", "p(z|x)", "q(z|x)" (without an encoder: no q column) and "p(z)"."""
    z = post.grid.z
    cols = {"z": z[:, 0]} if z.shape[1] == 1 else {"z1": z[:, 0], "z2": z[:, 1]}
    cols["p(x|z)p(z)"] = np.exp(post.log_joint[:, b])
    cols["p(z|x)"] = np.exp(post.log_post[:, b])
    if post.log_q is not None:
        cols["q(z|x)"] = np.exp(post.log_q[:, b])
    cols["p(z)"] = np.exp(post.log_prior)
    return pd.DataFrame(cols)
