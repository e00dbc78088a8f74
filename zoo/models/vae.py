"""VAE (Kingma & Welling 2014) and IWAE (Burda et al. 2016) on discrete images.

    q(z|x) = N(mu(x), diag sigma(x)^2),  p(z) = N(0, I),  p(x|z): a discrete pixel likelihood
    ELBO   = E_q[log p(x|z)] - KL(q(z|x) || p(z))                     (K&W eq. 3)
           = -(distortion + rate)
    L_k    = E[log (1/k) sum_i w_i],  w_i = p(x, z_i) / q(z_i|x)     (Burda eq. 8), L_1 = ELBO

With `samples` = L draws z_1..z_L ~ q(z|x) per example the ELBO's estimate is their average,

    ELBO_L = (1/L) sum_l log p(x|z_l) - rate                      (Burda et al. sec. 5, "VAE with k samples")

still the ELBO (unbiased, 1/L of the variance of the estimate and of its gradient), not a tighter bound;
it costs what the IWAE with k = L costs (one decoder pass over the L x B codes). Training and every
evaluation (`log_prob`, `nll_terms`) use the same L draws.

Training may weight the rate: loss = distortion + beta * rate (`kl_weight` beta; Higgins et al. 2017's
beta-VAE). beta = 0 is a plain autoencoder with a noisy code (UBC lecture 16, "what can happen without
regularisation"; Günnemann: "standard AE are not generative models"), beta = 1 the ELBO. Whatever beta,
`log_prob`, `nll_terms` and evaluation report the true ELBO.

Reparameterisation: z = mu + sigma * eps, eps ~ N(0, I) (K&W sec. 2.4).
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
from zoo.distributions import (
    MIN_SCALE,
    PixelLaw,
    gaussian,
    num_params,
    pixel_log_prob,
    pixel_mean,
    pixel_sample,
    resolve_kind,
    scale_param,
)
from zoo.registry import added_field, register

tfd = tfp.distributions


@dataclasses.dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 16
    network: Literal["mlp", "conv"] = "mlp"
    width: int = 256  # units of each dense layer
    depth: int = 2  # dense layers on each side (after the convs in the encoder, before them in the decoder)
    channels: list = dataclasses.field(default_factory=lambda: [32, 64])  # conv: one stride-2 stage each
    activation: str = "gelu"
    decoder: PixelLaw = "auto"  # the pixel law p(x|z): auto = bernoulli (2 levels) else categorical
    kl: Literal["analytic", "mc"] = "analytic"  # rate: the analytic KL or the sampled log q - log p
    kl_weight: float = 1.0  # beta of the training loss distortion + beta * rate (0: an autoencoder; 1: ELBO)
    samples: int = added_field(1)  # L draws z ~ q(z|x) per example averaged in the ELBO (Burda sec. 5)
    # discretized_gaussian's scale: "learned" (a decoder output per sub-pixel) or fixed, in levels
    decoder_sigma: float | str = added_field("learned")


@register("vae")
class VAE(GenerativeModel):
    """Gaussian-latent VAE; `nll_terms` = {distortion: -E_q log p(x|z), rate: KL(q(z|x) || p(z))};
    trained on distortion + kl_weight * rate (the ELBO when kl_weight is 1)."""

    likelihood = "elbo"
    has_importance_sampling = True
    has_decoder = True
    has_encoder = True
    population_is = True  # IS over all 2^16 bars images is cheap (a small decoder): see evaluation
    term_names = ("distortion", "rate")
    Config = VAEConfig

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        beta = hp.kl_weight
        number = isinstance(beta, (int, float)) and not isinstance(beta, bool)
        if not number or not math.isfinite(beta) or beta < 0:
            raise ValueError(f"kl_weight must be a finite number >= 0 (0: a plain autoencoder, 1: the ELBO), "
                             f"got {beta!r}")
        if hp.network == "conv":
            nets.check_conv_stages(data_shape, len(hp.channels))
        if isinstance(hp.samples, bool) or not isinstance(hp.samples, int) or hp.samples < 1:
            raise ValueError(f"samples (L draws of z per example in the ELBO) must be a whole number >= 1, "
                             f"got {hp.samples!r}")
        if hp.decoder_sigma != "learned":
            if hp.decoder != "discretized_gaussian":
                raise ValueError(f"decoder_sigma = {hp.decoder_sigma!r} is the scale of decoder "
                                 f"'discretized_gaussian', not of {hp.decoder!r}: drop it or set that one")
            try:
                scale_param(hp.decoder_sigma)
            except ValueError:
                raise ValueError(f"decoder_sigma must be 'learned' or a fixed scale in levels > {MIN_SCALE}, "
                                 f"got {hp.decoder_sigma!r}") from None

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        hidden = [hp.width] * hp.depth
        self.pixel_kind = resolve_kind(hp.decoder, self.levels)
        fixed = self.pixel_kind == "discretized_gaussian" and hp.decoder_sigma != "learned"
        p = num_params(self.pixel_kind, self.levels) - fixed  # a fixed scale is no output of the network
        d = hp.latent_dim
        if hp.network == "mlp":
            self.encoder = nets.mlp(self.data_shape, (2 * d,), hidden, hp.activation, "encoder")
            self.decoder = nets.mlp((d,), (*self.data_shape, p), hidden, hp.activation, "decoder")
        else:
            self.encoder = nets.conv_encoder(self.data_shape, 2 * d, hp.channels, hidden, hp.activation,
                                             "encoder")
            self.decoder = nets.conv_decoder(d, self.data_shape, p, hp.channels, hidden, hp.activation,
                                             "decoder")
        if fixed:  # the decoder still gives [.., H, W, C, 2] pixel parameters: the scale's is a constant
            self.decoder = _with_constant_scale(self.decoder, scale_param(hp.decoder_sigma))
        self.prior = gaussian(tf.zeros([d]), tf.ones([d]))
        self._ais_fns = {}  # (steps, chains, options) -> compiled AIS (log_prob_ais)
        self.built = True

    def xla_on_cpu(self) -> bool:
        """XLA pays off for the dense networks, not the convolutional ones (`peers --jit all` on the
        digits, XLA on/off paired: MLP VAE 1.23x, IWAE 1.22x; conv VAE 0.86x)."""
        return self.hp.network == "mlp"

    # --- networks ------------------------------------------------------------------------------
    def preprocess(self, x):
        """uint8 levels -> float in [-1, 1]."""
        return tf.cast(x, tf.float32) * (2.0 / (self.levels - 1)) - 1.0

    def _encode(self, x):
        """Posterior parameters (mu, sigma) of q(z|x), each `[B, latent_dim]`."""
        return self._posterior(x)

    def _posterior(self, x):
        mu, s = tf.split(self.encoder(self.preprocess(x)), 2, axis=-1)  # [B, d] each
        return mu, tf.nn.softplus(s) + 1e-4

    def decode(self, z):
        """E[x | z] in data units (0..levels-1), float `[B, H, W, C]`."""
        return pixel_mean(self.pixel_kind, self.decoder(z), self.levels)

    def _log_px_z(self, z, x):
        """log p(x|z) for z `[n, B, d]` and x `[B, H, W, C]` -> `[n, B]`."""
        n, b = tf.shape(z)[0], tf.shape(z)[1]
        params = self.decoder(tf.reshape(z, [-1, self.hp.latent_dim]))  # [n*B, H, W, C, P]
        params = tf.reshape(params, tf.concat([[n, b], tf.shape(params)[1:]], 0))
        return pixel_log_prob(self.pixel_kind, params, x, self.levels)

    # --- maths ---------------------------------------------------------------------------------
    def _components(self, x, n, seed):
        """n reparameterised draws z_i ~ q(z|x): log p(x|z_i), log p(z_i), log q(z_i|x), each `[n, B]`."""
        mu, sigma = self._posterior(x)
        q = gaussian(mu, sigma)  # batch [B], event [d]
        eps = keras.random.normal(tf.concat([[n], tf.shape(mu)], 0), seed=seed)  # [n, B, d]
        z = mu + sigma * eps
        return self._log_px_z(z, x), self.prior.log_prob(z), q.log_prob(z), q

    def _log_weights(self, x, n, seed):
        log_px_z, log_pz, log_qz, _ = self._components(x, n, seed)
        return log_px_z + log_pz - log_qz  # [n, B]

    def log_prob_ais(self, x, steps: int, chains: int, seed=None, **ais_kwargs):
        """AIS estimate of log P(x) `[B]` in nats (Wu et al. 2017, `zoo.ais`): HMC chains annealed
        from p(z) = N(0, I) to p(z | x) through the decoder's own discrete p(x | z). Like
        `log_prob_is`, a stochastic lower bound on the same log P(x); the encoder is not used."""
        from zoo.ais import ais_log_prob

        key = (int(steps), int(chains), tuple(sorted(ais_kwargs.items())))
        if key not in self._ais_fns:  # one compiled AIS per setting (repeats with other seeds: no retrace)
            self._ais_fns[key] = tf.function(lambda xb, s: ais_log_prob(
                self.prior, self._log_px_z, xb, key[0], key[1], seed=s, **ais_kwargs),
                reduce_retracing=True, jit_compile=self.xla_for_loops)
        return self._ais_fns[key](self.check_input(x),
                  keras.random.randint([2], 0, 2 ** 30, seed=self._seed(seed), dtype="int32"))

    def _nll_terms(self, x, seed, training, labels=None):
        """-ELBO's terms `[B]` from L = `samples` draws: distortion -(1/L) sum_l log p(x|z_l); rate the
        analytic KL, or with `kl` "mc" (1/L) sum_l [log q(z_l|x) - log p(z_l)]."""
        log_px_z, log_pz, log_qz, q = self._components(x, self.hp.samples, seed)  # [L, B] each
        mc_rate = tf.reduce_mean(log_qz - log_pz, 0)
        rate = tfd.kl_divergence(q, self.prior) if self.hp.kl == "analytic" else mc_rate
        return {"distortion": -tf.reduce_mean(log_px_z, 0), "rate": rate}

    def _training_loss(self, x, labels):
        """(mean of distortion + beta * rate, the true terms for the trackers): beta = `kl_weight`."""
        terms = self._nll_terms(x, seed=self.seed_generator, training=True, labels=labels)
        weighted = {**terms, "rate": float(self.hp.kl_weight) * terms["rate"]}
        return self.mean_nll(weighted), terms

    def _sample(self, n, seed):
        z = keras.random.normal([n, self.hp.latent_dim], seed=seed)
        tfp_seed = keras.random.randint([2], 0, 2 ** 30, seed=seed, dtype="int32")
        return pixel_sample(self.pixel_kind, self.decoder(z), self.levels, tfp_seed)


def _with_constant_scale(net, raw_scale: float):
    """`net`'s [.., H, W, C, 1] locations with the constant raw scale appended: [.., H, W, C, 2]."""
    z = keras.Input(net.input_shape[1:])
    loc = net(z)
    params = keras.ops.concatenate([loc, keras.ops.full_like(loc, raw_scale)], -1)
    return keras.Model(z, params, name=net.name)


