"""Training through `model.fit` with the standard Keras callbacks, shared by every family.

Progress bar (Keras), TensorBoard logs, BackupAndRestore (a killed run resumes at its last
checkpoint), TerminateOnNaN (the runner marks such a run DIVERGED), optional early stopping on
val_loss, and a recorder that hands each epoch's numbers to the results store as the epoch ends.

Bookkeeping is kept proportionate to the learning (on the digits an epoch of 16 steps trains in
~0.1 s, while a validation pass or a checkpoint costs about as much): validation runs every
`validate_every` training steps (rounded up to whole epochs, so the history stays deterministic)
and the checkpoint is written at the end of an epoch once `checkpoint_every` seconds or steps have
passed. The last epoch always validates and checkpoints. Each epoch's record splits its wall time
into `step_seconds` (the training steps), `valid_seconds` and `checkpoint_seconds`.
"""
from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import keras


class EpochClock(keras.callbacks.Callback):
    """First in the callback list: where each epoch's wall time goes (train, validation)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()
        self.train_end = self.valid_seconds = None

    def on_test_begin(self, logs=None):
        if getattr(self, "start", None) is not None and self.train_end is None:
            self.train_end = time.perf_counter()

    def on_test_end(self, logs=None):
        if self.train_end is not None:
            self.valid_seconds = time.perf_counter() - self.train_end

    def on_epoch_end(self, epoch, logs=None):
        if self.train_end is None:
            self.train_end = time.perf_counter()


class Checkpoint(keras.callbacks.BackupAndRestore):
    """BackupAndRestore saving at the end of an epoch once `every` steps or seconds have passed (and
    at the last epoch), never mid-epoch, so a resumed run restarts on an epoch boundary with the
    weights, optimizer and noise-generator state of that boundary. `seconds` is the last save's cost.
    The backup is kept after training (the runner removes it once the trained model is saved, so a
    kill in between loses nothing)."""

    def __init__(self, backup_dir, every, steps_per_epoch: int, epochs: int):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)  # the caller removes it
        self.unit, self.every = every  # ("steps" | "seconds", amount), from TrainConfig.checkpoint_rule
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.seconds = 0.0

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self.last_epoch = getattr(self.model, "_initial_epoch", None) or 0  # set by the restore
        self.last_time = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        since = (time.perf_counter() - self.last_time if self.unit == "seconds"
                 else (epoch + 1 - self.last_epoch) * self.steps_per_epoch)
        self.seconds = 0.0
        if since >= self.every or epoch + 1 == self.epochs:
            t0 = time.perf_counter()
            self._save_model()
            self.seconds = time.perf_counter() - t0
            self.last_epoch, self.last_time = epoch + 1, time.perf_counter()


class DataPosition(keras.callbacks.Callback):
    """Sets where the shuffled training stream starts at each epoch (`Dataset.tf_dataset`'s
    `position`): epoch x the examples an epoch takes, so the order of epoch e is the same whether the
    run went straight through or resumed at e from a checkpoint (Keras starts an epoch's iterator
    after `on_epoch_begin`; a repeated stream keeps its first iterator, which starts at the resumed
    epoch)."""

    def __init__(self, position, examples_per_epoch: int):
        super().__init__()
        self.position, self.examples = position, examples_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.position.assign(epoch * self.examples)


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's EarlyStopping, looking only at the epochs that validated (no warning in between)."""

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor in (logs or {}):
            super().on_epoch_end(epoch, logs)


