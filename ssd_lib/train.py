"""Training an SSD: optimizer and schedule, devices, checkpoints and resume, logs, inference.

:func:`train` compiles a model with :class:`ssd_lib.losses.SSDLoss` and runs ``model.fit`` with
the pieces a long training run needs:

- **optimizer**: SGD with momentum 0.9 as in the paper (or Adam), with the original piecewise
  schedule (learning rate 1e-3, times 0.1 at given steps or epochs) or warm-up + cosine decay;
- **weight decay**: L2 penalties on the convolution kernels, set by the model builders'
  ``l2_regularization`` argument (Caffe's ``weight_decay: 0.0005``); the optimizer adds none
  unless ``weight_decay`` is given (then Keras' decoupled decay, applied to every variable);
- **devices** (:func:`configure_devices`): mixed precision (``mixed_bfloat16`` or
  ``mixed_float16``) and XLA compilation when a GPU is present, ``tf.distribute.MirroredStrategy``
  over several GPUs under TensorFlow, ``keras.distribution.DataParallel`` under JAX;
- **checkpoints** after every epoch (weights, optimizer state with its step counter, epoch) in
  ``<out>/checkpoint/``; calling :func:`train` again with the same ``out_dir`` resumes after the
  last finished epoch, so an interruption loses at most the epoch in progress;
- **logs**: ``<out>/log.csv`` (one row per epoch: losses, validation mAP, learning rate,
  seconds), TensorBoard when the ``tensorboard`` package is installed, Keras progress bars;
- **NaN stop**: training stops at the first non-finite loss and :func:`train` raises
  :class:`TrainingDivergedError` saying what to try; the last good checkpoint is kept;
- **validation mAP** every ``map_every`` epochs with :func:`ssd_lib.metrics.evaluate` on the
  detections of :func:`predict`.

:func:`predict` runs a model on images of any size and returns the detections in each image's
own pixel coordinates.

Command line: ``python -m ssd_lib.train --preset small_shapes --data data/shapes --out runs/small``
(``--help`` lists the options).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import inspect
import json
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import keras
import numpy as np

from .augment import resize
from .config import SSDConfig
from .decoder import decode_detections

__all__ = [
    "TrainingDivergedError",
    "DeviceSetup",
    "TrainingResult",
    "gpu_devices",
    "configure_devices",
    "learning_rate_schedule",
    "make_optimizer",
    "save_checkpoint",
    "load_checkpoint",
    "read_log",
    "StopOnNaN",
    "EpochCheckpoint",
    "EpochCSVLogger",
    "LearningRateLogger",
    "MeanAveragePrecision",
    "train",
    "predict",
    "Preset",
    "presets",
    "load_splits",
    "load_shipped_model",
    "main",
]

#: Trained models shipped with the repository (``<name>.weights.h5`` + ``<name>.json``).
MODELS_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
#: Files of a run folder.
CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "log.csv"
SETTINGS_FILE = "settings.json"
TENSORBOARD_DIR = "tensorboard"


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message says when and what to try."""


