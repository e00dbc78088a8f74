"""The likelihood contract every family in the zoo obeys.

Inputs are the raw integer images, `uint8 [B, H, W, C]` with values in `[0, levels - 1]`; each
model does its own preprocessing. Every model reports log P(x) of *that discrete data* in nats per
example, together with the kind of number it is:

    exact  the true log-likelihood (PixelCNN, ...)
    elbo   a variational lower bound E_q[log p(x, z) - log q(z | x)]
    iwae   the k-sample importance-weighted bound L_k (Burda et al. 2016, eq. 8)
    vlb    the diffusion variational lower bound
    ais    an annealed-importance-sampling estimate
    none   no likelihood (a plain GAN); shown as "n/a", never as 0

Template methods (TFP style): public `nll_terms` / `log_prob` / `sample` validate and convert,
subclasses implement `_nll_terms` / `_sample` (and `_log_weights` for importance sampling).
"""
from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo.registry import make_config

LIKELIHOOD_KINDS = ("exact", "elbo", "iwae", "vlb", "ais", "none")


def bits_per_dim(log_prob_nats, num_dims: int):
    """bits/dim = -log P(x) / (D ln 2): the one conversion from nats per example in the zoo.

    Works on tensors, numpy arrays and floats alike; D counts every sub-pixel (H * W * C).
    """
    return -log_prob_nats / (num_dims * math.log(2.0))


@dataclasses.dataclass
class ModelConfig:
    """Hyper-parameters every family shares (each family's `Config` extends this)."""

    learning_rate: float = 1e-3
    jit_compile: bool = True  # XLA-compile the train step
    seed: int | None = None  # seed of the model's own sampling noise (SeedGenerator)