@dataclasses.dataclass
class IWAEConfig(VAEConfig):
    k: int = 5  # importance samples in the training bound


@register("iwae")
class IWAE(VAE):
    """VAE networks trained on L_k. Terms: distortion and rate averaged over the k draws, and
    `iw_gain` = -(L_k - mean_i log w_i) <= 0, the tightening bought by importance weighting."""

    likelihood = "iwae"
    term_names = ("distortion", "rate", "iw_gain")
    Config = IWAEConfig

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        super()._check_hparams(hp, data_shape)
        if hp.samples != 1:  # its k draws are already the L_k bound's
            raise ValueError(f"iwae draws k samples per example (k = {hp.k!r}), not `samples`: set k and "
                             f"drop samples = {hp.samples!r} (model 'vae' takes samples: the L-sample ELBO)")
        if isinstance(hp.k, bool) or not isinstance(hp.k, int) or hp.k < 1:
            raise ValueError(f"k (importance samples of L_k) must be a whole number >= 1, got {hp.k!r}")
        if hp.kl_weight != 1:  # L_k = E log mean_i w_i has no separate rate term to weight
            raise ValueError(f"iwae trains on L_k, which has no separate rate term to weight: kl_weight must "
                             f"be 1, got {hp.kl_weight!r}; use model 'vae' for a KL-weighted ELBO")

    @property
    def k(self) -> int:
        return self.hp.k

    def _nll_terms(self, x, seed, training, labels=None):
        log_px_z, log_pz, log_qz, _ = self._components(x, self.k, seed)
        log_w = log_px_z + log_pz - log_qz  # [k, B]
        bound = tf.reduce_logsumexp(log_w, 0) - math.log(self.k)
        return {"distortion": -tf.reduce_mean(log_px_z, 0), "rate": tf.reduce_mean(log_qz - log_pz, 0),
                "iw_gain": tf.reduce_mean(log_w, 0) - bound}