# ------------------------------------------------------------------------------------ devices
def gpu_devices() -> list[str]:
    """Names of the GPUs the active Keras backend can use (empty on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices() if device.platform in ("gpu", "cuda", "rocm")]
    if backend == "torch":
        import torch

        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return []


@dataclasses.dataclass
class DeviceSetup:
    """What :func:`configure_devices` chose.

    Attributes:
        backend: the Keras backend (``tensorflow``, ``jax``, ``torch``).
        gpus: the visible GPUs.
        precision: the Keras dtype policy now in force (``float32``, ``mixed_float16``,
            ``mixed_bfloat16``).
        jit_compile: what to pass to ``model.compile`` (``True`` on GPU, else ``"auto"``).
        strategy: a ``tf.distribute.MirroredStrategy`` over several GPUs under TensorFlow, else
            ``None`` (under JAX, several GPUs are used through ``keras.distribution``).
    """

    backend: str
    gpus: list
    precision: str
    jit_compile: object
    strategy: object = None

    def describe(self) -> str:
        """One line for the log: backend, devices, precision, compilation, distribution."""
        devices = f"{len(self.gpus)} GPU(s)" if self.gpus else "CPU only"
        distributed = type(self.strategy).__name__ if self.strategy is not None else "one device"
        if self.strategy is None and self.backend == "jax" and len(self.gpus) > 1:
            distributed = "keras.distribution.DataParallel"
        return (
            f"backend {self.backend}, {devices}, precision {self.precision}, "
            f"jit_compile {self.jit_compile}, {distributed}"
        )


def configure_devices(precision: str = "auto", distribute: bool = True) -> DeviceSetup:
    """Choose precision, compilation and distribution for the visible hardware.

    Call it before building the model: the dtype policy applies to layers created afterwards.

    Args:
        precision: ``"auto"`` (``mixed_bfloat16`` when a GPU is visible, else ``float32``),
            ``"float32"``, ``"mixed_float16"`` (GPUs without bfloat16, e.g. V100/T4; Keras adds
            loss scaling) or ``"mixed_bfloat16"``.
        distribute: use all visible GPUs (MirroredStrategy under TensorFlow, DataParallel under
            JAX) when there are several.

    Returns:
        A :class:`DeviceSetup`. The global Keras dtype policy is set to its ``precision``.

    Raises:
        ValueError: an unknown ``precision``.
    """
    choices = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
    if precision not in choices:
        raise ValueError(f"configure_devices: precision must be one of {choices}, got {precision!r}")
    backend = keras.backend.backend()
    gpus = gpu_devices()
    if precision == "auto":
        precision = "mixed_bfloat16" if gpus else "float32"
    keras.mixed_precision.set_global_policy(precision)
    strategy = None
    if distribute and len(gpus) > 1:
        if backend == "tensorflow":
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
        elif backend == "jax":
            devices = keras.distribution.list_devices("gpu")
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    # XLA on a GPU; Keras' "auto" keeps it off on CPU-only TensorFlow and with tf.distribute.
    jit_compile = True if gpus and strategy is None else "auto"
    return DeviceSetup(backend, gpus, precision, jit_compile, strategy)


# ------------------------------------------------------------------------ optimizer, schedule
def learning_rate_schedule(learning_rate: float = 1e-3, steps_per_epoch: int = 1, epochs: int = 1,
                           schedule: str = "piecewise", decay_epochs: Sequence[float] = (),
                           decay_steps: Sequence[int] = (), decay_factor: float = 0.1,
                           warmup_epochs: float = 0.0):  # fmt: skip
    """The learning rate as a function of the optimizer step.

    Args:
        learning_rate: the initial (piecewise) or peak (cosine) learning rate.
        steps_per_epoch: optimizer steps per epoch (batches).
        epochs: length of the run in epochs (the cosine decays to 0 at its end).
        schedule: ``"piecewise"``: constant, multiplied by ``decay_factor`` at each boundary
            (the paper: 1e-3, then 1e-4 after 80k iterations, 1e-5 after 100k, batch 32).
            ``"cosine"``: linear warm-up from 0 over ``warmup_epochs``, then cosine decay to 0.
        decay_epochs, decay_steps: the piecewise boundaries, in epochs or in optimizer steps
            (give one of them; none means a constant learning rate).
        decay_factor: multiplier at each boundary.
        warmup_epochs: warm-up length of the cosine schedule.

    Returns:
        A ``keras.optimizers.schedules.LearningRateSchedule`` or a float (constant).

    Raises:
        ValueError: unknown schedule, both kinds of boundaries, boundaries not increasing,
            warm-up with the piecewise schedule, or a non-positive learning rate.
    """
    if not learning_rate > 0:
        raise ValueError(f"learning_rate_schedule: learning_rate must be > 0, got {learning_rate}")
    if schedule == "piecewise":
        if warmup_epochs:
            raise ValueError("learning_rate_schedule: warmup_epochs needs schedule='cosine'")
        if len(decay_epochs) and len(decay_steps):
            raise ValueError("learning_rate_schedule: give decay_epochs or decay_steps, not both")
        boundaries = [int(round(e * steps_per_epoch)) for e in decay_epochs] or [int(s) for s in decay_steps]
        if any(b <= a for a, b in zip(boundaries, boundaries[1:])) or any(b <= 0 for b in boundaries):
            raise ValueError(
                f"learning_rate_schedule: decay boundaries must be positive and increasing, got "
                f"{boundaries} steps"
            )
        if not boundaries:
            return float(learning_rate)
        values = [float(learning_rate * decay_factor**k) for k in range(len(boundaries) + 1)]
        # Keras switches after ``step > boundary``; the decay starts at step ``boundary`` exactly.
        return keras.optimizers.schedules.PiecewiseConstantDecay([b - 1 for b in boundaries], values)
    if schedule == "cosine":
        warmup_steps = int(round(warmup_epochs * steps_per_epoch))
        total_steps = max(int(epochs * steps_per_epoch), warmup_steps + 1)
        if warmup_steps == 0:
            return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
        return keras.optimizers.schedules.CosineDecay(
            0.0, total_steps - warmup_steps, warmup_target=learning_rate, warmup_steps=warmup_steps
        )
    raise ValueError(f"learning_rate_schedule: schedule must be 'piecewise' or 'cosine', got {schedule!r}")


def make_optimizer(name: str = "sgd", learning_rate=1e-3, momentum: float = 0.9,
                   decoupled_weight_decay: float | None = None, clipnorm: float | None = None):  # fmt: skip
    """SGD with momentum (the paper) or Adam, with the given learning rate or schedule.

    ``decoupled_weight_decay`` is Keras' optimizer weight decay (``w -= lr * decay * w`` every
    step, on all variables); the usual SSD weight decay is not this but the kernels' L2 penalty
    set with the model builders' ``l2_regularization`` argument.
    """
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=decoupled_weight_decay,
                                    clipnorm=clipnorm)  # fmt: skip
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decoupled_weight_decay, clipnorm=clipnorm)
    raise ValueError(f"make_optimizer: name must be 'sgd' or 'adam', got {name!r}")


def _current_learning_rate(optimizer) -> float:
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


# -------------------------------------------------------------------------------- checkpoints
def _write_checkpoint(model, folder: Path, state: dict) -> None:
    folder.mkdir(parents=True)
    model.save_weights(folder / "model.weights.h5")
    optimizer = model.optimizer
    if optimizer is not None and optimizer.built:
        arrays = {f"v{index:04d}": keras.ops.convert_to_numpy(variable)
                  for index, variable in enumerate(optimizer.variables)}  # fmt: skip
        np.savez(folder / "optimizer.npz", **arrays)
        state = {**state, "optimizer_variables": [variable.path for variable in optimizer.variables]}
    (folder / "state.json").write_text(json.dumps(state, indent=1))


def save_checkpoint(model: keras.Model, out_dir, epoch: int, **extra) -> Path:
    """Save weights, optimizer state and ``epoch`` (epochs finished) to ``<out_dir>/checkpoint``.

    The new checkpoint is written beside the old one and swapped in by renaming, so a kill at any
    moment leaves a complete checkpoint (the new or the previous one).

    Returns:
        The checkpoint folder.
    """
    out_dir = Path(out_dir)
    final, new, old = (out_dir / name for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".new", CHECKPOINT_DIR + ".old"))
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    _write_checkpoint(model, new, {"epoch": int(epoch), **extra})
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(model: keras.Model, out_dir) -> dict | None:
    """Restore the checkpoint of ``out_dir`` into a compiled ``model``, if there is one.

    Returns:
        The saved state (``{"epoch": epochs finished, ...}``), or ``None`` when ``out_dir`` has
        no checkpoint (a fresh run).

    Raises:
        ValueError: the checkpoint does not fit the model (another architecture or optimizer);
            the message names the checkpoint folder.
    """
    out_dir = Path(out_dir)
    folder = out_dir / CHECKPOINT_DIR
    if not (folder / "state.json").exists():
        folder = out_dir / (CHECKPOINT_DIR + ".old")  # killed while swapping checkpoints
        if not (folder / "state.json").exists():
            return None
    state = json.loads((folder / "state.json").read_text())
    optimizer = getattr(model, "optimizer", None)  # None before compile
    optimizer_file = folder / "optimizer.npz"
    values = None
    if optimizer is not None and optimizer_file.exists():
        if not optimizer.built:  # its variables (momentum ...) exist once it is built
            optimizer.build(model.trainable_variables)
        with np.load(optimizer_file) as arrays:
            values = [arrays[f"v{index:04d}"] for index in range(len(arrays.files))]
        if len(values) != len(optimizer.variables) or any(
            tuple(value.shape) != tuple(variable.shape) for value, variable in zip(values, optimizer.variables)
        ):
            raise ValueError(
                f"load_checkpoint: the optimizer state in {folder} ({len(values)} variables) does not "
                f"fit this model and optimizer ({len(optimizer.variables)} variables); was the run "
                "started with another model or optimizer? Use another --out folder or delete this one"
            )
    try:
        model.load_weights(folder / "model.weights.h5")
    except ValueError as error:
        raise ValueError(
            f"load_checkpoint: {folder} does not fit model {model.name!r} ({error}); use another "
            "--out folder or delete this one to start afresh"
        ) from None
    if values is not None:  # (load_weights restores them too; this is the checked copy)
        for variable, value in zip(optimizer.variables, values):
            variable.assign(value)
    return state


# ---------------------------------------------------------------------------------- callbacks
class StopOnNaN(keras.callbacks.Callback):
    """Stop training at the first batch whose loss is NaN or infinite, and say what to try.

    After ``fit`` returns, :attr:`message` is ``None`` or the explanation (``train`` raises
    :class:`TrainingDivergedError` with it). The epoch is not checkpointed.
    """

    def __init__(self):
        super().__init__()
        self.message = None
        self.epoch = 0
        self.last_finite_loss = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            self.last_finite_loss = loss
            return
        learning_rate = _current_learning_rate(self.model.optimizer)
        last = "none" if self.last_finite_loss is None else f"{self.last_finite_loss:.4g}"
        self.message = (
            f"the loss became {loss} at epoch {self.epoch + 1}, batch {batch + 1} (learning rate "
            f"{learning_rate:.3g}, last finite loss {last}); training stopped and this epoch was "
            "not saved. Things to try: a lower learning rate (--learning-rate), a warm-up "
            "(--schedule cosine --warmup-epochs 1), gradient clipping (--clipnorm 10), float32 or "
            "bfloat16 instead of float16 (--precision), and checking the data for empty or "
            "inverted boxes. Restarting with the same --out resumes from the last checkpoint."
        )
        self.model.stop_training = True


class LearningRateLogger(keras.callbacks.Callback):
    """Adds ``learning_rate`` (the value at the end of the epoch) to the epoch logs."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _current_learning_rate(self.model.optimizer)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves :func:`save_checkpoint` after every epoch whose loss is finite."""

    def __init__(self, out_dir):
        super().__init__()
        self.out_dir = Path(out_dir)

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if self.model.stop_training and loss is not None and not math.isfinite(float(loss)):
            return
        save_checkpoint(self.model, self.out_dir, epoch + 1)


