"""Run in a subprocess by test_distribute.py (the CPU must be split into logical devices before
TensorFlow starts). `python tests/replicas.py update OUT.json`, `... em OUT.json` or
`... worker INDEX PORTS OUT.npz`.

update: for every family, one SGD step on the same global batch of 256 bars images, on one device
and on 2 mirrored replicas, from the same weights; SGD's update is linear in the gradient, so a
replica-count error shows as a factor 2 in its norm. A third run with the 1/replicas scaling
patched out is the control that the check sees such an error. Also: log_prob (AIS for the GAN),
log_prob_is and samples of the mirrored model against the same weights on one device, and that
the replicas' copies of every weight agree (also after a flow's first step, where ActNorm
initialises from the data). The mixture has no gradient step (EM): `em` checks it instead.

em: the mixture trained by EM (3 epochs, global batches of 256 over 1024 bars images) on one device
and on 2 mirrored replicas from the same initial parameters: the statistics are summed over the
replicas, so the parameters and the per-epoch losses agree (to float32 summation order), and
log_prob / samples of the two agree as in `update`."""
from __future__ import annotations

import json
import os
import sys

import numpy as np
import tensorflow as tf

if sys.argv[1] in ("update", "em"):
    from zoo.distribute import split_cpu

    split_cpu(2)

import keras  # noqa: E402
from support import SMALL as CHEAP  # noqa: E402  (this script's folder, tests/, is on sys.path)

import zoo  # noqa: E402
import zoo.contract  # noqa: E402
import zoo.models.gan  # noqa: E402
from zoo import data  # noqa: E402
from zoo.distribute import make_strategy  # noqa: E402


def build(name, dataset, strategy, weights=None):
    with strategy.scope():
        model = zoo.build_model(name, dataset, seed=0, jit_compile=False, **CHEAP[name])
        if name == "gan":
            model.compile(d_optimizer=keras.optimizers.SGD(0.05), g_optimizer=keras.optimizers.SGD(0.05))
        else:
            model.compile_default(optimizer=keras.optimizers.SGD(0.05))
    if weights is not None:
        model.set_weights(weights)
    return model


def one_step(model, x):
    before = [w.numpy() for w in model.trainable_weights]
    model.fit(tf.data.Dataset.from_tensors(x), epochs=1, verbose=0)
    return np.concatenate([(w.numpy() - b).ravel() for w, b in zip(model.trainable_weights, before)])


def updates(out):
    dataset = data.load("bars")
    x = dataset.train[:256]
    one, two = make_strategy("default"), make_strategy("mirrored")
    assert two.num_replicas_in_sync == 2, two.num_replicas_in_sync
    result = {}
    for name in CHEAP:
        if name == "mixture":  # EM has no gradient step to compare (no optimizer update): see `em`
            continue
        ref = build(name, dataset, one)
        if name == "flow":
            ref.log_prob(x)  # ActNorm's data-dependent init first: the step compared is a gradient step
        weights = ref.get_weights()
        d_one = one_step(ref, x)
        mirrored = build(name, dataset, two, weights)
        same_weights = build(name, dataset, one, [w.numpy() for w in mirrored.weights])
        row = evaluation_diffs(mirrored, same_weights, dataset.test[:64])
        d_two = one_step(mirrored, x)
        saved = zoo.contract.replica_scaled, zoo.models.gan.replica_scaled
        zoo.contract.replica_scaled = zoo.models.gan.replica_scaled = lambda loss: loss  # the classic bug
        try:
            d_bug = one_step(build(name, dataset, two, weights), x)
        finally:
            zoo.contract.replica_scaled, zoo.models.gan.replica_scaled = saved
        row["replica_spread"] = replica_spread(mirrored)
        norm = float(np.linalg.norm(d_one))
        row.update(ratio=float(np.linalg.norm(d_two)) / norm, bug_ratio=float(np.linalg.norm(d_bug)) / norm,
                   cosine=float(d_one @ d_two / (norm * np.linalg.norm(d_two))), norm=norm)
        result[name] = row
        print(name, row, flush=True)
    fresh = build("flow", dataset, two)  # ActNorm's data-dependent init inside a mirrored step
    one_step(fresh, x)
    result["flow_first_step"] = {"replica_spread": replica_spread(fresh)}
    with open(out, "w") as f:
        json.dump(result, f)


