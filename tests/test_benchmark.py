"""The benchmark's judgement (experiments/benchmark.py): `suite_table` and `verdicts` on a small
hand-made store (no training, no TensorFlow), with values chosen to meet some targets, miss others
and sit exactly on a few."""
import math

import pytest

from experiments.benchmark import TARGETS, Verdict, print_suite, suite_table, verdicts
from zoo.data import bars_entropy
from zoo.results import open_store

H = bars_entropy(0.1)  # 6.5718 nats


def add_run(store, experiment, label, metrics, seed=0, epoch_seconds=(), status="FINISHED", noise=0.1,
            dataset="bars", model=None):
    """A finished (or `status`) run with test `metrics` and one epoch per `epoch_seconds` entry."""
    model = model or label.split("_")[0]
    rid = store.start_run(experiment=experiment, model=model, label=label, dataset=dataset, seed=seed,
                          config={"dataset": {"name": dataset, "noise": noise}, "model": model},
                          run_key=f"{experiment}-{label}-{seed}-{len(store.runs())}", likelihood="elbo")
    for epoch, seconds in enumerate(epoch_seconds):
        store.log_epoch(rid, epoch, {"epoch_seconds": seconds, "loss": 1.0})
    store.log_metrics(rid, "test", metrics)
    store.finish_run(rid, status, wall_time=1.0)
    return rid


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = open_store(tmp_path_factory.mktemp("bench") / "bench.sqlite")
    # bars: an early vae seed-0 run superseded by a later one, and a failed run that never counts
    add_run(s, "bars", "vae", {"nll": 99.0, "is_nll": 99.0}, seed=0)
    add_run(s, "bars", "vae", {"nll": H + 0.5, "is_nll": H + 0.04, "data_nll": H + 0.02, "pop_is_gap": 0.2},
            seed=0, epoch_seconds=(50, 70))  # 120 s: exactly the "<=" target
    add_run(s, "bars", "vae", {"nll": H + 0.5, "is_nll": H + 0.06, "data_nll": H + 0.02, "pop_is_gap": 0.2},
            seed=1, epoch_seconds=(60, 60))
    add_run(s, "bars", "vae", {"nll": 1.0, "is_nll": 1.0}, seed=2, status="FAILED")
    add_run(s, "bars", "flow", {"nll": H + 0.5, "data_nll": H + 0.02})  # no IS: its NLL counts, misses 0.3
    add_run(s, "bars", "pixelcnn", {"nll": H + 0.03})  # no pop_gap: no verdict
    add_run(s, "bars", "diffusion", {"nll": H + 0.25, "pop_gap": 0.2})
    add_run(s, "bars", "gan", {"kl_emp_true": 0.5, "kl_emp_true_floor": 0.25})  # no likelihood
    add_run(s, "bars_noisy", "vae", {"nll": 12.0, "is_nll": 11.0}, noise=0.2)
    # binarized MNIST: edges of "<" and ">=", and report-only figures
    mnist = {"experiment": "binarized_mnist", "dataset": "binarized_mnist"}
    add_run(s, **mnist, label="vae", metrics={"nll": 94.0, "is_nll": 90.0}, epoch_seconds=(900, 900))
    add_run(s, **mnist, label="iwae_k50", model="iwae", metrics={"nll": 93.0, "is_nll": 90.0})
    add_run(s, **mnist, label="pixelcnn", metrics={"nll": 85.0, "sampler_speedup": 10.0})
    yield s
    s.dispose()


def test_suite_table_keeps_the_latest_finished_run_per_label_and_seed(store):
    t = suite_table(store, "bars")
    assert sorted(zip(t["label"], t["seed"])) == [("diffusion", 0), ("flow", 0), ("gan", 0), ("pixelcnn", 0),
                                                  ("vae", 0), ("vae", 1)]
    vae = t[t["label"] == "vae"].set_index("seed")
    assert list(vae["is_nll"]) == pytest.approx([H + 0.04, H + 0.06])  # not the superseded 99
    assert list(vae["epochs"]) == [2, 2] and list(vae["train_seconds"]) == [120.0, 120.0]
    assert suite_table(store, "no_such_experiment").empty


def test_suite_table_measures_gaps_from_the_bars_entropy(store):
    t = suite_table(store, "bars").set_index("label")
    assert round(H, 4) == 6.5718 and (t["entropy"] == H).all()
    assert t.loc["flow", "is_gap_entropy"] == pytest.approx(0.5)  # no is_nll: the NLL
    assert t.loc["diffusion", "nll_gap_entropy"] == pytest.approx(0.25)
    assert t.loc["flow", "is_gap_data"] == pytest.approx(0.48)
    assert math.isnan(t.loc["gan", "is_gap_entropy"])
    noisy = suite_table(store, "bars_noisy").iloc[0]  # the run's own noise, not the default
    assert noisy["entropy"] == bars_entropy(0.2) > H
    assert noisy["is_gap_entropy"] == pytest.approx(11.0 - bars_entropy(0.2))
    mnist = suite_table(store, "binarized_mnist").set_index("label")
    assert "is_gap_entropy" not in mnist and "entropy" not in mnist
    assert mnist.loc["iwae_k50", "is_nll_minus_vae"] == 0.0


