"""Semi-supervised: test error against the number of labels N (Kingma et al. 2014; Bruna's lecture 16).
M1 = a classifier (an RBF SVM) on a trained model's latent means, fitted on N labelled training images;
M2's own classifier q(y|x). Beside it, the paper's Table 1 -- on MNIST, not the dataset chosen here."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import data, ui
from zoo.semisupervised import PAPER_DATASET, paper_rows

url, r = ui.start("Semi-supervised", "Test error (%, lower is better) of a classifier that saw only N "
                  "labelled training images; the other training images are unlabelled.")
dataset, experiment = ui.scope(url)
e = data.ssl_errors(url, dataset, experiment)
if e["experiment"].nunique() > 1:  # (all experiments: a label may be in several)
    e = e.assign(model=e["experiment"] + "/" + e["model"])
e = e.assign(who=e["model"] + " · " + e["method"])
st.markdown(r"**M1**: train the model without labels, encode every image to its latent mean $\mu(x)$ "
            r"(a flow: $z = f(x)$; a mixture: its responsibilities), then fit an RBF-kernel SVM on the N "
            r"labelled ones (the paper's M1 + TSVM uses a transductive SVM). **M2** learns "
            r"$q(y \mid x)$ inside the generative model, $p(x, y, z) = p(y)\,p(z)\,p(x \mid y, z)$, from "
            r"both kinds of image; *own classifier* is its test error at the N it was trained with.")

left, right = st.columns(2)
with left:
    st.subheader(f"This zoo: {dataset}")
    if e.empty:
        st.info("No semi-supervised numbers on this dataset yet. Give the config `eval: {ssl_labels: "
                "[100, 600, 1000]}` (a labelled dataset, e.g. digits) and every model with an encoder gets "
                "M1's test error at each N; an `m2` entry also records its own classifier's.")
    else:
        g = e.groupby(["who", "N"])["error"]
        spread = g.agg(["mean", "min", "max"]).reset_index()
        base = alt.Chart(spread).encode(
            x=alt.X("N:Q", scale=alt.Scale(type="log"), title="labelled training images N (log)"),
            color=alt.Color("who:N", title="model · method"))
        chart = base.mark_line(point=True).encode(y=alt.Y("mean:Q", title="test error (%)"),
                                                  tooltip=["who", "N", "mean", "min", "max"])
        chart += base.mark_rule().encode(y="min:Q", y2="max:Q")
        ui.chart(chart.properties(height=300), width="stretch")
        st.caption(f"Mean over seeds (line) and the seed range min-max (bars); {dataset} test images.")
with right:
    st.subheader(f"Kingma et al. 2014, Table 1: {PAPER_DATASET}")
    paper = pd.DataFrame(paper_rows(), columns=["method", "N", "error", "±"])
    base = alt.Chart(paper.assign(lo=paper["error"] - paper["±"], hi=paper["error"] + paper["±"])).encode(
        x=alt.X("N:Q", scale=alt.Scale(type="log"), title="labelled training images N (log)"),
        color=alt.Color("method:N"))
    chart = base.mark_line(point=True).encode(y=alt.Y("error:Q", title=f"{PAPER_DATASET} test error (%)"),
                                              tooltip=["method", "N", "error", "±"])
    chart += base.mark_rule().encode(y="lo:Q", y2="hi:Q")
    ui.chart(chart.properties(height=300), width="stretch")
    st.caption(f"The paper's numbers are on **{PAPER_DATASET}** (28x28, 50,000 training images), not on "
               f"{dataset}: compare the shapes of the curves, not the values. ± as the paper gives it.")

if not e.empty:
    st.subheader("Test error (%) against N")
    table = e.pivot_table(index=["model", "method"], columns="N", values="error", aggfunc="mean")
    table.columns = [f"N = {n}" for n in table.columns]
    seeds = e.groupby(["model", "method"])["seed"].nunique().rename("seeds")
    table = table.join(seeds).reset_index()
    st.dataframe(table, hide_index=True,
                 column_config={c: st.column_config.NumberColumn(c, format="%.2f") for c in table.columns
                                if c.startswith("N = ")})
    st.caption(f"Mean over seeds, % of the {dataset} test images misclassified; an empty cell: not measured "
               "at that N (an M2 run's own classifier is measured at its own N only).")
st.subheader(f"The paper's table ({PAPER_DATASET}, test error %)")
wide = paper.assign(cell=[f"{v:.2f} (± {s:g})" for v, s in zip(paper["error"], paper["±"])]).pivot(
    index="N", columns="method", values="cell")[list(dict.fromkeys(paper["method"]))]
st.dataframe(wide.rename_axis(columns=None).reset_index(), hide_index=True)
