"""`python -m experiments doctor`: what this machine offers the zoo -- the first thing to run on a new
(GPU) box. Prints the visible devices, the library versions, the strategy `auto` would pick (and the
replicas it would train on), whether XLA compiles and runs a tiny step, and the mixed-precision policy
it would suggest. Exits 0, or 1 when XLA fails."""
from __future__ import annotations

import os
import time

from experiments.cli import Parser


def main(argv=None) -> int:
    Parser(prog="python -m experiments doctor", description=__doc__).parse_args(argv)  # takes no options
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    from zoo.distribute import make_strategy, where

    print("devices:", ", ".join(f"{d.name} ({d.device_type})" for d in tf.config.list_logical_devices()))
    strategy = make_strategy("auto")
    info = where(strategy, "float32")
    print(f"versions: {info['versions']}; host {info['host']}")
    print(f"strategy auto -> {type(strategy).__name__} on {info['devices']} ({info['replicas']} replica(s))"
          + ("; ZOO_CPU_DEVICES=2 ... --strategy mirrored tries 2 replicas on the CPU"
             if info["replicas"] == 1 else ""))
    gpus = tf.config.list_physical_devices("GPU")
    cpu_advice = "mixed_bfloat16 where the CPU has bfloat16 units (AVX512_BF16/AMX), else float32"
    print("mixed precision: " + ("mixed_float16, or mixed_bfloat16 on Ampere+ GPUs" if gpus else cpu_advice))
    x = tf.random.stateless_normal([64, 32], seed=[0, 0])
    w = tf.Variable(tf.random.stateless_normal([32, 8], seed=[0, 1]))

    @tf.function(jit_compile=True)
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.tanh(x @ w)))
        w.assign_sub(0.1 * tape.gradient(loss, w))
        return loss

    try:
        t0 = time.perf_counter()
        first = float(step())
        compiled = time.perf_counter() - t0
        second = float(step())
    except Exception as err:  # noqa: BLE001 - reported, not raised: this is a diagnosis
        print(f"XLA: FAILED to compile a tiny step ({type(err).__name__}: {str(err)[:300]}); "
              f"set jit_compile: false in the configs")
        return 1
    ok = second < first
    print(f"XLA: compiles and runs a tiny training step ({compiled:.2f} s to compile; loss {first:.4f} -> "
          f"{second:.4f}{'' if ok else ', did NOT decrease'})")
    return 0 if ok else 1
