"""The training loop's wiring: :func:`train` compiles an SSD and runs ``model.fit`` with the
pieces a long run needs.

- the optimizer and schedule of the :class:`~ssd_lib.training.recipe.Recipe`
  (:mod:`ssd_lib.training.schedule`);
- the devices (:mod:`ssd_lib.training.devices`): precision, XLA, data parallelism over devices
  and processes (:mod:`ssd_lib.distribution`: process 0 writes the run folder, every process
  resumes from the same epoch);
- the colour distortion on the accelerator when the batches carry its parameters
  (:mod:`ssd_lib.photometric`);
- a checkpoint after every epoch; calling :func:`train` again with the same ``out_dir`` resumes
  after the last finished epoch (:mod:`ssd_lib.training.checkpoint`) if it is the same run
  (:mod:`ssd_lib.training.run_identity`); the folder is locked while training;
- the batch order of the data itself (``fit`` does not shuffle: a
  :class:`~ssd_lib.pipeline.DetectionDataset`'s order is a function of seed and epoch), so a
  resumed run trains exactly as an uninterrupted one;
- logs: ``log.csv``, ``settings.json`` (:mod:`ssd_lib.training.run_folder`), TensorBoard when the
  ``tensorboard`` package is installed, Keras progress bars;
- a NaN stop that raises :class:`TrainingDivergedError` saying what to try, and validation mAP
  every ``recipe.map_every`` epochs (:mod:`ssd_lib.training.callbacks`);
- optionally a time budget: the first epoch is timed and sets the run's length
  (:mod:`ssd_lib.training.time_budget`).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from pathlib import Path

import keras

from .. import distribution
from ..config import SSDConfig
from ..losses import SSDLoss
from ..photometric import with_photometric_distortion
from .callbacks import EpochCheckpoint, EpochCSVLogger, LearningRateLogger, MeanAveragePrecision, StopOnNaN
from .checkpoint import load_checkpoint
from .devices import DeviceSetup, configure_devices
from .recipe import Recipe
from .run_folder import (LOG_FILE, TENSORBOARD_DIR, check_run_folder, lock_run_folder, read_log, read_settings,
                         run_settings, write_settings)  # fmt: skip
from .run_identity import check_same_run, data_fingerprint
from .schedule import learning_rate_schedule, make_optimizer
from .time_budget import BudgetPlanner, TimeBudget

#: The ``settings.json`` entry of a run whose first epoch set its length: the epochs and
#: ``map_every`` chosen, the budget, and what that epoch measured.
PLAN_FACT = "time_budget_plan"

__all__ = ["TrainingDivergedError", "RunOptions", "TrainingResult", "train"]

logger = logging.getLogger(__name__)


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message says when and what to try."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How one call trains, as opposed to what it learns (the :class:`Recipe`).

    Attributes:
        devices: what :func:`~ssd_lib.training.devices.configure_devices` chose; ``None``:
            :func:`train` calls it with the recipe's precision before building the model.
        workers: data-loading threads, where the library builds the batches
            (:func:`~ssd_lib.training.runner.train_and_evaluate`); ``None``: one per CPU.
        tensorboard: ``True``/``False``, or ``None``: TensorBoard logs if the ``tensorboard``
            package is installed.
        verbose: Keras ``fit`` verbosity (1 = progress bar, 2 = one line per epoch, 0 = quiet).
        callbacks: more Keras callbacks, called after the built-in ones (e.g. a live plot).
        overwrite: when ``out_dir`` holds another run, move it aside and start afresh (else
            :func:`train` refuses).
        time_budget: a :class:`~ssd_lib.training.time_budget.TimeBudget`: the first epoch is timed
            and sets the run's epochs (and ``map_every``) so that the call ends within it; the
            recipe's epochs are only the first estimate. ``None``: the recipe's epochs.
    """

    devices: DeviceSetup | None = None
    workers: int | None = None
    tensorboard: bool | None = None
    verbose: int | str = "auto"
    callbacks: tuple = ()
    overwrite: bool = False
    time_budget: TimeBudget | None = None


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


