"""Model families; importing this package registers each of them."""
from zoo.models import pixelcnn, vae  # noqa: F401
