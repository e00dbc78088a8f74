"""The "Autoencoders and decoders" page in AppTest on the fixture store (tests/test_dashboard.py): the
code map mu(x) with prior draws and its holes, decoder draws beside means; every number the page
shows is the zoo.demos function's on the run's saved model."""
import json
import os
import subprocess
import sys

from tests.test_dashboard import APP, NO_TF, ROOT, app, chart_specs, texts

PAGE = "teach_autoencoder"


def _model(store, label):
    from dashboard import artifacts

    rid = dict(zip(store.runs()["label"], store.runs()["run_id"]))[label]
    return artifacts.load_model(store.artifacts(rid).set_index("name")["path"]["model"])


def _bars():
    from zoo import data as zdata

    return zdata.load("bars", n_train=200, n_valid=50, n_test=50)  # the fixture's dataset entry


def test_the_page_pairs_equations_with_saved_samples_without_tensorflow(db, monkeypatch):
    at = app(db, PAGE, monkeypatch)
    assert at.title[0].value == "Autoencoders and decoders"
    assert len(at.latex) == 4
    captions = [c for im in at.image for c in im.captions]
    assert sum(c.startswith("saved samples of") for c in captions) == 4  # two compared runs, VAE, PixelCNN
    assert any("pixelcnn" in c for c in captions)
    assert len(at.multiselect(key="ae_runs").value) == 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    proc = subprocess.run([sys.executable, "-c", NO_TF, str(db), str(APP), PAGE], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exceptions, pictures, tf_loaded = json.loads(proc.stdout.strip().splitlines()[-1])[PAGE]
    assert exceptions == 0 and pictures > 0 and not tf_loaded


def test_the_code_map_shows_mu_prior_draws_and_the_holes_of_the_run(db, store, monkeypatch):
    from zoo.demos import latents

    at = app(db, PAGE, monkeypatch)
    at.multiselect(key="ae_runs").set_value([o for o in at.multiselect(key="ae_runs").options
                                             if o.endswith((" vae s0", " iwae_k3 s0"))]).run()
    at.toggle(key="ae_live_map").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    bars = _bars()
    m = latents.latent_map(_model(store, "vae"), bars.test[:1000], bars.labels["test"][:1000], n_prior=2000,
                           seed=0)
    shown = {t.label: t.value for t in at.metric}
    assert shown["holes"] == f"{m['holes']:.1%}"
    assert shown["KL(p(z) || q(z))"] == f"{m['kl_prior_aggregate']:.4g} nats"
    spec = json.dumps(chart_specs(at))
    assert '"cross"' in spec and '"z1"' in spec and '"label"' in spec
    assert len(chart_specs(at)) == 1 and len(chart_specs(at)[0]["layer"]) == 2  # dots, crosses
    assert ("Dots: mu(x) of 50 test images, by label; crosses: 300 of the 2000 prior draws "
            "(dark: in a hole).") in texts(at, "caption")  # the fixture's 50 bars test images
    assert any("beta = 1 (the ELBO)" in t for t in texts(at, "markdown"))
    plain = [t.replace("\\", "") for t in texts(at, "markdown")]  # ui.placeholder escapes markdown
    assert any("1-D latent" in t and "latent_dim: 2" in t for t in plain)  # the IWAE run
    captions = [c for im in at.image for c in im.captions]
    n_holes = int(m["prior"]["hole"].head(16).sum())
    assert (f"E[x|z] of the first 16 prior draws ({n_holes} of them in holes): what the decoder makes "
            "of p(z)") in captions


def test_decoder_draws_sit_beside_their_means(db, store, monkeypatch):
    from zoo.demos import decoders

    at = app(db, PAGE, monkeypatch)
    box = at.selectbox(key="ae_decoder_run")
    box.set_value(next(o for o in box.options if o.endswith(" vae s0"))).run()
    at.toggle(key="ae_live_draws").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    got = decoders.draws_beside_means(_model(store, "vae"), n_z=8, n_draws=3, seed=0)
    shown = {t.label: t.value for t in at.metric}
    assert shown["H[p(x|z)], mean over these z"] == f"{got['entropy'].mean():.4g} nats"
    assert any(c.startswith("top row: E[x|z] for 8 prior draws z") for im in at.image for c in im.captions)


def test_an_autoencoder_run_is_compared_with_the_vae_when_the_store_has_one(db, store, monkeypatch):
    at = app(db, PAGE, monkeypatch)
    picked = at.multiselect(key="ae_runs").value
    assert any(p.endswith(" ae_2d s0") for p in picked) and any(p.endswith(" vae s0") for p in picked)
    at.toggle(key="ae_live_map").set_value(True).run()
    assert any("beta = 0 (an autoencoder)" in t for t in texts(at, "markdown"))
    assert sum(t.label == "holes" for t in at.metric) == 2


def test_the_page_survives_an_empty_store(tmp_path, monkeypatch):
    from zoo.results import open_store

    empty = tmp_path / "empty.sqlite"
    open_store(str(empty)).dispose()
    at = app(empty, PAGE, monkeypatch)
    assert any("No runs in this store yet" in t for t in texts(at, "info"))
    assert len(at.latex) == 4 and not at.image
