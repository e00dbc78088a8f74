"""Evaluation: the population NLL on bars against oracle and uniform models; one row per metric."""
import math

import numpy as np
import pytest
import tensorflow as tf
from support import subset

import zoo
from zoo.evaluation import evaluate, population_rows


class _Known:
    """A stand-in model whose log q(x) is given by a function of the uint8 images."""

    likelihood = "exact"
    has_importance_sampling = population_is = False

    def __init__(self, log_q):
        self.log_q = log_q

    def check_input(self, x):
        return tf.convert_to_tensor(x, tf.uint8)

    def nll_terms(self, x, seed=None):
        return {"nll": tf.numpy_function(lambda v: -self.log_q(v).astype(np.float32), [x], tf.float32)}


def test_population_nll_is_the_entropy_for_the_truth_and_kl_for_others(bars, digits):
    rows = {n: v for n, v, _ in population_rows(_Known(bars.true_log_prob), bars)}
    assert abs(rows["pop_nll"] - bars.entropy) < 1e-4 and abs(rows["pop_gap"]) < 1e-4
    uniform_model = _Known(lambda v: np.full(len(v), -16 * math.log(2)))
    uniform = {n: v for n, v, _ in population_rows(uniform_model, bars)}
    assert math.isclose(uniform["pop_nll"], 16 * math.log(2), rel_tol=1e-5)  # KL(p || uniform) = 16 ln 2 - H
    assert math.isclose(uniform["pop_gap"], 16 * math.log(2) - bars.entropy, rel_tol=1e-4)
    assert population_rows(_Known(bars.true_log_prob), digits) == []  # only where p is known


@pytest.mark.parametrize("name", zoo.list_models())
def test_evaluate_gives_each_metric_once(name, bars):
    bars = subset(bars, 64, 16, 16)
    rows = evaluate(zoo.build_model(name, bars), bars, batch_size=16)
    names = [n for n, _, _ in rows]
    assert len(names) == len(set(names))
    assert "nll" in names or zoo.build_model(name, bars).likelihood == "none"


def test_store_rejects_repeated_metric_names(tmp_path):
    from zoo.results import open_store

    store = open_store(str(tmp_path / "s.sqlite"))
    run = store.start_run(experiment="e", model="m", label="m", dataset="bars", seed=0, config={},
                          run_key="k")
    with pytest.raises(ValueError, match="repeat.*'nll'"):
        store.log_metrics(run, "test", [("nll", 1.0, "exact"), ("nll", 1.0, "exact")])
