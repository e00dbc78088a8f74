"""Shared page pieces: the page preamble (store, the dataset and experiment chosen in the sidebar,
empty-store note), run pickers (capped, for stores of thousands of runs), images with placeholders,
and the Altair charts several pages draw. No TensorFlow here."""
from __future__ import annotations

import io
import re

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from dashboard import artifacts, data
from zoo.images import grid
from zoo.vocabulary import KINDS, SAMPLE_METRICS

PICK_MAX = 500  # a run picker lists at most this many runs (the latest, or the best by test nats)
PICKED_MAX = 20  # and lets at most this many be picked at once (each is a column or a curve)


def scope(url: str) -> tuple[str | None, str | None]:
    """(dataset, experiment) chosen in the sidebar: the dataset ("bars" when there are bars runs, else
    the first; None for an empty store) and the experiment (None: all of them)."""
    c = data.counts(url)
    datasets = sorted(set(c["dataset"]))
    if not datasets:
        return None, None
    dataset = st.session_state.get("dataset")
    if dataset not in datasets:
        dataset = "bars" if "bars" in datasets else datasets[0]
    experiment = st.session_state.get("experiment")
    experiments = set(c.loc[c["dataset"] == dataset, "experiment"])
    return dataset, (experiment if experiment in experiments else None)


def start(title: str, caption: str = "", stop: bool = True) -> tuple[str, pd.DataFrame]:
    """Title, then (store URL, runs of the dataset and experiment chosen in the sidebar: read in SQL);
    an empty store shows how to fill it, then stops the page (or, with `stop=False`, goes on with no
    runs)."""
    st.title(title)
    if caption:
        st.caption(caption)
    url = data.db_url()
    dataset, experiment = scope(url)
    if dataset is None:
        empty_store(url)
        if stop:
            st.stop()
        return url, data.runs(url)
    return url, data.runs(url, dataset, experiment)


def empty_store(url: str) -> None:
    st.info(f"No runs in this store yet ({url}). Train the quick comparison (every family on the 8x8 "
            "digits, a few minutes on 2 CPU cores), then reload this page:")
    st.code(f"{data.QUICK_RUN} --db {url}\nstreamlit run dashboard/app.py -- --db {url}", language="bash")


def no_runs(fam: str) -> None:
    st.info(f"No runs of this family ({fam}) yet on this dataset.")


def finished(r: pd.DataFrame, fam: str | None = None) -> pd.DataFrame:
    r = r[r["status"] == "FINISHED"]
    return r if fam is None else r[r["family"] == fam]


def by_nll(r: pd.DataFrame, by: pd.DataFrame | None) -> pd.DataFrame:
    """`r` best test nats first (no nats last, then the latest first) when `by` (run_id, nll) is given."""
    if by is None or "nll" not in by:
        return r
    nll = r["run_id"].map(by.set_index("run_id")["nll"])
    return r.assign(_nll=nll, _id=-r["run_id"]).sort_values(["_nll", "_id"]).drop(columns=["_nll", "_id"])


NARROW = "choose an experiment in the sidebar to narrow them"


def capped(r: pd.DataFrame, n: int, what: str, order: str, hint: str = NARROW) -> pd.DataFrame:
    """The first `n` rows of `r`; when there are more, a caption saying how many and how to narrow."""
    if len(r) <= n:
        return r
    st.caption(f"Showing the {order} {n} of {len(r):,} {what}; {hint}.")
    return r.iloc[:n]


def pick_runs(r: pd.DataFrame, label: str, key: str, default: int = 6) -> pd.DataFrame:
    """A multiselect of `r`'s runs (the latest PICK_MAX of them, in run order; the first `default`
    picked)."""
    if len(r) > PICK_MAX:
        r = capped(r.iloc[::-1], PICK_MAX, "runs", "latest").iloc[::-1]
    names = list(r["name"])
    chosen = st.multiselect(label, names, default=names[:default], key=key, max_selections=PICKED_MAX)
    return r[r["name"].isin(chosen)]


