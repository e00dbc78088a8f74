"""Training through `model.fit` with the standard Keras callbacks, shared by every family.

Progress bar (Keras), TensorBoard logs, BackupAndRestore (a killed run resumes at its last epoch),
TerminateOnNaN (the runner marks such a run DIVERGED), optional early stopping on val_loss, and a
recorder that hands each epoch's numbers to the results store as soon as the epoch ends.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import keras


class EpochRecorder(keras.callbacks.Callback):
    """Calls `on_epoch(epoch, logs)` after every epoch, adding wall time and examples/s."""

    def __init__(self, on_epoch, examples_per_epoch: int):
        super().__init__()
        self.on_epoch, self.examples = on_epoch, examples_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self._t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._t0
        values = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        lr = self.model.optimizer.learning_rate
        values.update(epoch_seconds=seconds, examples_per_sec=self.examples / seconds,
                      learning_rate=float(keras.ops.convert_to_numpy(lr)))
        self.on_epoch(epoch, values)


def fit(model, dataset, train, out_dir, seed=0, on_epoch=None, extra_callbacks=()):
    """Train `model` on `dataset` as `train` (an experiments TrainConfig) says; returns the History.

    `out_dir` receives `backup/` (BackupAndRestore) and `tensorboard/`. Call again with the same
    `out_dir` after an interruption and training continues from the last finished epoch.
    """
    out_dir = Path(out_dir)
    n_train = len(dataset.train)
    steps = train.steps_per_epoch or math.ceil(n_train / train.batch_size)
    if train.lr_schedule == "cosine":  # every family schedules each optimizer from its own initial rate
        model.compile_default(lr_schedule=lambda lr: keras.optimizers.schedules.CosineDecay(
            lr, decay_steps=steps * train.epochs))
    labels = model.needs_labels  # class-conditional models train on (x, y)
    train_ds = dataset.tf_dataset("train", train.batch_size, shuffle=True, seed=seed,
                                  repeat=bool(train.steps_per_epoch), with_labels=labels)
    valid_ds = dataset.tf_dataset("valid", max(train.batch_size, 256), shuffle=False, with_labels=labels)
    callbacks = [keras.callbacks.BackupAndRestore(str(out_dir / "backup")),
                 keras.callbacks.TensorBoard(str(out_dir / "tensorboard"), write_graph=False,
                                             update_freq=train.tensorboard_update_freq),
                 keras.callbacks.TerminateOnNaN()]
    if train.patience:
        callbacks.append(keras.callbacks.EarlyStopping("val_loss", patience=train.patience,
                                                       restore_best_weights=True))
    if on_epoch is not None:
        examples_per_epoch = steps * train.batch_size if train.steps_per_epoch else n_train
        callbacks.append(EpochRecorder(on_epoch, examples_per_epoch))
    valid_steps = None  # a capped epoch validates on the same fraction of the valid split
    if train.steps_per_epoch:
        n_valid, valid_bs = len(dataset.valid), max(train.batch_size, 256)
        epoch_fraction = steps / math.ceil(n_train / train.batch_size)
        valid_steps = min(math.ceil(n_valid / valid_bs),
                          max(1, math.ceil(epoch_fraction * n_valid / valid_bs)))
    return model.fit(train_ds, validation_data=valid_ds, epochs=train.epochs,
                     steps_per_epoch=train.steps_per_epoch, validation_steps=valid_steps,
                     callbacks=callbacks + list(extra_callbacks), verbose=train.verbose)
