"""Model families; importing this package registers each of them."""
from zoo.models import diffusion, flow, gan, m2, mixture, pixelcnn, vae  # noqa: F401