def pick_run(r: pd.DataFrame, label: str, key: str, by: pd.DataFrame | None = None) -> pd.Series:
    """One run (the best test nats first when `by`, a frame of run_id and nll, is given; at most
    PICK_MAX of them listed); a link's `?run=<run id>` picks it in a new session, and the picked run
    goes into the page's link (`link_caption`)."""
    r = capped(by_nll(r, by), PICK_MAX, "runs", "best" if by is not None else "first")
    linked = r.loc[r["run_id"].astype(str) == st.query_params.get("run"), "name"]
    if key not in st.session_state and len(linked):
        st.session_state[key] = linked.iloc[0]
    name = st.selectbox(label, list(r["name"]), key=key)
    run = r[r["name"] == name].iloc[0]
    st.session_state[LINKED_RUN] = int(run["run_id"])
    return run


# --- links and the presentation view ------------------------------------------------------------
LINKED_RUN = "_linked_run"  # the run the page picked this script run (app.py resets it)
LIVE_ON = "_live_on"  # whether a live toggle of the page is on this script run (app.py resets it)
LINK_KEYS = ("dataset", "experiment")  # sidebar choices a link carries (with the run, `present`)
PRESENT_CSS = """<style>
html { font-size: 22px; }
[data-testid="stSidebar"] { font-size: 0.8rem; }
[data-testid="stMainBlockContainer"] { max-width: 100%; padding: 2rem 2rem 4rem 2rem; }
</style>"""


def from_link(key: str, choices) -> None:
    """A new session opened from a link (`?dataset=bars&experiment=...`): the sidebar choice `key` is
    the link's, when it is one of `choices`."""
    value = st.query_params.get(key)
    if key not in st.session_state and value in choices:
        st.session_state[key] = value


def to_link(key: str) -> None:
    st.query_params[key] = str(st.session_state[key])


def presenting() -> bool:
    """Whether the presentation view (large type and figures, for a projector) is on."""
    return bool(st.session_state.get("present"))


def presentation_toggle() -> None:
    """The sidebar's presentation toggle (on in a new session opened with `?present=1`); when on, the
    page's type is larger (CSS) and charts drawn through `chart` get larger fonts and heights."""
    if "present" not in st.session_state:
        st.session_state["present"] = st.query_params.get("present") == "1"
    st.toggle("Presentation view (large type)", key="present", help="for a projector; a link with "
              "?present=1 opens in it")
    if presenting():
        st.html(PRESENT_CSS)


def link_caption(url_path: str) -> None:
    """Put the current view (dataset, experiment, the page's run, presentation) in the browser's
    address and show it as a relative link a slide can point at."""
    params = {k: str(st.session_state[k]) for k in LINK_KEYS if st.session_state.get(k)}
    if st.session_state.get(LINKED_RUN) is not None:
        params["run"] = str(st.session_state[LINKED_RUN])
    if presenting():
        params["present"] = "1"
    if st.session_state.get(LIVE_ON):
        params["live"] = "1"
    if dict(st.query_params) != params:
        st.query_params.from_dict(params)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    st.caption(f"Link to this view: `/{url_path}{'?' + query if query else ''}`")


def chart(c, **kwargs) -> None:
    """st.altair_chart, with larger fonts in the presentation view."""
    if presenting():
        c = c.configure_axis(labelFontSize=18, titleFontSize=20).configure_legend(
            labelFontSize=18, titleFontSize=20).configure_title(fontSize=22)
    st.altair_chart(c, **kwargs)


def kind_badges(labels) -> None:
    """One coloured markdown badge per distinct label (colours from zoo.vocabulary.KINDS)."""
    st.markdown(" ".join(f":{data.badge_markdown_colour(b)}-badge[{b}]" for b in dict.fromkeys(labels)))


