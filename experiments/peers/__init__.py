"""Peers: each zoo family trained side by side with a plain Keras baseline of the same network in the
style of its keras-io example (`python -m experiments peers`, see `experiments.peers.bench`).
Importing the package registers every baseline in `PEERS` (one module per family, in README order)."""
from experiments.peers import vae, pixelcnn, flow, diffusion, gan  # noqa: F401, I001  (registers the peers)
from experiments.peers.registry import PEERS, Peer, peer, zoo_hparams  # noqa: F401