class EpochCSVLogger(keras.callbacks.Callback):
    """One CSV row per epoch (``epoch`` counted from 1, then the logs, then ``seconds`` of wall
    time and ``cpu_seconds`` of the process on all cores; on a shared machine the second, over
    the number of cores, estimates the unloaded time).

    On a resumed run (``initial_epoch`` > 0) the rows of epochs after the checkpoint (written
    before an interruption) are dropped first, so the file stays one continuous run. Columns
    are the union of all rows' keys; the file is rewritten each epoch (it is small).
    """

    def __init__(self, path, initial_epoch: int = 0):
        super().__init__()
        self.path = Path(path)
        self.initial_epoch = initial_epoch
        self.rows = [row for row in read_log(self.path) if row["epoch"] <= initial_epoch]
        self._start = None

    def on_train_begin(self, logs=None):
        self._write()

    def on_epoch_begin(self, epoch, logs=None):
        self._start = (time.perf_counter(), time.process_time())

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch + 1}
        row.update({key: float(value) for key, value in (logs or {}).items() if np.ndim(value) == 0})
        row["seconds"] = time.perf_counter() - self._start[0]
        row["cpu_seconds"] = time.process_time() - self._start[1]
        self.rows.append(row)
        self._write()

    def _write(self):
        timings = ("seconds", "cpu_seconds")
        columns = ["epoch"]
        for row in self.rows:
            columns += [key for key in row if key not in columns and key not in timings]
        columns += list(timings)
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)
        os.replace(temporary, self.path)


