"""Side-by-side speed: each zoo family vs its plain Keras peer (`experiments.peers`), in one process.

    python -m experiments peers [--dataset digits] [--families vae,pixelcnn] [--batch-size 128]
                                [--steps 50] [--rounds 5] [--jit auto|on|off|all]

Both models train with `model.fit` on a tf.data pipeline of the same training split and batch size
(the zoo on uint8 batches, the peer on its example's preprocessing, mapped in the pipeline). Each
gets one untimed warm-up fit (which also compiles), then R rounds alternate zoo, peer, zoo, peer, ...
(with `--jit all` a round runs the pair of every choice, so their examples/s compare too), each a fit
of S steps timed from the end of its first step to the end of its last (the first step also starts
the input pipeline). Reported: the median examples/s of each, their ratio zoo/peer (the
goal: >= 1.0), the median and range of the per-round ratios (each round's zoo fit over the peer fit
right after it: robust to load that drifts between rounds), trainable parameter counts and the last
round's losses.
`--jit` compiles the zoo model with `jit_compile` "auto" / True / False and the peer with the same
(Keras's "auto": XLA on a GPU, not on a CPU-only machine); `all` runs the three, one table each, and
a summary with XLA's own speed-up of each model (on/off, paired within rounds).
"""
from __future__ import annotations

import gc
import os
import statistics
import sys
import time

from experiments.cli import Parser, whole

JIT = {"auto": "auto", "on": True, "off": False}
GOAL = 1.0  # zoo examples/s >= GOAL x the peer's


def trainable_params(model) -> int:
    return int(sum(int(w.numpy().size) for w in model.trainable_weights))


def _timer():
    import keras

    class StepTimer(keras.callbacks.Callback):
        """Seconds from the end of a fit's first step to the end of its last, and the steps between."""

        def on_train_begin(self, logs=None):
            self.first, self.last, self.steps = None, None, 0

        def on_train_batch_end(self, batch, logs=None):
            self.last = time.perf_counter()
            if self.first is None:
                self.first = self.last
            else:
                self.steps += 1

    return StepTimer()


def last_loss(history) -> float:
    """The fit's `loss` (a GAN peer reports d_loss and g_loss: their sum, as the zoo's GAN `loss`)."""
    logs = history.history
    return float(logs["loss"][-1] if "loss" in logs else logs["d_loss"][-1] + logs["g_loss"][-1])


def fit_rate(model, data, steps: int, batch_size: int):
    """One fit of `steps` steps: (examples/s after the first step, loss)."""
    timer = _timer()
    history = model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[timer])
    return batch_size * timer.steps / (timer.last - timer.first), last_loss(history)


