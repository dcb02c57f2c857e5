"""Training an SSD: the recipe, the loop, and the rooms a long run needs.

Modules (one concept each):

- ``recipe``: :class:`Recipe`, the frozen settings of a run (optimizer, schedule, run length,
  batch, augmentation, matching, precision, XLA, seed), validated, with a JSON round trip;
  each field says whether it may change on resume and carries the command line's help;
- ``presets``: the named starting points (:func:`presets`): model builder + config + recipe;
- ``schedule``: learning-rate schedules and the optimizer;
- ``devices``: precision, XLA and distribution for the visible hardware;
- ``checkpoint``: the per-epoch checkpoint and its swap, and loading it back (resume);
- ``run_identity``: whether a run folder holds the same run (what a resume may change);
- ``callbacks``: NaN stop, learning-rate and CSV logs, checkpoints, validation mAP;
- ``run_folder``: the files of a run folder, ``log.csv`` and ``settings.json``, its lock;
- ``loop``: :func:`train` (compile, resume, ``model.fit``) and :class:`RunOptions`;
- ``time_budget``: a run whose first epoch, timed, sets its length (:class:`TimeBudget`);
- ``dataset_fit``: anchor scales, matching threshold, batch and a first run length fitted to a
  dataset (``python -m ssd_lib.train --model``);
- ``runner``: a whole run from records: batches by the recipe, training, final evaluation.

Inference (``predict``, the shipped models) lives in :mod:`ssd_lib.inference`; the command line
in :mod:`ssd_lib.train` (``python -m ssd_lib.train --help``).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from ssd_lib.training.callbacks import (
    EpochCheckpoint,
    EpochCSVLogger,
    LearningRateLogger,
    MeanAveragePrecision,
    StopOnNaN,
)
from ssd_lib.training.checkpoint import CheckpointError, checkpoint_epoch, load_checkpoint, save_checkpoint
from ssd_lib.training.devices import DeviceSetup, configure_devices, gpu_devices
from ssd_lib.training.loop import RunOptions, TrainingDivergedError, TrainingResult, train
from ssd_lib.training.presets import Preset, presets
from ssd_lib.training.recipe import Recipe
from ssd_lib.training.run_folder import RunFolderError, read_log, read_settings, write_settings
from ssd_lib.training.runner import make_training_data, train_and_evaluate
from ssd_lib.training.schedule import learning_rate_schedule, make_optimizer
from ssd_lib.training.time_budget import TimeBudget

__all__ = [
    "Recipe",
    "Preset",
    "presets",
    "RunOptions",
    "TimeBudget",
    "TrainingResult",
    "TrainingDivergedError",
    "train",
    "make_training_data",
    "train_and_evaluate",
    "learning_rate_schedule",
    "make_optimizer",
    "DeviceSetup",
    "gpu_devices",
    "configure_devices",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_epoch",
    "CheckpointError",
    "RunFolderError",
    "read_log",
    "read_settings",
    "write_settings",
    "StopOnNaN",
    "LearningRateLogger",
    "EpochCheckpoint",
    "EpochCSVLogger",
    "MeanAveragePrecision",
]
