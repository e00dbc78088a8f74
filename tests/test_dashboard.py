"""The Streamlit dashboard (dashboard/), page by page in AppTest against a store made by a tiny REAL
run (every family on bars, 2 epochs: vae, iwae, pixelcnn, flow, diffusion and a GAN with an AIS
likelihood; a mixture trained by EM, 4 epochs; plus a pixelcnn entry that FAILS to build), and two
hand-made rows the runner cannot make quickly: a DIVERGED run, and a finished likelihood-free ("none")
run with D(real)/D(fake) history and no samples artifact (a placeholder must show)."""
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from zoo.results import open_store
from zoo.vocabulary import FAMILIES, KINDS, UNKNOWN_COLOUR

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
PAGES = sorted(p.stem for p in (ROOT / "dashboard" / "views").glob("*.py"))  # (experiments.dashboard_scale's)
NO_JIT = {"jit_compile": False}
TINY = {"name": "tiny_bars", "dataset": {"name": "bars", "n_train": 200, "n_valid": 50, "n_test": 50},
        "seeds": [0], "train": {"epochs": 2, "batch_size": 100, "verbose": 0},
        "eval": {"is_k": 5, "n_samples": 16, "batch_size": 100},
        "models": [{"model": "vae", "hparams": {"latent_dim": 2, "width": 8, "depth": 1, **NO_JIT}},
                   {"model": "iwae", "label": "iwae_k3",
                    "hparams": {"latent_dim": 1, "width": 8, "depth": 1, "k": 3, **NO_JIT}},
                   {"model": "pixelcnn", "hparams": {"width": 4, "depth": 1, **NO_JIT}},
                   {"model": "flow", "hparams": {"network": "mlp", "width": 8, "n_couplings": 1,
                                                 "dequantization": "uniform"}},
                   {"model": "diffusion",
                    "hparams": {"network": "mlp", "width": 16, "depth": 1, "sample_steps": 16,
                                "ddim_steps": 4, "eval_t_samples": 2}},
                   {"model": "gan", "label": "gan_ais",
                    "hparams": {"latent_dim": 2, "width": 8, "depth": 1, "ais_steps": 3, "ais_chains": 2,
                                "ais_leapfrog": 2, **NO_JIT}},
                   {"model": "vae", "label": "ae_2d",  # kl_weight 0: a plain autoencoder (noisy code)
                    "hparams": {"latent_dim": 2, "width": 8, "depth": 1, "kl_weight": 0.0, **NO_JIT}},
                   {"model": "pixelcnn", "label": "pixelcnn_cond",  # class-conditional: one bar per class
                    "hparams": {"width": 4, "depth": 1, "num_classes": 4, **NO_JIT}},
                   {"model": "mixture", "hparams": {"components": 4, "pseudocount": 0.1},  # EM
                    "train": {"epochs": 4}},
                   {"model": "pixelcnn", "label": "broken",  # FAILED: an even kernel
                    "hparams": {"kernel_size": 2}}]}


def build_store(tmp_path_factory) -> Path:
    """The fixture store (built once per session, shared with test_dashboard_e2e)."""
    from experiments.config import parse
    from experiments.runner import run_experiment

    root = tmp_path_factory.getbasetemp() / "dashboard_store"
    db = root / "store.sqlite"
    if (root / "done").exists():
        return db
    root.mkdir(exist_ok=True)
    store = open_store(str(db))
    run_experiment(parse(TINY), store, out=str(root / "runs"))
    rid = store.start_run(experiment="tiny_bars", model="vae", label="diverged", dataset="bars", seed=0,
                          config={"dataset": {"name": "bars"}}, run_key="hand-made-diverged",
                          likelihood="elbo")
    store.log_epoch(rid, 0, {"loss": float("nan")})
    store.finish_run(rid, "DIVERGED", error="training loss became nan at epoch 1; lower learning_rate")
    rid = store.start_run(experiment="tiny_bars", model="gan", label="gan", dataset="bars", seed=0,
                          config={"dataset": {"name": "bars"}}, run_key="hand-made-gan", likelihood="none")
    for epoch, (real, fake) in enumerate([(0.9, 0.2), (0.7, 0.4), (0.55, 0.45)]):
        store.log_epoch(rid, epoch, {"d_real": real, "d_fake": fake, "d_loss": 1.0 + epoch,
                                     "g_loss": 2.0 - epoch})
    store.log_metrics(rid, "train", {"samples_per_sec": 1000.0})
    store.finish_run(rid, "FINISHED", wall_time=1.0)
    store.dispose()
    (root / "done").touch()
    return db


