"""Maths checks shared by the model tests: a shape-only dataset, smaller copies of the shared data
fixtures, the probability mass over every 4x4 binary image, stochastic bounds (VAE, IWAE, flow,
diffusion) averaged over draws, and log-determinants against the autodiff Jacobian.

The index of a binary 4x4 image in `zoo.data.all_binary_images` is `zoo.sample_metrics.state_index`."""
import dataclasses

import numpy as np
import tensorflow as tf

from zoo.data import all_binary_images


@dataclasses.dataclass
class Fake:
    """A dataset's shape and levels without images: enough for `zoo.build_model`."""
    shape: tuple
    levels: int


# Every family at a size that trains a few bars steps in seconds (the tf.distribute and precision tests).
SMALL = {"vae": {}, "iwae": {}, "pixelcnn": {"width": 16, "depth": 2},
         "flow": {"network": "mlp", "width": 32}, "diffusion": {"network": "mlp", "width": 64},
         "gan": {"ais_steps": 5, "ais_chains": 2}, "m2": {"num_classes": 4, "width": 64, "latent_dim": 4},
         "mixture": {"components": 4}}


def subset(dataset, n_train, n_valid, n_test):
    """A copy of `dataset` with the first n images (and labels) of each split: for tests that count
    training steps or pay per evaluated image, given one of the shared (session) data fixtures."""
    n = {"train": n_train, "valid": n_valid, "test": n_test}
    return dataclasses.replace(dataset, **{s: dataset.split(s)[:k] for s, k in n.items()},
                               labels={s: y[:n[s]] for s, y in dataset.labels.items()})


def total_mass(model, draws=1, batch=16384, **log_prob_kwargs) -> float:
    """sum_x exp(log P(x)) over all 2^16 binary 4x4 images, in float64 (compiled, in batches).

    `model.log_prob(x, draws=draws, **log_prob_kwargs)`: 1 for a normalised exact model. For a
    stochastic lower bound each image's estimate averages `draws` draws; exp of a noisy estimate is
    biased up (Jensen: about exp(var / 2 draws)), so the sum is <= 1 only once `draws` is large enough.
    `model` may also be any function images -> log-probabilities `[B]` (then without draws / kwargs)."""
    if hasattr(model, "log_prob"):
        fn = tf.function(lambda xb: model.log_prob(xb, draws=draws, **log_prob_kwargs))
    elif draws != 1 or log_prob_kwargs:
        raise ValueError("total_mass: draws and log_prob keywords are for a model, not a function")
    else:
        fn = tf.function(model)
    x = all_binary_images(4, 4)
    log_p = np.concatenate([np.asarray(fn(x[i:i + batch])) for i in range(0, len(x), batch)])
    return float(np.exp(log_p.astype(np.float64)).sum())


def mean_bound(model, x, draws, batch=16384):
    """The bound itself (an expectation), estimated by averaging `draws` evaluations of log_prob."""
    fn = tf.function(lambda xb: model.log_prob(xb))
    return np.mean([np.concatenate([fn(x[i:i + batch]).numpy() for i in range(0, len(x), batch)])
                    for _ in range(draws)], axis=0)


def check_is1_is_the_elbo(model, x, draws=4):
    """log_prob_is with k=1 equals the ELBO in expectation (within 4 standard errors); returns both."""
    elbo_x = mean_bound(model, x, draws)
    is1_x = model.log_prob_is(x, 1, seed=1).numpy()
    diff = is1_x - elbo_x
    assert abs(diff.mean()) < 4 * diff.std() / np.sqrt(len(diff))
    return elbo_x, is1_x


def autodiff_logdet(fn, x) -> np.ndarray:
    """log|det d fn(x) / dx| per example, `[B]`, from the autodiff Jacobian of the flattened map:
    the reference for a bijection's analytic log-determinant (`fn` maps `[B, ...]` to `[B, ...]`
    with as many values per example as it takes)."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.reshape(fn(x), [x.shape[0], -1])
    jac = tape.batch_jacobian(y, x)  # [B, D, *x.shape[1:]]
    return tf.linalg.slogdet(tf.reshape(jac, [x.shape[0], y.shape[1], -1]))[1].numpy()


def zero_decoder(model):
    """`model` with its decoder's weights set to zero: every logit 0, so p(x|z) does not depend on z
    (bars: 2^-16 for every image): p(x) = p(x|z), p(z|x) = p(z), and the ELBO's gradient is -grad KL."""
    for w in model.decoder.weights:
        w.assign(np.zeros(w.shape, np.float32))
    return model


def bars_vae(bars, latent_dim, epochs=8, width=64):
    """A small VAE trained on the bars (seconds on 2 CPU cores), the same weights each call."""
    import keras

    import zoo

    keras.utils.set_random_seed(0)
    model = zoo.build_model("vae", bars, latent_dim=latent_dim, width=width, depth=2, learning_rate=3e-3,
                            seed=0, jit_compile=False)
    model.fit(bars.tf_dataset("train", 100, seed=0), epochs=epochs, verbose=0)
    return model
