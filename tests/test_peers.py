"""The side-by-side speed benchmark (experiments/peers): every peer builds next to its zoo model with
a matching parameter count and trains, and the CLI prints its table. Nothing here is timed."""
import math

import pytest

from experiments.__main__ import main
from experiments.peers import PEERS
from experiments.peers.bench import build_pair, last_loss, trainable_params
from experiments.peers.registry import NO_PEER, zoo_hparams


def test_every_family_has_a_peer_and_each_peer_a_loss_and_an_example():
    import zoo

    families = {e.family for e in PEERS.values()}
    assert families | set(NO_PEER) == set(zoo.list_models()) and not families & set(NO_PEER)
    assert PEERS["vae_conv"].hparams == {"network": "conv"}
    for e in PEERS.values():
        assert e.loss and e.example.startswith("https://keras.io/examples/generative/")


def test_the_zoo_side_takes_the_configs_hyper_parameters(digits):
    assert zoo_hparams(PEERS["vae"], "digits") == {"latent_dim": 16, "width": 256, "depth": 2}
    assert zoo_hparams(PEERS["vae_conv"], "digits")["network"] == "conv"
    assert zoo_hparams(PEERS["iwae"], "digits")["k"] == 5
    assert zoo_hparams(PEERS["flow"], "digits") == {}  # the config leaves the flow at its defaults
    assert zoo_hparams(PEERS["gan"], "no_such_dataset") == {}


@pytest.mark.parametrize("name", sorted(PEERS))
def test_peer_builds_matches_the_zoo_size_and_trains(name, digits):
    entry = PEERS[name]
    zoo_model, zoo_data, peer_model, peer_data = build_pair(entry, digits, "off", batch_size=32)
    zoo_params, peer_params = trainable_params(zoo_model), trainable_params(peer_model)
    assert abs(peer_params - zoo_params) <= entry.tolerance * zoo_params, (zoo_params, peer_params)
    for model, data in ((zoo_model, zoo_data), (peer_model, peer_data)):
        model.run_eagerly = True  # one step: tracing the step would cost more than running it
        assert math.isfinite(last_loss(model.fit(data, steps_per_epoch=1, epochs=1, verbose=0)))
    if name == "pixelcnn":  # the filter search counts parameters with a formula: keep it honest
        from experiments.peers.pixelcnn import param_count

        filters = peer_model.layers[1].conv.filters
        hp = zoo_model.hp
        assert param_count(filters, hp.depth, hp.kernel_size, 1, digits.levels) == peer_params


def test_cli_prints_the_table(capsys):
    assert main(["peers", "--families", "gan", "--steps", "2", "--rounds", "1", "--batch-size", "16",
                 "--jit", "off"]) == 0  # the GAN: the cheapest pair to compile
    out = capsys.readouterr().out
    assert "zoo/peer" in out and "goal >=1.0x" in out and "gan" in out


def test_cli_rejects_an_unknown_family(capsys):
    assert main(["peers", "--families", "vae,vea"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and "'vea'" in err[0]
    assert all(name in err[0] for name in PEERS)
