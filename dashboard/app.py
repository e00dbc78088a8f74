"""The zoo's dashboard: leaderboard, samples, curves, bound anatomy, teaching pages, latent explorer.

    streamlit run dashboard/app.py                      # experiments/results.sqlite (or $ZOO_DB)
    streamlit run dashboard/app.py -- --db URL          # any store the runner's --db takes

Pages read the store through `zoo.results` only (dashboard/data.py), cached, and only the runs of the
dataset and experiment chosen in the sidebar (filtered in SQL); no TensorFlow is imported until a model
is loaded (Explore, the seed redraw on Samples).
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts dashboard/, not the repo, on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard import data, ui  # noqa: E402

st.set_page_config(page_title="Generative-model zoo", page_icon=":material/science:", layout="wide",
                   initial_sidebar_state="collapsed" if st.query_params.get("present") == "1" else "auto")
V = Path(__file__).parent / "views"


def page(file, title, icon, **kw):
    return st.Page(str(V / file), title=title, icon=f":material/{icon}:", **kw)


nav = st.navigation({
    "Results": [page("leaderboard.py", "Leaderboard", "leaderboard", default=True),
                page("samples.py", "Samples", "grid_view"), page("curves.py", "Curves", "show_chart"),
                page("sweeps.py", "Sweeps", "tune"),
                page("anatomy.py", "Bound anatomy", "stacked_bar_chart"),
                page("comparisons.py", "Bounds and decoders", "compare"),
                page("semisupervised.py", "Semi-supervised", "label")],
    "Teach": [page("overview.py", "Families side by side", "view_comfy_alt"),
              page("teach_bars.py", "The bars", "view_column"),
              page("teach_posterior.py", "Posterior and evidence", "area_chart"),
              page("teach_vae.py", "VAE and IWAE", "blur_on"),
              page("teach_inference.py", "Gradients and gaps", "insights"),
              page("teach_autoencoder.py", "Autoencoders and decoders", "compress"),
              page("teach_pixelcnn.py", "PixelCNN", "apps"),
              page("teach_flow.py", "Flow", "swap_horiz"), page("teach_diffusion.py", "Diffusion", "grain"),
              page("teach_gan.py", "GAN", "sports_kabaddi"),
              page("teach_mixture.py", "Mixture and EM", "join")],
    "Explore": [page("explore.py", "Latent explorer", "explore")],
}, expanded=True)  # every page listed: a lecturer jumps between them

url = data.db_url()
st.session_state[ui.LINKED_RUN] = None  # the page sets it when it picks a run
st.session_state[ui.LIVE_ON] = False  # and this when one of its live toggles is on
counts = data.counts(url)  # runs per (dataset, experiment, status): a GROUP BY, no run is read
with st.sidebar:
    datasets = sorted(set(counts["dataset"]))
    if datasets:
        ui.from_link("dataset", datasets)  # a link (?dataset=...) chooses the dataset of a new session
        if st.session_state.get("dataset") not in datasets:
            st.session_state["dataset"] = "bars" if "bars" in datasets else datasets[0]
        st.selectbox("Dataset", datasets, key="dataset", on_change=ui.to_link, args=("dataset",))
        here = counts[counts["dataset"] == st.session_state["dataset"]]
        experiments = sorted(set(here["experiment"]))
        if len(experiments) > 1:  # every page shows the runs of this experiment only
            ui.from_link("experiment", [data.ALL, *experiments])
            if st.session_state.get("experiment") not in [data.ALL, *experiments]:
                st.session_state["experiment"] = data.ALL
            st.selectbox("Experiment", [data.ALL, *experiments], key="experiment", on_change=ui.to_link,
                         args=("experiment",))
            if st.session_state["experiment"] != data.ALL:
                here = here[here["experiment"] == st.session_state["experiment"]]
        by_status = here.groupby("status")["runs"].sum().sort_values(ascending=False, kind="stable")
        st.caption(" · ".join(f"{n:,} {s.lower()}" for s, n in by_status.items()))
    ui.presentation_toggle()
    st.caption(f"Store: `{url}`")
    if st.button("Reload the store", icon=":material/refresh:"):
        st.cache_data.clear()
        st.rerun()
nav.run()
with st.sidebar:  # after the page: it may have put its run in the link
    ui.link_caption(nav.url_path)