def read_log(path) -> list[dict]:
    """The rows of a ``log.csv`` as dicts of floats (``epoch`` as int); ``[]`` if there is none.

    Empty cells (a metric not computed that epoch) read as NaN.
    """
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as file:
        rows = list(csv.DictReader(file))
    return [
        {key: (int(float(value)) if key == "epoch" else (float(value) if value != "" else math.nan))
         for key, value in row.items()}
        for row in rows
    ]  # fmt: skip


class MeanAveragePrecision(keras.callbacks.Callback):
    """Validation mAP every ``every`` epochs (and after the last one) as ``val_mAP`` in the logs.

    Runs :func:`predict` on the records' images (loaded and resized once, kept in memory) and
    :func:`ssd_lib.metrics.evaluate` against their boxes; epochs without evaluation log NaN.

    Args:
        records: validation records (``image_path``, ``boxes``, ``labels``, ``difficult``).
        config: the detector's configuration.
        every: evaluate after every ``every``-th epoch.
        last_epoch: the run's number of epochs (always evaluated).
        batch_size: images per forward pass.
        verbose: print the mAP after each evaluation.
        evaluate_kwargs: passed on to ``evaluate`` (``iou_threshold``, ``mode``: "11point" or
            "allpoint").
    """

    def __init__(self, records, config: SSDConfig, every: int = 1, last_epoch: int | None = None,
                 batch_size: int = 16, verbose: int = 1, **evaluate_kwargs):  # fmt: skip
        super().__init__()
        from .datasets import load_image

        if every < 1:
            raise ValueError(f"MeanAveragePrecision: every must be >= 1, got {every}")
        self.records, self.config, self.every, self.last_epoch = list(records), config, every, last_epoch
        self.batch_size, self.verbose, self.evaluate_kwargs = batch_size, verbose, evaluate_kwargs
        images = [load_image(record["image_path"]) for record in self.records]
        self._inputs, self._sizes = _model_inputs(images, config)
        self.history = {}

    def evaluate_now(self):
        """mAP of the model as it is now: ``(mAP, the EvaluationResult of evaluate)``."""
        from .metrics import evaluate

        detections = _predict_inputs(self.model, self._inputs, self._sizes, self.config, self.batch_size, {})
        result = evaluate(detections, self.records, n_classes=self.config.n_classes, **self.evaluate_kwargs)
        return float(result.mean_average_precision), result

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and (epoch + 1) != self.last_epoch:
            if logs is not None:
                logs["val_mAP"] = math.nan
            return
        value, _ = self.evaluate_now()
        self.history[epoch + 1] = value
        if logs is not None:
            logs["val_mAP"] = value
        if self.verbose:
            print(f"epoch {epoch + 1}: validation mAP {value:.4f}")