class EpochRecorder(keras.callbacks.Callback):
    """Last in the list: calls `on_epoch(epoch, logs)` with the epoch's wall time split into
    train / valid / checkpoint seconds, and training examples/s (of the training part only)."""

    def __init__(self, on_epoch, examples_per_epoch: int, clock: EpochClock, checkpoint: Checkpoint):
        super().__init__()
        self.on_epoch, self.examples = on_epoch, examples_per_epoch
        self.clock, self.checkpoint = clock, checkpoint

    def on_epoch_end(self, epoch, logs=None):
        clock = self.clock
        train = clock.train_end - clock.start
        values = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        lr = self.model.optimizer.learning_rate
        values.update(epoch_seconds=time.perf_counter() - clock.start, step_seconds=train,
                      valid_seconds=clock.valid_seconds or 0.0, checkpoint_seconds=self.checkpoint.seconds,
                      examples_per_sec=self.examples / train,
                      learning_rate=float(keras.ops.convert_to_numpy(lr)))
        self.on_epoch(epoch, values)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Models built inside compute under the Keras dtype policy `name` ("float32", "mixed_bfloat16",
    "mixed_float16"): hidden layers in the low precision, output layers and all maths in float32."""
    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def float32_copy(model):
    """`model` itself when it computes in float32, else a float32 build of its config with its
    weights: how a mixed-precision run is evaluated (likelihoods are always float32 numbers)."""
    if model.dtype_policy.name == "float32":
        return model
    with dtype_policy("float32"):
        twin = type(model).from_config(model.get_config())
        twin.compile_default()
    twin.set_weights(model.get_weights())
    return twin


def check_semi_supervised(hp, dataset, name: str = "m2") -> None:
    """ValueError naming the hyper-parameter unless a semi-supervised model's `hp` (`num_classes`,
    `labelled`) fits `dataset`: it has training labels, `num_classes` of them, and at least `labelled`
    training examples. Needs no model (a config can be checked before anything trains)."""
    if "train" not in dataset.labels:
        from zoo.datafiles import BMNIST_LABELS_FILE

        fix = (f"place {BMNIST_LABELS_FILE} (y_train, y_valid, y_test) beside binarized_mnist.npz "
               f"(see zoo.datafiles)" if dataset.name == "binarized_mnist"
               else "train it on a labelled dataset (digits, mnist, ...)")
        raise ValueError(f"{name} trains on class labels (num_classes, labelled), but dataset "
                         f"{dataset.name!r} has none; {fix}")
    classes = 1 + max(int(y.max()) for y in dataset.labels.values() if len(y))
    if hp.num_classes != classes:
        raise ValueError(f"{name}: num_classes = {hp.num_classes}, but {dataset.name} has {classes} classes "
                         f"(labels 0..{classes - 1}); set the hyper-parameter num_classes: {classes}")
    if hp.labelled > len(dataset.train):
        raise ValueError(f"{name}: labelled = {hp.labelled} is more than the {len(dataset.train)} training "
                         f"examples of {dataset.name}; give labelled in [0, {len(dataset.train)}]")


def semi_supervised_batches(model, dataset, batch_size, steps, seed, position, repeat):
    """(training batches (images, labels), the callbacks they need) for a semi-supervised model
    (`can_classify`; Kingma et al. 2014's M2, `zoo.models.m2`). Each batch: `batch_size` examples of
    the whole training split, each label hidden as -1 but for the `hp.labelled` examples of
    `zoo.semisupervised.labelled_subset` (balanced over the classes, seed 0: the ones M1 sees), then
    `hp.labelled_batch` of those labelled examples from their own endless shuffled stream. Kingma et
    al. oversample the few labels so that every batch holds some (N = 100 of 50000 would give 0.2 a
    batch of 100); a labelled example is thus seen about labelled_batch x steps / N times an epoch.
    `position` and `repeat` as `Dataset.tf_dataset`'s; the callback sets where the labelled stream
    starts each epoch (a resumed run replays its batches too). ValueError from
    `check_semi_supervised`."""
    import dataclasses

    import numpy as np
    import tensorflow as tf

    from zoo.semisupervised import labelled_subset

    hp = model.hp
    check_semi_supervised(hp, dataset, model.name)
    kept = labelled_subset(dataset.labels["train"], hp.labelled) if hp.labelled else np.zeros(0, int)
    hidden = np.full(len(dataset.train), -1, np.int64)
    hidden[kept] = dataset.labels["train"][kept]
    main = dataset.tf_dataset("train", batch_size, shuffle=True, seed=seed, position=position, repeat=repeat,
                              labels=hidden)
    if not hp.labelled:
        return main, []
    gray = None if dataset.train_gray is None else dataset.train_gray[kept]
    few = dataclasses.replace(dataset, train=dataset.train[kept], train_gray=gray,
                              labels={"train": dataset.labels["train"][kept]})
    where = tf.Variable(0, dtype=tf.int64, trainable=False)
    extra = few.tf_dataset("train", hp.labelled_batch, shuffle=True, seed=seed, position=where, repeat=True,
                           with_labels=True)
    batches = tf.data.Dataset.zip(main, extra).map(
        lambda a, b: (tf.concat([a[0], b[0]], 0), tf.concat([a[1], b[1]], 0)))  # [B + B_l, ...] each
    return batches, [DataPosition(where, steps * hp.labelled_batch)]


def fit(model, dataset, train, out_dir, seed=0, on_epoch=None, extra_callbacks=()):
    """Train `model` on `dataset` as `train` (an experiments TrainConfig) says; returns the History.

    `out_dir` receives `backup/` (the checkpoint) and `tensorboard/`. Call again with the same
    `out_dir` after an interruption and training continues from the last checkpoint.
    """
    out_dir = Path(out_dir)
    n_train = len(dataset.train)
    steps = train.steps_per_epoch or math.ceil(n_train / train.batch_size)
    if train.lr_schedule == "cosine":  # every family schedules each optimizer from its own initial rate
        model.compile_default(lr_schedule=lambda lr: keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=steps * train.epochs))
    labels = model.needs_labels and not model.can_classify  # class-conditional models train on (x, y)
    import tensorflow as tf

    position = tf.Variable(0, dtype=tf.int64, trainable=False)  # where the data stream starts
    repeat, more = bool(train.steps_per_epoch), []
    if model.can_classify:  # semi-supervised (M2): only its N labels; valid: the label-free bound
        train_ds, more = semi_supervised_batches(model, dataset, train.batch_size, steps, seed, position,
                                                 repeat)
    else:
        train_ds = dataset.tf_dataset("train", train.batch_size, shuffle=True, seed=seed, position=position,
                                      repeat=repeat, with_labels=labels)
    valid_ds = dataset.tf_dataset("valid", max(train.batch_size, 256), shuffle=False, with_labels=labels)
    val_epochs = train.validation_epochs(steps)
    clock = EpochClock()
    checkpoint = Checkpoint(str(out_dir / "backup"), train.checkpoint_rule(), steps, train.epochs)
    per_epoch = steps * train.batch_size if train.steps_per_epoch else n_train
    callbacks = [clock, checkpoint, DataPosition(position, per_epoch),
                 *more,
                 keras.callbacks.TensorBoard(str(out_dir / "tensorboard"), write_graph=False,
                                             update_freq=train.tensorboard_update_freq),
                 keras.callbacks.TerminateOnNaN()]
    if train.patience:  # patience counts epochs; validations come every len(epochs)/len(val_epochs)
        every = train.epochs / len(val_epochs)
        callbacks.append(EarlyStopping("val_loss", patience=max(1, math.ceil(train.patience / every)),
                                       restore_best_weights=True))
    if on_epoch is not None:
        callbacks.append(EpochRecorder(on_epoch, per_epoch, clock, checkpoint))
    valid_steps = None  # a capped epoch validates on the same fraction of the valid split
    if train.steps_per_epoch:
        n_valid, valid_bs = len(dataset.valid), max(train.batch_size, 256)
        epoch_fraction = steps / math.ceil(n_train / train.batch_size)
        valid_steps = min(math.ceil(n_valid / valid_bs),
                          max(1, math.ceil(epoch_fraction * n_valid / valid_bs)))
    return model.fit(train_ds, validation_data=valid_ds, epochs=train.epochs,
                     steps_per_epoch=train.steps_per_epoch, validation_steps=valid_steps,
                     validation_freq=val_epochs, callbacks=callbacks + list(extra_callbacks),
                     verbose=train.verbose)
