"""The "Bounds and decoders" page (dashboard/views/comparisons.py) in AppTest on a hand-made store: the
equal-cost table (rows L = k, the VAE's and IWAE's test nats and IS-NLL, means over seeds) and the decoder
comparison (the best run of each pixel law, its nats beside its sample grid)."""
import numpy as np
import pytest
from PIL import Image
from test_dashboard import APP

from zoo.results import open_store

DIGITS = {"name": "digits"}
NET = {"latent_dim": 16, "width": 256, "depth": 2, "kl_weight": 1.0}
# (experiment, model, label, seed, extra hparams, status, nll, is_nll)
RUNS = [("bounds", "vae", "vae_l1", 0, {"decoder": "auto"}, "FINISHED", 100.0, 95.0),
        ("bounds", "vae", "vae_l5", 0, {"decoder": "auto", "samples": 5}, "FINISHED", 99.5, 94.6),
        ("bounds", "vae", "vae_l5", 1, {"decoder": "auto", "samples": 5}, "FINISHED", 99.7, 94.8),
        ("bounds", "iwae", "iwae_k1", 0, {"decoder": "auto", "k": 1}, "FINISHED", 100.2, 95.1),
        ("bounds", "iwae", "iwae_k5", 0, {"decoder": "auto", "k": 5}, "FINISHED", 97.0, 93.0),
        ("bounds", "vae", "ae", 0, {"decoder": "auto", "kl_weight": 0.0}, "FINISHED", 150.0, 140.0),
        ("bounds", "vae", "vae_l50", 0, {"decoder": "auto", "samples": 50}, "FAILED", None, None),
        ("decoders", "vae", "vae_categorical", 0, {"decoder": "categorical"}, "FINISHED", 96.0, 93.5),
        ("decoders", "vae", "vae_logistic", 0, {"decoder": "discretized_logistic"}, "FINISHED", 98.0, 96.0),
        ("decoders", "vae", "vae_gaussian", 0, {"decoder": "discretized_gaussian"}, "FINISHED", 105.0, 101.0),
        ("decoders", "vae", "vae_gaussian", 1, {"decoder": "discretized_gaussian"}, "FINISHED", 110.0, 104.0),
        ("decoders", "vae", "vae_gaussian_sigma1", 0,
         {"decoder": "discretized_gaussian", "decoder_sigma": 1.0}, "FINISHED", 130.0, 120.0)]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    root = tmp_path_factory.mktemp("comparisons")
    store = open_store(str(root / "store.sqlite"))
    for i, (experiment, model, label, seed, hp, status, nll, is_nll) in enumerate(RUNS):
        rid = store.start_run(experiment=experiment, model=model, label=label, dataset="digits", seed=seed,
                              config={"dataset": DIGITS, "hparams": {**NET, **hp}}, run_key=f"hand-{i}",
                              likelihood="iwae" if model == "iwae" else "elbo")
        folder = root / "runs" / experiment / label / f"seed{seed}-run{rid}"
        folder.mkdir(parents=True)
        store.update_run(rid, out_dir=str(folder))
        if nll is not None:
            kind = "iwae" if model == "iwae" else "elbo"
            store.log_metrics(rid, "test", [("nll", nll, kind),
                                            ("bits_per_dim", nll / (64 * np.log(2)), kind),
                                            ("is_nll", is_nll, "iwae"), ("is_k", 5000.0, None)])
            Image.fromarray(np.full((18, 18), 10 * i, np.uint8)).save(folder / "samples.png")
            store.log_artifact(rid, "samples_png", str(folder / "samples.png"))
        store.finish_run(rid, status, wall_time=1.0)
    store.dispose()
    return root / "store.sqlite"


def page(db, monkeypatch, experiment=None):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    if experiment:
        at.selectbox(key="experiment").set_value(experiment).run()
    at.switch_page("views/comparisons.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_equal_cost_table_puts_the_vae_with_l_draws_beside_the_iwae_with_k_equal_l(db, monkeypatch):
    at = page(db, monkeypatch, "bounds")
    table = at.dataframe[0].value.set_index("samples (L = k)")
    assert list(table.index) == [1, 5]  # the failed L = 50 run and the kl_weight 0 autoencoder are left out
    vae, iwae = "VAE (L-sample ELBO) nats [ELBO]", "IWAE (L_k) nats [IWAE-k]"
    assert table[vae].tolist() == pytest.approx([100.0, 99.6])  # L = 5: the mean of its two seeds
    assert table["VAE IS-NLL"].tolist() == pytest.approx([95.0, 94.7])
    assert table["VAE runs"].tolist() == [1, 2]
    assert table[iwae].tolist() == pytest.approx([100.2, 97.0])
    assert table["IWAE IS-NLL"].tolist() == pytest.approx([95.1, 93.0])
    badges = " ".join(str(m.value) for m in at.markdown)
    assert "[ELBO]" in badges and "[IWAE-1]" in badges and "[IWAE-5]" in badges and "[IWAE-5000]" in badges
    assert any("k = 5000" in str(c.value) for c in at.caption)


def test_the_decoders_side_by_side_with_their_nats_and_samples(db, monkeypatch):
    at = page(db, monkeypatch, "decoders")
    laws = at.dataframe[1].value
    assert laws["decoder"].tolist() == ["categorical", "discretized_logistic",
                                        "discretized_gaussian (sigma learned)",
                                        "discretized_gaussian (sigma 1.0 levels)"]  # best nats first
    assert laws["test nats"].tolist() == [96.0, 98.0, 105.0, 130.0]  # the best of the two Gaussian runs
    assert laws["IS-NLL"].tolist() == [93.5, 96.0, 101.0, 120.0]
    assert len(at.image) == 1 + 4  # real test images + one sample grid per law
    captions = [c for img in at.image for c in img.captions]
    assert "discretized_gaussian (sigma 1.0 levels): 130.00 nats (ELBO)" in captions
    assert any("mean E[x|z] plus independent pixel noise" in str(c.value) for c in at.caption)
    # every decoders run trains one sample per example: all in the L = 1 row, keyed by decoder
    table = at.dataframe[0].value.set_index("decoder")
    assert set(table.index) == set(laws["decoder"]) and set(table["samples (L = k)"]) == {1}
    assert table.at["discretized_gaussian (sigma learned)", "VAE runs"] == 2
    assert table.at["discretized_gaussian (sigma learned)", "VAE (L-sample ELBO) nats [ELBO]"] == 107.5


def test_all_experiments_key_the_rows_by_experiment(db, monkeypatch):
    at = page(db, monkeypatch)
    table = at.dataframe[0].value
    assert {"experiment", "decoder", "samples (L = k)"} <= set(table.columns)
    row = table[(table["experiment"] == "bounds") & (table["samples (L = k)"] == 5)]
    assert row["IWAE (L_k) nats [IWAE-k]"].tolist() == [97.0]
