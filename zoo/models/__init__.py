"""Model families; importing this package registers each of them."""
from zoo.models import vae  # noqa: F401
