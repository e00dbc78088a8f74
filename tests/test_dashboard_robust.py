"""The dashboard on stores whose artifacts are bad. Every page that reads an artifact shows a placeholder
naming the file and why -- missing, empty, truncated, garbage, written by another version of the code,
or outside the run's folder (an absolute path, `..`, a symlink) -- and never raises; a store cannot
make the dashboard open a file outside its runs' folders, run code from a .keras file or unpickle.

The stores are hand-made (no training): report CSVs, PNG / NPY samples and one untrained VAE's
model.keras written here, so this stays quick; tests/test_dashboard.py covers real runner output.
Most checks call the reading helpers of dashboard/data.py directly; one AppTest render per (page,
kind of damage) checks each page's placeholders, every artifact of its runs damaged that way."""
import io
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from zoo.results import open_store

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
SECRET = "424242"  # in every file outside the runs' folders: must never reach a page
BARS = {"name": "bars", "n_train": 50, "n_valid": 10, "n_test": 64}
FILES = {"report_is_vs_k": "is_vs_k.csv", "report_pixel_nll": "pixel_nll.csv",
         "report_timestep_loss": "timestep_loss.csv", "samples_png": "samples.png",
         "samples_npy": "samples.npy", "model": "model.keras", "report_estimators": "estimators.csv",
         "report_inference_gaps": "inference_gaps.csv"}
RUNS = [  # label (= model), likelihood, test metrics, artifacts
    ("vae", "elbo", {"nll": 7.0, "rate": 1.0, "distortion": 6.0, "prior_mc_nll": 7.2, "prior_mc_k": 5,
                     "approximation_gap": 0.3, "amortisation_gap": 0.7, "optimised_is_nll": 6.0,
                     "optimised_elbo_nll": 6.3, "encoder_elbo_nll": 7.0},
     ["model", "samples_png", "samples_npy", "report_is_vs_k", "report_estimators", "report_inference_gaps"]),
    ("pixelcnn", "exact", {"nll": 7.5}, ["samples_png", "report_pixel_nll"]),
    ("diffusion", "vlb", {"nll": 8.0}, ["samples_png", "report_timestep_loss"]),
    ("flow", "elbo", {"nll": 8.5}, ["samples_png"]),
    ("gan", "none", {}, ["samples_png"]),
]
PAGES = {  # page -> the (run, artifact) pairs it reads; "samples_redraw": Samples with the seed redraw on
    "teach_vae": [("vae", "report_is_vs_k"), ("vae", "report_estimators"), ("vae", "samples_png")],
    "teach_inference": [("vae", "report_inference_gaps")],
    "teach_pixelcnn": [("pixelcnn", "report_pixel_nll"), ("pixelcnn", "samples_png")],
    "teach_diffusion": [("diffusion", "report_timestep_loss"), ("diffusion", "samples_png")],
    "teach_flow": [("flow", "samples_png")],
    "teach_gan": [("gan", "samples_png")],
    "anatomy": [("vae", "report_is_vs_k"), ("vae", "report_estimators"), ("pixelcnn", "report_pixel_nll"),
                ("diffusion", "report_timestep_loss")],
    "samples": [(label, "samples_png") for label, *_ in RUNS],
    "samples_redraw": [("vae", "model")],
    "explore": [("vae", "model")],
}
REAL_IMAGES = {"teach_inference": 0, "teach_vae": 1,
               "teach_pixelcnn": 1, "teach_diffusion": 1, "teach_flow": 1, "teach_gan": 1,
               "anatomy": 0, "samples": 1, "samples_redraw": 1, "explore": 0}  # pictures not from artifacts
REASON = {"missing": "missing: no such file", "empty": "empty", "truncated": "truncated", "garbage": "not a",
          "old": "another version of the code", "outside_absolute": "outside the run's folder",
          "outside_dotdot": "outside the run's folder", "outside_symlink": "outside the run's folder"}
DAMAGE = list(REASON)


# --- the files: good, damaged, and outside ----------------------------------------------------
def _csv(df) -> bytes:
    return df.to_csv(index=False).encode()


