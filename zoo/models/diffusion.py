"""Gaussian diffusion (Ho et al. 2020, DDPM) with the variational bound of VDM (Kingma et al. 2021)
on the discrete data; the maths (schedule, q_sample, posterior, reverse steps, bound terms) lives
in `zoo.diffusion_maths`, this file holds the noise-predicting network, training and samplers.

    x in {0..L-1} -> v = 2 x / (L - 1) - 1 in [-1, 1];  z_t = alpha_t v + sigma_t eps
    -log P(x) <= prior + diffusion + reconstruction                          (likelihood = "vlb")
`timesteps` = T > 0: T-step DDPM, the diffusion term is the sum of the T per-step KLs; 0: continuous
time. t is drawn stratified per example (`t_samples` strata; `eval_t_samples` outside training)
with one uniform offset per batch spread over the examples (VDM's low-discrepancy sampler).

Denoiser (`denoiser`): "eps" -- the network outputs eps_hat(z_t, t) (Ho et al.); "categorical" --
the network outputs per-pixel logits over the L levels, added to the Gaussian log-likelihood
log N(z_t; alpha_t v_k, sigma_t^2), so x_hat = E[v | z_t] and eps_hat = (z_t - alpha_t x_hat) / sigma_t
(a discrete-data posterior: exact as sigma_t -> 0, the network only has to learn the prior).
Loss (`loss`): "vlb" the bound itself, "simple" Ho et al.'s E||eps - eps_hat||^2 (eq. 14).
Networks (`zoo.denoisers`): "mlp" (residual dense blocks, tiny images) or "unet" (DDPM's: residual
blocks with a time embedding, stride-2 downsampling, skip connections, optional self-attention);
"auto" the U-Net where it fits the image, else the MLP (`Diffusion.auto_network`).
Samplers: ancestral (every step of p(z_s | z_t)) and DDIM (few steps, eta); inpainting replaces the
known pixels by draws of q(z_s | x) at each step (RePaint, Lugmayr et al. 2022, with `resample` jumps).
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import keras
import numpy as np
import tensorflow as tf

from zoo import diffusion_maths as dm
from zoo.contract import GenerativeModel, ModelConfig
from zoo.denoisers import check_unet, mlp_net, time_features, unet
from zoo.nets import halvings
from zoo.registry import register


@dataclasses.dataclass
class DiffusionConfig(ModelConfig):
    timesteps: int = 0  # T discrete steps; 0 = continuous time (VDM)
    schedule: dm.Schedule = "linear"  # in log-SNR, see zoo.diffusion_maths
    gamma_min: float = -10.0  # -log SNR at t = 0 (sets the reconstruction term)
    gamma_max: float = 8.0  # -log SNR at t = 1 (sets the prior term)
    denoiser: Literal["categorical", "eps"] = "categorical"
    loss: Literal["vlb", "simple"] = "vlb"
    network: Literal["auto", "mlp", "unet"] = "auto"  # auto: unet from 8x8 up if it fits, else mlp
    width: int = 256  # mlp: units of each residual block
    depth: int | None = None  # residual blocks (mlp) or residual blocks per resolution (unet); None: 3 / 1
    channels: list = dataclasses.field(default_factory=lambda: [32, 64])  # unet, one per resolution
    attention: bool = False  # unet self-attention at the lowest resolution
    time_dim: int = 64  # sinusoidal time features
    activation: str = "silu"
    t_samples: int = 1  # stratified t per example when training
    eval_t_samples: int = 16  # ... when evaluating (lower-variance bound per example)
    sample_steps: int = 1000  # ancestral sampler steps in continuous time (T when discrete)
    ddim_steps: int = 50  # default DDIM steps


@register("diffusion")
class Diffusion(GenerativeModel):
    """`nll_terms` = {prior: KL(q(z_1|x) || N(0,I)), diffusion: the per-step KLs (or their
    continuous-time limit), reconstruction: -log p(x | z_0)}; a single-draw estimate of the VLB."""

    likelihood = "vlb"
    term_names = ("prior", "diffusion", "reconstruction")
    sample_methods = ("ancestral", "ddim")  # the benchmark times both (fastest last)
    can_inpaint = True
    Config = DiffusionConfig

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        if hp.timesteps < 0 or min(hp.t_samples, hp.eval_t_samples, hp.sample_steps, hp.ddim_steps) < 1:
            raise ValueError("diffusion: timesteps must be >= 0 and t_samples, eval_t_samples, sample_steps, "
                             "ddim_steps >= 1")
        if hp.network == "unet":
            check_unet(data_shape, hp.channels)

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        hp = self.hp
        self.schedule = dm.NoiseSchedule(hp.schedule, hp.gamma_min, hp.gamma_max)
        self.values = tf.linspace(-1.0, 1.0, self.levels)  # v_k of each level, [L]
        p = self.levels if hp.denoiser == "categorical" else 1
        network = hp.network if hp.network != "auto" else self.auto_network(self.data_shape, hp.channels)
        self.network = network  # the one built
        if network == "mlp":
            depth = 3 if hp.depth is None else hp.depth
            self.net = mlp_net(self.data_shape, p, hp.width, depth, hp.time_dim, hp.activation, "denoiser")
        else:
            depth = 1 if hp.depth is None else hp.depth
            self.net = unet(self.data_shape, p, hp.channels, depth, hp.attention, hp.time_dim, hp.activation,
                            "denoiser")
        self.ancestral_steps = hp.timesteps or hp.sample_steps
        self.built = True

    @staticmethod
    def auto_network(data_shape, channels) -> str:
        """What network="auto" builds: the U-Net from 8x8 up when its len(channels) - 1 stride-2 halvings
        divide the height and width (digits 8x8, MNIST 28x28, CIFAR 32x32), else the MLP (tiny images
        like the 4x4 bars, and sides the U-Net cannot halve, e.g. 9x9: its skips would not line up)."""
        h, w, _ = data_shape
        return "unet" if min(h, w) >= 8 and halvings(h, w) >= len(channels) - 1 else "mlp"

    def xla_on_cpu(self) -> bool:
        """XLA pays off for the denoiser's small ops (peers --jit all, digits 8x8 U-Net: 1.25x)."""
        return True

    # --- network -------------------------------------------------------------------------------
    def preprocess(self, x):
        """uint8 levels -> v in [-1, 1]."""
        return tf.cast(x, tf.float32) * (2.0 / (self.levels - 1)) - 1.0

    def eps_hat(self, z, t):
        """The noise prediction eps_hat(z_t, t), `[B, H, W, C]`, for z `[B, H, W, C]` and t `[B]`."""
        gamma = self.schedule.gamma(t)  # the network sees the log-SNR scaled to [0, 1] (as VDM)
        scaled = (gamma - self.hp.gamma_min) / (self.hp.gamma_max - self.hp.gamma_min)
        out = self.net([z, time_features(scaled, self.hp.time_dim)])  # [B, H, W, C, P]
        if self.hp.denoiser == "eps":
            return out[..., 0]
        alpha, sigma = dm.alpha_sigma(dm._bcast(gamma, z))
        # [B,H,W,C,L]
        log_lik = -0.5 * tf.square((z[..., None] - alpha[..., None] * self.values) / sigma[..., None])
        x_hat = tf.reduce_sum(tf.nn.softmax(out + log_lik, axis=-1) * self.values, axis=-1)
        return dm.eps_from_x(z, x_hat, gamma)

    # --- the bound -------------------------------------------------------------------------------
    def _times(self, b, k, seed):
        """t `[K, B]` in (0, 1]: per example K strata, offsets spread over the batch from one uniform."""
        u0 = keras.random.uniform([], seed=seed)
        v = tf.math.floormod(u0 + tf.range(b, dtype=tf.float32) / tf.cast(b, tf.float32), 1.0)  # [B]
        t = (tf.range(k, dtype=tf.float32)[:, None] + v[None]) / k  # [K, B] in [0, 1)
        if self.hp.timesteps:  # step i = 1..T, t = i / T
            t = tf.minimum(tf.floor(t * self.hp.timesteps) + 1.0, self.hp.timesteps) / self.hp.timesteps
        else:
            t = 1.0 - t  # (0, 1]
        return t

    def _diffusion_term(self, xf, t, eps):
        """w(t)/2 ||eps - eps_hat(z_t, t)||^2 and ||eps - eps_hat||^2, each `[B]`, t `[B]`."""
        z = dm.q_sample(xf, self.schedule.gamma(t), eps)
        mse = tf.reduce_sum(tf.square(eps - self.eps_hat(z, t)), axis=[1, 2, 3])
        return 0.5 * dm.diffusion_weight(self.schedule, t, self.hp.timesteps) * mse, mse

    def _bound(self, x, seed, k):
        xf = self.preprocess(x)  # [B, H, W, C]
        b = tf.shape(x)[0]
        t = self._times(b, k, seed)  # [K, B]
        eps = keras.random.normal(tf.concat([[k], tf.shape(xf)], 0), seed=seed)  # [K, B, H, W, C]
        if k == 1:
            diffusion, mse = self._diffusion_term(xf, t[0], eps[0])
        else:
            diffusion, mse = tf.map_fn(lambda a: self._diffusion_term(xf, a[0], a[1]), (t, eps),
                                       fn_output_signature=(tf.float32, tf.float32))
            diffusion, mse = tf.reduce_mean(diffusion, 0), tf.reduce_mean(mse, 0)
        zeros = tf.zeros([b])
        z_0 = dm.q_sample(xf, self.schedule.gamma(zeros), keras.random.normal(tf.shape(xf), seed=seed))
        terms = {"prior": dm.prior_kl(xf, self.schedule.gamma(zeros + 1.0)), "diffusion": diffusion,
                 "reconstruction": dm.reconstruction_nll(x, z_0, self.schedule.gamma(zeros), self.values)}
        return terms, mse

    def _nll_terms(self, x, seed, training, labels=None):
        return self._bound(x, seed, self.hp.t_samples if training else self.hp.eval_t_samples)[0]

    def _training_loss(self, x, labels):
        """The VLB, or Ho et al.'s L_simple = E||eps - eps_hat||^2 per sub-pixel (eq. 14); the trackers
        show the VLB's terms either way."""
        terms, mse = self._bound(x, self.seed_generator, self.hp.t_samples)
        return (self.mean_nll(terms) if self.hp.loss == "vlb" else tf.reduce_mean(mse) / self.num_dims), terms

    def reports(self, x, seed=0, grid=50):
        """timestep_loss: the diffusion term's density at t (nats per unit t, mean over `x`) on a grid
        of `grid` times; its average over the grid is about the `diffusion` term (T per-step KLs: T L_t)."""
        import pandas as pd

        x = self.check_input(x)
        xf = self.preprocess(x)
        if self.hp.timesteps:
            steps = np.unique(np.round(np.linspace(1, self.hp.timesteps, min(grid, self.hp.timesteps))))
            t = steps / self.hp.timesteps
        else:
            t = (np.arange(grid) + 0.5) / grid
        gen = keras.random.SeedGenerator(seed)
        fn = tf.function(lambda tt: self._diffusion_term(xf, tf.fill(tf.shape(xf)[:1], tt),
                                                         keras.random.normal(tf.shape(xf), seed=gen))[0])
        nats = [float(tf.reduce_mean(fn(tf.constant(ti, tf.float32)))) for ti in t]
        log_snr = -self.schedule.gamma(tf.constant(t, tf.float32)).numpy()
        return {"timestep_loss": pd.DataFrame({"t": t, "log_snr": log_snr, "nats": nats})}

    # --- samplers: one step function and one loop each (improved-diffusion), RePaint on top ---------
    def _grid(self, i, steps):
        """t_i = i / steps (rounded to the T-step grid when discrete)."""
        t = tf.cast(i, tf.float32) / tf.cast(steps, tf.float32)
        return tf.round(t * self.hp.timesteps) / self.hp.timesteps if self.hp.timesteps else t

    def _step_times(self, i, steps, n):
        """(t, s) = (t_i, t_{i-1}) as `[n]` each."""
        return tf.fill([n], self._grid(i, steps)), tf.fill([n], self._grid(i - 1, steps))

    def p_sample(self, z, t, s, noise):
        """One ancestral step z_s ~ p(z_s | z_t) = q(z_s | z_t, x_hat(z_t)), t > s `[n]`
        (Ho et al. alg. 2)."""
        g = self.schedule.gamma
        return dm.ancestral_step(z, self.eps_hat(z, t), g(s), g(t), noise)

    def ddim_sample(self, z, t, s, noise, eta):
        """One DDIM step z_t -> z_s (Song et al. 2021, eq. 12): eta 0 deterministic, 1 ancestral-like."""
        g = self.schedule.gamma
        return dm.ddim_step(z, self.eps_hat(z, t), g(s), g(t), noise, eta)

    def _start(self, n, base):
        """z_1 ~ N(0, I) `[n, H, W, C]` and the loop's and the decoder's stateless seeds."""
        init, loop, last = tf.unstack(tf.random.experimental.stateless_split(base, 3))
        return tf.random.stateless_normal(tf.concat([[n], self.data_shape], 0), seed=init), loop, last

    def _noise(self, loop, i, like, k=0):
        """Standard normal noise `k` (0 step, 1 known pixels, 2 jump back) of loop iteration i."""
        seeds = tf.random.experimental.stateless_split(tf.random.experimental.stateless_fold_in(loop, i), 3)
        return tf.random.stateless_normal(tf.shape(like), seed=seeds[k])

    def _decode(self, z, last):
        """x ~ p(x | z_0): int32 levels `[n, H, W, C]`."""
        # [n,H,W,C,L]
        logits = dm.decoder_logits(z, self.schedule.gamma(tf.zeros(tf.shape(z)[:1])), self.values)
        draw = tf.random.stateless_categorical(tf.reshape(logits, [-1, self.levels]), 1, seed=last)
        return tf.reshape(tf.cast(draw, tf.int32), tf.shape(z))

    @tf.function(reduce_retracing=True)
    def p_sample_loop(self, n, steps, base):
        """`n` images by `steps` ancestral steps from t = 1 to 0, then p(x | z_0); `base` a stateless seed."""
        z, loop, last = self._start(n, base)

        def body(i, z):
            t, s = self._step_times(i, steps, n)
            return i - 1, self.p_sample(z, t, s, self._noise(loop, i, z))

        return self._decode(tf.while_loop(lambda i, _: i > 0, body, (steps, z))[1], last)

    @tf.function(reduce_retracing=True)
    def ddim_sample_loop(self, n, steps, eta, base):
        """`n` images by `steps` DDIM steps from t = 1 to 0, then p(x | z_0)."""
        z, loop, last = self._start(n, base)

        def body(i, z):
            t, s = self._step_times(i, steps, n)
            return i - 1, self.ddim_sample(z, t, s, self._noise(loop, i, z), eta)

        return self._decode(tf.while_loop(lambda i, _: i > 0, body, (steps, z))[1], last)

    @tf.function(reduce_retracing=True)
    def repaint_loop(self, x, mask, steps, base, method, eta, resample):
        """RePaint (Lugmayr et al. 2022, alg. 1) around either sampler: each step, the known sub-pixels
        (`mask` 1) are drawn from q(z_s | x) and the rest by the sampler; `resample` - 1 times the
        result is noised back to t (q(z_t | z_s)) and the step redone. x uint8 `[n, H, W, C]`."""
        known = self.preprocess(x)
        z, loop, last = self._start(tf.shape(x)[0], base)
        g = self.schedule.gamma

        def body(i, z):
            t, s = self._step_times(i, steps, tf.shape(x)[0])
            for j in range(resample):
                key = i * resample + j
                noise = self._noise(loop, key, z)
                z_s = (self.ddim_sample(z, t, s, noise, eta) if method == "ddim"
                       else self.p_sample(z, t, s, noise))
                z_s = mask * dm.q_sample(known, g(s), self._noise(loop, key, z, 1)) + (1.0 - mask) * z_s
                z = (dm.forward_step(z_s, g(s), g(t), self._noise(loop, key, z, 2))
                     if j < resample - 1 else z_s)
            return i - 1, z

        out = self._decode(tf.while_loop(lambda i, _: i > 0, body, (steps, z))[1], last)
        return tf.where(mask > 0, tf.cast(x, tf.int32), out)

    def _steps(self, method, steps):
        steps = int(steps or (self.ancestral_steps if method == "ancestral" else self.hp.ddim_steps))
        if self.hp.timesteps and steps > self.hp.timesteps:
            raise ValueError(f"diffusion: at most T = {self.hp.timesteps} steps for this discrete-time model")
        return tf.constant(steps)

    def _sampling_cost(self, method="ancestral", steps=None, eta=0.0):
        return int(self._steps(method, steps))  # one denoiser call per step

    def _sample(self, n, seed, method="ancestral", steps=None, eta=0.0):
        """`method` "ancestral" (every step: T, or `sample_steps` in continuous time) or "ddim" (`steps`,
        default `ddim_steps`; `eta` 0 deterministic, 1 ancestral-like)."""
        base = keras.random.randint([2], 0, 2 ** 30, seed=seed, dtype="int32")
        if method == "ddim":
            return self.ddim_sample_loop(tf.constant(n), self._steps(method, steps),
                                         tf.constant(float(eta)), base)
        return self.p_sample_loop(tf.constant(n), self._steps(method, steps), base)

    def _inpaint(self, x, mask, seed, method="ancestral", steps=None, eta=0.0, resample=1):
        """RePaint with either sampler; `resample` >= 1 jumps per step."""
        base = keras.random.randint([2], 0, 2 ** 30, seed=seed, dtype="int32")
        return self.repaint_loop(x, mask, self._steps(method, steps), base, method, tf.constant(float(eta)),
                                 int(resample))
