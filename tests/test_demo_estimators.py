"""zoo.demos.estimators: naive Monte Carlo from the prior, importance sampling with q and AIS as
estimates of log p(x) against their cost. Known answers: a flat decoder (every estimator is exact
for any k), the quadrature value of a 1-D bars VAE (both converge to it, IS with far less spread at
small k), AIS's count of decoder evaluations, and the runner's rows and table."""
import math

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.support import bars_vae
from tests.test_demo_posterior import LOG_HALF_16, flat_vae
from zoo.ais import ais_log_prob
from zoo.demos import estimators as E
from zoo.demos import posterior as P
from zoo.distributions import gaussian
from zoo.vocabulary import KINDS


@pytest.fixture(scope="module")
def vae1(bars):
    return bars_vae(bars, 1)


def test_a_flat_decoder_makes_every_estimator_exact(bars):
    model = flat_vae(1, q_is_prior=True)  # p(x|z) = 2^-16 and q(z|x) = p(z): every weight is p(x)
    x = bars.test[:6]
    for k in (1, 7, 300):
        np.testing.assert_allclose(E.prior_mc_log_prob(model, x, k, seed=k), LOG_HALF_16, atol=1e-5)
        np.testing.assert_allclose(model.log_prob_is(x, k, seed=k).numpy(), LOG_HALF_16, atol=1e-3)
    log_w, leapfrog = E.ais_log_weights(model, x, steps=4, chains=2, seed=3)
    assert log_w.shape == (2, 6) and leapfrog == E.LEAPFROG
    np.testing.assert_allclose(log_w, LOG_HALF_16, atol=1e-4)  # every chain's weight is p(x)
    np.testing.assert_allclose(E.ais_log_prob(model, x, steps=4, chains=2, seed=3), LOG_HALF_16, atol=1e-4)
    table = E.estimator_table(model, x, ks=(1, 10), repeats=2, ais=((2, 3),))
    np.testing.assert_allclose(table["nll"], -LOG_HALF_16, atol=1e-3)


def test_prior_mc_and_is_approach_the_quadrature_value(vae1, bars):
    x = bars.test[:50]
    exact = P.posterior(vae1, x).log_px  # [B]
    bias, spread = {}, {}
    for k in (10, 100, 5000):
        mc = np.stack([E.prior_mc_log_prob(vae1, x, k, seed=r) for r in range(4)])  # [R, B]
        is_ = np.stack([vae1.log_prob_is(x, k, seed=r).numpy() for r in range(4)])
        for name, est in (("mc", mc), ("is", is_)):
            bias[name, k] = float((exact - est.mean(0)).mean())  # >= 0 on average: lower bounds
            spread[name, k] = float(est.std(0).mean())  # over repeats, per image
    assert bias["mc", 10] > 0.15 and abs(bias["is", 10]) < 0.05  # prior draws miss the posterior
    assert abs(bias["mc", 5000]) < 0.02 and abs(bias["is", 5000]) < 0.02
    assert spread["is", 10] < spread["mc", 10] / 3 and spread["is", 100] < spread["mc", 100] / 2
    assert spread["mc", 5000] < spread["mc", 100] < spread["mc", 10]
    assert spread["is", 5000] < spread["is", 100] < spread["is", 10]
    short, long = (exact - E.ais_log_prob(vae1, x, steps=t, chains=16, seed=0) for t in (10, 300))
    assert abs(long.mean()) < 0.04 and np.abs(long).mean() < np.abs(short).mean() / 2  # AIS: more steps


def test_equal_seeds_give_equal_estimates_and_chunks_do_not_matter(vae1, bars):
    x = bars.test[:5]
    a = E.prior_mc_log_prob(vae1, x, 50, seed=4)
    np.testing.assert_array_equal(a, E.prior_mc_log_prob(vae1, x, 50, seed=4))
    assert not np.allclose(a, E.prior_mc_log_prob(vae1, x, 50, seed=5))
    one = E.prior_mc_log_prob(vae1, x, 1, seed=4, chunk=1)  # the first draw of seed 4, chunk 0
    np.testing.assert_allclose(one, E.prior_mc_log_prob(vae1, x, 1, seed=4), atol=1e-6)


def test_ais_cost_counts_the_decoder_evaluations():
    count = tf.Variable(0, dtype=tf.int64)

    def log_lik(z, x):  # counts its executions; each is one batched decoder pass over [C, B]
        with tf.control_dependencies([count.assign_add(1)]):
            return -0.5 * tf.reduce_sum((z - 1.0) ** 2, -1)

    for steps, leapfrog in [(1, 3), (2, 1), (10, 5)]:
        count.assign(0)
        tf.function(lambda: ais_log_prob(gaussian(tf.zeros([1]), tf.ones([1])), log_lik, tf.zeros([3, 2]),
                                         steps, 4, seed=[1, 2], leapfrog_steps=leapfrog))()
        assert E.ais_cost(steps, 4, leapfrog) == 4 * int(count.numpy())  # per chain: one pass per call