def _reports(value=None) -> dict:
    """The report CSVs with the columns zoo's `reports` and `zoo.demos` write (every value `value` if
    given)."""
    rows, cols, chans = (a.ravel() for a in np.indices((4, 4, 1)))
    t = (np.arange(10) + 0.5) / 10
    nats = lambda n, v: [value] * n if value else v  # noqa: E731
    return {"is_vs_k.csv": _csv(pd.DataFrame({"k": [1, 2, 5], "log_prob": [-8.0, -7.8, -7.6],
                                              "nll": nats(3, [8.0, 7.8, 7.6])})),
            "pixel_nll.csv": _csv(pd.DataFrame({"row": rows, "col": cols, "channel": chans,
                                                "nats": nats(16, list(0.4 + 0.01 * rows))})),
            "timestep_loss.csv": _csv(pd.DataFrame({"t": t, "log_snr": 10 - 20 * t,
                                                    "nats": nats(10, list(1 + t))})),
            "estimators.csv": _csv(pd.DataFrame({
                "method": ["prior MC"] * 2 + ["IS with q"] * 2 + ["AIS", "quadrature"],
                "k": [1, 10, 1, 10, 4, 101], "steps": [None] * 4 + [30, None],
                "cost": [1, 10, 1, 10, 800, 101], "cost_counts": "decoder passes",
                "repeat": 0, "nll": nats(6, [8.0, 7.5, 7.4, 7.2, 7.3, 7.1]), "seconds": 0.1})),
            "inference_gaps.csv": _csv(pd.DataFrame({
                "example": [0, 1], "log_px_is": [-6.0, -6.1], "elbo_q_star": [-6.3, -6.2],
                "elbo_q_phi": [-7.0, -6.9], "approximation_gap": nats(2, [0.3, 0.1]),
                "amortisation_gap": [0.7, 0.7], "kl_q_phi": [1.0, 1.1]}))}