def sample_metric_columns(table: pd.DataFrame) -> dict:
    """st.dataframe column_config for the sample-quality columns of `table`: a tooltip naming the
    metric and which way is better (zoo.vocabulary.SAMPLE_METRICS)."""
    return {m.name: st.column_config.Column(
        help=f"{m.label}: {m.direction} (zoo.sample_metrics)")
        for m in SAMPLE_METRICS.values() if m.name in table}


# --- images -----------------------------------------------------------------------------------
def png(images, levels: int, ncols: int | None = None) -> bytes:
    """uint8 (or float) images `[N, H, W, C]` in [0, levels-1] -> PNG bytes of one grid."""
    buf = io.BytesIO()
    grid(np.clip(np.asarray(images, np.float32), 0, levels - 1), levels, ncols=ncols).save(buf, format="PNG")
    return buf.getvalue()


def image(got: artifacts.Read, caption: str) -> None:
    """The picture a reading helper gave (artifacts.read_image), or a placeholder saying why there is none."""
    if got.ok:
        st.image(got.value, caption=caption, width="stretch", output_format="PNG")
    else:
        placeholder(caption, got.why)


MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|:$~&=])")


def plain(text) -> str:
    """`text` (store data: run names, recorded paths) escaped for st.markdown: shown as written, never
    read as links, images, colours, icons or LaTeX."""
    return MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))


def placeholder(caption: str, why: str = f"no image recorded for this run ({artifacts.MISSING})") -> None:
    """A box in place of a picture or chart: what it is and why it is not shown (for a bad artifact,
    the reading helper's sentence naming the file and the reason)."""
    with st.container(border=True):
        st.markdown(f"**{plain(caption)}**  \n:gray[{plain(why)}]")


def real_row(run: pd.Series, n: int = 16, caption: str = "real test images") -> tuple | None:
    got = data.real_images(run["data_options"], "test", n)
    if got is None:
        placeholder(caption, f"the {run['dataset']} data is not on this machine")
    else:
        st.image(png(*got), caption=caption, width="stretch", output_format="PNG")
    return got


