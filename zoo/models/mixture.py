"""A mixture of K product-categorical components trained by EM (Dempster, Laird & Rubin 1977).

    p(x | theta) = sum_c pi_c prod_d theta_{c,d,x_d}      c = 1..K, d = 1..D sub-pixels, x_d in 0..L-1

each component a product over sub-pixels of categoricals on the L levels (product-Bernoulli when
L = 2; Bishop 2006 sec. 9.3.3). log p(x) is exact: -log p(x) = -logsumexp_c(log pi_c + sum_d log
theta_{c,d,x_d}), the term "nll" `[B]`, nats. With the lecture's symbols (Bruna, Stat 212b lecture 16),
Z = the component c of each example:

    E-step  r_nc = p(c | x_n, theta_old) = pi_c p(x_n | c) / sum_c' pi_c' p(x_n | c')
            the responsibilities `[N, K]` (Bishop eq. 9.23; 9.56 for Bernoulli pixels). With
            q(Z) = p(Z | X, theta_old), the KL in log p(X | theta) = L(q, theta) + KL(q || p(Z | X, theta))
            is 0: the bound touches the log-likelihood
    M-step  theta_new = argmax_theta Q(theta, theta_old) = E_q log p(X, Z | theta):
            N_c = sum_n r_nc,  n_{c,d,l} = sum_n r_nc [x_nd = l],
            pi_c = N_c / N,  theta_{c,d,l} = n_{c,d,l} / N_c
            (Bishop eq. 9.24-9.27; 9.59-9.60 for Bernoulli pixels: each component's level frequencies,
            weighted by its responsibilities)

so log p(X | theta) never decreases from one EM iteration to the next (Dempster et al. thm. 1). With a
`pseudocount` alpha > 0 (MAP-EM: a symmetric Dirichlet(alpha + 1) prior on pi and on each theta_{c,d,.})

            pi_c = (N_c + alpha) / (N + K alpha),  theta_{c,d,l} = (n_{c,d,l} + alpha) / (N_c + L alpha)

and what never decreases is the penalised objective log p(X | theta) + `log_prior()` (alpha times the sum
of every log pi_c and log theta_{c,d,l}; logged per epoch as `map_loss`, its negative per example);
alpha = 0 is plain ML-EM, whose log-likelihood itself never decreases (a level a component never saw
then has theta = 0: a test image may get -log p(x) = inf).

Training is EM inside Keras `fit` (no gradient, no optimizer step): `train_step` is the E-step, adding
each batch's sufficient statistics N_c `[K]` and n_{c,d,l} `[K, D, L]` to non-trainable variables; the
M-step above runs when the epoch ends (the `EMStep` callback from the contract hook `_fit_callbacks`).
One epoch is one full-batch EM iteration, and the epoch's `loss` is the mean -log p(x) over its
examples at the parameters its E-step used. (An epoch that does not pass over the whole training set
-- `steps_per_epoch`, or re-binarised data -- is an EM step on what it saw.) Under tf.distribute the
statistics are ON_READ variables summed over the replicas, like Keras's metric totals: the M-step sees
the global batch's sums, so 2 replicas give one device's parameters. Statistics left over when
training starts (a checkpoint written between an E-step and its M-step, the best epoch EarlyStopping
restored, or `train_on_batch`) are applied first.

Initialisation: pi uniform, each theta_{c,d,.} a Dirichlet(`init_concentration`) draw from the model's
`seed`. EM finds a local maximum: another seed may find a better one (on the bars, K = 4 merges two
bars in a few % of the starts).
"""
from __future__ import annotations

import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf

from zoo.contract import GenerativeModel, ModelConfig
from zoo.distribute import step_logs
from zoo.registry import register


def _replica_sum(*values):
    """`values` (a replica's own totals) summed over the replicas of the step (on one device: as they are)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return values
    return context.all_reduce("sum", list(values))


@dataclasses.dataclass
class MixtureConfig(ModelConfig):
    components: int = 10  # K
    # alpha of the Dirichlet(alpha + 1) priors (MAP-EM); 0 = maximum likelihood. 0.5: the best on the
    # digits' validation images of 0.25, 0.5 and 1 (experiments/configs/digits.yaml)
    pseudocount: float = 0.5
    # the start: each theta_{c,d,.} ~ Dirichlet(init_concentration); large = components near uniform (soft
    # random responsibilities at the first E-step), 1 = uniform on the simplex (near-hard random ones).
    # Bars, K = 4, 150 starts (numpy EM): stuck with two bars merged (+1.12 nats) in 14 % of the starts
    # at 1, 6 % at 3, 3.3 % at 10
    init_concentration: float = 10.0
    # (learning_rate is unused: EM has no step size)


class EMStep(keras.callbacks.Callback):
    """The M-step of `Mixture` at the end of every epoch, and of statistics pending when `fit` starts.
    Last in the callback list: the others' `on_epoch_end` (a checkpoint, EarlyStopping's best weights)
    see the parameters the epoch's E-step used, with its statistics."""

    def on_train_begin(self, logs=None):
        self.model.m_step()

    def on_epoch_end(self, epoch, logs=None):
        self.model.m_step()


