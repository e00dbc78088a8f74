"""Teach: why reparameterise (the variance of three estimators of the ELBO's gradient over the encoder's
weights, live from a saved VAE / IWAE: zoo.demos.gradients) and where the inference gap comes from
(Cremer, Li & Duvenaud 2018: the approximation and amortisation gaps the runner recorded,
zoo.demos.inference). TensorFlow-free until the live toggle is on."""
import altair as alt
import pandas as pd
import streamlit as st

from dashboard import artifacts, data, ui

GAPS = ("approximation_gap", "amortisation_gap")
GAP_METRICS = (*GAPS, "optimised_is_nll", "optimised_elbo_nll", "encoder_elbo_nll", "inference_seconds")
SAMPLES = (10, 100, 1000)
FORMS = {"mc": "whole ELBO sampled: f = log p(x,z) - log q(z|x)",
         "analytic": "analytic KL: f = log p(x|z), minus the exact grad KL"}

CAPTION = ("Paquet, \"Naive sampling\"; Bruna, the score-function estimator; Günnemann, amortised inference; "
           "Cremer, Li & Duvenaud 2018.")
url, r, live, m = ui.teach_page("Gradients and gaps", CAPTION, "VAE")


@st.cache_data(show_spinner="Estimating the encoder's gradients (S draws, three estimators) ...",
               max_entries=32)
def gradient_table(store: str, run_id: int, _model, _x, index: int, samples: int, form: str):
    """zoo.demos.gradients.encoder_gradients' table for test image `index` (cached by store, run and the
    user's choices)."""
    from zoo.demos.gradients import encoder_gradients

    return encoder_gradients(_model, _x[index:index + 1], samples=samples, form=form).table


st.subheader("1. Why reparameterise")
st.markdown("The ELBO's gradient with respect to the encoder's weights φ, from S draws z_s ~ q_φ(z|x), "
            "by two unbiased estimators (and the score function with a leave-one-out baseline):")
st.latex(r"\text{score function: }\; \hat g = \frac{1}{S}\sum_{s=1}^{S} \nabla_\phi \log q_\phi(z_s|x)"
         r"\,\big(f(z_s) - b_s\big),\quad b_s = 0 \;\text{or}\; \frac{1}{S-1}\sum_{j\ne s} f(z_j)")
st.latex(r"\text{reparameterised: }\; \hat g = \frac{1}{S}\sum_{s=1}^{S} \nabla_\phi\, f\big("
         r"\mu_\phi(x) + \sigma_\phi(x)\odot\varepsilon_s\big),\quad \varepsilon_s\sim\mathcal{N}(0, I)")
st.caption("f = log p(x, z) - log q(z|x) (the whole ELBO sampled) or f = log p(x|z) with the KL exact. "
           "Both are unbiased; the score function only sees f's value, the reparameterised one its slope.")


def gradient_panel(run, model, x) -> None:
    """The user's choices, then the three estimators' variances (a log-scale bar chart and the table)."""
    k1, k2, k3 = st.columns(3)
    samples = int(k1.selectbox("S draws", SAMPLES, index=1, key="gaps_samples"))
    form = k2.radio("ELBO form", list(FORMS), format_func=FORMS.get, key="gaps_form")
    index = int(k3.number_input("Test image", 0, len(x) - 1, 0, key="gaps_image"))
    try:  # a model that does not fit its run's data (another version) is shown, not raised
        table = gradient_table(url, int(run["run_id"]), model, x, index, samples, form)
    except Exception as err:  # noqa: BLE001
        why = artifacts.error_text(err)
        ui.placeholder(run["name"], f"its model does not take this run's test images ({why})")
        return
    shown = table[["estimator", "S", "total_variance", "variance_per_weight", "snr", "mean_norm"]]
    ui.chart(alt.Chart(shown[shown["total_variance"] > 0]).mark_point(filled=True, size=260).encode(
        y=alt.Y("estimator", title=None), color=alt.Color("estimator", legend=None),
        x=alt.X("total_variance", scale=alt.Scale(type="log"),
                title="variance of a one-draw gradient (trace over the encoder's weights)"),
        tooltip=list(shown.columns)).properties(height=alt.Step(36)), width="stretch")
    st.dataframe(shown, hide_index=True, key="gaps_gradients")
    ratio = table["total_variance"].iloc[1] / table["total_variance"].iloc[0]
    st.caption(f"On test image {index} of {ui.plain(run['name'])} the score function's variance is "
               f"{ratio:.3g} times the reparameterised one's, over {table['weights'].iloc[0]:,} encoder "
               f"weights. snr = |E g| / sqrt(variance) of one draw, over all the weights, with |E g|^2 "
               f"less the mean's own noise (variance / S), floored at 0: 0 means S draws cannot tell the "
               f"gradient from noise.")