# --- charts -----------------------------------------------------------------------------------
def lines(df: pd.DataFrame, x: str, y: str, color: str, log_y: bool = False, dash: str | None = None,
          log_x: bool = False, rule: float | None = None, height: int = 260) -> alt.Chart:
    """Lines of `y` against `x` per `color` (and `dash`); an optional horizontal reference rule."""
    yscale = alt.Scale(type="log" if (df[y] > 0).all() else "symlog") if log_y else alt.Scale(zero=False)
    xaxis = alt.Axis(format="d", tickMinStep=1) if x == "epoch" else alt.Axis()
    enc = dict(x=alt.X(x, scale=alt.Scale(type="log") if log_x else alt.Scale(), axis=xaxis),
               y=alt.Y(y, scale=yscale), color=color, tooltip=[color, x, y])
    if dash:
        enc["strokeDash"] = dash
    height = int(height * 1.6) if presenting() else height
    chart = alt.Chart(df).mark_line(point=len(df) < 200).encode(**enc).properties(height=height)
    if rule is not None:
        chart += alt.Chart(pd.DataFrame({y: [rule]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y=y)
    return chart


def terms_bars(w: pd.DataFrame, runs: pd.DataFrame, terms: list[str]) -> alt.Chart | None:
    """Stacked bars of each run's test nll terms (they sum to -log P(x), the run's nats)."""
    sub = w[w["run_id"].isin(runs["run_id"])]
    terms = [t for t in terms if t in sub]
    if sub.empty or not terms:
        return None
    long = sub.melt(id_vars=["name"], value_vars=terms, var_name="term", value_name="nats").dropna()
    return alt.Chart(long).mark_bar().encode(y=alt.Y("name", title=None), x="nats", color="term",
                                             tooltip=["name", "term", "nats"]).properties(height=alt.Step(32))


def heatmap(df: pd.DataFrame, title: str) -> alt.Chart:
    """report_pixel_nll (row, col, channel, nats) as a heat map, one panel per channel."""
    base = alt.Chart(df).mark_rect().encode(
        x=alt.X("col:O", title="column"), y=alt.Y("row:O", title="row"),
        color=alt.Color("nats:Q", scale=alt.Scale(scheme="viridis")),
        tooltip=["row", "col", "channel", "nats"])
    step = max(8, min(40, 320 // (int(df["col"].max()) + 1)))  # square cells, about 320 px a side
    chart = base.properties(width=alt.Step(step), height=alt.Step(step), title=title)
    return chart.facet(column="channel:O") if df["channel"].nunique() > 1 else chart


# --- teaching pages ---------------------------------------------------------------------------
def teach_page(title: str, caption: str, fam: str, first=None):
    """A teaching page's header: (store url, its runs, the picked live run or None, that run's test
    metrics — empty when there is no run, so every tile shows n/a). `first(runs)`: a mask of the runs
    to list first (the ones the page can draw)."""
    url, r = start(title, caption, stop=False)
    live = live_run(url, r, fam, None if first is None or r.empty else first(r))
    return url, r, live, (live[1] if live else pd.Series(dtype=float))


def live_run(url: str, r: pd.DataFrame, fam: str, first=None):
    """Pick one finished run of `fam` (best first; with `first`, a mask of `r`, those runs before the
    others) -> (run, its test metrics), or None after a note."""
    runs = finished(r, fam)
    if runs.empty:
        no_runs(fam)
        return None
    nll = data.wide(url, *scope(url), ("nll",))  # the runs' test nats only, for the order
    ranked = by_nll(runs, nll)
    if first is not None:  # e.g. the runs a page can draw (a 1-D or 2-D latent) first, best first
        ranked = pd.concat([ranked[first.reindex(ranked.index, fill_value=False)],
                            ranked[~first.reindex(ranked.index, fill_value=False)]])
    run = pick_run(ranked, "Live numbers from run", key=f"teach_{fam}")
    return run, data.run_metrics(url, int(run["run_id"]))


def metric(col, label: str, m: pd.Series, name: str, help: str | None = None) -> None:
    """A metric tile; a missing value shows "n/a", never 0."""
    v = m.get(name)
    col.metric(label, "n/a" if v is None or pd.isna(v) else f"{v:.4g}", help=help)


def metric_row(m: pd.Series, tiles) -> None:
    """One row of metric tiles from (label, metric name, help) triples."""
    for col, (label, name, help) in zip(st.columns(len(tiles)), tiles):
        metric(col, label, m, name, help)


def run_artifacts(url: str, run: pd.Series) -> pd.DataFrame:
    """The artifact rows of one run (read for that run only)."""
    return data.artifacts(url, (int(run["run_id"]),))


def live_report(url: str, run: pd.Series, name: str, what: str) -> pd.DataFrame | None:
    """The run's saved report table `name` (artifact report_<name>), or None after a placeholder naming
    the file and why it could not be read."""
    got = artifacts.read_report(run_artifacts(url, run), run, name)
    if not got.ok:
        placeholder(what, got.why)
    return got.value


def live_toggle(what: str, key: str) -> bool:
    """A toggle (off by default; on when the page's link says `live=1`) that computes a live picture
    from the run's saved model: TensorFlow is imported only once it is on."""
    default = st.query_params.get("live") == "1"
    on = st.toggle(f"Live: {what} (loads the model: TensorFlow)", value=default, key=key)
    st.session_state[LIVE_ON] = st.session_state.get(LIVE_ON) or on  # the page's link carries live=1
    return on


def live_model(url: str, run: pd.Series, needs: tuple = ()):
    """The run's saved model (loaded once per file, Keras safe mode), or None after a placeholder
    naming the file and why (missing, damaged, another version, or lacking a method in `needs`)."""
    read = artifacts.read_model(run_artifacts(url, run), run)
    missing = [f for f in needs if read.ok and not read.value.offers(f)]
    if missing:
        read = artifacts.Read(why=f"{read.file} (model): a {type(read.value).__name__} has no "
                              f"{' or '.join(missing)}", file=read.file)
    if not read.ok:
        placeholder(run["name"], read.why)
        return None
    return read.value


def live_section(url: str, run: pd.Series, what: str, key: str, needs: tuple, draw) -> None:
    """Behind `live_toggle(what, key)`: the run's model (`live_model`) and its first 16 test images, then
    `draw(run, model, images, levels)`; a placeholder for what is missing, and for a model that cannot
    draw (another version of the code, another dataset): shown, never raised."""
    if not live_toggle(what, key):
        return
    model = live_model(url, run, needs)
    got = data.real_images(run["data_options"], "test", 16)
    if got is None:
        placeholder(run["name"], f"the {run['dataset']} test images are not on this machine")
    elif model is not None:
        try:
            draw(run, model, *got)
        except Exception as err:  # noqa: BLE001 - a model that does not fit its run's data: shown, not raised
            placeholder(run["name"], f"its model could not draw this ({artifacts.error_text(err)})")


def pictures(url: str, run: pd.Series) -> None:
    """The run's saved samples beside real test images."""
    c1, c2 = st.columns(2)
    with c1:
        real_row(run)
    with c2:
        image(artifacts.read_image(run_artifacts(url, run), run), f"samples of {run['name']}")


def estimators_chart(table: pd.DataFrame, title: str | None = None, height: int = 280) -> alt.LayerChart:
    """A run's `estimators` report (zoo.demos.estimators): the mean -log p(x) estimate against its cost
    per method (log x), a band over the repeats' range, and a dashed rule at the quadrature value (the
    model's exact -log p(x)) where the report has one. Colours: each method's likelihood kind."""
    from zoo.demos.estimators import KIND_OF, summarise  # TensorFlow-free: its maths import TF lazily

    s = summarise(table)
    x = alt.X("cost:Q", scale=alt.Scale(type="log"), title="decoder evaluations per example (log)")
    est = s[s["method"] != "quadrature"]
    lines = est.drop_duplicates("line")  # one colour per method on every chart: its kind's (vocabulary)
    colours = alt.Scale(domain=list(lines["line"]), range=[KINDS[KIND_OF[m]].colour for m in lines["method"]])
    colour = alt.Color("line:N", scale=colours, title="estimator", legend=alt.Legend(symbolOpacity=1))
    # the y range: every estimate from k = 100 on (and IS, AIS, the exact value); prior MC's first few
    # k, far above, run off the top (clipped) rather than flatten the rest into one line
    near = est[(est["method"] != "prior MC") | (est["k"] >= 100)]
    lo = float(min(near["nll_min"].min(), s["nll"].min())) if not near.empty else None
    hi = float(near["nll_max"].max()) if not near.empty else None
    pad = 0.1 * (hi - lo) + 1e-3 if lo is not None else 0
    y_scale = alt.Scale(zero=False) if lo is None else alt.Scale(domain=[lo - pad, hi + pad], zero=False)
    base = alt.Chart(est).encode(x=x, color=colour)
    band = base.mark_area(opacity=0.2, clip=True).encode(y=alt.Y("nll_min:Q", scale=y_scale), y2="nll_max:Q")
    line = base.mark_line(point=True, clip=True).encode(
        y=alt.Y("nll:Q", scale=y_scale, title="-log p(x) estimate, nats (mean over images)"),
        tooltip=["line", "k", "cost", "nll", "nll_min", "nll_max", "repeats"])
    chart = band + line
    exact = s[s["method"] == "quadrature"]
    if not exact.empty:
        chart += alt.Chart(exact).mark_rule(strokeDash=[4, 4], color="gray").encode(
            y="nll:Q", tooltip=[alt.Tooltip("nll:Q", title="exact -log p(x) (quadrature)")])
    chart = chart.properties(height=int(height * 1.6) if presenting() else height)
    return chart.properties(title=title) if title else chart
