"""Model families; importing this package registers each of them."""
from zoo.models import diffusion, flow, gan, pixelcnn, vae  # noqa: F401