def train(model, config: SSDConfig, train_data, out_dir, recipe: Recipe, *, val_records=None, val_data=None,
          options: RunOptions | None = None) -> TrainingResult:  # fmt: skip
    """Train an SSD with ``recipe``, resuming from ``out_dir``'s checkpoint if there is one.

    Args:
        model: a ``keras.Model`` with the SSD output convention, or a function without arguments
            that builds one (called after the devices are configured: needed for mixed precision
            and for data parallelism, whose variables are created on every device).
        config: the detector's configuration (the loss, decoder and metrics read it).
        train_data: batches of ``(images, y_true)``, e.g. a
            :class:`ssd_lib.pipeline.DetectionDataset` (a ``keras.utils.PyDataset``) of
            ``recipe.batch_size`` images (over all processes; with ``photometric_on_device`` the
            model is trained behind :class:`~ssd_lib.photometric.PhotometricDistortion`) (:func:`ssd_lib.training.runner.make_training_data`
            builds it from records and the recipe).
        out_dir: run folder: ``checkpoint/``, ``log.csv``, ``settings.json``, ``tensorboard/``.
            Calling again with the same folder continues the run (see
            :mod:`ssd_lib.training.run_identity` for what may change).
        recipe: optimizer, schedule, run length (``epochs``, else ``total_steps``; with
            ``options.time_budget`` the first estimate), precision, XLA, ``map_every``; a
            resumed run trains the remaining epochs.
        val_records: optional validation records for the mAP (every ``recipe.map_every``
            epochs and after the last; in a multi-process run every process predicts its share
            and logs the mAP of all).
        val_data: optional validation batches for ``val_loss`` (each epoch).
        options: devices, TensorBoard, verbosity, extra callbacks (:class:`RunOptions`).

    Returns:
        A :class:`TrainingResult`.

    Raises:
        TrainingDivergedError: the loss became NaN/inf (the message says when and what to try).
        ImportError: ``tensorboard=True`` without the ``tensorboard`` package.
        ValueError: batches of another size than the recipe's, bad schedule settings (a time
            budget with a cosine warm-up under one epoch), or a checkpoint in ``out_dir`` that
            does not fit the model.
        RunFolderError: ``out_dir`` is a file, is in use by another run, holds another run
            (without ``options.overwrite``), has only damaged checkpoints, or the disk is full.
    """
    options = options or RunOptions()
    out_dir = check_run_folder(out_dir)
    tensorboard = _tensorboard_installed() if options.tensorboard is None else options.tensorboard
    if tensorboard and not _tensorboard_installed():
        raise ImportError(
            "train: tensorboard=True needs the 'tensorboard' package (pip install tensorboard); "
            "or pass tensorboard=False (--no-tensorboard): log.csv has the same numbers"
        )
    if options.time_budget is not None and recipe.schedule == "cosine" and recipe.warmup_epochs < 1:
        raise ValueError(f"train: a time budget sets the run's length after the first epoch, whose learning rates "
                         f"must not depend on it: give the cosine schedule warmup_epochs >= 1 (got "
                         f"{recipe.warmup_epochs}) or use the piecewise schedule")  # fmt: skip
    data_batch_size = getattr(train_data, "batch_size", recipe.batch_size)
    if data_batch_size != recipe.batch_size:
        raise ValueError(f"train: train_data has batches of {data_batch_size} images but recipe.batch_size is "
                         f"{recipe.batch_size}")  # fmt: skip
    with contextlib.ExitStack() as held:
        if distribution.is_chief():  # the one writer holds the lock
            held.enter_context(lock_run_folder(out_dir))
        return _train_locked(model, config, train_data, out_dir, recipe, val_records, val_data, options,
                             tensorboard, held)  # fmt: skip