def _png(img, fmt="PNG") -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def _npy(x) -> bytes:
    buf = io.BytesIO()
    np.save(buf, x)
    return buf.getvalue()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{"good" | "old" | "outside": {file name: bytes}}: the artifacts as the runner writes them, as an
    older version of the code might have (other columns, a JPEG, float images without channels, a
    model config with a renamed option), and the "outside" copies that carry SECRET."""
    from PIL import Image

    import zoo
    from zoo import data as zdata
    from zoo.images import grid

    ds = zdata.load("bars", **{k: v for k, v in BARS.items() if k != "name"})
    model = zoo.build_model("vae", ds, latent_dim=2, width=8, depth=1, jit_compile=False)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    model.save(path)
    keras_zip = path.read_bytes()
    old_zip = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(keras_zip)) as src, zipfile.ZipFile(old_zip, "w") as dst:
        for item in src.namelist():
            raw = src.read(item)
            if item == "config.json":  # a model saved when latent_dim was called z_dim
                cfg = json.loads(raw)
                cfg["config"]["z_dim"] = cfg["config"].pop("latent_dim")
                raw = json.dumps(cfg).encode()
            dst.writestr(item, raw)
    x = ds.test[:16]
    good = {**_reports(), "samples.png": _png(grid(x, ds.levels)), "samples.npy": _npy(x),
            "model.keras": keras_zip}
    old = {"is_vs_k.csv": b"k,bound\n1,8.0\n5,7.6\n", "pixel_nll.csv": b"pixel,nll\n0,0.4\n1,0.5\n",
           "timestep_loss.csv": b"step,loss\n1,0.3\n2,0.2\n", "estimators.csv": b"k,estimate\n1,8.0\n",
           "inference_gaps.csv": b"image,gap\n0,0.4\n",
           "samples.png": _png(grid(x, ds.levels).convert("RGB"), "JPEG"),
           "samples.npy": _npy(x[..., 0].astype(np.float64)), "model.keras": old_zip.getvalue()}
    secret = Image.new("RGB", (42, 42), (255, 0, 0))
    outside = {**_reports(float(SECRET) + 0.5), "samples.png": _png(secret),
               "samples.npy": _npy(np.full((2, 4, 4, 1), 1, np.uint8)), "model.keras": keras_zip}
    return {"good": good, "old": old, "outside": outside}


GARBAGE = np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes()


def place(files, name, folder: Path, outside: Path, damage=None) -> str:
    """Write artifact `name` of the run in `folder`, damaged by `damage`; the path to record."""
    file = FILES[name]
    path, good = folder / file, files["good"][file]
    if damage and damage.startswith("outside"):
        target = outside / f"{folder.name}-{file}"
        target.write_bytes(files["outside"][file])
        if damage == "outside_absolute":
            return str(target)
        if damage == "outside_dotdot":
            return str(folder) + "/" + "../" * (len(folder.relative_to(outside.parent).parts)) + \
                f"{outside.name}/{target.name}"
        path.symlink_to(target)
        return str(path)
    if damage == "missing":
        return str(path)
    if damage == "truncated":
        cut = len(good) // 2
        while good[:cut].endswith(b"\n"):
            cut -= 1
        good = good[:cut]
    content = {None: good, "empty": b"", "truncated": good, "garbage": GARBAGE, "old": files["old"][file]}
    path.write_bytes(content[damage])
    return str(path)


def make_store(root: Path, files, damage=None):
    """A hand-made store of RUNS (FINISHED, bars) with every artifact damaged by `damage`:
    (store path, {(run label, artifact name): the recorded path})."""
    (root / "outside").mkdir(parents=True)
    store = open_store(str(root / "store.sqlite"))
    recorded = {}
    for label, likelihood, metrics, names in RUNS:
        rid = store.start_run(experiment="robust", model=label, label=label, dataset="bars", seed=0,
                              config={"dataset": BARS, "hparams": {}}, run_key=f"robust-{label}",
                              likelihood=likelihood)
        folder = root / "runs" / "robust" / label / f"seed0-run{rid}"
        folder.mkdir(parents=True)
        store.update_run(rid, out_dir=str(folder))
        if metrics:
            store.log_metrics(rid, "test", metrics)
        for name in names:
            recorded[label, name] = place(files, name, folder, root / "outside", damage)
            store.log_artifact(rid, name, recorded[label, name])
        store.finish_run(rid, "FINISHED", wall_time=1.0)
    store.dispose()
    return root / "store.sqlite", recorded


# --- the reading helpers, kind by kind --------------------------------------------------------
def read(name: str, arts, run):
    from dashboard import artifacts

    if name.startswith("report_"):
        return artifacts.read_report(arts, run, name.removeprefix("report_"))
    readers = {"samples_png": artifacts.read_image, "samples_npy": artifacts.read_samples,
               "model": artifacts.read_model}
    return readers[name](arts, run)


def one_run(name, recorded, out_dir):
    arts = pd.DataFrame({"run_id": [1], "name": [name], "path": [recorded]})
    return arts, pd.Series({"run_id": 1, "out_dir": None if out_dir is None else str(out_dir)})


@pytest.mark.parametrize("name", list(FILES))
def test_a_good_artifact_is_read(files, tmp_path, name):
    folder, outside = tmp_path / "runs" / "seed0-run1", tmp_path / "outside"
    folder.mkdir(parents=True)
    outside.mkdir()
    got = read(name, *one_run(name, place(files, name, folder, outside), folder))
    assert got.ok and got.why == "", got.why
    value = got.value
    if name.startswith("report_"):
        assert isinstance(value, pd.DataFrame) and len(value) > 0
    elif name == "samples_png":
        assert value.dtype == np.uint8 and value.ndim in (2, 3)
    elif name == "samples_npy":
        assert value.dtype == np.uint8 and value.shape == (16, 4, 4, 1)
    else:
        assert value.levels == 2 and hasattr(value, "encode")


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("name", list(FILES))
def test_a_bad_artifact_gives_the_file_and_the_reason(files, tmp_path, name, damage):
    folder, outside = tmp_path / "runs" / "exp" / "seed0-run1", tmp_path / "outside"
    folder.mkdir(parents=True)
    outside.mkdir()
    recorded = place(files, name, folder, outside, damage)
    got = read(name, *one_run(name, recorded, folder))
    assert not got.ok and got.value is None
    assert recorded in got.why and name in got.why and REASON[damage] in got.why, got.why


def test_the_store_cannot_point_anywhere(files, tmp_path):
    """Absolute system paths, a run folder that is the root or was never recorded, a symlinked folder,
    a NUL byte, a FIFO: a reason each, nothing opened."""
    folder = tmp_path / "seed0-run1"
    folder.mkdir()
    (folder / "is_vs_k.csv").write_bytes(files["good"]["is_vs_k.csv"])
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "is_vs_k.csv").write_bytes(files["outside"]["is_vs_k.csv"])
    (folder / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    os.mkfifo(folder / "fifo.csv")
    cases = [("/etc/passwd", folder, "outside the run's folder"),
             ("/etc/passwd", "/", "the file system root"),
             (str(folder / "is_vs_k.csv"), None, "the run recorded no folder"),
             (str(folder / "linked" / "is_vs_k.csv"), folder, "outside the run's folder"),
             (str(folder / "a\x00b.csv"), folder, "not a usable path"),
             (str(folder / "fifo.csv"), folder, "not a regular file"),
             (str(folder), folder, "not a regular file")]
    for recorded, out_dir, why in cases:
        got = read("report_is_vs_k", *one_run("report_is_vs_k", recorded, out_dir))
        assert not got.ok and why in got.why and SECRET not in got.why, (recorded, got.why)
    got = read("report_is_vs_k", *one_run("report_is_vs_k", str(folder / "is_vs_k.csv"), folder))
    assert got.ok


def test_relative_paths_resolve_from_here_and_cannot_climb_out(files, tmp_path, monkeypatch):
    """The runner's default `--out runs` records relative paths: read from the working directory, but
    `runs/x/../../outside` is still outside."""
    monkeypatch.chdir(tmp_path)
    folder = Path("runs") / "exp" / "seed0-run1"
    folder.mkdir(parents=True)
    (folder / "is_vs_k.csv").write_bytes(files["good"]["is_vs_k.csv"])
    Path("outside.csv").write_bytes(files["outside"]["is_vs_k.csv"])
    ok = read("report_is_vs_k", *one_run("report_is_vs_k", str(folder / "is_vs_k.csv"), folder))
    assert ok.ok and ok.path == (tmp_path / folder / "is_vs_k.csv").resolve()
    out = read("report_is_vs_k", *one_run("report_is_vs_k", f"{folder}/../../../outside.csv", folder))
    assert not out.ok and "outside the run's folder" in out.why


@pytest.mark.parametrize("text, why", [
    ("k,log_prob,nll\n1,-8,8\n2,-7.8,nan\n", "column nll has non-numeric, missing or infinite values"),
    ("k,log_prob,nll\n1,-8,8\n2,-7.8,inf\n", "column nll has non-numeric, missing or infinite values"),
    ("k,log_prob,nll\n1,-8,8\n2,-7.8,eight\n", "column nll has non-numeric"),
    ("k,log_prob,nll\n0.5,-8,8\n", "column k must hold whole numbers >= 1"),
    ("k,log_prob,nll\n", "no rows"),
    ("   \n\n", "empty"),
    ('k,nll\n"1,8\n', "not a readable CSV"),
    ("k,nll\n1,8\0\n", "NUL bytes"),
])
def test_report_values_are_checked(tmp_path, text, why):
    folder = tmp_path / "seed0-run1"
    folder.mkdir()
    (folder / "is_vs_k.csv").write_text(text)
    got = read("report_is_vs_k", *one_run("report_is_vs_k", str(folder / "is_vs_k.csv"), folder))
    assert not got.ok and why in got.why, got.why


def test_arrays_are_never_unpickled(tmp_path):
    import pickle

    folder = tmp_path / "seed0-run1"
    folder.mkdir()
    np.save(folder / "objects.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (folder / "pickle.npy").write_bytes(pickle.dumps(np.zeros((2, 4, 4, 1), np.uint8)))
    for file, why in [("objects.npy", "never unpickled"), ("pickle.npy", "not a .npy array")]:
        got = read("samples_npy", *one_run("samples_npy", str(folder / file), folder))
        assert not got.ok and why in got.why, got.why


@pytest.fixture
def restore_keras_safe_mode():
    from keras.src.backend.common import global_state

    yield
    global_state.set_global_attribute("safe_mode_saving", None)


def test_a_model_file_cannot_run_code(tmp_path, restore_keras_safe_mode):
    """A .keras file holding a Lambda layer (pickled Python code that writes a file when run): refused
    before Keras sees it, and by Keras's safe mode itself -- even when something else in the process has
    turned safe mode off globally (which in Keras 3 beats `safe_mode=True`; the dashboard pins it on)."""
    import keras

    from dashboard import artifacts

    marker = tmp_path / "code-ran"
    folder = tmp_path / "seed0-run1"
    folder.mkdir()
    m = str(marker)
    writes = keras.layers.Lambda(lambda x: x + (open(m, "w").close() or 0))
    evil = keras.Sequential([keras.Input((2,)), writes])
    evil.save(folder / "model.keras")
    marker.unlink()
    keras.config.enable_unsafe_deserialization()
    got = read("model", *one_run("model", str(folder / "model.keras"), folder))
    assert not got.ok and "carries Python code" in got.why and "never run" in got.why, got.why
    with pytest.raises(ValueError, match="safe_mode"):
        artifacts.load_model.__wrapped__(str(folder / "model.keras"))
    assert not marker.exists()


def test_the_store_s_json_is_only_data(tmp_path):
    """Config JSON that is not an object, or whose entries have other types, is parsed with json and
    ignored where it does not fit; every page still draws."""
    from dashboard import data

    assert data._json("__import__('os').system('touch x')") == {} and data._json("[1, 2]") == {}
    db = tmp_path / "odd.sqlite"
    store = open_store(str(db))
    for i, config in enumerate([{"hparams": [3], "dataset": "bars"}, {"hparams": {"k": "five"}},
                                {"hparams": {"k": 1e400}, "dataset": {"name": ["bars"]}},
                                {"dataset": {"name": "bars", "n_test": "all"}}]):
        rid = store.start_run(experiment="odd", model="iwae", label=f"odd{i}", dataset="bars", seed=0,
                              config=config, run_key=f"odd{i}", likelihood="iwae")
        store.finish_run(rid, "FINISHED", wall_time=1.0)
    store.dispose()
    runs = data.runs(str(db))
    assert list(runs["badge"]) == ["IWAE"] * 4
    assert [data.real_images(opts) is None for opts in runs["data_options"]] == [False, False, True, True]


def test_placeholder_text_from_the_store_is_not_markdown():
    from dashboard import ui

    text = ui.plain("runs/x/![i](http://evil.example/p.png) [a](http://e) :red[x] $x$ `c` <b>")
    assert re.search(r"(?<!\\)[\[\]()!:$`<>]", text) is None
    assert re.sub(r"\\(.)", r"\1", text) == "runs/x/![i](http://evil.example/p.png) [a](http://e) :red[x] " \
                                           "$x$ `c` <b>"


# --- the pages ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def apps(files, tmp_path_factory):
    """damage (None: none) -> (the dashboard in AppTest on a store damaged so, its store path, the
    recorded paths), each made once and reused page after page."""
    from streamlit.testing.v1 import AppTest

    made = {}

    def get(damage):
        if damage not in made:
            db, recorded = make_store(tmp_path_factory.mktemp(f"store-{damage}"), files, damage)
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("ZOO_DB", str(db))
                made[damage] = AppTest.from_file(str(APP), default_timeout=120).run(), db, recorded
        return made[damage]

    return get


def render(at, page):
    """`at` switched to `page` ("samples_redraw": Samples with the seed redraw on) and run."""
    at.switch_page(f"views/{page.removesuffix('_redraw')}.py").run()
    if page.startswith("samples"):
        at.toggle(key="redraw").set_value(page == "samples_redraw").run()
    assert not at.exception, (page, [e.value for e in at.exception])
    return at


def shown(at) -> list[str]:
    """Every text on the page (markdown unescaped), the tables and the charts' data, as strings."""
    kinds = ("markdown", "caption", "info", "warning", "text")
    texts = [re.sub(r"\\(.)", r"\1", str(e.value)) for kind in kinds for e in getattr(at, kind)]
    charts = [c.proto.spec for c in at.get("vega_lite_chart")]
    return texts + [d.value.to_csv() for d in at.dataframe] + charts


