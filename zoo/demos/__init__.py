"""The lecture decks' demonstrations (../shared/seeds), as functions of a trained zoo model.

Each module computes the numbers behind one teaching picture of the dashboard, and each number has a
test on a case with a known answer:

    posterior    p(x|z) p(z) on a grid of z, its area p(x) by quadrature, p(z|x) beside q(z|x)  (Paquet)
    estimators   naive Monte Carlo from p(z), importance sampling with q, AIS: log p(x) against k
    gradients    score-function (REINFORCE) vs reparameterised ELBO gradients: their variance  (Bruna)
    inference    q optimised per example vs the encoder's q: approximation and amortisation gaps
    decoders     a latent model's decoder draws beside its means E[x|z]                    (Günnemann)
    latents      the posterior means mu(x) of labelled images, prior samples on top
    diffusion    the forward process x_t over t, the reverse chain of a sample            (Bruna)
    pixelcnn     the sampler's partial canvases, a pixel's receptive field                (UBC)

`runner_outputs` is what the experiment runner records for every run (metrics and report tables),
so the dashboard draws the costly pictures without TensorFlow.
"""
from __future__ import annotations


def runner_outputs(model, dataset, x, seed: int = 0, sample_options=None, metric_x=None,
                   is_k: int = 100) -> tuple[list, dict]:
    """(metric rows (name, value, kind), {report name: pandas DataFrame}) of `model` on the report
    images `x` (uint8 `[N, H, W, C]`): what each demonstration precomputes, plus the sampling cost
    (network calls per sample with the run's `sample_options`). `metric_x` and `is_k`: the images and k
    of the run's is_nll, on which prior_mc_nll is measured too."""
    from zoo.demos import estimators, inference

    rows = [("sample_network_calls", float(model.sampling_cost(**(sample_options or {}))), None)]
    more, tables = estimators.runner_outputs(model, dataset, x, seed, metric_x=metric_x, k=is_k)
    gaps, reports = inference.runner_outputs(model, dataset, x, seed)
    return rows + more + gaps, {**tables, **reports}
