"""The likelihood contract every family in the zoo obeys.

Inputs are the raw integer images, `uint8 [B, H, W, C]` with values in `[0, levels - 1]`; each
model does its own preprocessing. Every model reports log P(x) of *that discrete data* in nats per
example, together with the kind of number it is (`zoo.vocabulary.KINDS`):

    exact  the true log-likelihood (PixelCNN, ...)
    elbo   a variational lower bound E_q[log p(x, z) - log q(z | x)]
    iwae   the k-sample importance-weighted bound L_k (Burda et al. 2016, eq. 8)
    vlb    the diffusion variational lower bound
    ais    an annealed-importance-sampling estimate
    mc     naive Monte Carlo from the prior, log (1/k) sum_i p(x|z_i) (a metric, `prior_mc_nll`)
    none   no likelihood (a plain GAN); shown as "n/a", never as 0

Template methods (TFP style): the public methods live here only (`nll_terms`, `log_prob`,
`bits_per_dim`, `log_prob_is`, `sample`, `inpaint`, `train_step`, `test_step`); they validate and
convert, then call the family's hooks:

    _nll_terms(x, seed, training, labels) -> {name: [B]}   required (unless likelihood "none")
    _sample(n, seed, **options) -> [n, H, W, C] levels      required; its keywords are `sample`'s options
    _log_weights(x, n, seed) -> [n, B]                      with has_importance_sampling
    _inpaint(x, mask, seed, **options)                       with can_inpaint
    _training_loss(x, labels) -> (loss, terms)               optional (default: the mean of -bound)
    _log_px_z(z, x) -> [n, B]                               with has_decoder (p(x|z), z ~ `prior`)
    _sampling_cost(**options) -> network calls per sample   optional (default: 1)
    _encode(x) -> the code of x                              with has_encoder (VAE: (mu, sigma); flow: z)
    _classify(x) -> [B, num_classes] class probabilities    with can_classify (M2's q(y|x))
    _fit_callbacks() -> [keras.callbacks.Callback]          optional: added to every `fit` (EM's M-step)

What a family can do beyond the contract is declared by the capabilities below, never guessed.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Iterator
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from zoo.distribute import ReplicaSeedGenerator, num_replicas, replica_scaled, step_logs
from zoo.registry import make_config, unknown_key_error
from zoo.vocabulary import LIKELIHOOD_KINDS  # noqa: F401  (re-exported: the contract's kinds)


def bits_per_dim(log_prob_nats, num_dims: int):
    """bits/dim = -log P(x) / (D ln 2): the one conversion from nats per example in the zoo.

    Works on tensors, numpy arrays and floats alike; D counts every sub-pixel (H * W * C).
    """
    return -log_prob_nats / (num_dims * math.log(2.0))


@dataclasses.dataclass
class ModelConfig:
    """Hyper-parameters every family shares (each family's `Config` extends this)."""

    learning_rate: float = 1e-3
    # XLA-compile the train step: True, False, or "auto" = the family's measured choice for this
    # device (`GenerativeModel.use_xla`)
    jit_compile: Literal["auto", True, False] = "auto"
    seed: int | None = None  # seed of the model's own sampling noise (SeedGenerator)


class GenerativeModel(keras.Model):
    """Base class: a `keras.Model` trained by `fit` on uint8 batches, with the contract above.

    Subclasses set `likelihood`, `term_names`, a `Config` dataclass and the capabilities they have,
    and implement the hooks listed in the module docstring.
    """

    likelihood = "none"
    term_names: tuple[str, ...] = ()
    Config = ModelConfig
    registry_name = "base"
    # --- capabilities (families override; callers read these, never probe the class) --------------
    has_importance_sampling = False  # `log_prob_is` (latent models, dequantised flows)
    population_is = False  # IS over all 2^16 bars images is cheap enough for evaluation
    sample_methods: tuple[str, ...] = ()  # named samplers of `sample(method=...)`, slowest first
    can_inpaint = False  # `inpaint(x, mask)`
    has_decoder = False  # a latent z ~ `prior` and a decoder likelihood: `log_px_given_z(z, x)`
    num_classes = 0  # > 0: class-conditional; `fit` then takes (images, labels) batches
    has_encoder = False  # `encode(x)`: an image's code (M1 classifies on it, the explorer maps it)
    can_classify = False  # `classify(x)`: p(y|x) over num_classes labels (a semi-supervised model)
    is_budget = 40_000  # (samples x examples) per importance-sampling chunk; bounds memory

    def __init__(self, data_shape, levels, name=None, **hparams):
        super().__init__(name=name or self.registry_name)
        self.data_shape = tuple(int(s) for s in data_shape)  # (H, W, C)
        self.levels = int(levels)
        self.hp = make_config(self.Config, f"{self.registry_name} hyper-parameter", **hparams)
        self.check_hparams(self.hp, self.data_shape)
        self.num_dims = int(np.prod(self.data_shape))
        self.seed_generator = ReplicaSeedGenerator(self.hp.seed)  # training noise (distinct per replica)
        self.replay_generator = keras.random.SeedGenerator(0)  # reset by an explicit `seed=`
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.term_names}  # `loss` is their sum
        self._lw_fn = None

    @classmethod
    def check_hparams(cls, hp, data_shape) -> None:
        """ValueError for hyper-parameter values this family cannot build for images of `data_shape`
        (H, W, C), from the family's `_check_hparams` hook. Needs no instance, so a config is checked
        before anything trains."""
        cls._check_hparams(hp, tuple(data_shape))

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        """Hook: raise ValueError naming the hyper-parameter and the fix (default: nothing to check)."""

    @classmethod
    def check_data(cls, hp, dataset) -> None:
        """ValueError for hyper-parameters this family cannot train with on `dataset` (a
        `zoo.data.Dataset`: its labels, classes, split sizes), from the `_check_data` hook; e.g. M2's
        `num_classes` and `labelled`. Needs no instance: the CLI checks a config before training."""
        cls._check_data(hp, dataset)

    @classmethod
    def _check_data(cls, hp, dataset) -> None:
        """Hook: raise ValueError naming the hyper-parameter and the fix (default: nothing to check)."""

    # the contract's optional methods and the capability that says a family has them
    CAPABILITY_OF = {"encode": "has_encoder", "log_px_given_z": "has_decoder", "classify": "can_classify",
                     "inpaint": "can_inpaint", "log_prob_is": "has_importance_sampling"}

    def offers(self, method: str) -> bool:
        """Whether `model.<method>(...)` works for this model: the capability of a contract method
        (`CAPABILITY_OF`), else whether the family defines it (e.g. `decode`, `prior`)."""
        flag = self.CAPABILITY_OF.get(method)
        return bool(getattr(self, flag)) if flag else hasattr(self, method)

    @property
    def needs_labels(self) -> bool:
        """True for a class-conditional model (`num_classes > 0`)."""
        return self.num_classes > 0

    # --- configuration / saving --------------------------------------------------------------
    def get_config(self):
        return {"data_shape": list(self.data_shape), "levels": self.levels, "name": self.name,
                **dataclasses.asdict(self.hp)}

    # The training noise stream is part of the training state: Keras saves no SeedGenerator state, so
    # a loaded or restored model would replay its noise from the start (the GAN's next epoch differed).
    SEED_KEY = "seed_generator_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self.SEED_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state)

    def load_own_variables(self, store):
        keys = list(store.keys())
        if self.SEED_KEY in keys:  # files saved before the state was kept have none: the stream restarts
            self.seed_generator.state.assign(store[self.SEED_KEY][...])
            store = {k: store[k] for k in keys if k != self.SEED_KEY}
        super().load_own_variables(store)

    def compile_default(self, lr_schedule=None, **kwargs):
        """Compile with Adam at the configured `learning_rate`; `lr_schedule(initial_lr)`, if given,
        returns the Keras schedule to use instead (the runner passes cosine decay this way)."""
        lr = self.learning_rate(self.hp.learning_rate, lr_schedule)
        kwargs.setdefault("optimizer", keras.optimizers.Adam(lr))
        kwargs.setdefault("jit_compile", self.use_xla)
        self.compile(**kwargs)
        return self

    @property
    def use_xla(self) -> bool:
        """Whether this model's compiled steps use XLA: `jit_compile` when True/False; with "auto",
        on a GPU always (as Keras's own "auto"), on CPU the family's `xla_on_cpu` (measured by
        `python -m experiments peers --jit all`, XLA on/off paired in the same rounds) on one replica."""
        if self.hp.jit_compile != "auto":
            return bool(self.hp.jit_compile)
        if tf.config.list_logical_devices("GPU"):
            return True
        return self.xla_on_cpu() and num_replicas() == 1  # XLA cannot span logical CPU replicas

    @property
    def xla_for_loops(self) -> bool:
        """XLA for sampling loops of many small ops (AIS's HMC chains): on unless `jit_compile` is
        False (the GAN's AIS on 100 digits: 46 s without, 31 s with, on 2 busy CPU cores)."""
        return self.hp.jit_compile is not False

    def xla_on_cpu(self) -> bool:
        """Hook: does XLA pay off for this network on a CPU? (default: no, as Keras decides)."""
        return False

    @staticmethod
    def learning_rate(initial: float, lr_schedule=None):
        """`initial`, or the schedule `lr_schedule(initial)` starting from it."""
        return initial if lr_schedule is None else lr_schedule(initial)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Keras's pre-build under tf.distribute all-reduces a data batch (a collective that refuses
        uint8 across workers) to trace the model; every zoo model makes its weights in `__init__`,
        so only the optimizer is left to build, in the strategy's scope (as Keras would)."""
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
        self._post_build()

    # --- input handling ------------------------------------------------------------------------
    def check_input(self, x):
        """Validate raw images: uint8 [B, H, W, C] in [0, levels-1]. Returns a uint8 tensor.

        Raises TypeError (not uint8) or ValueError (shape, or a value >= levels)."""
        dtype = getattr(x, "dtype", None)
        if dtype is not None and tf.as_dtype(dtype) != tf.uint8:
            raise TypeError(f"{self.name}: expected uint8 images with values in [0, {self.levels - 1}], "
                            f"got dtype {tf.as_dtype(dtype).name}; pass the raw integer data "
                            f"(e.g. dataset.test), models do their own preprocessing")
        x = tf.convert_to_tensor(x, dtype=tf.uint8)
        if x.shape.rank != 4 or tuple(x.shape[1:]) != self.data_shape:
            shape = ", ".join(map(str, self.data_shape))
            raise ValueError(f"{self.name}: expected images of shape [B, {shape}] (batch, height, width, "
                             f"channels), got {list(x.shape)}; "
                             f"add a channel axis with x[..., None] if it is missing")
        if not tf.executing_eagerly():  # inside a tf.function: the same check as an op (XLA drops it;
            return self._assert_levels(x)  # the Keras entry points below check the data first)
        if x.shape[0] and int(tf.reduce_max(x)) >= self.levels:
            raise ValueError(f"{self.name}: pixel value {int(tf.reduce_max(x))} "
                             f"is outside [0, {self.levels - 1}] for a model built for {self.levels} levels")
        return x

    def _assert_levels(self, x):
        """`x` after an in-graph check that every value is < levels (InvalidArgumentError if not)."""
        big = tf.reduce_max(tf.concat([tf.reshape(x, [-1]), tf.zeros([1], x.dtype)], 0))  # 0 when empty
        check = tf.debugging.assert_less(
            tf.cast(big, tf.int32), self.levels,
            message=f"{self.name}: a pixel value is outside [0, {self.levels - 1}] for a model built "
                    f"for {self.levels} levels (the largest value in the batch is shown)", summarize=1)
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def _checked(self, data):
        """Training / evaluation data for a Keras entry point, checked before any step runs (XLA
        drops in-graph asserts): images (and labels) as arrays or tensors now; a tf.data.Dataset with
        the check mapped over its batches; anything else (generators, PyDataset) in each step."""
        if data is None:
            return None
        if isinstance(data, tf.data.Dataset):
            spec = data.element_spec
            spec = spec[0] if isinstance(spec, (tuple, list)) else spec
            self.check_input(tf.zeros([0, *self.data_shape], getattr(spec, "dtype", tf.uint8)))  # dtype now
            return data.map(lambda *b: self._check_batch(b[0] if len(b) == 1 else b))
        if isinstance(data, (np.ndarray, tf.Tensor)) or hasattr(data, "__array__"):
            return self.check_input(data)
        if isinstance(data, (tuple, list)) and data and isinstance(data[0], (np.ndarray, tf.Tensor)):
            return (self.check_input(data[0]), *data[1:])
        if isinstance(data, keras.utils.PyDataset):
            return _CheckedPyDataset(data, self._check_batch)
        if isinstance(data, Iterator):  # a generator: each batch as Keras draws it
            return (self._check_batch(batch) for batch in data)
        return data

    def _check_batch(self, batch):
        x, rest = (batch[0], tuple(batch[1:])) if isinstance(batch, (tuple, list)) else (batch, ())
        x = self.check_input(x)
        return (x, *rest) if rest else x

    def _entry(method):  # noqa: N805 - a decorator used in the class body below
        """A Keras entry point whose `x` (and fit's `validation_data`) pass `_checked` first."""
        signature = inspect.signature(getattr(keras.Model, method))

        def wrapped(self, *args, **kwargs):
            bound = signature.bind(self, *args, **kwargs)
            for name in ("x", "validation_data"):
                if name in bound.arguments:
                    bound.arguments[name] = self._checked(bound.arguments[name])
            if method == "fit" and self._fit_callbacks():  # the family's own (e.g. EM's M-step)
                bound.arguments["callbacks"] = [*(bound.arguments.get("callbacks") or []),
                                                *self._fit_callbacks()]
            return getattr(keras.Model, method)(*bound.args, **bound.kwargs)

        wrapped.__name__ = method
        wrapped.__doc__ = f"`keras.Model.{method}` on uint8 images checked as `check_input` does."
        return wrapped

    fit, evaluate, predict = _entry("fit"), _entry("evaluate"), _entry("predict")
    train_on_batch, test_on_batch = _entry("train_on_batch"), _entry("test_on_batch")
    predict_on_batch = _entry("predict_on_batch")
    del _entry

    def check_labels(self, labels, n):
        """Class labels as int32 `[n]` (an int broadcasts), or None when `labels` is None.

        Raises ValueError for labels given to an unconditional model, or outside [0, num_classes-1]."""
        if labels is None:
            return None
        if not self.needs_labels:
            raise ValueError(f"{self.name} is unconditional (num_classes=0); it takes no labels")
        labels = tf.broadcast_to(tf.cast(labels, tf.int32), [n])
        if tf.executing_eagerly() and not bool(tf.reduce_all((labels >= 0) & (labels < self.num_classes))):
            raise ValueError(f"{self.name}: labels must be in [0, {self.num_classes - 1}]")
        return labels

    @classmethod
    def check_options(cls, what: str, options: dict) -> None:
        """Options of `sample` / `inpaint` (`what`): reject keywords the family's hook does not take,
        by name, and a `method` not in `sample_methods` (ValueError with a did-you-mean). Needs no
        instance, so a config is checked before anything trains."""
        hook = getattr(cls, f"_{what}")
        valid = [p for p in inspect.signature(hook).parameters if p not in ("self", "x", "n", "mask", "seed")]
        for key in options:
            if key not in valid:
                raise unknown_key_error(f"{what} option", key, valid, where=f" for {cls.registry_name}")
        if options.get("method") is not None and options["method"] not in cls.sample_methods:
            raise unknown_key_error("sampling method", options["method"], cls.sample_methods,
                                    where=f" for {cls.registry_name}")

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
    def nll_terms(self, x, seed=None, training=False, draws: int = 1, labels=None) -> dict:
        """Per-example terms in nats, each `[B]`, unreduced; their sum is `-log_prob(x)`.

        `draws` > 1 averages that many independent estimates (a one-draw ELBO or VLB of a single
        image is noisy); `labels` (int or `[B]`) gives log p(x | y) for a class-conditional model.
        Raises TypeError / ValueError for bad images or labels (see `check_input`)."""
        x = self.check_input(x)
        labels = self.check_labels(labels, tf.shape(x)[0])
        gen, draws = self._seed(seed), 1 if self.likelihood == "exact" else int(draws)
        if draws < 1:
            raise ValueError(f"{self.name}: draws must be >= 1, got {draws}")
        if x.shape[0] == 0:  # an empty batch: empty terms (convolutions refuse a batch of 0)
            return {name: tf.zeros([0]) for name in self.term_names}
        total = self._nll_terms(x, seed=gen, training=training, labels=labels)
        for _ in range(draws - 1):
            more = self._nll_terms(x, seed=gen, training=training, labels=labels)
            total = {name: value + more[name] for name, value in total.items()}
        return total if draws == 1 else {name: value / draws for name, value in total.items()}

    def log_prob(self, x, seed=None, draws: int = 1, labels=None):
        """log P(x) of the discrete images in nats, `[B]`: exact or the bound named by `likelihood`
        (averaged over `draws` estimates; log P(x | labels) for a conditional model given labels)."""
        return -tf.add_n(list(self.nll_terms(x, seed=seed, draws=draws, labels=labels).values()))

    def bits_per_dim(self, x, seed=None, draws: int = 1, labels=None):
        """`log_prob` in bits per sub-pixel (`zoo.contract.bits_per_dim`), `[B]`."""
        return bits_per_dim(self.log_prob(x, seed=seed, draws=draws, labels=labels), self.num_dims)

    def sample(self, n: int, seed=None, **options):
        """`n` samples as uint8 `[n, H, W, C]` in the data space.

        `options` go to the family's sampler: `method` (one of `sample_methods`), `steps`, `labels`
        (a conditional model; drawn uniformly when omitted), ... Raises ValueError naming an option
        or method the family does not have."""
        self.check_options("sample", options)
        if int(n) == 0:
            return tf.zeros([0, *self.data_shape], tf.uint8)
        if options.get("labels") is not None:
            options["labels"] = self.check_labels(options["labels"], int(n))
        out = self._sample(int(n), seed=self._seed(seed), **options)
        return tf.cast(tf.clip_by_value(out, 0, self.levels - 1), tf.uint8)

    def inpaint(self, x, mask, seed=None, **options):
        """Fill the sub-pixels where `mask` is False given the others: uint8 like `x`, the known ones
        back exactly. `mask` broadcasts to `x` (`[B, H, W, C]`, `[H, W, C]`, ...); `options` go to the
        family's inpainting sampler. Raises NotImplementedError without `can_inpaint`."""
        if not self.can_inpaint:
            raise NotImplementedError(f"{self.name} cannot inpaint (can_inpaint is False); "
                                      f"the diffusion family can")
        x = self.check_input(x)
        self.check_options("inpaint", options)
        mask = tf.cast(tf.broadcast_to(tf.cast(mask, tf.bool), tf.shape(x)), tf.float32)  # [B, H, W, C]
        out = self._inpaint(x, mask, seed=self._seed(seed), **options)
        return tf.cast(tf.clip_by_value(out, 0, self.levels - 1), tf.uint8)

    def call(self, x, training=False):
        return self.log_prob(x)

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

    # --- hooks ---------------------------------------------------------------------------------
    def _nll_terms(self, x, seed, training, labels=None):
        raise NotImplementedError

    def _sample(self, n, seed):
        raise NotImplementedError

    def _inpaint(self, x, mask, seed):
        raise NotImplementedError

    def _log_weights(self, x, n, seed):
        """log p(x, z_i) - log q(z_i | x) for i = 1..n, `[n, B]`."""
        raise NotImplementedError

    def log_px_given_z(self, z, x):
        """log p(x | z) in nats, `[n, B]`, for latent draws z `[n, B, d]` and images x uint8
        `[B, H, W, C]`: the decoder's likelihood of a latent-variable family (the GAN's: its AIS
        observation model), with z drawn from `self.prior` = p(z). Raises NotImplementedError
        without `has_decoder`, TypeError / ValueError for bad images."""
        if not self.has_decoder:
            raise NotImplementedError(f"{self.name} has no latent decoder p(x|z) (has_decoder is False)")
        return self._log_px_z(tf.convert_to_tensor(z, tf.float32), self.check_input(x))

    def sampling_cost(self, **options) -> int:
        """Network calls per sample of `sample(n, **options)` (one batched call counts once): 1 for a
        VAE, flow or GAN, one per sub-pixel for a PixelCNN, one per step for diffusion: the sequential
        depth of sampling. `options` as `sample`'s (ValueError for one the family does not take)."""
        self.check_options("sample", options)
        return int(self._sampling_cost(**options))

    def _sampling_cost(self, **options) -> int:
        return 1

    def encode(self, x):
        """The code of uint8 images `[B, H, W, C]`: VAE / IWAE / M2 the posterior's (mu, sigma), each
        `[B, latent_dim]`; a flow z = f(x) `[B, D]`; a mixture the responsibilities p(c|x) `[B, K]`. The
        first element (or the array) is what M1 classifies on (Kingma et al. 2014). Raises
        NotImplementedError without `has_encoder`, TypeError / ValueError for bad images."""
        if not self.has_encoder:
            raise NotImplementedError(f"{self.name} has no encoder (has_encoder is False)")
        return self._encode(self.check_input(x))

    def _encode(self, x):
        raise NotImplementedError

    def classify(self, x):
        """Class probabilities p(y | x), float32 `[B, num_classes]` (rows sum to 1), for uint8 images
        `[B, H, W, C]`: a semi-supervised model's own classifier (M2's q(y|x), Kingma et al. 2014
        eq. 9). Raises NotImplementedError without `can_classify`, TypeError / ValueError for bad
        images."""
        if not self.can_classify:
            raise NotImplementedError(f"{self.name} has no classifier (can_classify is False); the m2 "
                                      f"family has one")
        return self._classify(self.check_input(x))

    def _classify(self, x):
        raise NotImplementedError

    def _fit_callbacks(self) -> list:
        """Hook: Keras callbacks `fit` always adds for this family (default: none)."""
        return []

    # --- importance sampling (latent models and dequantised flows) -----------------------------
    def log_prob_is(self, x, k: int, seed=None, chunk: int | None = None):
        """log (1/k) sum_i p(x, z_i) / q(z_i | x), `[B]` nats, drawing the k samples in chunks.

        A stochastic lower bound on log P(x) that tightens as k grows (Burda et al. 2016, thm. 1).
        Raises NotImplementedError for a family without `has_importance_sampling`."""
        if not self.has_importance_sampling:
            raise NotImplementedError(f"{self.name} has no importance-sampling estimate")
        x = self.check_input(x)
        if x.shape[0] == 0:
            return tf.zeros([0])
        if self._lw_fn is None:
            self._lw_fn = tf.function(self._log_weights, reduce_retracing=True)
        chunk = chunk or max(1, min(k, self.is_budget // max(1, int(x.shape[0]))))
        gen, parts = self._seed(seed), []
        for start in range(0, k, chunk):
            n = tf.constant(min(chunk, k - start))  # a tensor: one trace for every k (IS vs k curves)
            parts.append(tf.reduce_logsumexp(self._lw_fn(x, n, gen), axis=0))  # [B]
        return tf.reduce_logsumexp(tf.stack(parts), axis=0) - math.log(k)

    # --- training (keras-io style): one step for every family but the GAN -----------------------
    @property
    def metrics(self):
        return list(self.trackers.values())

    @staticmethod
    def mean_nll(terms):
        """The training loss: mean over the batch of the summed terms, nats per example."""
        return tf.reduce_mean(tf.add_n(list(terms.values())))

    def _training_loss(self, x, labels):
        """Hook: (scalar loss to minimise, the per-example terms the trackers show). Default: the
        mean negative bound of one draw (diffusion overrides it for Ho et al.'s simple loss)."""
        terms = self._nll_terms(x, seed=self.seed_generator, training=True, labels=labels)
        return self.mean_nll(terms), terms

    def _unpack(self, data):
        """A `fit` batch -> (uint8 images, int32 labels or None); labels only for conditional models.
        The images pass `check_input`: a wrong dtype fails the first step's trace (TypeError), a value
        >= levels the step (unless XLA dropped the assert: the entry points check first)."""
        if not isinstance(data, (tuple, list)):
            return self.check_input(data), None
        labels = data[1] if self.needs_labels and len(data) > 1 else None
        return self.check_input(data[0]), None if labels is None else tf.cast(labels, tf.int32)

    def _track(self, terms):
        """Update each term's tracker with its batch mean; returns the logs `fit` prints: the terms'
        running means and `loss`, their sum (the running mean of the negative bound, no tracker of
        its own: one fewer per step)."""
        for name, value in terms.items():
            self.trackers[name].update_state(tf.reduce_mean(value))
        logs = {name: t.result() for name, t in self.trackers.items()}
        return step_logs({"loss": tf.add_n(list(logs.values())), **logs})

    def train_step(self, data):
        """One step on a replica's share of the global batch: its mean loss scaled by 1/replicas
        (`zoo.distribute.replica_scaled`) and by the optimizer's loss scale (mixed float16)."""
        x, labels = self._unpack(data)
        with tf.GradientTape() as tape:
            loss, terms = self._training_loss(x, labels)
            scaled = self.optimizer.scale_loss(replica_scaled(loss))
        self.optimizer.apply(tape.gradient(scaled, self.trainable_weights), self.trainable_weights)
        return self._track(terms)

    def test_step(self, data):
        x, labels = self._unpack(data)
        return self._track(self._nll_terms(x, seed=self.seed_generator, training=False, labels=labels))


class _CheckedPyDataset(keras.utils.PyDataset):
    """A `keras.utils.PyDataset` whose batches pass `check` as they are drawn."""

    def __init__(self, inner, check):
        super().__init__(workers=inner.workers, use_multiprocessing=inner.use_multiprocessing,
                         max_queue_size=inner.max_queue_size)
        self.inner, self.check = inner, check

    def __len__(self):
        return len(self.inner)

    @property
    def num_batches(self):
        return self.inner.num_batches

    def __getitem__(self, index):
        return self.check(self.inner[index])

    def on_epoch_end(self):
        self.inner.on_epoch_end()
