"""Devices and hosts through `tf.distribute`: the strategy a run trains under, and what a replica needs.

    auto          MirroredStrategy over the visible GPUs when there are two or more, else the default
    default       the default strategy: one device
    mirrored      MirroredStrategy: every visible GPU, or every logical CPU device when there is none
    multi_worker  MultiWorkerMirroredStrategy, its cluster from the TF_CONFIG environment variable

Models are built, compiled and fitted inside `strategy.scope()`; a config's `batch_size` is the
**global** batch, which Keras splits across the replicas. Keras's optimizers sum the replicas'
gradients, so each replica's loss is its local mean divided by the replica count (`replica_scaled`):
the step then follows the mean over the global batch, whatever the number of replicas (Keras's own
`compile` losses are scaled the same way).
"""
from __future__ import annotations

import json
import os

import keras
import tensorflow as tf

from zoo.registry import unknown_key_error
from zoo.vocabulary import STRATEGIES

_MADE: dict = {}  # one strategy of each name per process (a collective one can be made only once)


def make_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` called `name` (one of STRATEGIES), made once per process.

    Raises ValueError for an unknown name, or for `multi_worker` without a TF_CONFIG naming this
    worker's cluster."""
    if name not in STRATEGIES:
        raise unknown_key_error("strategy", name, STRATEGIES)
    if name not in _MADE:
        _MADE[name] = _make(name)
    return _MADE[name]


def split_cpu(devices: int) -> None:
    """Split the CPU into `devices` logical devices (to run `mirrored` on a machine without GPUs, as
    the tests do); only before TensorFlow has started its runtime. `ZOO_CPU_DEVICES=N` does it for
    the runner. Raises RuntimeError once the runtime is up."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)


def _make(name):
    if name == "multi_worker":
        return _multi_worker()
    if int(os.environ.get("ZOO_CPU_DEVICES") or 1) > 1 and not tf.config.list_physical_devices("GPU"):
        split_cpu(int(os.environ["ZOO_CPU_DEVICES"]))
    if name == "default" or (name == "auto" and len(tf.config.list_physical_devices("GPU")) < 2):
        return tf.distribute.get_strategy()
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus or tf.config.list_logical_devices("CPU")])


def _multi_worker() -> tf.distribute.Strategy:
    """MultiWorkerMirroredStrategy from TF_CONFIG; must come before any other TensorFlow op runs."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster")
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}); see the README's 'Several hosts'") from None
    if not cluster:
        raise ValueError("strategy multi_worker needs TF_CONFIG with this worker's cluster and task, e.g. "
                         '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
                         '"worker", "index": 0}}; see the README\'s "Several hosts"')
    return tf.distribute.MultiWorkerMirroredStrategy()


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a worker other than the chief (the "chief" task, or
    worker 0 when the cluster has none): the one process of a multi-worker run that records it."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError:
        return True
    task, cluster = config.get("task") or {}, config.get("cluster") or {}
    if task.get("type") == "chief":
        return True
    first_worker = task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0
    return "chief" not in cluster and first_worker


def where(strategy: tf.distribute.Strategy, precision: str) -> dict:
    """Where a run trains, for the store's `runs` row: host, devices (the strategy's, comma-joined),
    replica count, the dtype policy (`precision`) and the TensorFlow / Keras / TFP versions."""
    import socket

    import tensorflow_probability as tfp

    try:
        devices = list(strategy.extended.worker_devices)
    except (RuntimeError, AttributeError, NotImplementedError):  # the default strategy: one device
        devices = [d.name for d in tf.config.list_logical_devices() if d.device_type in ("GPU", "CPU")][:1]
    return {"host": socket.gethostname(), "devices": ",".join(d.split("device:")[-1] for d in devices),
            "replicas": int(strategy.num_replicas_in_sync), "dtype_policy": precision,
            "versions": f"tensorflow {tf.__version__}, keras {keras.__version__}, tfp {tfp.__version__}"}


def num_replicas() -> int:
    """Replicas sharing each step under the current strategy (1 outside any)."""
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_scaled(loss):
    """A replica's loss (its local batch mean) divided by the replica count: the optimizer sums the
    replicas' gradients, so the update is that of the global batch's mean (a single device: unchanged)."""
    n = num_replicas()
    return loss if n == 1 else loss / tf.cast(n, loss.dtype)


def step_logs(logs: dict) -> dict:
    """A step's logs as Keras can reduce them: across workers it takes their MEAN along axis 0, which
    fails on scalars under MultiWorkerMirroredStrategy (Keras 3, tensorflow#72388), so there each
    log gets an axis of 1 (the reduced logs are scalars again); elsewhere unchanged."""
    if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
        return logs
    return {name: tf.reshape(value, [1]) for name, value in logs.items()}


@keras.saving.register_keras_serializable(package="zoo")
class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A SeedGenerator whose draws differ across the replicas of a step. The state is mirrored, so a
    plain generator hands every replica the same seed and each replica's share of the global batch
    gets the same noise; here the replica id is folded into the seed (on one device: unchanged)."""

    def next(self, ordered=True):
        seed = super().next(ordered)
        context = tf.distribute.get_replica_context()
        if context is None or context.num_replicas_in_sync == 1:
            return seed
        replica = tf.cast(context.replica_id_in_sync_group, seed.dtype)
        return tf.random.experimental.stateless_fold_in(seed, replica, alg="philox")
