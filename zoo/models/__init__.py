"""Model families; importing this package registers each of them."""
from zoo.models import diffusion, flow, pixelcnn, vae  # noqa: F401
