"""M2, the semi-supervised generative model of Kingma et al. 2014 ("Semi-supervised learning with deep
generative models", sec. 2.2 and 3.1.2; Bruna's lecture, "Extension to semi-supervised learning").

    p(y) = Cat(1/K),  p(z) = N(0, I),  p_θ(x | y, z): a discrete pixel likelihood (`zoo.distributions`)
    q_β(z | x, y) = N(mu(x, y), diag sigma(x, y)^2),  q_β(y | x) = Cat(pi(x)): a classifier network

A label y is observed for some images and hidden (a latent) for the others:

    L(x, y) = E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)] <= log p(x, y)      (eq. 6)
    U(x)    = sum_y q(y|x) L(x, y) + H(q(y|x))                                <= log p(x)         (eq. 7)

`log_prob(x)` is U(x) in nats (likelihood "elbo"); `log_prob(x, labels=y)` is L(x, y) - log p(y), the
bound on log p(x | y). Terms (they sum to -log_prob): distortion = sum_y q(y|x) E_q[-log p(x|y,z)],
rate = sum_y q(y|x) KL(q(z|x,y) || p(z)), label_rate = KL(q(y|x) || p(y)); given labels, the one y
with q(y|x) replaced by 1 (label_rate 0).

Training (eq. 9; the paper's L and U are these bounds negated), minimising
J^α = sum_labelled -L + sum_unlabelled -U + α E_labelled[-log q(y|x)]. A batch holds
labels y >= 0 (observed) and -1 (hidden; `zoo.training.fit` hides all but `labelled` of them, see
there for how the labelled ones are mixed into every batch). The loss is the batch mean of
    -L(x, y) + alpha * (-log q(y|x))   for a labelled example,   -U(x) for an unlabelled one,
a per-example mean, so it splits over tf.distribute replicas exactly. The paper sets α = 0.1 N with J
summed over the N training examples: per example and epoch, 0.1 E_labelled[-log q(y|x)]. With batches
of `batch_size` examples of the whole split plus `labelled_batch` labelled ones, a labelled example is
drawn about labelled_batch N / (batch_size N_l) times an epoch, so the paper's weight is
alpha ~ 0.1 batch_size / labelled_batch (0.2 for 64 + 32), whatever N and N_l. On digits that lets
the unlabelled term pull q(y|x) away from the labels (test error 0.19 after 10 epochs, 0.44 after 30);
the default alpha = 10 keeps it (see `alpha` below). The trackers (and Keras's `loss`) show the
bound's terms only; the α term is in the gradient, not in the numbers.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Literal

import keras
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import nets
from zoo.contract import GenerativeModel, ModelConfig
from zoo.distributions import PixelLaw, gaussian, num_params, pixel_log_prob, pixel_sample, resolve_kind
from zoo.registry import register

tfd = tfp.distributions


@dataclasses.dataclass
class M2Config(ModelConfig):
    num_classes: int = 10  # K: labels 0..K-1; must equal the dataset's classes (`zoo.training.fit`)
    labelled: int = 0  # training examples whose label is kept (zoo.semisupervised.labelled_subset); 0: none
    labelled_batch: int = 32  # labelled examples added to each training batch (oversampled; `fit`)
    # weight of -log q(y|x) per labelled example (eq. 9); the paper's α = 0.1 N is about 0.2 here (module
    # docstring). Digits, N = 100, 64 + 32 a batch, 30 epochs: test error 0.44 at alpha 0.3, 0.30 at 1,
    # 0.15 at 3, 0.14 at 10 (an MLP on the 100 labels alone: 0.14)
    alpha: float = 10.0
    latent_dim: int = 16
    width: int = 256  # units of each dense layer (encoder, decoder and classifier)
    depth: int = 2  # dense layers of each network
    activation: str = "gelu"
    decoder: PixelLaw = "auto"  # the pixel law p(x|y,z): auto = bernoulli (2 levels) else categorical
    kl: Literal["analytic", "mc"] = "analytic"  # rate: the analytic KL or the single-sample log q - log p


@register("m2")
class M2(GenerativeModel):
    """Kingma et al.'s M2: `log_prob` = U(x), `classify` = q(y|x), `encode` = q(z|x, argmax q(y|x))."""

    likelihood = "elbo"
    has_importance_sampling = True  # IS over z with the sum over y done exactly (`_log_weights`)
    can_classify = True
    has_encoder = True
    term_names = ("distortion", "rate", "label_rate")
    Config = M2Config

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        whole = {"num_classes": (hp.num_classes, 1), "labelled": (hp.labelled, 0),
                 "labelled_batch": (hp.labelled_batch, 1), "latent_dim": (hp.latent_dim, 1),
                 "width": (hp.width, 1), "depth": (hp.depth, 0)}
        for key, (value, low) in whole.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"m2: {key} must be a whole number >= {low}, got {value!r}")
        a = hp.alpha
        if not isinstance(a, (int, float)) or isinstance(a, bool) or not math.isfinite(a) or a < 0:
            raise ValueError(f"m2: alpha (the classification weight of eq. 9) must be a finite number >= 0, "
                             f"got {a!r}")

    @classmethod
    def _check_data(cls, hp, dataset) -> None:
        """The dataset has training labels, `num_classes` of them, and >= `labelled` training images."""
        from zoo.training import check_semi_supervised

        check_semi_supervised(hp, dataset)

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        self.num_classes = k = hp.num_classes
        self.is_budget = max(1, GenerativeModel.is_budget // k)  # K decoder passes per importance sample
        self.pixel_kind = resolve_kind(hp.decoder, self.levels)
        p, d, hidden = num_params(self.pixel_kind, self.levels), hp.latent_dim, [hp.width] * hp.depth
        self.classifier = nets.mlp(self.data_shape, (k,), hidden, hp.activation, "classifier")
        self.encoder = nets.mlp((self.num_dims + k,), (2 * d,), hidden, hp.activation, "encoder")
        self.decoder = nets.mlp((d + k,), (*self.data_shape, p), hidden, hp.activation, "decoder")
        self.prior = gaussian(tf.zeros([d]), tf.ones([d]))
        self.log_py = -math.log(k)  # uniform p(y)
        self.built = True

    # --- networks ------------------------------------------------------------------------------
    def preprocess(self, x):
        """uint8 levels -> float in [-1, 1]."""
        return tf.cast(x, tf.float32) * (2.0 / (self.levels - 1)) - 1.0

    def _logits(self, x):
        """Logits of q(y|x), `[B, K]`."""
        return self.classifier(self.preprocess(x))

    def _classify(self, x):
        return tf.nn.softmax(self._logits(x), axis=-1)  # [B, K]

    def _posterior(self, x, y):
        """q(z|x, y) parameters (mu, sigma), each `[M, B, d]`, for images x `[B, H, W, C]` and labels
        y int `[M, B]` (M labels per image)."""
        m, b = tf.shape(y)[0], tf.shape(x)[0]
        flat = tf.reshape(self.preprocess(x), [1, b, self.num_dims])  # [1, B, D]
        inputs = tf.concat([tf.broadcast_to(flat, [m, b, self.num_dims]),
                            tf.one_hot(y, self.num_classes)], -1)  # [M, B, D + K]
        out = self.encoder(tf.reshape(inputs, [-1, self.num_dims + self.num_classes]))  # [M*B, 2d]
        mu, s = tf.split(tf.reshape(out, [m, b, 2 * self.hp.latent_dim]), 2, axis=-1)  # [M, B, d] each
        return mu, tf.nn.softplus(s) + 1e-4

    def _encode(self, x):
        """(mu, sigma) of q(z | x, y*), each `[B, latent_dim]`, with y* = argmax_y q(y|x): the "style"
        features of an image under its most probable label (M1-style features for a classifier)."""
        y = tf.argmax(self._logits(x), axis=-1, output_type=tf.int32)[None]  # [1, B]
        mu, sigma = self._posterior(x, y)
        return mu[0], sigma[0]

    def _log_px_yz(self, z, y, x):
        """log p(x | y, z) `[n, M, B]` for z `[n, M, B, d]`, labels y `[M, B]`, x `[B, H, W, C]`."""
        shape = tf.shape(z)[:3]
        onehot = tf.broadcast_to(tf.one_hot(y, self.num_classes), tf.concat([shape, [self.num_classes]], 0))
        inputs = tf.reshape(tf.concat([z, onehot], -1), [-1, self.hp.latent_dim + self.num_classes])
        params = self.decoder(inputs)  # [n*M*B, H, W, C, P]
        params = tf.reshape(params, tf.concat([shape, tf.shape(params)[1:]], 0))  # [n, M, B, H, W, C, P]
        return pixel_log_prob(self.pixel_kind, params, x, self.levels)

    # --- maths ---------------------------------------------------------------------------------
    def _components(self, x, y, n, seed):
        """n reparameterised draws z ~ q(z|x, y) for each of the M labels y `[M, B]`: log p(x|y,z),
        log p(z), log q(z|x,y), each `[n, M, B]`, and q(z|x,y) (batch `[M, B]`)."""
        mu, sigma = self._posterior(x, y)
        q = gaussian(mu, sigma)
        z = mu + sigma * keras.random.normal(tf.concat([[n], tf.shape(mu)], 0), seed=seed)  # [n, M, B, d]
        return self._log_px_yz(z, y, x), self.prior.log_prob(z), q.log_prob(z), q

    def _label_terms(self, x, y, seed):
        """-E_q log p(x|y,z) and the rate KL(q(z|x,y) || p(z)) of one draw, each `[M, B]`."""
        log_px, log_pz, log_qz, q = self._components(x, y, 1, seed)
        rate = tfd.kl_divergence(q, self.prior) if self.hp.kl == "analytic" else (log_qz - log_pz)[0]
        return -log_px[0], rate

    def _every_label(self, x):
        """Every label for every image: int32 `[K, B]`, row y all y."""
        return tf.broadcast_to(tf.range(self.num_classes)[:, None], [self.num_classes, tf.shape(x)[0]])

    def _unlabelled_terms(self, x, seed):
        """The terms of -U(x), each `[B]`, and the per-label ones `[K, B]` and log q(y|x) `[B, K]`."""
        distortion, rate = self._label_terms(x, self._every_label(x), seed)  # [K, B] each
        log_q = tf.nn.log_softmax(self._logits(x), axis=-1)  # [B, K]
        q = tf.transpose(tf.exp(log_q))  # [K, B]
        terms = {"distortion": tf.reduce_sum(q * distortion, 0), "rate": tf.reduce_sum(q * rate, 0),
                 "label_rate": tf.reduce_sum(tf.exp(log_q) * (log_q - self.log_py), -1)}  # KL(q(y|x) || p(y))
        return terms, distortion, rate, log_q

    def _nll_terms(self, x, seed, training, labels=None):
        if labels is None:
            return self._unlabelled_terms(x, seed)[0]
        distortion, rate = self._label_terms(x, labels[None], seed)  # [1, B] each
        return {"distortion": distortion[0], "rate": rate[0], "label_rate": tf.zeros_like(rate[0])}

    def _training_loss(self, x, labels):
        """(batch mean of -L(x, y) + alpha * -log q(y|x) for labels >= 0 and -U(x) for labels -1 or
        None, the bound's terms per example for the trackers). -1 is never used as a class: its row
        of the per-label terms is never gathered and its classification loss is masked to 0."""
        terms, distortion, rate, log_q = self._unlabelled_terms(x, self.seed_generator)
        if labels is None:
            return self.mean_nll(terms), terms
        seen = labels >= 0  # [B]
        y = tf.where(seen, labels, 0)  # a valid index everywhere; the -1 rows are masked below
        pick = lambda t: tf.gather(tf.transpose(t), y, batch_dims=1)  # noqa: E731  [K, B] -> [B]
        terms = {"distortion": tf.where(seen, pick(distortion), terms["distortion"]),
                 "rate": tf.where(seen, pick(rate), terms["rate"]),
                 "label_rate": tf.where(seen, 0.0, terms["label_rate"])}
        cross_entropy = -tf.gather(log_q, y, batch_dims=1)  # -log q(y|x), [B]
        classify = float(self.hp.alpha) * tf.where(seen, cross_entropy, 0.0)
        return tf.reduce_mean(tf.add_n(list(terms.values())) + classify), terms

    def _log_weights(self, x, n, seed):
        """log w_i = log sum_y p(y) p(x|y,z_iy) p(z_iy) / q(z_iy|x,y), one z_iy ~ q(z|x,y) per label:
        E[w_i] = sum_y p(y) p(x|y) = p(x), so `log_prob_is` tightens to log p(x) as k grows. `[n, B]`."""
        log_px, log_pz, log_qz, _ = self._components(x, self._every_label(x), n, seed)  # [n, K, B]
        return tf.reduce_logsumexp(log_px + log_pz - log_qz, axis=1) + self.log_py

    def _sample(self, n, seed, labels=None):
        """`labels` int32 `[n]` (class-conditional samples; drawn uniformly from p(y) when None)."""
        if labels is None:
            labels = keras.random.randint([n], 0, self.num_classes, seed=seed, dtype="int32")
        z = keras.random.normal([n, self.hp.latent_dim], seed=seed)
        params = self.decoder(tf.concat([z, tf.one_hot(labels, self.num_classes)], -1))
        tfp_seed = keras.random.randint([2], 0, 2 ** 30, seed=seed, dtype="int32")
        return pixel_sample(self.pixel_kind, params, self.levels, tfp_seed)