class GenerativeModel(keras.Model):
    """Base class: a `keras.Model` trained by `fit` on uint8 batches, with the contract above.

    Subclasses set `likelihood`, `term_names`, a `Config` dataclass and implement
    `_nll_terms(x, seed, training) -> dict[name, Tensor[B]]` and `_sample(n, seed) -> Tensor`.
    """

    likelihood = "none"
    term_names: tuple[str, ...] = ()
    Config = ModelConfig
    registry_name = "base"
    is_budget = 40_000  # (samples x examples) per importance-sampling chunk; bounds memory

    def __init__(self, data_shape, levels, name=None, **hparams):
        super().__init__(name=name or self.registry_name)
        self.data_shape = tuple(int(s) for s in data_shape)  # (H, W, C)
        self.levels = int(levels)
        self.hp = make_config(self.Config, f"{self.registry_name} hyper-parameter", **hparams)
        self.num_dims = int(np.prod(self.data_shape))
        self.seed_generator = keras.random.SeedGenerator(self.hp.seed)  # training noise
        self.replay_generator = keras.random.SeedGenerator(0)  # reset by an explicit `seed=`
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("loss",) + tuple(self.term_names)}
        self._lw_fn = None

    # --- configuration / saving --------------------------------------------------------------
    def get_config(self):
        return {"data_shape": list(self.data_shape), "levels": self.levels, "name": self.name,
                **dataclasses.asdict(self.hp)}

    def compile_default(self, **kwargs):
        """Compile with Adam at the configured learning rate (the runner may pass a schedule)."""
        kwargs.setdefault("optimizer", keras.optimizers.Adam(self.hp.learning_rate))
        kwargs.setdefault("jit_compile", self.hp.jit_compile)
        self.compile(**kwargs)
        return self

    # --- input handling ------------------------------------------------------------------------
    def check_input(self, x):
        """Validate raw images: uint8 [B, H, W, C] in [0, levels-1]. Returns a uint8 tensor."""
        dtype = getattr(x, "dtype", None)
        if dtype is not None and tf.as_dtype(dtype) != tf.uint8:
            raise TypeError(f"{self.name}: expected uint8 images with values in [0, {self.levels - 1}], "
                            f"got dtype {tf.as_dtype(dtype).name}; pass the raw integer data "
                            f"(e.g. dataset.test), models do their own preprocessing")
        x = tf.convert_to_tensor(x, dtype=tf.uint8)
        if x.shape.rank != 4 or tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"{self.name}: expected images of shape [B, {', '.join(map(str, self.data_shape))}]"
                             f" (batch, height, width, channels), got {list(x.shape)}; add a channel axis "
                             f"with x[..., None] if it is missing")
        if tf.executing_eagerly() and x.shape[0] and int(tf.reduce_max(x)) >= self.levels:
            raise ValueError(f"{self.name}: pixel value {int(tf.reduce_max(x))} is outside [0, {self.levels - 1}]"
                             f" for a model built for {self.levels} levels")
        return x

    def _seed(self, seed):
        """The noise source of a call: the model's own stream, or, for an explicit integer seed, a
        generator reset to it, so equal seeds replay equal noise (also inside compiled functions)."""
        if seed is None:
            return self.seed_generator
        if isinstance(seed, keras.random.SeedGenerator):
            return seed
        self.replay_generator.state.assign(tf.constant([int(seed), 0], self.replay_generator.state.dtype))
        return self.replay_generator

    # --- the contract --------------------------------------------------------------------------
    def nll_terms(self, x, seed=None, training=False) -> dict:
        """Per-example terms in nats, each `[B]`, unreduced; their sum is `-log_prob(x)`."""
        return self._nll_terms(self.check_input(x), seed=self._seed(seed), training=training)

    def log_prob(self, x, seed=None):
        """log P(x) of the discrete images in nats, `[B]`: exact or the bound named by `likelihood`."""
        return -tf.add_n(list(self.nll_terms(x, seed=seed).values()))

    def bits_per_dim(self, x, seed=None):
        return bits_per_dim(self.log_prob(x, seed=seed), self.num_dims)

    def sample(self, n: int, seed=None):
        """`n` samples as uint8 `[n, H, W, C]` in the data space."""
        out = self._sample(int(n), seed=self._seed(seed))
        return tf.cast(tf.clip_by_value(out, 0, self.levels - 1), tf.uint8)

    def call(self, x, training=False):
        return self.log_prob(x)

    def _nll_terms(self, x, seed, training):
        raise NotImplementedError

    def reports(self, x, seed=0) -> dict:
        """Tables behind the dashboard's "bound anatomy" for test images `x`: {name: pandas
        DataFrame} (e.g. PixelCNN's per-pixel NLL map, diffusion's loss per timestep). The runner
        saves each as `<name>.csv` (artifact `report_<name>`); the base model has none."""
        return {}

    def calibrate(self, x_valid, seed=0) -> list:
        """Fit evaluation-time settings on validation images after training (e.g. the GAN's AIS
        observation noise, Wu et al. sec. 5); returns (name, value, kind) metric rows. The runner
        calls it before saving and evaluating; the base model has nothing to calibrate."""
        return []

    def _sample(self, n, seed):
        raise NotImplementedError

    # --- importance sampling (latent models and dequantised flows) -----------------------------
    def _log_weights(self, x, n, seed):
        """log p(x, z_i) - log q(z_i | x) for i = 1..n, `[n, B]`."""
        raise NotImplementedError(f"{self.name} has no importance-sampling estimate")

    def log_prob_is(self, x, k: int, seed=None, chunk: int | None = None):
        """log (1/k) sum_i p(x, z_i) / q(z_i | x), `[B]` nats, drawing the k samples in chunks.

        A stochastic lower bound on log P(x) that tightens as k grows (Burda et al. 2016, thm. 1).
        """
        x = self.check_input(x)
        if self._lw_fn is None:
            self._lw_fn = tf.function(self._log_weights, reduce_retracing=True)
        chunk = chunk or max(1, min(k, self.is_budget // max(1, int(x.shape[0]))))
        gen, parts = self._seed(seed), []
        for start in range(0, k, chunk):
            parts.append(tf.reduce_logsumexp(self._lw_fn(x, min(chunk, k - start), gen), axis=0))  # [B]
        return tf.reduce_logsumexp(tf.stack(parts), axis=0) - math.log(k)

    # --- training (keras-io style) -------------------------------------------------------------
    @property
    def metrics(self):
        return list(self.trackers.values())

    def _update_trackers(self, terms):
        loss = tf.reduce_mean(tf.add_n(list(terms.values())))
        self.trackers["loss"].update_state(loss)
        for name, value in terms.items():
            self.trackers[name].update_state(tf.reduce_mean(value))
        return loss

    def train_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            terms = self._nll_terms(x, seed=self.seed_generator, training=True)
            loss = tf.reduce_mean(tf.add_n(list(terms.values())))  # mean nats per example
        grads = tape.gradient(loss, self.trainable_weights)
        self.optimizer.apply(grads, self.trainable_weights)
        self._update_trackers(terms)
        return {name: t.result() for name, t in self.trackers.items()}

    def test_step(self, data):
        x = data[0] if isinstance(data, (tuple, list)) else data
        self._update_trackers(self._nll_terms(x, seed=self.seed_generator, training=False))
        return {name: t.result() for name, t in self.trackers.items()}