CHARTS = {"teach_inference": 2, "teach_vae": 1, "teach_pixelcnn": 1, "teach_diffusion": 1,
          "anatomy": 5}  # with good reports
IMAGES = {"teach_inference": 0, "teach_vae": 2,
          "teach_pixelcnn": 2, "teach_diffusion": 2, "teach_flow": 2, "teach_gan": 2,
          "anatomy": 0, "samples": 1 + len(RUNS), "samples_redraw": 2, "explore": 3}  # with good files


@pytest.mark.parametrize("page", list(PAGES))
def test_good_artifacts_draw(apps, page, monkeypatch):
    """The hand-made store draws (so the damaged ones below test the damage): no placeholder names a
    file; the reports make charts, the grids and the model pictures."""
    at, db, recorded = apps(None)
    monkeypatch.setenv("ZOO_DB", str(db))
    text = shown(render(at, page))
    for pair in PAGES[page]:
        assert not any(recorded[pair] in t for t in text), (page, pair)
    assert len(at.get("vega_lite_chart")) >= CHARTS.get(page, 0)
    assert len(at.image) >= IMAGES[page]


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_bad_artifact_shows_a_placeholder(apps, damage, page, monkeypatch):
    """Every artifact the page reads, damaged: a placeholder naming the file and why for each, no
    exception, no picture or chart from them, and nothing of a file outside the runs' folders."""
    at, db, recorded = apps(damage)
    monkeypatch.setenv("ZOO_DB", str(db))
    text = shown(render(at, page))
    for pair in PAGES[page]:
        assert any(recorded[pair] in t and REASON[damage] in t for t in text), (pair, recorded[pair], text)
    assert len(at.image) == REAL_IMAGES[page]  # no picture from a bad (or outside) file
    if page in CHARTS:
        specs = " ".join(c.proto.spec for c in at.get("vega_lite_chart"))
        assert '"rect"' not in specs and not re.search(r'"field": ?"(k|t|cost|approximation_gap)"', specs)
    assert not any(SECRET in t for t in text)  # an outside file's content never shows