def em(out):
    dataset = data.load("bars")
    ds = tf.data.Dataset.from_tensor_slices(dataset.train[:1024]).batch(256)
    one, two = make_strategy("default"), make_strategy("mirrored")
    assert two.num_replicas_in_sync == 2, two.num_replicas_in_sync
    hp = dict(components=4, pseudocount=0.5)  # > 0: a sum halved (a mean over replicas) would show too
    probs = lambda m: np.exp(np.concatenate([m.log_pi.numpy(), m.log_theta.numpy().ravel()]))  # noqa: E731
    with one.scope():
        ref = zoo.build_model("mixture", dataset, seed=0, jit_compile=False, **hp)
    start, before = ref.get_weights(), probs(ref)
    loss_one = ref.fit(ds, epochs=3, verbose=0).history["loss"]
    with two.scope():
        mirrored = zoo.build_model("mixture", dataset, seed=0, jit_compile=False, **hp)
    mirrored.set_weights(start)
    loss_two = mirrored.fit(ds, epochs=3, verbose=0).history["loss"]
    same_weights = build("mixture", dataset, one, [w.numpy() for w in mirrored.weights])
    row = evaluation_diffs(mirrored, same_weights, dataset.test[:64])
    stats = [mirrored.resp_sum.numpy(), mirrored.level_counts.numpy()]
    row.update(param_diff=float(np.abs(probs(mirrored) - probs(ref)).max()),
               moved=float(np.abs(probs(ref) - before).max()), loss_one=loss_one, loss_two=loss_two,
               replica_spread=replica_spread(mirrored), stats_left=max(float(np.abs(s).max()) for s in stats))
    print("mixture", row, flush=True)
    with open(out, "w") as f:
        json.dump(row, f)


def evaluation_diffs(mirrored, one, x):
    """What the runner evaluates, under either strategy: log_prob (the GAN's is AIS), log_prob_is
    (models with latents) and samples, from the same weights and seeds -- largest differences."""
    diff = lambda a, b: float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())  # noqa: E731
    row = {"log_prob_diff": diff(mirrored.log_prob(x, seed=3), one.log_prob(x, seed=3)),
           "sample_diff": diff(mirrored.sample(8, seed=5), one.sample(8, seed=5)), "is_diff": 0.0}
    if one.has_importance_sampling:
        row["is_diff"] = diff(mirrored.log_prob_is(x, 5, seed=4), one.log_prob_is(x, 5, seed=4))
    return row


def replica_spread(model):
    """The largest difference between two replicas' copies of any weight (0: they agree)."""
    spread = 0.0
    for w in model.weights:
        copies = [np.asarray(v.numpy()) for v in getattr(w.value, "values", [w.value])]
        spread = max([spread] + [float(np.abs(c - copies[0]).max()) for c in copies[1:]])
    return spread


def worker(index, ports, out):
    os.environ["TF_CONFIG"] = json.dumps({"cluster": {"worker": [f"localhost:{p}" for p in ports.split(",")]},
                                          "task": {"type": "worker", "index": int(index)}})
    strategy = make_strategy("multi_worker")  # before any other TensorFlow op (collectives)
    keras.utils.set_random_seed(0)
    dataset = data.load("bars")
    with strategy.scope():
        model = zoo.build_model("vae", dataset, seed=0, jit_compile=False)
    ds = tf.data.Dataset.from_tensor_slices(dataset.train[:512]).batch(64).repeat()
    model.fit(ds, epochs=2, steps_per_epoch=3, verbose=0)
    np.savez(out, *[w.numpy() for w in model.weights], replicas=strategy.num_replicas_in_sync)


if __name__ == "__main__":
    if sys.argv[1] == "update":
        keras.utils.set_random_seed(0)
        updates(sys.argv[2])
    elif sys.argv[1] == "em":
        em(sys.argv[2])
    else:
        worker(*sys.argv[2:5])
