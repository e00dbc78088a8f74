"""Latent explorer (VAE, IWAE, flow): reconstructions, interpolation between two test images, and
the latent manifold (a grid when z is 2-D, a strip when 1-D). Loads the model: TensorFlow, lazily."""
import numpy as np
import streamlit as st

from dashboard import artifacts, data, ui
from zoo.vocabulary import LATENT_FAMILIES

url, r = ui.start("Latent explorer", "VAE: z = the posterior mean mu(x), pictures are E[x|z]. "
                  "Flow: z = f(x), x = f^-1(z), one bijection (a VAE whose encoder and decoder are "
                  "deterministic).")
fin = r[(r["status"] == "FINISHED") & r["family"].isin(LATENT_FAMILIES)]
if fin.empty:
    ui.no_runs("VAE / IWAE / flow")
    st.stop()
run = ui.pick_run(fin, "Run", key="explore_run", by=data.wide(url, *ui.scope(url), ("nll",)))
got = data.real_images(run["data_options"], "test", 64)
if got is None:
    ui.placeholder(run["name"], "its data is not on this machine")
    st.stop()
x, levels = got
read = artifacts.read_model(ui.run_artifacts(url, run), run)
if read.ok and not (read.value.has_encoder and hasattr(read.value, "decode")):
    why = f"{read.file} (model): a {type(read.value).__name__} has no encoder or decoder to explore"
    read = artifacts.Read(why=why, file=read.file)
if not read.ok:
    ui.placeholder(run["name"], read.why)
    st.stop()
model = read.value
is_flow = run["family"] == "Flow"


def encode(images):
    """[N, d] codes: the flow's z = f(x), the VAE's posterior mean."""
    z = model.encode(images)
    return np.asarray(z if is_flow else z[0])


def decode(z):
    return np.asarray(model.decode(np.asarray(z, np.float32)))


n = 8
try:  # a model that does not fit its run's data (another version, another dataset) is shown, not raised
    recon = decode(encode(x[:n]))
except Exception as err:  # noqa: BLE001
    ui.placeholder(run["name"], f"{read.file} (model): does not encode and decode this run's test images "
                   f"({artifacts.error_text(err)})")
    st.stop()

st.subheader("Reconstructions")
st.image(ui.png(np.concatenate([x[:n], recon]), levels, ncols=n), output_format="PNG",
         caption="top: test images; bottom: decode(encode(x))"
         + (" - exact for a bijection" if is_flow else ""))

st.subheader("Interpolation")
c1, c2, c3 = st.columns(3)
a = c1.number_input("First test image", 0, len(x) - 1, 0, key="explore_a")
b = c2.number_input("Second test image", 0, len(x) - 1, min(1, len(x) - 1), key="explore_b")
t = c3.slider("t", 0.0, 1.0, 0.5, 0.05, key="explore_t")
za, zb = encode(x[[a, b]])
steps = np.linspace(0, 1, 9)[:, None]
strip = decode((1 - steps) * za + steps * zb)
mid = decode(((1 - t) * za + t * zb)[None])
c1.image(ui.png(x[[a, b]], levels, ncols=2), caption="the two images", output_format="PNG", width="stretch")
c2.image(ui.png(strip, levels, ncols=3), caption="z = (1 - t) z_a + t z_b for t = 0, 1/8, ..., 1",
         output_format="PNG", width="stretch")
c3.image(ui.png(mid, levels), caption=f"t = {t:.2f}", output_format="PNG", width="stretch")

d = za.shape[-1]
st.subheader("Latent manifold")
if is_flow or d > 2:
    st.info(f"The latent has {d} dimensions: the manifold picture needs a VAE with a 1-D or 2-D latent "
            "(e.g. the bars config's VAE, latent_dim 1).")
else:
    from scipy.stats import norm

    q = norm.ppf(np.linspace(0.05, 0.95, 12 if d == 2 else 16))  # evenly spaced in probability under p(z)
    zs = np.stack(np.meshgrid(q, q[::-1]), -1).reshape(-1, 2) if d == 2 else q[:, None]
    st.image(ui.png(decode(zs), levels, ncols=len(q)), output_format="PNG",
             caption=f"E[x|z] on a grid of prior quantiles of the {d}-D latent (Kingma & Welling fig. 4)")