# ----------------------------------------------------------------------------------- training
@dataclasses.dataclass
class TrainingResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained model (the one passed in, or built by the builder).
        log: the rows of ``log.csv`` (all epochs of the run so far, resumed ones included).
        initial_epoch: epochs that were already done when this call started (0 = fresh run).
        epochs: epochs done now.
        out_dir: the run folder.
    """

    model: keras.Model
    log: list
    initial_epoch: int
    epochs: int
    out_dir: Path


def train(model, config: SSDConfig, train_data, out_dir, epochs: int, *, val_data=None,
          val_records=None, map_every: int = 1, loss=None, optimizer: str = "sgd",
          learning_rate: float = 1e-3, momentum: float = 0.9, schedule: str = "piecewise",
          decay_epochs: Sequence[float] = (), decay_steps: Sequence[int] = (),
          decay_factor: float = 0.1, warmup_epochs: float = 0.0,
          decoupled_weight_decay: float | None = None,
          clipnorm: float | None = None, jit_compile="auto", strategy=None, tensorboard=None,
          steps_per_epoch: int | None = None, callbacks: Sequence = (), verbose="auto",
          evaluate_kwargs: dict | None = None) -> TrainingResult:  # fmt: skip
    """Train an SSD, resuming from ``out_dir``'s checkpoint if there is one.

    Args:
        model: a ``keras.Model`` with the SSD output convention, or a function without arguments
            that builds one (called inside ``strategy.scope()``; needed for MirroredStrategy).
        config: the detector's configuration (the loss, decoder and metrics read it).
        train_data: batches of ``(images, y_true)``, e.g. a
            :class:`ssd_lib.pipeline.DetectionDataset` (a ``keras.utils.PyDataset``).
        out_dir: run folder: ``checkpoint/``, ``log.csv``, ``settings.json``, ``tensorboard/``.
            Calling again with the same folder continues the run.
        epochs: total epochs of the run (a resumed run trains the remaining ones).
        val_data: optional validation batches for ``val_loss`` (each epoch).
        val_records: optional validation records for the mAP (every ``map_every`` epochs).
        loss: default ``SSDLoss(config)``.
        optimizer, learning_rate, momentum, decoupled_weight_decay, clipnorm: see
            :func:`make_optimizer` (the usual L2 weight decay is part of the model).
        schedule, decay_epochs, decay_steps, decay_factor, warmup_epochs: see
            :func:`learning_rate_schedule`.
        jit_compile: passed to ``model.compile`` (``DeviceSetup.jit_compile``).
        strategy: a ``tf.distribute`` strategy (``DeviceSetup.strategy``) or ``None``.
        tensorboard: ``True``/``False``, or ``None``: write TensorBoard logs if the
            ``tensorboard`` package is installed.
        steps_per_epoch: batches per epoch (default: all of ``train_data``).
        callbacks: more Keras callbacks, called after the built-in ones (e.g. a live plot).
        verbose: Keras ``fit`` verbosity (1 = progress bar, 2 = one line per epoch).
        evaluate_kwargs: passed to ``ssd_lib.metrics.evaluate``.

    Returns:
        A :class:`TrainingResult`.

    Raises:
        TrainingDivergedError: the loss became NaN/inf (the message says when and what to try).
        ImportError: ``tensorboard=True`` without the ``tensorboard`` package.
        ValueError: bad settings, or a checkpoint in ``out_dir`` that does not fit the model.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if epochs < 1:
        raise ValueError(f"train: epochs must be >= 1, got {epochs}")
    if tensorboard is None:
        tensorboard = _tensorboard_installed()
    elif tensorboard and not _tensorboard_installed():
        raise ImportError(
            "train: tensorboard=True needs the 'tensorboard' package (pip install tensorboard); "
            "or pass tensorboard=False (--no-tensorboard): log.csv has the same numbers"
        )
    steps = steps_per_epoch or len(train_data)
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        if not isinstance(model, keras.Model):
            model = model()
        if loss is None:
            from .losses import SSDLoss

            loss = SSDLoss(config=config)
        rate = learning_rate_schedule(learning_rate, steps, epochs, schedule, decay_epochs, decay_steps,
                                      decay_factor, warmup_epochs)  # fmt: skip
        model.compile(optimizer=make_optimizer(optimizer, rate, momentum, decoupled_weight_decay, clipnorm),
                      loss=loss, jit_compile=jit_compile)  # fmt: skip
        state = load_checkpoint(model, out_dir)
    initial_epoch = state["epoch"] if state else 0
    settings = {
        "epochs": epochs, "steps_per_epoch": steps, "optimizer": optimizer,
        "learning_rate": learning_rate, "momentum": momentum, "schedule": schedule,
        "decay_epochs": list(decay_epochs), "decay_steps": list(decay_steps),
        "decay_factor": decay_factor, "warmup_epochs": warmup_epochs,
        "decoupled_weight_decay": decoupled_weight_decay,
        "clipnorm": clipnorm, "backend": keras.backend.backend(),
        "dtype_policy": keras.mixed_precision.global_policy().name,
        "parameters": int(model.count_params()), "config": repr(config),
    }  # fmt: skip
    (out_dir / SETTINGS_FILE).write_text(json.dumps(settings, indent=1, default=str))
    if initial_epoch >= epochs:
        print(f"{out_dir}: all {epochs} epochs are done already (checkpoint at epoch {initial_epoch})")
        return TrainingResult(model, read_log(out_dir / LOG_FILE), initial_epoch, initial_epoch, out_dir)
    if initial_epoch:
        print(f"{out_dir}: resuming after epoch {initial_epoch} of {epochs}")
    if hasattr(train_data, "set_epoch"):  # the epoch's sample order and augmentations
        train_data.set_epoch(initial_epoch)

    stop_on_nan = StopOnNaN()
    run_callbacks = [stop_on_nan, LearningRateLogger()]
    if val_records is not None:
        run_callbacks.append(MeanAveragePrecision(val_records, config, every=map_every, last_epoch=epochs,
                                                  verbose=int(verbose != 0), **(evaluate_kwargs or {})))  # fmt: skip
    run_callbacks += [EpochCSVLogger(out_dir / LOG_FILE, initial_epoch), EpochCheckpoint(out_dir)]
    if tensorboard:
        run_callbacks.append(keras.callbacks.TensorBoard(str(out_dir / TENSORBOARD_DIR)))
    model.fit(train_data, epochs=epochs, initial_epoch=initial_epoch, validation_data=val_data,
              steps_per_epoch=steps_per_epoch, callbacks=run_callbacks + list(callbacks),
              verbose=verbose)  # fmt: skip
    if stop_on_nan.message:
        raise TrainingDivergedError(f"train: {stop_on_nan.message}")
    log = read_log(out_dir / LOG_FILE)
    return TrainingResult(model, log, initial_epoch, log[-1]["epoch"] if log else initial_epoch, out_dir)