@pytest.fixture(scope="module")
def ids(store):
    return dict(zip(store.runs()["label"], store.runs()["run_id"]))


def app(db, page=None, monkeypatch=None):
    """The dashboard on store `db` (via $ZOO_DB), run once, then switched to `page` and run."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    if page:
        at.switch_page(f"views/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at, kind):
    return [str(e.value) for e in getattr(at, kind)]


def chart_specs(at):
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def test_the_fixture_store_has_what_the_pages_need(store):
    status = dict(zip(store.runs()["label"], store.runs()["status"]))
    assert status == {"vae": "FINISHED", "iwae_k3": "FINISHED", "pixelcnn": "FINISHED", "flow": "FINISHED",
                      "diffusion": "FINISHED", "gan_ais": "FINISHED", "pixelcnn_cond": "FINISHED",
                      "ae_2d": "FINISHED", "mixture": "FINISHED", "broken": "FAILED", "diverged": "DIVERGED",
                      "gan": "FINISHED"}, \
        store.runs()["error"].tolist()
    arts = set(store.artifacts()["name"])
    assert {"model", "samples_png", "report_is_vs_k", "report_pixel_nll", "report_timestep_loss",
            "report_estimators", "report_inference_gaps"} <= arts
    m = store.metrics(split="test").pivot(index="run_id", columns="name", values="value")
    ids = dict(zip(store.runs()["label"], store.runs()["run_id"]))
    for label in ("vae", "iwae_k3", "ae_2d"):  # prior MC beside IS-NLL: the same test images, the same k
        assert m.loc[ids[label], "prior_mc_k"] == m.loc[ids[label], "is_k"] == TINY["eval"]["is_k"]
    assert m.loc[ids["gan_ais"], "prior_mc_nll"] > 0  # the GAN has a decoder p(x|z) too
    assert np.isnan(m.loc[ids["pixelcnn"], "prior_mc_nll"])  # no latent: nothing recorded


# --- leaderboard ------------------------------------------------------------------------------
def test_leaderboard_ranks_finished_runs_with_their_kind(db, store, ids, monkeypatch):
    at = app(db, monkeypatch=monkeypatch)
    assert at.title[0].value == "Leaderboard"
    table = at.dataframe[0].value
    finished = store.runs(status="FINISHED")
    expected = set(finished.loc[finished["likelihood"] != "none", "label"])
    assert expected == {"vae", "iwae_k3", "flow", "pixelcnn", "diffusion", "gan_ais",
                        "pixelcnn_cond", "ae_2d", "mixture"} == set(table["model"])
    badges = dict(zip(table["model"], table["kind"].map(lambda b: b[0])))
    assert badges == {"vae": "ELBO", "iwae_k3": "IWAE-3", "flow": "ELBO", "pixelcnn": "exact",
                      "diffusion": "VLB", "gan_ais": "AIS", "pixelcnn_cond": "exact",
                      "ae_2d": "ELBO", "mixture": "exact"}
    assert dict(zip(table["model"], table["family"])) == {"vae": "VAE", "iwae_k3": "VAE", "flow": "Flow",
                                                          "pixelcnn": "PixelCNN", "diffusion": "Diffusion",
                                                          "gan_ais": "GAN", "pixelcnn_cond": "PixelCNN",
                                                          "ae_2d": "VAE", "mixture": "Mixture"}
    assert list(table["nats"]) == sorted(table["nats"])
    assert list(table["rank"]) == list(range(1, len(table) + 1))
    m = store.metrics(split="test").set_index(["run_id", "name"])["value"]
    row = table.set_index("model").loc["vae"]
    assert row["nats"] == pytest.approx(m[(ids["vae"], "nll")])
    assert row["bits/dim"] == pytest.approx(m[(ids["vae"], "nll")] / (16 * math.log(2)))
    assert row["IS-NLL"] == pytest.approx(m[(ids["vae"], "is_nll")])
    assert row["gap to optimum"] == pytest.approx(m[(ids["vae"], "nll")] - m[(ids["vae"], "data_nll")])
    assert any("different kinds of number" in t for t in texts(at, "markdown"))
    assert any("6.5718" in t for t in texts(at, "caption"))  # the bars entropy
    assert len(at.get("vega_lite_chart")) == 1


def test_leaderboard_keeps_failed_diverged_and_likelihood_free_runs_apart(db, monkeypatch):
    at = app(db, monkeypatch=monkeypatch)
    ranked, free, apart = (d.value for d in at.dataframe[:3])  # (then the expander: a run's numbers)
    status = dict(zip(apart["model"], apart["status"]))
    assert status["broken"] == "FAILED" and status["diverged"] == "DIVERGED"
    assert "kernel_size" in apart.set_index("model").loc["broken", "error"]  # the real error, last line
    assert not {"broken", "diverged", "gan"} & set(ranked["model"])
    gan = free.set_index("model").loc["gan"]
    assert gan["nats"] == "n/a" and gan["bits/dim"] == "n/a" and gan["kind"] == "n/a"  # never 0


def test_leaderboard_aggregates_over_seeds(db, monkeypatch):
    at = app(db, monkeypatch=monkeypatch)
    per_run = at.dataframe[0].value.set_index("model")["nats"]
    at.toggle(key="aggregate").set_value(True).run()
    agg = at.dataframe[0].value.set_index("model")
    assert (agg["seeds"] == 1).all() and "run" not in agg
    assert agg["nats"].to_dict() == pytest.approx(per_run.to_dict())


def test_leaderboard_shows_where_each_run_ran(db, store, monkeypatch):
    """The "where" toggle adds host, devices, replicas, train precision and versions, as recorded by
    the runner; a run recorded without them (the hand-made GAN) shows "?"."""
    import socket

    at = app(db, monkeypatch=monkeypatch)
    assert "host" not in at.dataframe[0].value
    at.toggle(key="where").set_value(True).run()
    ranked, free = at.dataframe[0].value.set_index("model"), at.dataframe[1].value.set_index("model")
    runs = store.runs(status="FINISHED").set_index("label")
    for label, row in ranked.iterrows():
        assert row["host"] == runs.loc[label, "host"] == socket.gethostname()
        assert row["devices"] == runs.loc[label, "devices"] == "CPU:0" and row["replicas"] == "1"
        assert row["train precision"] == "float32" and row["versions"].startswith("tensorflow ")
    assert free.loc["gan", "host"] == "?" and free.loc["gan", "replicas"] == "?"
    at.toggle(key="aggregate").set_value(True).run()
    agg = at.dataframe[0].value.set_index("model")
    assert (agg["train precision"] == "float32").all() and (agg["replicas"] == "1").all()


def test_badges_and_their_colours_come_from_the_vocabulary():
    from dashboard import data

    assert [data.badge(k) for k in KINDS] == ["exact", "ELBO", "IWAE", "VLB", "AIS", "MC", "n/a"]
    assert (data.badge("iwae", 5), data.badge("elbo", 5), data.badge(None), data.badge("new")) == \
        ("IWAE-5", "ELBO", "?", "new")
    assert data.badge_colour("IWAE-5") == KINDS["iwae"].colour == "#1565c0"
    assert data.badge_colour("n/a") == "#757575" and data.badge_colour("?") == UNKNOWN_COLOUR
    assert [data.badge_markdown_colour(b) for b in ("exact", "ELBO", "IWAE-3", "VLB", "AIS", "n/a", "?")] == \
        ["green", "orange", "blue", "violet", "red", "gray", "gray"]


# --- samples ----------------------------------------------------------------------------------
def test_samples_show_grids_real_images_and_a_placeholder(db, store, monkeypatch):
    at = app(db, "samples", monkeypatch)
    assert len(at.multiselect(key="samples_runs").value) == 6  # the first six by default
    at.multiselect(key="samples_runs").set_value(at.multiselect(key="samples_runs").options).run()
    captions = [c for im in at.image for c in im.captions]
    assert captions[0] == "real test images"
    with_grid = store.artifacts().query("name == 'samples_png'")["run_id"]
    grids = [c for c in captions if c.startswith("#") and "row y" not in c]  # (not the class-per-row grids)
    assert len(grids) == len(with_grid) >= 6
    by_class = store.artifacts().query("name == 'samples_by_class_png'")["run_id"]
    assert sum(c.startswith("#") and "row y" in c for c in captions) == len(by_class) >= 1
    assert any("missing artifact" in t for t in texts(at, "markdown"))  # the GAN row saved no grid


def test_samples_seed_redraws_from_the_model(db, store, ids, monkeypatch):
    at = app(db, "samples", monkeypatch)
    at.multiselect(key="samples_runs").set_value([f"#{ids['vae']} vae s0"]).run()
    at.toggle(key="redraw").set_value(True).run()
    at.number_input(key="seed").set_value(3).run()
    assert not at.exception, [e.value for e in at.exception]
    drawn = [im for im in at.image if im.captions[0].endswith("seed 3")]
    assert len(drawn) == 1
    first = drawn[0].value
    at.number_input(key="seed").set_value(4).run()
    assert [im.value for im in at.image if im.captions[0].endswith("seed 4")] != [first]
    at.number_input(key="seed").set_value(3).run()
    same = [im.value for im in at.image if im.captions[0].endswith("seed 3")]
    assert same == [first]  # same seed, same pixels


def test_redraw_is_deterministic_per_seed(store, ids):
    from dashboard import artifacts

    path = store.artifacts(ids["flow"]).set_index("name")["path"]["model"]
    redraw = artifacts.redraw
    a, b, c = redraw(path, 16, 5), redraw.__wrapped__(path, 16, 5), redraw(path, 16, 6)
    assert a.shape == (16, 4, 4, 1) and a.dtype == np.uint8 and set(np.unique(a)) <= {0, 1}
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# --- curves -----------------------------------------------------------------------------------
def test_curves_overlay_runs_with_log_scale_and_smoothing(db, monkeypatch):
    at = app(db, "curves", monkeypatch)
    terms = at.multiselect(key="curves_terms")
    assert {"loss", "rate", "distortion", "prior", "d_real"} <= set(terms.options)
    assert len(at.get("vega_lite_chart")) == len(terms.value) >= 1
    terms.set_value(["loss"]).run()
    at.toggle(key="curves_log").set_value(True).run()
    at.slider(key="curves_smooth").set_value(0.5).run()
    assert not at.exception
    (spec,) = chart_specs(at)
    assert '"log"' in json.dumps(spec) or '"symlog"' in json.dumps(spec)
    assert '"strokeDash"' in json.dumps(spec)  # training solid, validation dashed


# --- bound anatomy ----------------------------------------------------------------------------
def test_bound_anatomy_draws_each_family_and_says_which_are_missing(db, monkeypatch):
    at = app(db, "anatomy", monkeypatch)
    infos = texts(at, "info")
    assert not any(f"({family})" in t for t in infos for family in FAMILIES)
    specs = json.dumps(chart_specs(at))
    fields = set(re.findall(r'"field": "([^"]+)"', specs))
    assert {"rate", "distortion", "k", "nll", "term", "nats", "epoch", "value", "t"} <= fields  # t: diffusion
    assert '"rect"' in specs and {"row", "col"} <= fields  # the PixelCNN per-pixel NLL heat map


# --- teaching pages ---------------------------------------------------------------------------
@pytest.mark.parametrize("page, n_latex", [("teach_vae", 6), ("teach_pixelcnn", 2), ("teach_flow", 4),
                                           ("teach_diffusion", 4), ("teach_gan", 3)])
def test_teach_pages_pair_equations_with_live_numbers(db, page, n_latex, monkeypatch):
    at = app(db, page, monkeypatch)
    assert len(at.latex) == n_latex
    assert len(at.metric) >= 4
    if page == "teach_gan":  # the AIS run has nats; the plain GAN shows n/a, never 0
        box = at.selectbox(key="teach_GAN")
        assert at.metric[0].value != "n/a" and "gan_ais" in box.value
        box.set_value(next(o for o in box.options if o.endswith(" gan s0"))).run()
        assert at.metric[0].value == "n/a"
    else:
        assert any(m.value != "n/a" for m in at.metric)
        assert len(at.image) == 2  # real test images beside the run's samples


def test_teach_vae_numbers_are_the_runs(db, store, ids, monkeypatch):
    at = app(db, "teach_vae", monkeypatch)
    run = at.selectbox(key="teach_VAE").value
    rid = int(run.split()[0][1:])
    m = store.metrics(rid, split="test").set_index("name")["value"]
    shown = {t.label: t.value for t in at.metric}
    assert shown["distortion"] == f"{m['distortion']:.4g}" and shown["rate"] == f"{m['rate']:.4g}"
    assert any(f"{m['nll'] - m['is_nll']:.3f}" in t for t in texts(at, "caption"))  # the KL gap


def test_teach_bars_shows_real_bars_and_the_entropy(db, monkeypatch):
    at = app(db, "teach_bars", monkeypatch)
    assert at.metric[0].value == "6.5718 nats"
    assert [im.captions[0][:13] for im in at.image] == ["the four bars", "real bars: ea"]
    assert len(at.get("vega_lite_chart")) == 1


# --- explore ----------------------------------------------------------------------------------
@pytest.mark.parametrize("label, manifold",
                         [("vae", "2-D latent"), ("iwae_k3", "1-D latent"), ("flow", None)])
def test_explore_reconstructs_interpolates_and_maps_the_latent(db, ids, label, manifold, monkeypatch):
    at = app(db, "explore", monkeypatch)
    at.selectbox(key="explore_run").set_value(f"#{ids[label]} {label} s0").run()
    at.slider(key="explore_t").set_value(0.25).run()
    assert not at.exception, [e.value for e in at.exception]
    captions = [c for im in at.image for c in im.captions]
    assert captions[0].startswith("top: test images") and "t = 0.25" in captions
    if manifold:
        assert any(manifold in c for c in captions)
    else:
        assert "exact for a bijection" in captions[0] and any("16 dimensions" in t for t in texts(at, "info"))


def test_flow_reconstruction_is_exact(store, ids):
    """What Explore shows for the flow: decode(encode(x)) == x (a bijection, midpoint dequantised)."""
    from dashboard import artifacts
    from zoo import data as zdata

    model = artifacts.load_model(store.artifacts(ids["flow"]).set_index("name")["path"]["model"])
    x = zdata.load("bars", n_train=10, n_valid=10, n_test=10).test
    assert np.abs(np.asarray(model.decode(model.encode(x))) - x).max() < 1e-3


# --- empty store, store selection, no TensorFlow -----------------------------------------------
def test_an_empty_store_says_how_to_fill_it(tmp_path, monkeypatch):
    empty = tmp_path / "empty.sqlite"
    open_store(str(empty)).dispose()  # tables, no runs
    at = app(empty, monkeypatch=monkeypatch)
    for page in PAGES:
        at.switch_page(f"views/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        if page != "teach_bars":  # the bars page teaches from zoo.data alone
            assert any("No runs in this store yet" in t for t in texts(at, "info")), page
            assert any("experiments/configs/quick.yaml" in t for t in texts(at, "code")), page
        assert not at.dataframe and len(at.image) == (2 if page == "teach_bars" else 0), page


def test_a_missing_store_file_is_not_created(tmp_path, monkeypatch):
    missing = tmp_path / "nope.sqlite"
    at = app(missing, monkeypatch=monkeypatch)
    assert any("No runs in this store yet" in t for t in texts(at, "info"))
    assert not missing.exists()


def test_db_url_precedence(monkeypatch):
    from dashboard.data import db_url
    from zoo.results import DEFAULT_DB

    monkeypatch.setenv("ZOO_DB", "from-env.sqlite")
    assert db_url(["--db", "sqlite:///x.sqlite"]) == "sqlite:///x.sqlite"
    assert db_url(["-q", "tests/x.py"]) == "from-env.sqlite"
    monkeypatch.delenv("ZOO_DB")
    assert db_url([]) == str(DEFAULT_DB)


NO_TF = """
import json, os, sys
from streamlit.testing.v1 import AppTest
os.environ["ZOO_DB"] = sys.argv[1]
at = AppTest.from_file(sys.argv[2], default_timeout=120).run()
out = {}
for page in sys.argv[3:]:
    at.switch_page(f"views/{page}.py").run()
    out[page] = [len(at.exception), len(at.image) + len(at.get("vega_lite_chart")) + len(at.dataframe),
                 "tensorflow" in sys.modules or "keras" in sys.modules]
print(json.dumps(out))
"""


def test_pages_load_without_tensorflow(db):
    pages = [p for p in PAGES if p != "explore"]

    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", NO_TF, str(db), str(APP), *pages], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(out) == set(pages)
    for page, (exceptions, pictures, tf_loaded) in out.items():
        assert exceptions == 0 and not tf_loaded, (page, out[page])
        assert pictures > 0, page  # something drawn from the store
