"""The families side by side (the overview page), links that open a page on a run, the presentation
view and the committed Streamlit config (AppTest on the fixture store of test_dashboard)."""
import tomllib

import pytest
from test_dashboard import ROOT, app, texts

from zoo.vocabulary import FAMILIES, FAMILY_FACTS, family


def test_overview_puts_the_six_families_side_by_side(db, monkeypatch):
    from zoo.results import open_store

    at = app(db, "overview", monkeypatch)
    table = at.table[0].value  # aspects down, families across (Isachenko's VAE-vs-flow table)
    assert list(table.columns) == list(FAMILIES)
    store = open_store(str(db))
    runs = store.runs(status="FINISHED").set_index("run_id")
    m = store.metrics(split="test").pivot(index="run_id", columns="name", values="value")
    store.dispose()
    for fam, col in table.items():
        assert col["latent"] == FAMILY_FACTS[fam].latent
        assert col["training objective"] == FAMILY_FACTS[fam].objective
        rid = int(col["best run"].split()[0][1:])  # "#3 pixelcnn s0"
        mine = runs.index[runs["model"].map(family) == fam]
        best = m.loc[[i for i in mine if i in m.index], "nll"].dropna()
        assert rid == best.idxmin() and float(col["best test nats"]) == pytest.approx(best.min(), abs=5e-4)
        assert int(col["network calls per sample"]) == m.loc[rid, "sample_network_calls"]
    # the recorded sampling cost: a 4x4x1 PixelCNN writes 16 sub-pixels; the tiny diffusion samples in
    # its 16 ancestral steps; one call for the others
    calls = table.loc["network calls per sample"].astype(int).to_dict()
    assert calls == {"VAE": 1, "Flow": 1, "PixelCNN": 16, "Diffusion": 16, "GAN": 1, "Mixture": 1}
    kinds = table.loc["likelihood kind (best run)"]
    assert kinds["GAN"] == "AIS" and kinds["PixelCNN"] == "exact" and kinds["Diffusion"] == "VLB"
    assert len(at.image) == 1 + len(FAMILIES)  # real images + one grid per family


def test_a_link_opens_a_page_on_a_run_and_the_address_follows_the_view(db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from zoo.results import open_store

    store = open_store(str(db))
    runs = store.runs()
    store.dispose()
    iwae = int(runs.loc[runs["label"] == "iwae_k3", "run_id"].iloc[0])
    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    at.query_params.update({"dataset": "bars", "run": str(iwae)})
    at.run()
    at.switch_page("views/teach_vae.py").run()
    assert not at.exception
    assert at.selectbox(key="teach_VAE").value.startswith(f"#{iwae} iwae_k3")  # not the default (best) run
    assert dict(at.query_params) == {"dataset": "bars", "run": str(iwae)}
    assert any(f"/teach_vae?dataset=bars&run={iwae}" in t for t in texts(at, "caption"))
    vae = int(runs.loc[runs["label"] == "vae", "run_id"].iloc[0])
    at.selectbox(key="teach_VAE").set_value(f"#{vae} vae s0").run()
    assert at.query_params["run"] == str(vae)  # the address follows the pick


def test_the_presentation_view_enlarges_type_and_figures(db, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120).run()
    at.switch_page("views/teach_gan.py").run()
    assert not at.toggle(key="present").value and not any("font-size: 22px" in str(h.proto) for h in
                                                            at.get("html"))
    plain = [c.proto.spec for c in at.get("vega_lite_chart")]
    at.toggle(key="present").set_value(True).run()
    assert any("font-size: 22px" in str(h.proto) for h in at.get("html"))
    big = [c.proto.spec for c in at.get("vega_lite_chart")]
    assert len(big) == len(plain) >= 1
    assert all('"labelFontSize": 18' in s for s in big) and not any('"labelFontSize": 18' in s for s in plain)
    assert at.query_params["present"] == "1"
    fresh = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=120)
    fresh.query_params["present"] = "1"
    assert fresh.run().toggle(key="present").value  # a link opens in the presentation view


def test_the_streamlit_config_shipped_with_the_app_hides_the_developer_chrome():
    config = tomllib.loads((ROOT / "dashboard" / ".streamlit" / "config.toml").read_text())
    assert config["client"]["toolbarMode"] == "minimal"  # no Deploy button, no developer menu
    assert config["browser"]["gatherUsageStats"] is False  # no network at run time


def test_a_link_with_live_keeps_the_live_pictures_on(db, monkeypatch):
    """?live=1 opens a page with its live toggle on, and the page's link keeps live=1 (a slide's link
    copied from the sidebar reopens the live picture)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=180)
    at.query_params["live"] = "1"
    at.switch_page("views/teach_autoencoder.py").run()  # the link's page is the first one run
    assert not at.exception, [e.value for e in at.exception]
    assert at.toggle(key="ae_live_map").value
    assert at.query_params.get("live") == "1"
    assert any("live=1" in t for t in texts(at, "caption"))
    at.toggle(key="ae_live_map").set_value(False)
    at.toggle(key="ae_live_draws").set_value(False).run()
    assert "live" not in at.query_params  # every live picture off: the link drops it
