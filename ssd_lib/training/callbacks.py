"""The callbacks of a training run: NaN stop, learning-rate and CSV logs, checkpoints, mAP.

- :class:`StopOnNaN`: stops at the first non-finite loss and says what to try;
- :class:`LearningRateLogger`: the learning rate at the end of each epoch, in the logs;
- :class:`EpochCheckpoint`: :func:`~ssd_lib.training.checkpoint.save_checkpoint` after every
  epoch whose loss is finite;
- :class:`EpochCSVLogger`: ``log.csv``, one row per epoch, kept continuous across resumes;
- :class:`MeanAveragePrecision`: validation mAP every few epochs.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import time
from pathlib import Path

import keras
import numpy as np
from tqdm import tqdm

from .. import distribution
from ..config import SSDConfig
from ..datasets import load_image
from ..datasets.records import progress
from ..inference import predict_prepared, prepare_images
from ..metrics import evaluate
from .checkpoint import save_checkpoint
from .run_folder import read_log
from .schedule import current_learning_rate

__all__ = ["StopOnNaN", "LearningRateLogger", "EpochCheckpoint", "EpochCSVLogger", "MeanAveragePrecision"]


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
        learning_rate = current_learning_rate(self.model.optimizer)
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
            logs["learning_rate"] = current_learning_rate(self.model.optimizer)


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves :func:`save_checkpoint` after every epoch whose loss is finite.

    Args:
        out_dir: the run folder.
        detector: the model to save, if not the one being fit (which may wrap it, e.g.
            :func:`ssd_lib.photometric.with_photometric_distortion`).
    """

    def __init__(self, out_dir, detector: keras.Model | None = None):
        super().__init__()
        self.out_dir = Path(out_dir)
        self.detector = detector

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("loss")
        if self.model.stop_training and loss is not None and not math.isfinite(float(loss)):
            return
        with distribution.local_only():  # process 0 saves alone
            save_checkpoint(self.detector or self.model, self.out_dir, epoch + 1)


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


class MeanAveragePrecision(keras.callbacks.Callback):
    """Validation mAP every ``every`` epochs (and after the last one) as ``val_mAP`` in the logs.

    Runs :func:`ssd_lib.inference.predict` on the records' images (loaded and resized once, kept in memory) and
    :func:`ssd_lib.metrics.evaluate` against their boxes; epochs without evaluation log NaN. In a
    multi-process run each process predicts every ``process_count``-th image with a copy of the
    model of its own (:func:`ssd_lib.distribution.local_copy`) and all processes evaluate all the
    detections (:func:`ssd_lib.distribution.gather_rows`): every process logs the same value.

    Args:
        records: validation records (``image_path``, ``boxes``, ``labels``, ``difficult``).
        config: the detector's configuration.
        every: evaluate after every ``every``-th epoch.
        last_epoch: the run's number of epochs (always evaluated).
        batch_size: images per forward pass.
        verbose: progress bars (on a terminal, for phases longer than a moment) while loading the
            images and evaluating; 0: none. The mAP itself shows in Keras' progress bar
            (``val_mAP``), never printed into its line.
        detector: the model to evaluate, if not the one being fit (which may wrap it).
        evaluate_kwargs: passed on to ``evaluate`` (``iou_threshold``, ``mode``: "11point" or
            "allpoint").
    """

    def __init__(self, records, config: SSDConfig, every: int = 1, last_epoch: int | None = None,
                 batch_size: int = 16, verbose: int = 1, detector: keras.Model | None = None,
                 **evaluate_kwargs):  # fmt: skip
        super().__init__()
        self.detector = detector
        if every < 1:
            raise ValueError(f"MeanAveragePrecision: every must be >= 1, got {every}")
        self.records, self.config, self.every, self.last_epoch = list(records), config, every, last_epoch
        self.batch_size, self.verbose, self.evaluate_kwargs = batch_size, verbose, evaluate_kwargs
        self._processes = distribution.process_count()
        self._share = self.records[distribution.process_index() :: self._processes]  # this process predicts these
        loading = self._progress(self._share, description="loading validation images")
        self._inputs, self._sizes = prepare_images([load_image(record["image_path"]) for record in loading], config)
        self._local_detector = None
        self.history = {}
        self.last_seconds = None  # wall time of the last evaluation
        self.last_chunk_seconds = []  # and of each of its forward passes

    def evaluate_now(self):
        """mAP of the model as it is now: ``(mAP, the EvaluationResult of evaluate)``."""
        began = time.perf_counter()
        detector, context = self.detector or self.model, contextlib.nullcontext()
        if self._processes > 1:  # the distributed model predicts only with every process's batch
            detector = self._local_detector = distribution.local_copy(detector, self._local_detector)
            context = distribution.local_only()
        detections = []
        with self._progress(None, total=len(self._share), description="validation mAP") as bar, context:
            self.last_chunk_seconds = []
            for start in range(0, len(self._share), self.batch_size):
                chunk, chunk_began = slice(start, start + self.batch_size), time.perf_counter()
                detections += predict_prepared(detector, self._inputs[chunk], self._sizes[chunk], self.config,
                                               self.batch_size)  # fmt: skip
                self.last_chunk_seconds.append(time.perf_counter() - chunk_began)
                bar.update(len(self._inputs[chunk]))
        everyone = distribution.gather_rows(detections, width=6)  # process p predicted records p, p + n, ...
        detections = [None] * len(self.records)
        for index, share in enumerate(everyone):
            detections[index :: self._processes] = share
        result = evaluate(detections, self.records, n_classes=self.config.n_classes, **self.evaluate_kwargs)
        self.last_seconds = time.perf_counter() - began
        return float(result.mean_average_precision), result

    def _progress(self, iterable, total=None, description=""):
        return progress(iterable, total, description) if self.verbose else tqdm(iterable, total=total, disable=True)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every and (epoch + 1) != self.last_epoch:
            if logs is not None:
                logs["val_mAP"] = math.nan
            return
        value, _ = self.evaluate_now()
        self.history[epoch + 1] = value
        if logs is not None:  # Keras' progress bar or epoch line shows it
            logs["val_mAP"] = value