def test_bars_verdicts(store):
    got = verdicts(suite_table(store, "bars"), "bars")
    assert [(v.status, v.metric) for v in got] == [
        ("MET", "is_gap_entropy"),  # vae: mean 0.05 <= 0.1
        ("MET", "train_seconds"),  # 120 <= 120, exactly on the target
        ("figure", "pop_is_gap"),
        ("MISSED", "is_gap_entropy"),  # flow: 0.5 > 0.3
        ("MET", "nll_gap_entropy"),  # diffusion: 0.25 <= 0.3
        ("figure", "kl_emp_true"),  # gan
    ]  # no pixelcnn pop_gap (not measured) and no gan nll (no likelihood): no verdict
    vae_gap, seconds, pop, flow_gap, _, kl = got
    assert vae_gap.value == pytest.approx(0.05) and (vae_gap.op, vae_gap.target) == ("<=", 0.1)
    assert seconds == Verdict("MET", "... after <= 2 min of CPU", "train_seconds", 120.0, 120, "<=")
    assert (pop.value, pop.target, pop.op, pop.reference) == (pytest.approx(0.2), 0.1, "report", None)
    assert flow_gap.value == pytest.approx(0.5) and flow_gap.what.startswith("flow test NLL")
    assert (kl.value, kl.target, kl.reference) == (0.5, 0.25, "kl_emp_true_floor")


def test_mnist_verdicts_on_the_edges(store):
    got = {(v.metric, v.op): v for v in verdicts(suite_table(store, "binarized_mnist"), "mnist")}
    assert set(got) == {("is_nll", "<="), ("train_seconds", "<="), ("is_nll_minus_vae", "<"),
                        ("nll", "report"), ("sampler_speedup", ">=")}
    assert got[("is_nll", "<=")].status == "MET"
    assert got[("train_seconds", "<=")][:2] == ("MET", "... within 30 min on 2 CPU cores")  # 1800 <= 1800
    status_value_target = {key: (v.status, v.value, v.target) for key, v in got.items()}
    assert status_value_target[("is_nll_minus_vae", "<")] == ("MISSED", 0.0, 0)  # 0 < 0 is false
    assert status_value_target[("sampler_speedup", ">=")] == ("MET", 10.0, 10)  # 10 >= 10
    assert status_value_target[("nll", "report")] == ("figure", 85.0, 81.30)  # a reference, never judged


def test_verdicts_of_other_suites_or_no_runs_are_empty(store):
    assert verdicts(suite_table(store, "bars"), "no_such_suite") == []
    assert verdicts(suite_table(store, "no_such_experiment"), "bars") == []
    mine = [("bars", "flow", "nll", "<", 7.1, "flow below 7.1 nats"),
            ("bars", "vae", "nope", "<=", 1, "a metric no run has")]
    (v,) = verdicts(suite_table(store, "bars"), "bars", targets=mine)
    assert (v.status, v.value) == ("MET", pytest.approx(H + 0.5))
    assert all(op in ("<=", "<", ">=", "report") for _, _, _, op, _, _ in TARGETS)


def test_print_suite_prints_the_verdicts(store, capsys):
    print_suite(store, "bars", "bars")
    out = capsys.readouterr().out
    assert "== bars (bars) ==" in out
    assert ("target MET   : VAE IS-NLL (k=1000) within 0.1 nats of the entropy 6.5718: "
            "is_gap_entropy = 0.05 (target <= 0.1)") in out
    assert ("target MISSED: flow test NLL (IS) within 0.3 nats of the entropy: "
            "is_gap_entropy = 0.5 (target <= 0.3)") in out
    assert ("figure      : GAN: KL(sample histogram || true p) over the 2^16 states, nats: "
            "kl_emp_true = 0.5 (reference kl_emp_true_floor = 0.25)") in out
    assert "figure      : VAE IS-NLL (k=1000) gap on all 2^16 states weighted by p(x): pop_is_gap = 0.2 " \
           "(reference 0.1)" in out
    lines = [line.split(":")[0].split() for line in out.splitlines()]
    assert sum(w[:1] == ["target"] for w in lines) == 4 and sum(w == ["figure"] for w in lines) == 2
    assert "kl_emp_true_floor" in out.split("sample quality")[1]  # the sample-quality table
    print_suite(store, "digits", "no_such_experiment")
    assert "no finished runs" in capsys.readouterr().out


def test_time_shares_split_each_run_and_judge_the_main_job(tmp_path, capsys):
    from experiments.benchmark import print_time_shares, time_shares

    s = open_store(tmp_path / "t.sqlite")
    for label, wall, epochs in (("vae", 100.0, [(10, 8, 1, 0.5)] * 6), ("flow", 200.0, [(40, 36, 2, 1)] * 4)):
        rid = s.start_run(experiment="quick", model=label, label=label, dataset="digits", seed=0,
                          config={"model": label}, run_key=label, likelihood="elbo")
        for epoch, (total, steps, valid, ckpt) in enumerate(epochs):
            s.log_epoch(rid, epoch, {"epoch_seconds": total, "step_seconds": steps, "valid_seconds": valid,
                                     "checkpoint_seconds": ckpt})
        s.finish_run(rid, "FINISHED", wall_time=wall)
    t = time_shares(s, "quick").set_index("label")
    assert t.loc["vae", "outputs_seconds"] == 40 and t.loc["flow", "outputs_seconds"] == 40
    assert t.loc["vae", "other_epoch_seconds"] == pytest.approx(6 * 0.5)
    assert t.loc["vae", "bookkeeping"] == pytest.approx(1 - 48 / 60) and t["share"].sum() == pytest.approx(1)
    print_time_shares(s, "quick", "quick")
    out = capsys.readouterr().out
    assert "target MET   : the main job's runs in <= 5 min of wall time: 5.00 min" in out  # exactly 300 s
    assert "per-epoch bookkeeping: 12.7% of the epochs' time" in out  # 1 - (48 + 144) / (60 + 160)