def test_the_table_has_every_method_with_its_cost(vae1, bars):
    table = E.estimator_table(vae1, bars.test[:5], ks=(1, 10), repeats=2, ais=((2, 3),))
    assert list(table.columns) == ["method", "k", "steps", "cost", "cost_counts", "repeat", "nll", "seconds"]
    counts = table.groupby("method").size().to_dict()
    assert counts == {"prior MC": 4, "IS with q": 4, "AIS": 4, "quadrature": 1}  # AIS: 1 and 2 chains
    ais = table[table["method"] == "AIS"]
    assert set(ais["cost"]) == {E.ais_cost(3, c, E.LEAPFROG) for c in (1, 2)} and set(ais["steps"]) == {3}
    quad = table[table["method"] == "quadrature"].iloc[0]
    assert quad["cost"] == quad["k"] == E.QUADRATURE_POINTS[1]
    exact = -P.posterior(vae1, bars.test[:5]).log_px.mean()
    assert quad["nll"] == pytest.approx(exact, abs=1e-4)
    is_10 = table[(table["method"] == "IS with q") & (table["k"] == 10)]
    assert (is_10["nll"] >= exact - 0.2).all()  # a lower bound on log p(x), up to its noise
    assert set(table["cost_counts"]) == {E.COST[m] for m in counts}
    assert set(E.KIND_OF) == set(E.COST) and set(E.KIND_OF.values()) <= set(KINDS)  # the charts' colours


def test_runner_outputs(vae1, bars):
    x = bars.test[:40]
    rows, tables = E.runner_outputs(vae1, bars, x, seed=0)
    assert [(name, kind) for name, _, kind in rows] == [("prior_mc_nll", "mc"), ("prior_mc_k", None)]
    assert all(kind is None or kind in KINDS for _, _, kind in rows), "add 'mc' to zoo.vocabulary.KINDS"
    assert rows[1][1] == E.PRIOR_MC_K
    assert rows[0][1] == pytest.approx(-E.prior_mc_log_prob(vae1, x, E.PRIOR_MC_K, seed=0).mean())
    table = tables["estimators"]
    assert set(table["method"]) == {"prior MC", "IS with q", "AIS", "quadrature"}
    assert sorted(set(table.loc[table["method"] == "prior MC", "k"])) == list(E.RUNNER["ks"])
    assert set(table["repeat"]) == set(range(E.RUNNER["repeats"]))
    assert math.isfinite(table["nll"].sum())


def test_models_without_a_decoder(bars):
    pixelcnn = zoo.build_model("pixelcnn", bars, width=4, depth=1)
    assert E.runner_outputs(pixelcnn, bars, bars.test[:4]) == ([], {})
    with pytest.raises(ValueError, match="has no latent decoder"):
        E.prior_mc_log_prob(pixelcnn, bars.test[:4], 10)
    with pytest.raises(ValueError, match="k >= 1"):
        E.prior_mc_log_prob(flat_vae(1), bars.test[:4], 0)


def test_the_gan_has_prior_mc_and_ais(bars):
    gan = zoo.build_model("gan", bars, latent_dim=2, width=16, depth=1, ais_steps=3, ais_chains=2, seed=0)
    rows, tables = E.runner_outputs(gan, bars, bars.test[:16], seed=0)
    assert set(tables["estimators"]["method"]) == {"prior MC", "AIS", "quadrature"}  # no q: no IS
    assert math.isfinite(rows[0][1])


def test_summarise_takes_the_mean_and_range_over_repeats():
    import pandas as pd

    table = pd.DataFrame({"method": ["prior MC"] * 3 + ["AIS"] * 2 + ["quadrature"],
                          "k": [10, 10, 10, 2, 2, 1001], "steps": [None, None, None, 5, 5, None],
                          "cost": [10, 10, 10, 57, 57, 1001], "repeat": [0, 1, 2, 0, 1, 0],
                          "nll": [7.0, 8.0, 9.0, 6.5, 6.7, 6.4]})
    s = E.summarise(table)
    assert list(s["method"]) == ["prior MC", "AIS", "quadrature"]
    assert list(s["nll"]) == pytest.approx([8.0, 6.6, 6.4])
    assert list(s["nll_min"]) == [7.0, 6.5, 6.4] and list(s["nll_max"]) == [9.0, 6.7, 6.4]
    assert list(s["repeats"]) == [3, 2, 1] and s["nll_sd"].iloc[0] == pytest.approx(1.0)
    assert list(s["line"]) == ["prior MC", "AIS, 5 steps", "quadrature"]
