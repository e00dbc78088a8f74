"""The files a run's artifacts name (PNG grids, report CSVs, sample arrays, saved models), read so
that a store is data, not instructions: an artifact is opened only when it is a regular file under
its run's folder (`runs.out_dir`, symlinks and `..` resolved first); CSV with pandas, PNG with Pillow's
PNG reader, .npy without pickle, .keras in Keras's safe mode. One reading helper per kind
(`read_report`, `read_image`, `read_samples`, `read_model`, `redraw_samples`) gives a `Read`: the
content, or why not, naming the file -- which the pages show as `ui.placeholder`, never raising.
Only `load_model` / `redraw` import TensorFlow, lazily (Explore and the seed redraw).
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard.data import REPO

# --- artifact files: only the run's own folder; the content, or why not ---------------------
MISSING = "missing artifact"  # no row for it in the store
OUTSIDE = "outside the run's folder"  # the file the row names is not under the run's out_dir: never opened
MAX_REPORT_BYTES = 16 * 2**20  # a report CSV is a few KB; a bigger one is not parsed
MAX_ARRAY_BYTES = 256 * 2**20
MAX_PIXELS = 50_000_000  # a sample grid is well under a megapixel
REPORT_COLUMNS = {  # report name -> the numeric columns a page draws from it (zoo's `reports` tables)
    "is_vs_k": ("k", "nll"),
    "pixel_nll": ("row", "col", "channel", "nats"),
    "timestep_loss": ("t", "nats"),
    "estimators": ("k", "cost", "repeat", "nll"),  # zoo.demos.estimators (and its text column method)
    "inference_gaps": ("example", "log_px_is", "elbo_q_star", "elbo_q_phi", "approximation_gap",
                       "amortisation_gap"),  # zoo.demos.inference
    "components": ("component", "pi", "row", "col", "channel", "intensity"),  # the mixture's mean images
}
REPORT_WHOLE = {"k": 1, "row": 0, "col": 0, "channel": 0, "cost": 1, "repeat": 0, "example": 0,
                "component": 0}  # and least


@dataclasses.dataclass(frozen=True)
class Read:
    """What a reading helper gives: `value` (the content), or None and `why` not, a sentence naming the
    file (its path as the store recorded it, and the artifact name) and the reason. `file` is that
    recorded path ("" when the store recorded none); `path` the resolved file that was opened."""

    value: object = None
    why: str = ""
    file: str = ""
    path: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.why


def _fail(name: str, recorded: str, why: str) -> Read:
    return Read(why=f"{recorded} ({name}): {why}", file=recorded)


def _resolved(base: Path, text: str) -> Path:
    return (base / Path(text).expanduser()).resolve()


def artifact_file(arts: pd.DataFrame, run: pd.Series, name: str) -> Read:
    """The file of artifact `name` of `run` (a `runs` row: run_id, out_dir) as Read(value=Path), or why
    not: not recorded (MISSING), not a regular file under the run's own folder (`out_dir`, where the
    runner wrote it; `..` and symlinks resolved first, so neither can lead out: OUTSIDE), or gone.
    A relative path (the runner's default `--out runs`) is tried from here and from the repo."""
    rows = arts[(arts["run_id"] == run["run_id"]) & (arts["name"] == name)]
    if rows.empty:
        return Read(why=f"no {name} recorded for this run ({MISSING})")
    recorded = str(rows["path"].iloc[0])
    folder = run.get("out_dir")
    if not isinstance(folder, str) or not folder.strip():
        return _fail(name, recorded, f"{OUTSIDE} (the run recorded no folder)")
    inside = False
    for base in dict.fromkeys((Path.cwd(), REPO)):
        try:
            root, path = _resolved(base, folder), _resolved(base, recorded)
            if root == Path(root.anchor):
                return _fail(name, recorded, f"{OUTSIDE} (its recorded folder is the file system root)")
            if not path.is_relative_to(root):
                continue
            inside = True
            if path.is_file():
                return Read(value=path, file=recorded, path=path)
            if path.exists():
                return _fail(name, recorded, "not a regular file")
        except (OSError, ValueError, RuntimeError) as err:  # a NUL byte, a symlink loop, no permission
            return _fail(name, recorded, f"not a usable path ({type(err).__name__}: {err})")
    return _fail(name, recorded, "missing: no such file" if inside else OUTSIDE)


def _stamp(path: Path) -> tuple[float, int]:
    """(mtime, size): keys the caches, so a rewritten file is read again."""
    st_ = path.stat()
    return st_.st_mtime, st_.st_size


def error_text(err: BaseException) -> str:
    """An error as one short line for a placeholder: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:200]}" if text else type(err).__name__


@st.cache_data(show_spinner=False, max_entries=256)
def _report_file(path: str, name: str, stamp: tuple) -> tuple:
    """(table, "") or (None, why) for the report CSV at `path` (no artifact name in `why`)."""
    size = stamp[1]
    if size == 0:
        return None, "the file is empty"
    if size > MAX_REPORT_BYTES:
        return None, f"too large for a report ({size} bytes; at most {MAX_REPORT_BYTES})"
    raw = Path(path).read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not a CSV: binary bytes, not UTF-8 text (garbage or another kind of file)"
    if "\x00" in text:
        return None, "not a CSV: it holds NUL bytes (garbage or another kind of file)"
    if not text.strip():
        return None, "the file is empty (blank)"
    cut = "" if text.endswith("\n") else "; the file ends mid-line (truncated?)"
    try:
        df = pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError, csv.Error) as err:  # EmptyDataError is a ValueError
        return None, f"not a readable CSV ({error_text(err)}){cut}"
    need = REPORT_COLUMNS.get(name, ())
    lacking = [c for c in need if c not in df.columns]
    if lacking:
        have = ", ".join(map(str, df.columns[:8])) + (", ..." if len(df.columns) > 8 else "")
        return None, (f"its columns ({have}) lack {', '.join(lacking)}: written by another version of the "
                      f"code, or not this report{cut}")
    if df.empty:
        return None, f"the table has a header but no rows{cut}"
    if cut:
        return None, cut[2:]
    for col in need:
        values = pd.to_numeric(df[col], errors="coerce")
        if not np.isfinite(values.to_numpy(dtype=float)).all():
            return None, f"column {col} has non-numeric, missing or infinite values"
        least = REPORT_WHOLE.get(col)
        if least is not None and ((values % 1 != 0) | (values < least)).any():
            return None, f"column {col} must hold whole numbers >= {least}"
        df[col] = values
    return df, ""


def read_report(arts: pd.DataFrame, run: pd.Series, name: str) -> Read:
    """The run's report table `name` (artifact report_<name>, a CSV) with the columns its pages draw
    (REPORT_COLUMNS, numeric and finite), or why not."""
    return _read(arts, run, f"report_{name}", _report_file, name)


def _read(arts: pd.DataFrame, run: pd.Series, name: str, parse, *args) -> Read:
    """Artifact `name` of `run` through `artifact_file`, then `parse(path, *args, stamp)` -> (value, why)."""
    got = artifact_file(arts, run, name)
    if not got.ok:
        return got
    try:
        value, why = parse(str(got.path), *args, _stamp(got.path))
    except OSError as err:
        value, why = None, f"could not be read ({error_text(err)})"
    return Read(value, file=got.file, path=got.path) if not why else _fail(name, got.file, why)


IMAGE_MAGIC = {b"\xff\xd8\xff": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
               b"RIFF": "WEBP"}  # other image formats, named in the placeholder (never parsed)


@st.cache_data(show_spinner=False, max_entries=256)
def _png_file(path: str, stamp: tuple) -> tuple:
    """(uint8 pixels [H, W(, C)], "") or (None, why) for the PNG at `path` (Pillow's PNG reader only)."""
    from PIL import Image, UnidentifiedImageError

    if stamp[1] == 0:
        return None, "the file is empty"
    try:
        with Image.open(path, formats=["PNG"]) as img:
            if img.width * img.height > MAX_PIXELS:
                return None, f"too large ({img.width} x {img.height} pixels)"
            img.load()
            if img.mode not in ("L", "RGB", "RGBA"):
                img = img.convert("RGBA")
            return np.asarray(img, dtype=np.uint8).copy(), ""
    except UnidentifiedImageError:
        with open(path, "rb") as f:
            head = f.read(8)
        other = next((fmt for magic, fmt in IMAGE_MAGIC.items() if head.startswith(magic)), None)
        if other:
            return None, f"a {other} image, not a PNG (written by another version of the code?)"
        return None, "not a PNG image (garbage or another kind of file)"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        return None, f"a broken PNG, truncated or corrupt ({error_text(err)})"


def read_image(arts: pd.DataFrame, run: pd.Series, name: str = "samples_png") -> Read:
    """The run's PNG artifact `name` (the saved sample grid) as uint8 pixels, or why not."""
    return _read(arts, run, name, _png_file)


@st.cache_data(show_spinner=False, max_entries=32)
def _npy_file(path: str, stamp: tuple) -> tuple:
    """(images uint8 [N, H, W, C], "") or (None, why) for the .npy at `path`: the header is checked
    before any data is read, and never with pickle (object arrays are refused)."""
    if stamp[1] == 0:
        return None, "the file is empty"
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                np.lib.format.read_array_header_2_0
            shape, _, dtype = read_header(f)
        except (ValueError, EOFError, SyntaxError, TypeError) as err:
            return None, f"not a .npy array (garbage, or truncated in its header: {error_text(err)})"
        start = f.tell()
    if dtype.hasobject:
        return None, "holds Python objects (pickle): refused, never unpickled"
    if dtype != np.uint8 or len(shape) != 4 or shape[-1] not in (1, 3):
        return None, (f"{dtype} {list(shape)}, expected uint8 images [N, H, W, C] with C = 1 or 3 "
                      "(written by another version of the code?)")
    need = start + int(np.prod(shape)) * dtype.itemsize
    if need > MAX_ARRAY_BYTES:
        return None, f"too large ({need} bytes)"
    if stamp[1] < need:
        return None, f"truncated ({stamp[1]} of {need} bytes)"
    try:
        return np.load(path, allow_pickle=False), ""
    except (ValueError, OSError, EOFError) as err:
        return None, f"could not be read ({error_text(err)})"


def read_samples(arts: pd.DataFrame, run: pd.Series, name: str = "samples_npy") -> Read:
    """The run's saved samples (artifact samples_npy) as uint8 [N, H, W, C], or why not. No page
    draws them today; any page that does reads them here (numpy, allow_pickle=False)."""
    return _read(arts, run, name, _npy_file)


# --- models (TensorFlow, lazily) --------------------------------------------------------------
def _safe_mode():
    """Keras's safe mode pinned on for one load: in Keras 3 a global
    `keras.config.enable_unsafe_deserialization()` (anywhere in the process) beats `safe_mode=True`."""
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # another Keras layout: `safe_mode=True` alone
        return contextlib.nullcontext()
    return SafeModeScope(True)


@st.cache_resource(show_spinner="Loading the model (imports TensorFlow on first use) ...", max_entries=4)
def load_model(path: str, stamp: tuple = ()):
    """The zoo model saved at `path` (a run's `model` artifact; `stamp` keys the cache), loaded with
    `keras.saving.load_model(path, safe_mode=True)` (safe mode pinned on): a .keras file may name only
    registered classes and never brings code (a `Lambda`'s pickled function is refused). Raises when
    it cannot."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    import zoo.models  # noqa: F401  (registers every family: the .keras file names the zoo's classes)

    with _safe_mode():
        return keras.saving.load_model(path, safe_mode=True)


CODE = {"__lambda__", "TorchModuleWrapper"}  # Keras config entries that carry Python code or a pickle
MAX_CONFIG_BYTES = 16 * 2**20


def _carries_code(config) -> bool:
    """Whether a Keras config (parsed JSON) holds an object that brings code: a Lambda's pickled
    function (`__lambda__`), a pickled torch module."""
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") in CODE:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


@st.cache_data(show_spinner="Sampling ...", max_entries=32)
def redraw(path: str, n: int, seed: int, stamp: tuple = ()) -> np.ndarray:
    """`n` fresh samples, uint8 [n, H, W, C]; equal seeds give equal samples (the contract)."""
    return np.asarray(load_model(path, stamp).sample(int(n), seed=int(seed)))


def read_model(arts: pd.DataFrame, run: pd.Series) -> Read:
    """The run's saved model (artifact `model`, a .keras zip under the run's folder), or why not: the
    file's checks need no TensorFlow; only a file that passes them is loaded (safe mode)."""
    got = artifact_file(arts, run, "model")
    if not got.ok:
        return got
    fail = lambda why: _fail("model", got.file, why)  # noqa: E731
    try:
        stamp = _stamp(got.path)
        if stamp[1] == 0:
            return fail("the file is empty")
        if got.path.suffix != ".keras":
            return fail("not a .keras model file (written by another version of the code?)")
        if not zipfile.is_zipfile(got.path):
            return fail("not a .keras zip archive (truncated, or garbage)")
        with zipfile.ZipFile(got.path) as z:
            info = z.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                return fail(f"its config.json is too large ({info.file_size} bytes)")
            config = json.loads(z.read(info))
    except OSError as err:
        return fail(f"could not be read ({error_text(err)})")
    except (KeyError, ValueError, RecursionError, zipfile.BadZipFile) as err:
        return fail(f"not a .keras model archive, truncated or garbage (its config.json: {error_text(err)})")
    if _carries_code(config):  # Keras's safe mode refuses it too; this check needs no TensorFlow
        return fail("carries Python code (a Lambda's pickled function): refused, never run")
    try:
        model = load_model(str(got.path), stamp)
    except Exception as err:  # noqa: BLE001 - anything a bad file raises in Keras is shown, not raised
        return fail(f"could not be loaded in Keras safe mode (another version of the code, or not a "
                    f"zoo model?): {error_text(err)}")
    from zoo.contract import GenerativeModel

    if not isinstance(model, GenerativeModel):
        return fail(f"a {type(model).__name__}, not a zoo model")
    return Read(model, file=got.file, path=got.path)


def redraw_samples(arts: pd.DataFrame, run: pd.Series, n: int, seed: int) -> Read:
    """(`n` fresh samples uint8 [n, H, W, C], levels) from the run's saved model, or why not."""
    got = read_model(arts, run)
    if not got.ok:
        return got
    try:
        x = redraw(str(got.path), int(n), int(seed), _stamp(got.path))
    except Exception as err:  # noqa: BLE001 - a model that cannot sample is shown, not raised
        return _fail("model", got.file, f"could not draw samples: {error_text(err)}")
    if x.ndim != 4 or x.shape[-1] not in (1, 3) or not np.issubdtype(x.dtype, np.integer):
        return _fail("model", got.file, f"its samples are {x.dtype} {list(x.shape)}, not images [n, H, W, C]")
    return Read((x, int(got.value.levels)), file=got.file, path=got.path)