def test_an_empty_timestep_loss_report_on_the_diffusion_page(tmp_path, files, monkeypatch):
    """The reported bug: a FINISHED diffusion run whose report_timestep_loss CSV is empty raised pandas'
    EmptyDataError on the diffusion teaching page. Now: a placeholder naming the file and why."""
    from streamlit.testing.v1 import AppTest

    db, recorded = make_store(tmp_path / "store", files)
    Path(recorded["diffusion", "report_timestep_loss"]).write_bytes(b"")
    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/teach_diffusion.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("loss per timestep" in t and recorded["diffusion", "report_timestep_loss"] in t
               and "the file is empty" in t for t in shown(at)), shown(at)
    assert len(at.image) == 2 and at.metric  # the rest of the page is drawn: real images, samples, tiles


def test_explore_shows_a_model_that_does_not_fit_its_run_s_data(tmp_path, files, monkeypatch):
    """A loadable model saved for other data (8x8 digits, where the run's data are 4x4 bars): Explore
    shows a placeholder naming the file and the error, not a traceback."""
    from streamlit.testing.v1 import AppTest

    import zoo
    from zoo import data as zdata

    db, recorded = make_store(tmp_path / "store", files)
    digits = zoo.build_model("vae", zdata.load("digits"), latent_dim=2, width=8, depth=1, jit_compile=False)
    digits.save(recorded["vae", "model"])
    monkeypatch.setenv("ZOO_DB", str(db))
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    at.switch_page("views/explore.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(recorded["vae", "model"] in t and "does not encode and decode" in t for t in shown(at))
    assert not at.image