def _tensorboard_installed() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------------------------- inference
def _model_inputs(images, config: SSDConfig) -> tuple[np.ndarray, np.ndarray]:
    """Resize images to the model input: ``(n, H, W, 3)`` uint8 and their ``(n, 2)`` (w, h)."""
    inputs = np.empty((len(images), config.image_height, config.image_width, 3), dtype=np.uint8)
    sizes = np.empty((len(images), 2), dtype=np.float64)
    for index, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"predict: image {index} must be (height, width, 3) RGB, got shape {image.shape}")
        if image.dtype != np.uint8:
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        sizes[index] = image.shape[1], image.shape[0]
        if image.shape[:2] == config.image_size:
            inputs[index] = image
        else:
            inputs[index], _ = resize(image, np.zeros((0, 4)), config.image_height, config.image_width)
    return inputs, sizes


def _predict_inputs(model, inputs, sizes, config, batch_size, decode_kwargs) -> list[np.ndarray]:
    detections = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size].astype(np.float32)
        y_pred = keras.ops.convert_to_numpy(model.predict_on_batch(batch))
        detections += decode_detections(y_pred, config, original_sizes=sizes[start : start + batch_size],
                                        **decode_kwargs)  # fmt: skip
    return detections


def predict(model: keras.Model, images, config: SSDConfig, batch_size: int = 8,
            **decode_kwargs) -> list[np.ndarray]:  # fmt: skip
    """Detect objects in images of any size; boxes in each image's own pixel coordinates.

    Each image is resized to the model input (the validation path,
    :func:`ssd_lib.augment.resize`), the model runs in batches, and
    :func:`ssd_lib.decoder.decode_detections` decodes the output and scales the boxes back to
    the image's width and height.

    Args:
        model: an SSD (output ``(batch, n_anchors, n_classes + 1 + 4)``).
        images: one ``(H, W, 3)`` RGB image or a sequence of them (sizes may differ), uint8 or
            float in [0, 255].
        config: the model's configuration.
        batch_size: images per forward pass.
        **decode_kwargs: ``confidence_threshold``, ``iou_threshold``, ``top_k``,
            ``nms_max_output_size`` of ``decode_detections``.

    Returns:
        One ``(k, 6)`` float32 array per image, rows ``[class_id, score, xmin, ymin, xmax,
        ymax]`` in pixels of that image, by score descending.

    Raises:
        ValueError: an image that is not ``(H, W, 3)``.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    inputs, sizes = _model_inputs(list(images), config)
    return _predict_inputs(model, inputs, sizes, config, batch_size, decode_kwargs)


# ------------------------------------------------------------------------------- command line
@dataclasses.dataclass(frozen=True)
class Preset:
    """A model, its configuration and the training recipe the command line starts from.

    Attributes:
        config: the detector's configuration.
        build: ``build(config, l2_regularization) -> keras.Model``.
        recipe: default values of the command-line options (``--batch-size`` etc.).
    """

    config: SSDConfig
    build: Callable
    recipe: dict


def presets() -> dict:
    """The command line's presets by name: ``{name: Preset}`` (``ssd300_voc``, ``ssd512_voc``,
    ``ssd300_shapes``, ``small_shapes``)."""
    from .config import SHAPES_CLASSES, SSD300_VOC, SSD512_VOC, SSD_SMALL_SHAPES
    from .models import build_small_ssd, build_ssd300, build_ssd512

    # The paper's recipe (Caffe ssd_pascal.py): batch 32, SGD momentum 0.9, weight decay 5e-4,
    # learning rate 1e-3 for 80k iterations, 1e-4 until 100k, 1e-5 until 120k.
    original = dict(batch_size=32, optimizer="sgd", learning_rate=1e-3, schedule="piecewise",
                    decay_steps=(80_000, 100_000), total_steps=120_000, weight_decay=5e-4,
                    map_every=10)  # fmt: skip
    ssd300_shapes = dataclasses.replace(SSD300_VOC, n_classes=len(SHAPES_CLASSES), class_names=SHAPES_CLASSES)
    return {
        "ssd300_voc": Preset(SSD300_VOC, build_ssd300, original),
        "ssd512_voc": Preset(SSD512_VOC, build_ssd512, original),
        # SSD300 on the shapes data: the same recipe shortened to the small dataset.
        "ssd300_shapes": Preset(ssd300_shapes, build_ssd300,
                                {**original, "decay_steps": (4_000, 5_000), "total_steps": 6_000,
                                 "map_every": 5}),  # fmt: skip
        # The small CPU model, trained from scratch: Adam at 1e-2 (BatchNorm makes the high rate
        # safe; 3e-3 was far from converged in 24 epochs) with warm-up and cosine decay, XLA, no
        # zoom augmentation (the validation shapes have the training size distribution), matching
        # at IoU 0.4 (small and thin boxes rarely reach 0.5 with any anchor); the recipe of the
        # model shipped in data/models (see small_ssd_shapes.json there).
        "small_shapes": Preset(SSD_SMALL_SHAPES, build_small_ssd,
                               dict(batch_size=32, optimizer="adam", learning_rate=1e-2, schedule="cosine",
                                    warmup_epochs=1.0, epochs=24, weight_decay=5e-4, map_every=8,
                                    width_multiplier=0.5, expand_max_ratio=1.0, crop=False, jit="on",
                                    pos_iou_threshold=0.4, neg_iou_limit=0.4)),  # fmt: skip
    }


def load_splits(data_dir, class_names) -> tuple[list, list]:
    """Training and validation records of a dataset folder, found by its layout.

    - the shapes dataset (``shapes.json``): image sets ``train`` and ``val``;
    - a ``VOCdevkit`` folder: VOC2007 + VOC2012 ``trainval`` for training (whichever exist) and
      VOC2007 ``test`` for validation (the paper's "07+12" setting);
    - one VOC-format folder (``Annotations/``, ``ImageSets/Main/``): ``trainval`` or ``train``,
      and ``test`` or ``val``.

    Raises:
        ValueError: none of these layouts (names the folder and what was looked for).
    """
    from .datasets import parse_voc

    data_dir = Path(data_dir)
    if (data_dir / "shapes.json").exists():
        return parse_voc(data_dir, "train", class_names), parse_voc(data_dir, "val", class_names)
    years = [data_dir / name for name in ("VOC2007", "VOC2012") if (data_dir / name / "Annotations").is_dir()]
    if years:
        test_root = data_dir / "VOC2007"
        if not (test_root / "ImageSets" / "Main" / "test.txt").exists():
            raise ValueError(f"load_splits: {test_root} has no ImageSets/Main/test.txt (download voc2007test)")
        return parse_voc(years, "trainval", class_names), parse_voc(test_root, "test", class_names)
    sets = data_dir / "ImageSets" / "Main"
    if (data_dir / "Annotations").is_dir() and sets.is_dir():
        train_set = "trainval" if (sets / "trainval.txt").exists() and (sets / "test.txt").exists() else "train"
        val_set = "test" if train_set == "trainval" else "val"
        return parse_voc(data_dir, train_set, class_names), parse_voc(data_dir, val_set, class_names)
    raise ValueError(
        f"load_splits: {data_dir} is neither the shapes dataset (shapes.json), a VOCdevkit folder "
        "(VOC2007/, VOC2012/) nor a VOC-format folder (Annotations/, ImageSets/Main/)"
    )


def load_shipped_model(name: str = "small_ssd_shapes", models_dir=MODELS_DIR):
    """A trained model from ``data/models``: ``(model, config, info)``.

    ``<name>.json`` records the preset, the width multiplier, the command that trained the model
    and its validation mAP; the architecture is rebuilt from the preset and
    ``<name>.weights.h5`` loaded into it.

    Raises:
        FileNotFoundError: no such model (names the folder and the models that are there).
    """
    models_dir = Path(models_dir)
    info_file = models_dir / f"{name}.json"
    if not info_file.exists():
        available = sorted(path.stem for path in models_dir.glob("*.json"))
        raise FileNotFoundError(f"load_shipped_model: no {info_file}; models in {models_dir}: {available}")
    info = json.loads(info_file.read_text())
    preset = presets()[info["preset"]]
    options = {}
    if "width_multiplier" in inspect.signature(preset.build).parameters:
        options["width_multiplier"] = info["width_multiplier"]
    model = preset.build(preset.config, l2_regularization=0.0, **options)
    model.load_weights(models_dir / f"{name}.weights.h5")
    return model, preset.config, info


def _parse_arguments(argv):
    known = presets()
    parser = argparse.ArgumentParser(
        prog="python -m ssd_lib.train",
        description="Train an SSD; run again with the same --out to resume after an interruption.",
    )
    parser.add_argument("--preset", required=True, choices=sorted(known), help="model, config and recipe")
    parser.add_argument("--data", required=True, help="dataset folder: data/shapes or data/VOCdevkit")
    parser.add_argument("--out", required=True, help="run folder (checkpoint, log.csv, weights)")
    parser.add_argument("--epochs", type=int, help="epochs (default: the recipe's)")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--optimizer", choices=("sgd", "adam"))
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--schedule", choices=("piecewise", "cosine"))
    parser.add_argument("--decay-epochs", type=float, nargs="*", help="piecewise boundaries in epochs")
    parser.add_argument("--decay-steps", type=int, nargs="*", help="piecewise boundaries in steps")
    parser.add_argument("--warmup-epochs", type=float, help="warm-up of the cosine schedule")
    parser.add_argument("--weight-decay", type=float, help="L2 weight decay of the kernels (Caffe convention)")
    parser.add_argument("--clipnorm", type=float, help="clip each gradient to this norm")
    parser.add_argument("--width-multiplier", type=float, help="small model only: channel factor")
    parser.add_argument("--vgg16-imagenet", action="store_true", help="VGG16 presets: start from ImageNet weights")
    parser.add_argument("--expand-max-ratio", type=float, help="zoom-out augmentation (default 4); 1 disables")
    parser.add_argument("--crop", action=argparse.BooleanOptionalAction, default=None,
                        help="the random-crop augmentation (default: the recipe's; on for VOC)")  # fmt: skip
    parser.add_argument("--pos-iou-threshold", type=float,
                        help="matching: anchors with at least this IoU with a box are positives "
                             "(default: the recipe's, else SSDEncoder's)")  # fmt: skip
    parser.add_argument("--neg-iou-limit", type=float,
                        help="matching: anchors below this IoU with every box are background "
                             "(default: the recipe's, else SSDEncoder's)")  # fmt: skip
    parser.add_argument("--map-every", type=int, help="validation mAP every N epochs")
    parser.add_argument("--max-train-images", type=int, help="use only the first N training images")
    parser.add_argument("--max-val-images", type=int, help="use only the first N validation images")
    parser.add_argument("--steps-per-epoch", type=int)
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"))
    parser.add_argument("--jit", choices=("auto", "on", "off"), help="XLA compilation (default: the recipe's, or auto)")
    parser.add_argument("--workers", type=int, default=1, help="data loading threads")
    parser.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                        help="TensorBoard logs (default: if the tensorboard package is installed)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")
    arguments = parser.parse_args(argv)
    recipe = known[arguments.preset].recipe
    if arguments.schedule not in (None, recipe.get("schedule")) and arguments.warmup_epochs is None:
        arguments.warmup_epochs = 0.0  # the recipe's warm-up belongs to the recipe's schedule
    fallback = {"warmup_epochs": 0.0, "width_multiplier": 1.0, "expand_max_ratio": 4.0, "crop": True, "jit": "auto"}
    for name in ("batch_size", "optimizer", "learning_rate", "schedule", "warmup_epochs", "weight_decay",
                 "map_every", "width_multiplier", "expand_max_ratio", "crop", "jit", "pos_iou_threshold",
                 "neg_iou_limit"):  # fmt: skip
        if getattr(arguments, name) is None:
            setattr(arguments, name, recipe.get(name, fallback.get(name)))
    if arguments.decay_epochs is None and arguments.decay_steps is None:
        arguments.decay_steps = recipe.get("decay_steps", ())
    arguments.decay_epochs = arguments.decay_epochs or ()
    arguments.decay_steps = arguments.decay_steps or ()
    return arguments, known[arguments.preset]


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.train``; returns the exit status.

    Writes ``<out>/final.weights.h5`` and ``<out>/summary.json`` (command, settings, final mAP,
    training time) at the end, besides what :func:`train` writes.
    """
    arguments, preset = _parse_arguments(argv)
    from .augment import RandomExpand, SSDAugmentation
    from .datasets import load_image
    from .encoder import SSDEncoder
    from .metrics import evaluate
    from .pipeline import DetectionDataset

    keras.utils.set_random_seed(arguments.seed)
    devices = configure_devices(arguments.precision)
    print(f"devices: {devices.describe()}")
    config = preset.config
    try:
        train_records, val_records = load_splits(arguments.data, config.class_names)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    train_records = train_records[: arguments.max_train_images]
    val_records = val_records[: arguments.max_val_images]
    expansion = RandomExpand(arguments.expand_max_ratio) if arguments.expand_max_ratio > 1 else None
    augmentation = SSDAugmentation(config.image_height, config.image_width, expansion=expansion,
                                   **({} if arguments.crop else {"cropping": None}))  # fmt: skip
    try:
        matching = {name: getattr(arguments, name) for name in ("pos_iou_threshold", "neg_iou_limit")
                    if getattr(arguments, name) is not None}  # fmt: skip
        encoder = SSDEncoder(config, **matching)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    train_data = DetectionDataset(train_records, config, arguments.batch_size, seed=arguments.seed, encoder=encoder,
                                  augmentation=augmentation, workers=arguments.workers)  # fmt: skip
    steps_per_epoch = arguments.steps_per_epoch or len(train_data)
    epochs = arguments.epochs or preset.recipe.get("epochs") or math.ceil(preset.recipe["total_steps"] / steps_per_epoch)
    jit_compile = {"auto": devices.jit_compile, "on": True, "off": False}[arguments.jit]
    weight_decay = arguments.weight_decay

    options = {}
    if "width_multiplier" in inspect.signature(preset.build).parameters:
        options["width_multiplier"] = arguments.width_multiplier

    def build():
        model = preset.build(config, l2_regularization=weight_decay, **options)
        if arguments.vgg16_imagenet:
            from .models import load_vgg16_imagenet

            load_vgg16_imagenet(model)
        return model

    print(f"{arguments.preset}: {len(train_records)} training images, {len(val_records)} validation "
          f"images, {epochs} epochs of {steps_per_epoch} steps at batch {arguments.batch_size}")  # fmt: skip
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        result = train(
            build, config, train_data, arguments.out, epochs, val_records=val_records,
            map_every=arguments.map_every, optimizer=arguments.optimizer,
            learning_rate=arguments.learning_rate, momentum=arguments.momentum,
            schedule=arguments.schedule, decay_epochs=arguments.decay_epochs,
            decay_steps=arguments.decay_steps, warmup_epochs=arguments.warmup_epochs,
            clipnorm=arguments.clipnorm, jit_compile=jit_compile, strategy=devices.strategy,
            tensorboard=arguments.tensorboard, steps_per_epoch=arguments.steps_per_epoch,
            verbose=arguments.verbose,
        )  # fmt: skip
    except (TrainingDivergedError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    out_dir = Path(arguments.out)
    result.model.save_weights(out_dir / "final.weights.h5")
    detections = predict(result.model, [load_image(record["image_path"]) for record in val_records], config,
                         batch_size=16)  # fmt: skip
    summary = {"command": "python -m ssd_lib.train " + " ".join(sys.argv[1:] if argv is None else argv),
               "seconds_this_call": round(seconds, 1), "cpu_seconds_this_call": round(cpu_seconds, 1),
               "training_seconds": round(sum(row.get("seconds", 0.0) for row in result.log), 1),
               "training_cpu_seconds": round(sum(row.get("cpu_seconds", 0.0) for row in result.log), 1),
               "cpu_count": os.cpu_count(),
               "epochs": result.epochs}  # fmt: skip
    for mode in ("11point", "allpoint"):
        evaluation = evaluate(detections, val_records, n_classes=config.n_classes, mode=mode)
        summary[f"val_mAP_{mode}"] = round(float(evaluation.mean_average_precision), 4)
        print(evaluation.table(config.class_names))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