def _train_locked(model, config, train_data, out_dir: Path, recipe: Recipe, val_records, val_data,
                  options: RunOptions, tensorboard: bool, held: contextlib.ExitStack) -> TrainingResult:  # fmt: skip
    """:func:`train` once the run folder is locked (``held`` keeps the lock)."""
    devices = options.devices or configure_devices(recipe.precision, distribute=not isinstance(model, keras.Model))
    if devices.data_parallel > 1:
        distribution.check_global_batch(recipe.batch_size)
    started = time.perf_counter()
    steps = recipe.steps_per_epoch or len(train_data)
    plan = _stored_plan(out_dir) if options.time_budget is not None else None
    if plan is not None:  # a resumed run keeps the length its first epoch planned
        recipe = recipe.replace(epochs=plan["epochs"], map_every=plan["map_every"])
    epochs = recipe.epochs_for(steps)
    if not isinstance(model, keras.Model):
        model = model()
    chief = distribution.is_chief()  # process 0 writes the run folder
    records = getattr(train_data, "records", None)
    facts = {"model": model.name, "parameters": int(model.count_params()),
             "data": data_fingerprint(records) if records is not None else None,
             "epochs": epochs, "steps_per_epoch": steps, "backend": keras.backend.backend(),
             "dtype_policy": keras.mixed_precision.global_policy().name,
             **({PLAN_FACT: plan} if plan is not None else {})}  # fmt: skip
    changes = ()
    if chief:
        changes, moved = check_same_run(out_dir, run_settings(recipe, config, facts), options.overwrite)
        if moved is not None:
            logger.info("%s held another run: moved it to %s", out_dir, moved)
            held.enter_context(lock_run_folder(out_dir))
    distribution.barrier("the run folder is checked")  # the others read it only now
    # The schedule of this call's recipe: a resumed run continues it at the restored step.
    optimizer = make_optimizer(recipe.optimizer, _schedule(recipe, steps, epochs), recipe.momentum,
                               recipe.decoupled_weight_decay, recipe.clipnorm)  # fmt: skip
    jit_compile = devices.jit_compile_for(recipe.jit)
    model.compile(optimizer=optimizer, loss=SSDLoss(config=config), jit_compile=jit_compile)
    fitted = model  # what model.fit runs; it shares the detector's weights and optimizer
    if getattr(train_data, "photometric_on_device", False):
        if val_data is not None:
            raise ValueError("train: val_data cannot be used with photometric_on_device batches (they train "
                             "another input layout); use val_records for the mAP")  # fmt: skip
        fitted = with_photometric_distortion(model)
        fitted.compile(optimizer=model.optimizer, loss=model.loss, jit_compile=jit_compile)
    state = load_checkpoint(model, out_dir)
    initial_epoch = distribution.agree(state["epoch"] if state else 0, "the checkpoint's epoch")
    if chief:
        write_settings(out_dir, recipe, config, facts)
    if initial_epoch >= epochs:
        logger.info("%s: all %d epochs are done already (checkpoint at epoch %d)", out_dir, epochs, initial_epoch)
        return TrainingResult(model, read_log(out_dir / LOG_FILE), initial_epoch, initial_epoch, out_dir)
    if initial_epoch:
        changed = f" with {'; '.join(changes)}" if changes else ""
        logger.info("%s: resuming after epoch %d of %d%s", out_dir, initial_epoch, epochs, changed)

    validation = None
    if val_records is not None:
        validation = MeanAveragePrecision(val_records, config, every=recipe.map_every, last_epoch=epochs,
                                          verbose=int(options.verbose != 0), detector=model)  # fmt: skip

    def fit(first_epoch: int, last_epoch: int, planner: BudgetPlanner | None = None) -> None:
        """``model.fit`` from ``first_epoch`` (epochs done) to ``last_epoch``, with the run's callbacks."""
        if hasattr(train_data, "set_epoch"):  # the epoch's sample order and augmentations
            train_data.set_epoch(first_epoch)
        stop_on_nan = StopOnNaN()
        run_callbacks = [stop_on_nan, LearningRateLogger(), *[c for c in (validation, planner) if c is not None]]
        if chief:
            run_callbacks += [EpochCSVLogger(out_dir / LOG_FILE, first_epoch), EpochCheckpoint(out_dir, model)]
            if tensorboard:
                run_callbacks.append(keras.callbacks.TensorBoard(str(out_dir / TENSORBOARD_DIR)))
        fitted.fit(train_data, epochs=last_epoch, initial_epoch=first_epoch, validation_data=val_data,
                   steps_per_epoch=recipe.steps_per_epoch, callbacks=run_callbacks + list(options.callbacks),
                   verbose=options.verbose, shuffle=False)  # fmt: skip
        if stop_on_nan.message:
            raise TrainingDivergedError(f"train: {stop_on_nan.message}")

    if options.time_budget is not None and initial_epoch == 0:
        # The first epoch, timed; its learning rates do not depend on the run's length.
        def record_plan(planned_epochs: int, map_every: int) -> None:
            if chief:  # before the first checkpoint: a checkpoint of epoch >= 1 implies the plan
                planned = {"epochs": planned_epochs, "map_every": map_every,
                           "budget_seconds": options.time_budget.seconds, "first_epoch": dataclasses.asdict(planner.timing)}  # fmt: skip
                write_settings(out_dir, recipe.replace(epochs=planned_epochs, map_every=map_every), config,
                               {**facts, "epochs": planned_epochs, PLAN_FACT: planned})  # fmt: skip

        planner = BudgetPlanner(options.time_budget, started, recipe.map_every, validation, record_plan)
        fit(0, epochs, planner)
        if planner.planned is not None:  # else stopped within the first epoch by another callback
            planned_epochs, map_every = planner.planned
            recipe = recipe.replace(epochs=planned_epochs, map_every=map_every)
            if planned_epochs != epochs:  # the schedule of the planned length, compiled again
                model.optimizer.learning_rate = _schedule(recipe, steps, planned_epochs)
                fitted.train_function = None
            if validation is not None:
                validation.every, validation.last_epoch = map_every, planned_epochs
            fit(1, planned_epochs)
    else:
        fit(initial_epoch, epochs)
    log = read_log(out_dir / LOG_FILE)
    return TrainingResult(model, log, initial_epoch, log[-1]["epoch"] if log else initial_epoch, out_dir)


def _schedule(recipe: Recipe, steps_per_epoch: int, epochs: int):
    """The recipe's learning-rate schedule for a run of ``epochs``."""
    decay_steps = tuple(recipe.scaled_steps(boundary) for boundary in recipe.decay_steps)
    return learning_rate_schedule(recipe.learning_rate, steps_per_epoch, epochs, recipe.schedule,
                                  recipe.decay_epochs, decay_steps, recipe.decay_factor, recipe.warmup_epochs)  # fmt: skip


def _stored_plan(out_dir: Path) -> dict | None:
    """What the first epoch of ``out_dir``'s run planned (``settings.json``), or ``None``."""
    try:
        _, _, facts = read_settings(out_dir)
    except (FileNotFoundError, ValueError):  # no run yet, or a damaged file check_same_run reports
        return None
    plan = facts.get(PLAN_FACT)
    return plan if isinstance(plan, dict) and {"epochs", "map_every"} <= plan.keys() else None


def _tensorboard_installed() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True
