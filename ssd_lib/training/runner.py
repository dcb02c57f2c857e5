"""A whole training run from records to a finished run folder: batches built by the recipe,
:func:`~ssd_lib.training.loop.train`, final weights and the final evaluation.

:func:`make_training_data` turns records into the recipe's training batches (augmentation
switches, matching thresholds, batch size, seed); :func:`train_and_evaluate` is what
``python -m ssd_lib.train`` runs once it has parsed its arguments.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import keras

from .. import distribution
from ..augment import RandomExpand, SSDAugmentation
from ..config import SSDConfig
from ..encoder import SSDEncoder
from ..inference import predict
from ..metrics import evaluate
from ..pipeline import DetectionDataset
from .loop import RunOptions, TrainingResult, train
from .recipe import Recipe
from .run_folder import FINAL_WEIGHTS, SUMMARY_FILE

__all__ = ["make_training_data", "train_and_evaluate"]

logger = logging.getLogger(__name__)


def make_training_data(records, config: SSDConfig, recipe: Recipe, workers: int | None = None) -> DetectionDataset:
    """The training batches of ``records`` as the recipe says: zoom-out up to
    ``expand_max_ratio``, random crop if ``crop``, matching at ``pos_iou_threshold`` /
    ``neg_iou_limit`` (``None``: :class:`~ssd_lib.encoder.SSDEncoder`'s defaults), batches of
    ``batch_size`` (over all processes: this process loads its part,
    :func:`ssd_lib.distribution.process_shard`), order and augmentation drawn from ``seed``, the
    colour distortion applied on the accelerator, ``workers`` loader threads (``None``: one per
    CPU).

    Raises:
        ValueError: no records, or matching thresholds the encoder refuses.
    """
    expansion = RandomExpand(recipe.expand_max_ratio) if recipe.expand_max_ratio > 1 else None
    augmentation = SSDAugmentation(config.image_height, config.image_width, expansion=expansion,
                                   **({} if recipe.crop else {"cropping": None}))  # fmt: skip
    matching = {name: getattr(recipe, name) for name in ("pos_iou_threshold", "neg_iou_limit")
                if getattr(recipe, name) is not None}  # fmt: skip
    encoder = SSDEncoder(config, **matching)
    return DetectionDataset(records, config, recipe.batch_size, seed=recipe.seed, encoder=encoder,
                            augmentation=augmentation, photometric_on_device=True,
                            shard=distribution.process_shard(), workers=workers)  # fmt: skip


def train_and_evaluate(build, config: SSDConfig, train_records, val_records, out_dir, recipe: Recipe,
                       options: RunOptions | None = None, *, command: str | None = None,
                       ) -> tuple[TrainingResult, dict]:  # fmt: skip
    """Train on ``train_records`` (resuming ``out_dir``), then evaluate on ``val_records``.

    Besides what :func:`~ssd_lib.training.loop.train` writes, the run folder gets
    ``final.weights.h5`` and ``summary.json``: the ``command``, wall and CPU seconds of this
    call and of the whole run, the epochs and the validation mAP (VOC07 11-point and
    all-point; ``null`` without validation images). The per-class tables and the summary are logged
    (logger ``ssd_lib.training.runner``); predicting the validation images shows a progress bar
    unless ``options.verbose`` is 0.

    Args:
        build: a function without arguments that builds the model.
        config: the detector's configuration.
        train_records, val_records: dataset records (``ssd_lib.datasets``).
        out_dir: the run folder.
        recipe: the :class:`~ssd_lib.training.recipe.Recipe`.
        options: :class:`~ssd_lib.training.loop.RunOptions` (``workers`` load the batches).
        command: the command line to record in the summary.

    Returns:
        The :class:`~ssd_lib.training.loop.TrainingResult` and the summary (empty on processes
        other than 0 of a multi-process run: process 0 writes and evaluates, with a copy of the
        model outside the distribution, :func:`ssd_lib.distribution.local_copy`).

    Raises:
        ValueError: no training records (names their source: folder and split).
    """
    options = options or RunOptions()
    if not len(train_records):
        raise ValueError(f"train_and_evaluate: the training split is empty ({_source(train_records)}); check the "
                         "dataset folder and its image set")  # fmt: skip
    if not len(val_records):  # an empty split is warned about once, by whoever knows its name
        if getattr(val_records, "source", ""):
            logger.warning("the validation split is empty (%s): no validation mAP; summary.json records null",
                           val_records.source)  # fmt: skip
        else:
            logger.info("no validation images: no validation mAP; summary.json records null")
    train_data = make_training_data(train_records, config, recipe, options.workers)
    steps_per_epoch = recipe.steps_per_epoch or len(train_data)
    epochs = recipe.epochs_for(steps_per_epoch)
    length = (f"{epochs} epochs" if options.time_budget is None else
              f"as many epochs as fit {options.time_budget.seconds / 60:g} min (set after the first)")  # fmt: skip
    logger.info("%d training images, %d validation images; epochs of %d steps at batch %d, %s", len(train_records),
                len(val_records), steps_per_epoch, recipe.batch_size, length)  # fmt: skip
    start, start_cpu = time.perf_counter(), time.process_time()
    result = train(build, config, train_data, out_dir, recipe, val_records=val_records or None, options=options)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    out_dir = Path(out_dir)
    if not distribution.is_chief():
        return result, {}  # process 0 writes and evaluates
    model = result.model
    if distribution.process_count() > 1:  # the distributed model runs only with every process
        model = distribution.local_copy(model)
        keras.distribution.set_distribution(None)
    model.save_weights(out_dir / FINAL_WEIGHTS)
    summary = {"command": command,
               "seconds_this_call": round(seconds, 1), "cpu_seconds_this_call": round(cpu_seconds, 1),
               "training_seconds": round(sum(row.get("seconds", 0.0) for row in result.log), 1),
               "training_cpu_seconds": round(sum(row.get("cpu_seconds", 0.0) for row in result.log), 1),
               "cpu_count": os.cpu_count(),
               "epochs": result.epochs}  # fmt: skip
    detections = predict(model, [record["image_path"] for record in val_records], config, batch_size=16,
                         progress=options.verbose != 0) if len(val_records) else []  # fmt: skip
    for mode in ("11point", "allpoint"):
        mean_ap = None
        if len(val_records):
            evaluation = evaluate(detections, val_records, n_classes=config.n_classes, mode=mode)
            logger.info("%s", evaluation.table(config.class_names))
            mean_ap = float(evaluation.mean_average_precision)
        summary[f"val_mAP_{mode}"] = round(mean_ap, 4) if mean_ap is not None and math.isfinite(mean_ap) else None
    text = json.dumps(summary, indent=1, allow_nan=False)
    (out_dir / SUMMARY_FILE).write_text(text)
    logger.info("%s", text)
    return result, summary


def _source(records) -> str:
    return getattr(records, "source", "") or "no records given"
