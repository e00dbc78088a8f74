"""Helpers shared by the model tests: a shape-only dataset, and checks of stochastic bounds (VAE,
IWAE, flow)."""
import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass
class Fake:
    """A dataset's shape and levels without images: enough for `zoo.build_model`."""
    shape: tuple
    levels: int


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