if live and ui.live_toggle("the three estimators' variance", key="gaps_live"):
    got = data.real_images(live[0]["data_options"], "test", 16)
    if got is None:
        ui.placeholder(live[0]["name"], f"the {live[0]['dataset']} data is not on this machine")
    else:
        model = ui.live_model(url, live[0], needs=("encode", "log_px_given_z"))
        if model is not None:
            gradient_panel(live[0], model, got[0])

st.subheader("2. Where the inference gap comes from")
st.latex(r"\log p(x) \;\ge\; \mathrm{ELBO}(q^*) \;\ge\; \mathrm{ELBO}(q_\phi),\qquad q^* = "
         r"\arg\max_{q\,\in\,\mathcal{Q}} \mathrm{ELBO}(q)")
st.latex(r"\underbrace{\log p(x) - \mathrm{ELBO}(q_\phi)}_{\text{inference gap}} = "
         r"\underbrace{\log p(x) - \mathrm{ELBO}(q^*)}_{\text{approximation gap}} + "
         r"\underbrace{\mathrm{ELBO}(q^*) - \mathrm{ELBO}(q_\phi)}_{\text{amortisation gap}}")
st.caption("Per test image (the runner's first 50 report images): q* is a Gaussian fitted to that image "
           "alone (200 Adam steps on the ELBO, decoder and prior frozen), q_φ the encoder's. log p(x) is an "
           "importance-sampling estimate with q* as proposal (k = 1000): itself a lower bound, so the "
           "approximation gap shown is an underestimate.")
fin = ui.finished(r, "VAE")
w = data.wide(url, *ui.scope(url), GAP_METRICS) if not fin.empty else pd.DataFrame()
have = w[w["run_id"].isin(fin["run_id"]) & w[list(GAPS)].notna().all(axis=1)] if GAPS[0] in w else w.iloc[:0]
if fin.empty:
    ui.no_runs("VAE / IWAE")
elif have.empty:
    ui.placeholder("the inference gaps", "no VAE / IWAE run here has recorded them (runs made before the "
                   "runner recorded zoo.demos.inference: rerun them)")
else:
    picked = ui.pick_runs(have, "Runs (VAE and IWAE side by side)", key="gaps_runs")
    chart = ui.terms_bars(have, picked, list(GAPS))
    if chart is not None:
        ui.chart(chart.properties(title="log p(x) - ELBO(q_φ), nats: the two gaps stacked"),
                        width="stretch")
    table = picked[["name", "model", "k", *GAP_METRICS[2:5], *GAPS]]
    st.dataframe(table.rename(columns={"optimised_is_nll": "-log p(x) (IS, q*)",
                                       "optimised_elbo_nll": "-ELBO(q*)", "encoder_elbo_nll": "-ELBO(q_φ)"}),
                 hide_index=True, key="gaps_table")
    st.caption("Test means in nats. An IWAE's encoder is trained for L_k, not for the ELBO: compare its "
               "amortisation gap with the VAE's.")
    reports = [(row["name"], ui.live_report(url, row, "inference_gaps", f"per-image gaps of {row['name']}"))
               for _, row in picked.iterrows()]
    per = [rep.assign(run=name) for name, rep in reports if rep is not None and set(GAPS) <= set(rep.columns)]
    if per:
        ui.chart(alt.Chart(pd.concat(per)).mark_circle(size=50, opacity=0.7).encode(
            x=alt.X("approximation_gap", title="approximation gap (nats)"),
            y=alt.Y("amortisation_gap", title="amortisation gap (nats)"), color="run",
            tooltip=["run", *per[0].columns[:-1]]).properties(title="per test image (a gap below 0: the "
                                                                "estimators' noise)", height=320),
            width="stretch")
