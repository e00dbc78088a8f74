"""GAN (Goodfellow et al. 2014), optionally WGAN-GP (Gulrajani et al. 2017), with an AIS likelihood.

    min_G max_D  E_x log D(x) + E_z log(1 - D(G(z))),  z ~ N(0, I)         (Goodfellow eq. 1)
    D step, k per G step:   L_D = -log D(x) - log(1 - D(G(z)))   = softplus(-l(x)) + softplus(l(G(z)))
    G step, non-saturating: L_G = -log D(G(z))                   = softplus(-l(G(z)))   (sec. 3)
    WGAN-GP: L_D = E D(G(z)) - E D(x) + lambda E (||grad D(x_hat)||_2 - 1)^2,  x_hat = e x + (1-e) G(z),
             L_G = -E D(G(z))                                                   (Gulrajani alg. 1)

with l the discriminator's logit. As in keras-io's WGAN-GP example, the k D steps of one
`train_step` reuse its real batch with fresh noise. G ends in tanh: images in [-1, 1], mapped to
level units u = (g + 1)(L - 1)/2; samples are round(u) as uint8.

A plain GAN has no likelihood (`likelihood = "none"`). With `ais_steps > 0` it reports the AIS
estimate (Wu et al. 2017, `zoo.ais`) of log P(x) under the discretised Gaussian observation model

    P(x | z) = prod_i N(bin(x_i); u_i(z), obs_sigma^2),  bin(k) = [k - 1/2, k + 1/2],
    the end bins reaching -inf (k = 0) and +inf (k = L - 1),

so the number is log P of the same discrete data as every other family (`likelihood = "ais"`).
obs_sigma (in levels) is part of that model: Wu et al. pick it on validation data; here
`tune_obs_sigma(valid_images)` does so over a grid.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from zoo import nets
from zoo.ais import ais_log_prob
from zoo.contract import GenerativeModel, ModelConfig
from zoo.distribute import replica_scaled, step_logs
from zoo.distributions import gaussian
from zoo.registry import added_field, register

tfd = tfp.distributions


@dataclasses.dataclass
class GANConfig(ModelConfig):
    learning_rate: float = 2e-4  # both optimizers (Adam, beta_1 below), unless d_learning_rate is set
    d_learning_rate: float | None = None
    beta_1: float = 0.5  # DCGAN's Adam momentum
    latent_dim: int = 8
    network: Literal["mlp", "dcgan"] = "mlp"  # dense (tiny images) or strided convolutions (e.g. 28x28)
    width: int = 256  # mlp: units of each dense layer (G and D)
    depth: int = 2  # mlp: dense layers of G and of D
    channels: list = dataclasses.field(default_factory=lambda: [64, 128])  # dcgan: one stride-2 stage each
    loss: Literal["ns", "wgan-gp"] = "ns"  # non-saturating or WGAN-GP
    d_steps: int = 1  # k: discriminator steps per generator step
    gp_weight: float = 10.0  # lambda of WGAN-GP
    instance_noise: float = 0.0  # std of N(0, s^2) added to D's real and fake inputs ([-1, 1] units)
    ais_steps: int = 0  # 0: likelihood "none"; > 0: "ais" with this many annealing steps
    ais_chains: int = 16
    ais_leapfrog: int = 5  # HMC leapfrog steps per transition
    obs_sigma: float = 0.5  # std of the Gaussian observation model, in levels (see tune_obs_sigma)
    obs_sigmas: tuple = added_field((0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0))  # its grid


@register("gan")
class GAN(GenerativeModel):
    """Generator + discriminator trained with two optimizers; `nll_terms` = {nll: -AIS estimate}."""

    Config = GANConfig
    has_decoder = True  # p(x|z): the generator under the discretised Gaussian observation model

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        if hp.d_steps < 1:
            raise ValueError(f"d_steps must be >= 1, got {hp.d_steps}")
        if hp.network == "dcgan":
            nets.check_conv_stages(data_shape, len(hp.channels))

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        d, hidden = hp.latent_dim, [hp.width] * hp.depth
        if hp.network == "mlp":
            self.generator = nets.mlp((d,), self.data_shape, hidden, "relu", "generator",
                                      out_activation="tanh")
            self.discriminator = nets.mlp(self.data_shape, (1,), hidden, "leaky_relu", "discriminator")
        else:
            self.generator = nets.conv_decoder(d, self.data_shape, None, hp.channels, [], "relu", "generator",
                                               out_activation="tanh")
            self.discriminator = nets.conv_encoder(self.data_shape, 1, hp.channels, [], "leaky_relu",
                                                   "discriminator")
        self.prior = gaussian(tf.zeros([d]), tf.ones([d]))  # p(z) = N(0, I)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "d_real", "d_fake")}
        self._ais_fns = {}
        self.built = True

    @property
    def likelihood(self):
        return "ais" if self.hp.ais_steps > 0 else "none"

    @property
    def term_names(self):
        return ("nll",) if self.hp.ais_steps > 0 else ()

    # --- optimizers (keras-io style) ----------------------------------------------------------
    def compile(self, d_optimizer, g_optimizer, **kwargs):
        """`compile(d_optimizer, g_optimizer)` as in keras-io's GAN examples: each network its own
        optimizer (`self.optimizer` is G's, whose learning rate the runner logs)."""
        if self.dtype_policy.name == "mixed_float16":  # loss scaling for both, as Keras does for one
            scaled = keras.optimizers.LossScaleOptimizer
            d_optimizer, g_optimizer = (o if isinstance(o, scaled) else scaled(o)
                                        for o in (d_optimizer, g_optimizer))
        super().compile(optimizer=g_optimizer, **kwargs)
        self.g_optimizer, self.d_optimizer = g_optimizer, d_optimizer
        g_optimizer.build(self.generator.trainable_variables)  # each optimizer sees only its own network
        d_optimizer.build(self.discriminator.trainable_variables)

    def compile_default(self, lr_schedule=None, **kwargs):
        """Adam(learning_rate, beta_1) for G and Adam(d_learning_rate or learning_rate, beta_1) for D;
        `lr_schedule(initial_lr)` (e.g. the runner's cosine decay) schedules each from its own start."""
        hp = self.hp
        d_lr = hp.learning_rate if hp.d_learning_rate is None else hp.d_learning_rate
        kwargs.setdefault("jit_compile", self.use_xla)
        self.compile(d_optimizer=keras.optimizers.Adam(self.learning_rate(d_lr, lr_schedule),
                                                       beta_1=hp.beta_1),
                     g_optimizer=keras.optimizers.Adam(self.learning_rate(hp.learning_rate, lr_schedule),
                                                       beta_1=hp.beta_1), **kwargs)
        return self

    def compile_from_config(self, config):
        self.compile_default()  # on load: fresh optimizers from the saved hyper-parameters

    # --- networks ------------------------------------------------------------------------------
    def preprocess(self, x):
        """uint8 levels -> float in [-1, 1]."""
        return tf.cast(x, tf.float32) * (2.0 / (self.levels - 1)) - 1.0

    def generate(self, z):
        """G(z) in [-1, 1], `[B, H, W, C]`."""
        return self.generator(z)  # its last layer ends in tanh

    def to_levels(self, g):
        """[-1, 1] -> level units [0, L - 1] (continuous)."""
        return (g + 1.0) * ((self.levels - 1) / 2.0)

    def _noise(self, n, seed):
        return keras.random.normal(tf.stack([n, self.hp.latent_dim]), seed=seed)  # [n, d]

    def _sample(self, n, seed):
        return tf.round(self.to_levels(self.generate(self._noise(n, seed))))

    # --- losses and training -------------------------------------------------------------------
    def _instance_noise(self, real, parts):
        """Instance noise (Sonderby et al. 2017) for `parts` batches shaped like `real`, in one draw
        (every draw costs a seed update): `[parts * B, H, W, C]` of N(0, s^2), or None when s = 0.
        D cannot then win on exact levels that G only nears."""
        if not self.hp.instance_noise:
            return None
        shape = tf.concat([[parts * tf.shape(real)[0]], tf.shape(real)[1:]], 0)
        return self.hp.instance_noise * keras.random.normal(shape, seed=self.seed_generator)

    def _d_loss(self, real, fake, noise=None):
        """(L_D, mean D(x), mean D(G(z))): probabilities for "ns", critic values for "wgan-gp".
        `noise` `[2B, H, W, C]` (or None) blurs the joined batch [real; fake]."""
        n = tf.shape(real)[0]
        joined = tf.concat([real, fake], 0)  # [2B, H, W, C]: one D pass for both
        logits = tf.reshape(self.discriminator(joined if noise is None else joined + noise), [-1])  # [2B]
        l_real, l_fake = tf.split(logits, 2)  # [B] each
        if self.hp.loss == "ns":
            loss = tf.reduce_mean(tf.nn.softplus(-l_real) + tf.nn.softplus(l_fake))
            return loss, tf.reduce_mean(tf.sigmoid(l_real)), tf.reduce_mean(tf.sigmoid(l_fake))
        e = tf.random.stateless_uniform(tf.stack([n, 1, 1, 1]),
                                        keras.random.randint([2], 0, 2 ** 30, seed=self.seed_generator))
        x_hat = e * real + (1.0 - e) * fake  # [B, H, W, C]
        with tf.GradientTape() as tape:
            tape.watch(x_hat)
            critic = self.discriminator(x_hat)
        norm = tf.sqrt(tf.reduce_sum(tf.square(tape.gradient(critic, x_hat)), [1, 2, 3]) + 1e-12)  # [B]
        gradient_penalty = tf.reduce_mean((norm - 1) ** 2)
        loss = tf.reduce_mean(l_fake) - tf.reduce_mean(l_real) + self.hp.gp_weight * gradient_penalty
        return loss, tf.reduce_mean(l_real), tf.reduce_mean(l_fake)

    def _g_loss(self, fake, noise=None):
        l_fake = tf.reshape(self.discriminator(fake if noise is None else fake + noise), [-1])  # [B]
        return tf.reduce_mean(tf.nn.softplus(-l_fake) if self.hp.loss == "ns" else -l_fake)

    def _step_noise(self, real, d_steps):
        """All the random input of a step, two draws: z `[B, d]` for each D step and the G step, and
        the instance noise of each (`[2B, H, W, C]` for a D step, `[B, H, W, C]` for G, or None)."""
        n = tf.shape(real)[0]
        z = tf.split(self._noise((d_steps + 1) * n, self.seed_generator), d_steps + 1)
        eta = self._instance_noise(real, 2 * d_steps + 1)
        blur = [None if eta is None else eta[2 * i * n:(2 * i + 2) * n] for i in range(d_steps)]
        return z, blur + [None if eta is None else eta[2 * d_steps * n:]]

    def train_step(self, data):
        """k D steps and one G step on a replica's share of the global batch; each loss is scaled
        by 1/replicas (`zoo.distribute.replica_scaled`) and its optimizer's loss scale."""
        x, _ = self._unpack(data)
        real = self.preprocess(x)  # [B, H, W, C]
        k = self.hp.d_steps
        z, noise = self._step_noise(real, k)
        d_vars, g_vars = self.discriminator.trainable_weights, self.generator.trainable_weights
        for i in range(k):  # k discriminator steps (Goodfellow alg. 1)
            fake = self.generate(z[i])
            with tf.GradientTape() as tape:
                d_loss, d_real, d_fake = self._d_loss(real, fake, noise[i])
                scaled = self.d_optimizer.scale_loss(replica_scaled(d_loss))
            self.d_optimizer.apply(tape.gradient(scaled, d_vars), d_vars)
        with tf.GradientTape() as tape:  # one generator step
            g_loss = self._g_loss(self.generate(z[k]), noise[k])
            scaled = self.g_optimizer.scale_loss(replica_scaled(g_loss))
        self.g_optimizer.apply(tape.gradient(scaled, g_vars), g_vars)
        return self._record(d_loss, g_loss, d_real, d_fake)

    def test_step(self, data):
        x, _ = self._unpack(data)
        real = self.preprocess(x)
        (z, _), (d_noise, g_noise) = self._step_noise(real, 1)
        fake = self.generate(z)
        d_loss, d_real, d_fake = self._d_loss(real, fake, d_noise)
        return self._record(d_loss, self._g_loss(fake, g_noise), d_real, d_fake)

    def _record(self, d_loss, g_loss, d_real, d_fake):
        """Trackers; `loss` = d_loss + g_loss is only a NaN watch, not a quantity to minimise."""
        values = {"d_loss": d_loss, "g_loss": g_loss, "d_real": d_real, "d_fake": d_fake}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        logs = {name: t.result() for name, t in self.trackers.items()}
        return step_logs({"loss": logs["d_loss"] + logs["g_loss"], **logs})

    # --- likelihood: AIS on the discretised Gaussian observation model --------------------------
    def log_px_z(self, z, x, obs_sigma):
        """log P(x | z) for z `[C, B, d]`, x uint8 `[B, H, W, C]` -> `[C, B]` nats."""
        c, b = tf.shape(z)[0], tf.shape(z)[1]
        u = self.to_levels(self.generate(tf.reshape(z, [-1, self.hp.latent_dim])))  # [C*B, H, W, C]
        u = tf.reshape(u, tf.concat([[c, b], self.data_shape], 0))
        # QuantizedDistribution puts X in (k - 1, k] on level k, so a bin centred on u is loc u - 1/2
        obs = tfd.QuantizedDistribution(tfd.Normal(u - 0.5, obs_sigma), low=0.0, high=float(self.levels - 1))
        return tfd.Independent(obs, reinterpreted_batch_ndims=3).log_prob(tf.cast(x, tf.float32))

    def _log_px_z(self, z, x):
        """The observation model at the calibrated `obs_sigma` (the contract's `log_px_given_z`)."""
        return self.log_px_z(z, x, self.hp.obs_sigma)

    def log_prob_ais(self, x, steps=None, chains=None, obs_sigma=None, seed=None, **ais_kwargs):
        """AIS estimate of log P(x) `[B]` in nats (defaults from the config; works for ais_steps = 0)."""
        hp = self.hp
        steps, chains = int(steps or hp.ais_steps or 100), int(chains or hp.ais_chains)
        return self._ais(self.check_input(x), steps, chains, obs_sigma or hp.obs_sigma, self._seed(seed),
                         **ais_kwargs)

    def _ais(self, x, steps, chains, obs_sigma, seed, **ais_kwargs):
        key = (steps, chains, tuple(sorted(ais_kwargs.items())))
        if key not in self._ais_fns:  # one compiled AIS per setting; obs_sigma and the seed are inputs
            def run(x, sigma, tfp_seed):
                return ais_log_prob(self.prior, lambda z, xb: self.log_px_z(z, xb, sigma), x, steps, chains,
                                    seed=tfp_seed, leapfrog_steps=self.hp.ais_leapfrog, **ais_kwargs)
            self._ais_fns[key] = tf.function(run, reduce_retracing=True, jit_compile=self.xla_for_loops)
        tfp_seed = keras.random.randint([2], 0, 2 ** 30, seed=seed, dtype="int32")
        return self._ais_fns[key](x, tf.constant(obs_sigma, tf.float32), tfp_seed)

    def tune_obs_sigma(self, x_valid, sigmas=None, steps=None, chains=None, seed=0):
        """Set `obs_sigma` to the value of `sigmas` (default: the config's `obs_sigmas` grid) with the
        highest mean AIS log P(x_valid) (Wu et al. sec. 5); returns {sigma: mean log P(x_valid) nats}."""
        scores = {float(s): float(np.mean(self.log_prob_ais(x_valid, steps, chains,
                                                            obs_sigma=s, seed=seed).numpy()))
                  for s in (sigmas or self.hp.obs_sigmas)}
        self.hp.obs_sigma = float(max(scores, key=scores.get))
        return scores

    def calibrate(self, x_valid, seed=0, examples=200):
        """With AIS on: pick obs_sigma on `examples` validation images (tune_obs_sigma)."""
        if self.hp.ais_steps <= 0:
            return []
        scores = self.tune_obs_sigma(x_valid[:examples], seed=seed)
        at_edge = self.hp.obs_sigma in (min(scores), max(scores))
        if at_edge:
            print(f"[gan] obs_sigma={self.hp.obs_sigma} is at the edge of the grid {sorted(scores)}: "
                  f"widen obs_sigmas for a tighter AIS estimate")
        return [("obs_sigma", self.hp.obs_sigma, None), ("valid_ais_nll", -scores[self.hp.obs_sigma], "ais"),
                ("obs_sigma_at_grid_edge", float(at_edge), None)]

    def _nll_terms(self, x, seed, training, labels=None):
        if self.hp.ais_steps <= 0:
            raise ValueError(f"{self.name} has no likelihood (likelihood='none'): "
                             f"build it with ais_steps > 0 (e.g. ais_steps=100) "
                             f"for an annealed-importance-sampling estimate, "
                             f"or call log_prob_ais(x, steps, chains)")
        return {"nll": -self._ais(x, self.hp.ais_steps, self.hp.ais_chains, self.hp.obs_sigma, seed)}