@register("mixture")
class Mixture(GenerativeModel):
    """K product-categorical components; `nll_terms` = {nll: -log p(x)}, exact; trained by EM."""

    Config = MixtureConfig
    likelihood = "exact"
    term_names = ("nll",)
    has_encoder = True  # encode(x) = the responsibilities p(c | x)

    @classmethod
    def _check_hparams(cls, hp, data_shape) -> None:
        if hp.components < 1:
            raise ValueError(f"components must be >= 1 (K, the number of mixture components), "
                             f"got {hp.components}")
        if not hp.init_concentration > 0:
            raise ValueError(f"init_concentration must be > 0 (of the Dirichlet the components start from; "
                             f"e.g. 10.0), got {hp.init_concentration}")
        if not hp.pseudocount >= 0:
            raise ValueError(f"pseudocount must be >= 0 (alpha of the Dirichlet prior; 0 = maximum-"
                             f"likelihood EM, e.g. 1.0 = add-one smoothing), got {hp.pseudocount}")

    def __init__(self, data_shape, levels, **hparams):
        super().__init__(data_shape, levels, **hparams)
        k, d, n_levels = self.hp.components, self.num_dims, self.levels
        g = keras.random.gamma((k, d, n_levels), alpha=self.hp.init_concentration, seed=self.seed_generator)
        g = tf.maximum(g, 1e-30)
        log_theta = tf.math.log(g) - tf.math.log(tf.reduce_sum(g, -1, keepdims=True))  # [K, D, L]
        self.log_theta = keras.Variable(log_theta, trainable=False, name="log_theta")  # log theta_{c,d,l}
        self.log_pi = keras.Variable(tf.fill([k], -math.log(k)), trainable=False, name="log_pi")  # [K]
        stats = dict(trainable=False, aggregation="sum", synchronization="on_read")  # summed over replicas
        self.resp_sum = keras.Variable(tf.zeros([k]), name="resp_sum", **stats)  # N_c [K]
        # n_{c,d,l} [K, D, L]
        self.level_counts = keras.Variable(tf.zeros([k, d, n_levels]), name="level_counts", **stats)
        self.built = True

    def _fit_callbacks(self):
        return [EMStep()]

    # --- the model ---------------------------------------------------------------------------
    def _log_joint(self, x):
        """log pi_c + log p(x | c) = log pi_c + sum_d log theta_{c,d,x_d}, `[B, K]`, for uint8 x."""
        d, n_levels, k = self.num_dims, self.levels, self.hp.components
        idx = tf.reshape(tf.cast(x, tf.int32), [-1, d]) + tf.range(d) * n_levels  # [B, D] rows of the table
        table = tf.reshape(tf.transpose(self.log_theta, [1, 2, 0]), [d * n_levels, k])  # [D*L, K]
        log_px_c = tf.reduce_sum(tf.gather(table, idx), axis=1)  # [B, K] (a gather: no 0 * -inf)
        return self.log_pi[None, :] + log_px_c

    def _nll_terms(self, x, seed, training, labels=None):
        return {"nll": -tf.reduce_logsumexp(self._log_joint(x), axis=1)}  # [B]

    def _encode(self, x):
        """`encode(x)`: the responsibilities p(c | x) (Bishop eq. 9.23), float32 `[B, K]`, rows sum to 1."""
        return tf.nn.softmax(self._log_joint(x), axis=1)

    def _sample(self, n, seed):
        """Ancestral: c ~ Categorical(pi) `[n]`, then every sub-pixel x_d ~ Categorical(theta_{c,d,.})."""
        c = keras.random.categorical(self.log_pi[None, :], n, seed=seed)[0]  # [n]
        logits = tf.reshape(tf.gather(self.log_theta, c), [-1, self.levels])  # [n * D, L]
        x = keras.random.categorical(logits, 1, seed=seed)  # [n * D, 1]
        return tf.reshape(x, [n, *self.data_shape])

    def log_prior(self) -> float:
        """log p(theta) up to a constant, nats: alpha (sum_c log pi_c + sum_{c,d,l} log theta_{c,d,l})
        (the Dirichlet(alpha + 1) priors; 0 when alpha = 0). MAP-EM never decreases
        sum_n log p(x_n) + log_prior()."""
        return float(self._log_prior())

    def _log_prior(self):
        a = self.hp.pseudocount
        if a == 0:  # (ML-EM may hold log theta = -inf: 0 * -inf would be nan)
            return tf.constant(0.0)
        return a * (tf.reduce_sum(self.log_pi) + tf.reduce_sum(self.log_theta))

    # --- EM: the E-step is the train step, the M-step a callback ---------------------------------
    def train_step(self, data):
        """E-step on a replica's share of the batch: add sum_n r_nc `[K]` and sum_n r_nc [x_nd = l]
        `[K, D, L]` to the statistics. Logs `loss` = `nll`, the mean -log p(x) over the epoch's examples
        so far (all replicas'), and with alpha > 0 `map_loss` = nll - log p(theta) / N, the negative
        MAP objective per example that MAP-EM never raises (both nats per example)."""
        x, _ = self._unpack(data)
        log_joint = self._log_joint(x)  # [B, K]
        log_px = tf.reduce_logsumexp(log_joint, axis=1)  # [B]
        r = tf.exp(log_joint - log_px[:, None])  # [B, K] responsibilities
        onehot = tf.one_hot(tf.reshape(tf.cast(x, tf.int32), [-1, self.num_dims]), self.levels)  # [B, D, L]
        self.resp_sum.assign_add(tf.reduce_sum(r, axis=0))
        self.level_counts.assign_add(tf.einsum("bk,bdl->kdl", r, onehot))
        tracker = self.trackers["nll"]
        tracker.update_state(-log_px)  # per example: the epoch's exact mean, whatever the batch sizes
        # the epoch's mean over every replica's examples (Keras would average the replicas' own means)
        total, count = _replica_sum(tracker.total.value, tracker.count.value)
        logs = {"loss": total / count, "nll": total / count}
        if self.hp.pseudocount > 0:
            logs["map_loss"] = total / count - self._log_prior() / count
        return step_logs(logs)

    def m_step(self) -> bool:
        """Apply the M-step to the statistics gathered since the last one (summed over replicas), then
        clear them; False (nothing done) when there are none."""
        n_c = tf.convert_to_tensor(self.resp_sum)  # [K]
        total = float(tf.reduce_sum(n_c))
        if total <= 0:
            return False
        a, k, n_levels = self.hp.pseudocount, self.hp.components, self.levels
        counts = tf.convert_to_tensor(self.level_counts)  # [K, D, L]
        denom = n_c[:, None, None] + n_levels * a  # [K, 1, 1]; 0 only for an empty component under ML
        log_theta = tf.math.log(counts + a) - tf.math.log(tf.maximum(denom, 1e-30))
        self.log_theta.assign(tf.where(denom > 0, log_theta, self.log_theta))  # an empty one keeps its theta
        self.log_pi.assign(tf.math.log(n_c + a) - math.log(total + k * a))
        self.resp_sum.assign(tf.zeros_like(n_c))
        self.level_counts.assign(tf.zeros_like(counts))
        return True

    # --- the dashboard's table -------------------------------------------------------------------
    def reports(self, x, seed=0) -> dict:
        """{"components": one row per (component, sub-pixel): component, pi (its weight), row, col,
        channel, mean = E[x_d | c] in levels (0..L-1) and intensity = mean / (L - 1) in [0, 1]} -- the
        mean images the teaching page draws (`x` is not needed: the components are parameters)."""
        import pandas as pd

        k, (h, w, ch) = self.hp.components, self.data_shape
        theta = np.exp(self.log_theta.numpy().astype(np.float64))  # [K, D, L]
        mean = theta @ np.arange(self.levels)  # [K, D]
        rows, cols, chans = np.unravel_index(np.arange(self.num_dims), (h, w, ch))
        pi = np.exp(self.log_pi.numpy().astype(np.float64))
        table = pd.DataFrame({"component": np.repeat(np.arange(k), self.num_dims),
                              "pi": np.repeat(pi, self.num_dims), "row": np.tile(rows, k),
                              "col": np.tile(cols, k), "channel": np.tile(chans, k), "mean": mean.ravel(),
                              "intensity": mean.ravel() / max(self.levels - 1, 1)})
        return {"components": table}
