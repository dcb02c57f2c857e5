"""A run that fits a time budget: the first epoch is timed, then the run's length is set.

With ``RunOptions(time_budget=TimeBudget(seconds))``, :func:`ssd_lib.training.train` trains the
first epoch, measures it on this machine as it is loaded now, and then sets the number of
epochs so that the whole call ends within ``seconds`` of wall time: the first epoch (compilation
included), compiling the training step again for the new schedule, the other epochs and their
validation mAP. The plan is stored in ``settings.json``; a resumed run keeps it.

Why after the first epoch: with a warm-up of at least one epoch (the cosine schedule) or epoch
boundaries (the piecewise one), the first epoch's learning rates do not depend on the run's
length, so the planned run is exactly the run started with the planned number of epochs. A cost
model per image (:data:`ssd_lib.training.dataset_fit.SECONDS_PER_IMAGE`) only gives the first
estimate: it cannot know the image sizes, the CPU or what else the machine is running.

:func:`plan_epochs` is the arithmetic; :class:`BudgetPlanner` the Keras callback that measures
and plans.

Used by ``python -m ssd_lib.train --model ...`` (``--time-budget``, in minutes); explained in
notebooks/07_data_pipeline.ipynb (your own labelled images).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import keras
import numpy as np

from .. import distribution

__all__ = ["TimeBudget", "FirstEpochTiming", "validation_interval", "validations", "compiled_seconds", "plan_epochs",
           "BudgetPlanner"]  # fmt: skip

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TimeBudget:
    """How long a run may take, and what the planner may choose.

    Attributes:
        seconds: wall time of the :func:`~ssd_lib.training.train` call, validation included.
        max_epochs: the longest run worth training (``None``: no limit).
        advised_epochs: a plan shorter than this is logged as a warning (too short to
            converge; ``None``: no warning).
        evaluations: validation mAPs spread over the planned run (``map_every`` = epochs //
            evaluations, and after the last epoch); ``None`` keeps the recipe's ``map_every``.
    """

    seconds: float
    max_epochs: int | None = None
    advised_epochs: int | None = None
    evaluations: int | None = 4

    def __post_init__(self):
        if not (isinstance(self.seconds, (int, float)) and math.isfinite(self.seconds) and self.seconds > 0):
            raise ValueError(f"TimeBudget: seconds must be a positive number, got {self.seconds!r}")
        for name in ("max_epochs", "advised_epochs", "evaluations"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, int) and value >= 1):
                raise ValueError(f"TimeBudget: {name} must be a positive integer or None, got {value!r}")


@dataclasses.dataclass(frozen=True)
class FirstEpochTiming:
    """What the first epoch measured, in seconds of wall time.

    Attributes:
        elapsed: from the start of the call to the end of the first epoch (building, compiling,
            the epoch and its validation).
        epoch: one epoch of training once compiled (:func:`compiled_seconds` of its steps).
        compile: the rest of the epoch's time: compiling (paid again when the new schedule is
            compiled) and starting the data loading.
        validation: one validation mAP once compiled (0 without validation images).
    """

    elapsed: float
    epoch: float
    compile: float
    validation: float

    def describe(self) -> str:
        validation = f", validation {self.validation:.1f} s" if self.validation else ""
        return f"{self.epoch:.1f} s per epoch (+{self.compile:.1f} s compiling{validation})"


def validation_interval(epochs: int, evaluations: int) -> int:
    """``map_every`` that spreads ``evaluations`` validation mAPs over a run of ``epochs``."""
    return max(epochs // evaluations, 1)


def validations(first: int, last: int, every: int) -> int:
    """Validation mAPs after epochs ``first .. last`` (counted from 1): every ``every``-th and the last."""
    if last < first:
        return 0
    return last // every - (first - 1) // every + (last % every != 0)


def compiled_seconds(step_seconds) -> float:
    """The time of these steps once compiled: their count times their median. The steps that
    compile (the first, and the first of each other batch shape, e.g. a last partial batch) take
    many times a compiled step."""
    return len(step_seconds) * float(np.median(step_seconds)) if len(step_seconds) else 0.0


def plan_epochs(budget: TimeBudget, timing: FirstEpochTiming, map_every: int) -> tuple[int, int]:
    """The longest run that ends within the budget after a first epoch measured as ``timing``.

    A run of ``E`` epochs costs ``timing.elapsed`` + ``timing.compile`` (the new schedule's step)
    + ``(E - 1) * timing.epoch`` + ``timing.validation`` for each validation after epoch 1.

    Args:
        budget: the :class:`TimeBudget`.
        timing: the first epoch's :class:`FirstEpochTiming`.
        map_every: the recipe's validation interval, used when ``budget.evaluations`` is None.

    Returns:
        ``(epochs, map_every)``: at least 2 epochs (warm-up and one more), at most
        ``budget.max_epochs``.
    """
    remaining = budget.seconds - timing.elapsed - timing.compile
    affordable = 2 + max(int(remaining / max(timing.epoch, 1e-6)), 0)
    epochs = max(min(affordable, budget.max_epochs or affordable), 2)
    while True:
        every = map_every if budget.evaluations is None else validation_interval(epochs, budget.evaluations)
        cost = (epochs - 1) * timing.epoch + validations(2, epochs, every) * timing.validation
        if epochs == 2 or cost <= remaining:
            return epochs, every
        epochs -= 1


class BudgetPlanner(keras.callbacks.Callback):
    """Times the first epoch of a fit, plans the run (:func:`plan_epochs`) and stops the fit.

    Put it after the validation callback and before the checkpoint: at the end of the first epoch
    it measures a validation mAP if that epoch had none (and logs it as ``val_mAP``), plans,
    calls ``on_planned(epochs, map_every)`` (which records the plan) and stops the fit; the
    checkpoint of epoch 1 is written after. In a multi-process run process 0's plan is taken.

    Args:
        budget: the :class:`TimeBudget`.
        started: ``time.perf_counter()`` when the call began.
        map_every: the recipe's validation interval.
        validation: the :class:`~ssd_lib.training.callbacks.MeanAveragePrecision` callback, or ``None``.
        on_planned: called with ``(epochs, map_every)`` once planned.
    """

    def __init__(self, budget: TimeBudget, started: float, map_every: int, validation=None, on_planned=None):
        super().__init__()
        self.budget, self.started, self.map_every = budget, started, map_every
        self.validation, self.on_planned = validation, on_planned
        self.timing = None
        self.planned = None  # (epochs, map_every) once planned
        self._epoch_start = self._step_end = None
        self._step_seconds = []  # of the first epoch's steps

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch_start = self._step_end = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self._step_seconds.append(now - self._step_end)
        self._step_end = now

    def on_epoch_end(self, epoch, logs=None):
        if self.planned is not None or self.model.stop_training:  # planned already, or stopped (NaN)
            return
        validation = 0.0
        if self.validation is not None:
            if logs is None or not math.isfinite(logs.get("val_mAP", math.nan)):  # this epoch had none
                value, _ = self.validation.evaluate_now()
                self.validation.history[epoch + 1] = value
                if logs is not None:
                    logs["val_mAP"] = value
            chunks = self.validation.last_chunk_seconds
            validation = self.validation.last_seconds - sum(chunks) + compiled_seconds(chunks)
        self.timing = self._timing(validation)
        epochs, every = plan_epochs(self.budget, self.timing, self.map_every)
        epochs = distribution.from_chief(epochs)
        every = distribution.from_chief(every)
        self.planned = (epochs, every)
        steps = len(self._step_seconds) * epochs
        logger.info("first epoch: %s; %d epochs (%d steps) fit the time budget of %g min", self.timing.describe(),
                    epochs, steps, self.budget.seconds / 60)  # fmt: skip
        if self.budget.advised_epochs is not None and epochs < self.budget.advised_epochs:
            logger.warning("the time budget allows %d epochs; about %d would train this model better: give a "
                           "larger time budget (--time-budget)", epochs, self.budget.advised_epochs)  # fmt: skip
        if self.on_planned is not None:
            self.on_planned(epochs, every)
        self.model.stop_training = True

    def _timing(self, validation: float) -> FirstEpochTiming:
        now = time.perf_counter()
        epoch = compiled_seconds(self._step_seconds)
        compile_seconds = max(self._step_end - self._epoch_start - epoch, 0.0)
        return FirstEpochTiming(now - self.started, epoch, compile_seconds, validation)