def build_pair(entry, dataset, jit: str, batch_size: int, seed: int = 0):
    """(zoo model, its uint8 pipeline, peer model, its pipeline), compiled with `jit`."""
    import keras
    import tensorflow as tf

    import zoo
    from experiments.peers.registry import zoo_hparams

    keras.utils.set_random_seed(seed)
    hparams = {**zoo_hparams(entry, dataset.name), "jit_compile": JIT[jit]}
    zoo_model = zoo.build_model(entry.family, dataset, **hparams)
    peer_model, preprocess = entry.build(dataset, zoo_model, JIT[jit])
    zoo_data = dataset.tf_dataset("train", batch_size, shuffle=True, repeat=True, seed=seed)
    peer_data = dataset.tf_dataset("train", batch_size, shuffle=True, repeat=True, seed=seed)
    peer_data = peer_data.map(preprocess, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    return zoo_model, zoo_data, peer_model, peer_data


def measure(entry, dataset, jits=("auto",), batch_size: int = 128, steps: int = 50, rounds: int = 5):
    """One table row per `jits` choice: a zoo model and its peer for each, all warmed up, then `rounds`
    rounds of one fit of `steps` steps each, in the order zoo, peer (, zoo, peer for the next choice,
    ...): examples/s of different choices are comparable too (same rounds, same load). Returns the
    rows and {jit: (zoo rates, peer rates)} of every round."""
    sides = {}
    for jit in jits:
        zoo_model, zoo_data, peer_model, peer_data = build_pair(entry, dataset, jit, batch_size)
        sides[jit, "zoo"], sides[jit, "peer"] = (zoo_model, zoo_data), (peer_model, peer_data)
    for model, data in sides.values():  # warm-up: compiles, fills the pipelines
        fit_rate(model, data, steps, batch_size)
    rates, losses = {key: [] for key in sides}, {}
    for _ in range(rounds):
        for key, (model, data) in sides.items():
            rate, losses[key] = fit_rate(model, data, steps, batch_size)
            rates[key].append(rate)
    rows = []
    for jit in jits:
        (zoo_model, _), (peer_model, _) = sides[jit, "zoo"], sides[jit, "peer"]
        zoo_rate, peer_rate = statistics.median(rates[jit, "zoo"]), statistics.median(rates[jit, "peer"])
        per_round = [z / p for z, p in zip(rates[jit, "zoo"], rates[jit, "peer"])]
        zoo_params, peer_params = trainable_params(zoo_model), trainable_params(peer_model)
        xla = "/".join("on" if m.jit_compile else "off" for m in (zoo_model, peer_model))
        rows.append({"family": entry.name, "jit": jit, "xla zoo/peer": xla,
                     "zoo ex/s": round(zoo_rate), "peer ex/s": round(peer_rate),
                     "zoo/peer": zoo_rate / peer_rate,
                     "round ratios": f"{statistics.median(per_round):.2f} "
                                     f"({min(per_round):.2f}-{max(per_round):.2f})",
                     "goal >=1.0x": "met" if zoo_rate >= GOAL * peer_rate else "SHORT",
                     "zoo params": zoo_params, "peer params": peer_params,
                     "params diff": f"{(peer_params - zoo_params) / zoo_params:+.1%}",
                     "zoo loss": losses[jit, "zoo"], "peer loss": losses[jit, "peer"]})
    per_jit = {jit: (rates[jit, "zoo"], rates[jit, "peer"]) for jit in jits}
    del sides
    gc.collect()
    return rows, per_jit


def xla_gain(per_jit: dict) -> dict:
    """With both "on" and "off" measured: XLA's speed-up of each model, the median over rounds of
    (examples/s with XLA) / (without), paired within a round."""
    if not {"on", "off"} <= set(per_jit):
        return {}
    (zoo_on, peer_on), (zoo_off, peer_off) = per_jit["on"], per_jit["off"]
    return {"zoo XLA on/off": statistics.median(a / b for a, b in zip(zoo_on, zoo_off)),
            "peer XLA on/off": statistics.median(a / b for a, b in zip(peer_on, peer_off))}


def print_table(rows: list[dict], title: str) -> None:
    import pandas as pd

    print(f"\n== {title} ==")
    fmt = ("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.4g}".format)
    with pd.option_context(*fmt):
        print(pd.DataFrame(rows).to_string(index=False))


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from experiments.peers import PEERS
    from zoo.registry import unknown_key_error

    parser = Parser(prog="python -m experiments peers", description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="digits",
                        help="a zoo dataset (binarized_mnist needs ZOO_DATA_DIR); default digits")
    parser.add_argument("--families", default=",".join(PEERS), help=f"comma list of {', '.join(PEERS)}")
    parser.add_argument("--batch-size", type=whole(1), default=128)
    parser.add_argument("--steps", type=whole(2), default=50, help="steps per timed fit (>= 2)")
    parser.add_argument("--rounds", type=whole(1), default=5, help="interleaved timed fits per model")
    parser.add_argument("--jit", choices=[*JIT, "all"], default="auto",
                        help="jit_compile of both models: auto (Keras: XLA on GPU only), on, off, all three")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.families.split(",") if n.strip()]
    for name in names:
        if name not in PEERS:
            print(f"error: {unknown_key_error('family', name, PEERS, plural='families')}", file=sys.stderr)
            return 2
    from zoo import data

    try:
        dataset = data.load(args.dataset)
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    choices = list(JIT) if args.jit == "all" else [args.jit]
    print(f"{dataset.name}: {len(dataset.train)} training images {dataset.shape}, {dataset.levels} levels; "
          f"batch {args.batch_size}, {args.rounds} rounds x {args.steps} steps per model, "
          f"goal zoo >= {GOAL:.1f}x peer (examples/s)")
    for name in names:
        e = PEERS[name]
        print(f"  {name:<9} zoo {e.family}, {e.hparams or 'config'} vs {e.example}\n"
              f"  {'':<9} peer loss: {e.loss}")
    tables, summary = {jit: [] for jit in choices}, []
    for name in names:
        try:
            rows, per_jit = measure(PEERS[name], dataset, choices, args.batch_size, args.steps, args.rounds)
        except ValueError as err:  # a config the peer does not cover (e.g. a WGAN-GP zoo GAN)
            rows = [{"family": name, "jit": jit, "goal >=1.0x": f"skipped: {err}"} for jit in choices]
            per_jit = {}
        for row in rows:
            tables[row["jit"]].append(row)
        summary.append({"family": name, **{f"zoo/peer {r['jit']}": r.get("zoo/peer") for r in rows},
                        **xla_gain(per_jit)})
    for jit, rows in tables.items():
        print_table(rows, f"{dataset.name}, jit {jit}")
    if len(choices) > 1:
        print_table(summary, "zoo/peer by jit (one process, the choices interleaved in the same rounds)")
    return 0
