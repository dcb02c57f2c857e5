"""Command line: ``python -m ssd_lib.train --data PATH --model {small,ssd300,ssd512} --out RUN``
(or ``ssd-train``), or ``--preset NAME`` instead of ``--model``.

``--data`` is any dataset :func:`ssd_lib.datasets.open_dataset` recognises (a VOC root or
``VOCdevkit``, a COCO JSON file, a CSV file, a YOLO folder); the classes are discovered or given
with ``--classes a,b,c``, the splits chosen with ``--train-split``/``--val-split`` (defaults:
the dataset's :meth:`~ssd_lib.datasets.DatasetSource.default_splits`). With ``--model`` the
anchor scales, matching threshold, batch size and epochs are fitted to the data and a time
budget (:mod:`ssd_lib.training.dataset_fit`; the first epoch is timed and sets the epochs,
:mod:`ssd_lib.training.time_budget`); the presets are shortcuts with fixed classes and
recipes. Recipe flags (``--epochs``, ``--learning-rate`` ...) override either. The run folder's
``model.json`` records the model, its configuration and classes, so ``ssd_lib.evaluate`` and
``ssd_lib.predict`` need only ``--run``; ``train.log`` keeps the log. Running again with the same ``--out``
resumes after the last finished epoch if it is the same run (new ``--epochs``, ``--learning-rate`` ...
are taken; other data or settings are refused unless ``--overwrite`` moves the old run aside).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

from .config import SSD300_VOC, SSD512_VOC, SSD_SMALL_SHAPES
from .datasets import open_dataset
from .datasets.sources import EmptySplitError
from .inference import MODEL_BUILDERS, MODEL_FILE, model_name_of, write_model_file
from .distribution import Cluster, initialize_cluster, process_count, process_index
from .training import (Recipe, RunFolderError, RunOptions, TrainingDivergedError, configure_devices, presets,
                       train_and_evaluate)  # fmt: skip
from .training.dataset_fit import SECONDS_PER_IMAGE, fit_to_dataset
from .training.time_budget import validation_interval
from .status import LIBRARY_LOGGER, show_status
from .training.devices import set_random_seed
from .training.run_folder import SETTINGS_FILE, check_run_folder, move_aside

__all__ = ["parse_arguments", "main", "MODEL_CONFIGS"]

logger = logging.getLogger(__spec__.name)  # ssd_lib.<command> also under python -m (__name__ is __main__)

#: The configuration each ``--model`` starts from (classes and scales are then set from the data).
MODEL_CONFIGS = {"small": SSD_SMALL_SHAPES, "ssd300": SSD300_VOC, "ssd512": SSD512_VOC}
#: ``--model small``'s channel factor (that of the shipped model).
SMALL_WIDTH = 0.5
#: The run folder's copy of the command's log.
LOG_FILE = "train.log"


def _add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`Recipe` field (``--learning-rate`` ...), default ``None`` = the preset's."""
    group = parser.add_argument_group("recipe", "what makes the run; each flag defaults to the preset's "
                                      "or the fitted value")  # fmt: skip
    for field in dataclasses.fields(Recipe):
        flag, metadata = "--" + field.name.replace("_", "-"), field.metadata
        if metadata["type"] is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=metadata["help"])
        else:
            group.add_argument(flag, type=metadata["type"], nargs="*" if metadata["many"] else None,
                               choices=metadata["choices"], default=None, help=metadata["help"])  # fmt: skip


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ssd_lib.train",
        description="Train an SSD on a dataset; run again with the same --out to resume after an interruption.",
    )
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", choices=sorted(MODEL_CONFIGS),
                       help="the network; classes, anchor scales, matching and run length fitted to the data")
    which.add_argument("--preset", choices=sorted(presets()), help="a fixed model, classes and recipe")
    parser.add_argument("--data", required=True, help="a VOC root or VOCdevkit folder, a COCO JSON file, a CSV "
                        "file or a YOLO folder (python -m ssd_lib.datasets describes them)")  # fmt: skip
    parser.add_argument("--out", required=True, help="run folder (checkpoint, logs, model.json, weights)")
    parser.add_argument("--classes", help="class names in label order, comma-separated (default: discovered)")
    parser.add_argument("--train-split", help="training split (default: trainval or train)")
    parser.add_argument("--val-split", help="validation split (default: test or val; 'none' for none)")
    parser.add_argument("--time-budget", type=float, default=10.0,
                        help="--model: minutes of training, validation included; the first epoch is timed and "
                        "sets the epochs (default 10; --epochs instead fixes them)")  # fmt: skip
    parser.add_argument("--width-multiplier", type=float, help="small model only: channel factor")
    parser.add_argument("--vgg16-imagenet", action="store_true", help="VGG16 models: start from ImageNet weights")
    parser.add_argument("--weights", help="SSD300 presets: start from pretrained weights: torchvision-coco, "
                        "ssd-keras-voc, a model converted into data/models, or a .pth/.h5 file (their anchors; "
                        "the class heads start afresh when the classes differ)")  # fmt: skip
    parser.add_argument("--max-train-images", type=int, help="use only the first N training images")
    parser.add_argument("--max-val-images", type=int, help="use only the first N validation images")
    parser.add_argument("--workers", type=int, help="data loading threads (default: one per CPU)")
    parser.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=True,
                        help="TensorBoard logs in RUN/tensorboard (default: on)")  # fmt: skip
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")
    cluster = parser.add_argument_group(
        "several machines (JAX backend)", "as jax.distributed.initialize; inside a SLURM job (srun) they are read "
        "from its environment")  # fmt: skip
    cluster.add_argument("--coordinator-address", help="HOST:PORT of process 0, reachable from every machine")
    cluster.add_argument("--num-processes", type=int, help="processes of the run (one per machine)")
    cluster.add_argument("--process-id", type=int, help="this process, 0 .. num-processes - 1 (0 writes --out)")
    _add_recipe_flags(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="when --out holds a run, move it aside (OUT.replaced-N) and start afresh")
    return parser


def _overrides(arguments) -> dict:
    return {field.name: getattr(arguments, field.name) for field in dataclasses.fields(Recipe)
            if getattr(arguments, field.name) is not None}  # fmt: skip


def parse_arguments(argv=None):
    """The parsed arguments, with the preset's recipe and the flags' overrides for ``--preset``.

    Returns:
        ``(arguments, preset or None, recipe or None)``: with ``--model`` the recipe is fitted
        to the data later (:func:`fitted_run`).

    Raises:
        ValueError: a recipe flag with an invalid value (names the field).
    """
    arguments = _build_parser().parse_args(argv)
    _check_counts(arguments)
    if arguments.preset is None:
        return arguments, None, None
    preset = presets()[arguments.preset]
    return arguments, preset, preset.recipe.replace(**_overrides(arguments))


def read_splits(arguments, classes):
    """``(training records, validation records or [], classes)`` of ``--data`` and the split flags.

    Raises:
        ValueError: an unknown layout, split or class, an empty split (names the dataset).
    """
    source = open_dataset(arguments.data)
    train_split, val_split = source.default_splits()
    train_split = arguments.train_split or train_split
    val_split = arguments.val_split or val_split
    if val_split == "none":
        val_split = None
    classes = classes or source.discover_classes()
    logger.info("%s: %s dataset, training split %r, validation split %r, classes %s", source.path,
                source.format, train_split, val_split, ", ".join(classes))  # fmt: skip
    try:
        train_records = source.records(train_split, classes)[: arguments.max_train_images]
    except EmptySplitError:
        raise ValueError(f"the training split is empty ({source.path} (image set {train_split!r}))") from None
    val_records = []
    if val_split is None:
        logger.warning("%s: no validation split; the run reports no mAP (give --val-split)", source.path)
    else:
        try:
            val_records = source.records(val_split, classes)[: arguments.max_val_images]
        except EmptySplitError:
            logger.warning("the validation split is empty (%s (image set %r)): no validation mAP", source.path,
                           val_split)  # fmt: skip
    return train_records, val_records, tuple(classes)


def fitted_run(arguments, train_records, classes):
    """``(config, recipe, width multiplier, the DatasetFit)`` of ``--model``, fitted to ``train_records``.

    The recipe: Adam at 1e-2 (small, with BatchNorm) or SGD at 1e-3 (VGG16), one epoch of
    warm-up then cosine decay, zoom-out up to 2x and random crops, the fitted matching, batch
    and epochs (the first estimate: the run times its first epoch, :meth:`DatasetFit.time_budget`);
    recipe flags override it.
    """
    config = dataclasses.replace(MODEL_CONFIGS[arguments.model], n_classes=len(classes), class_names=classes)
    fit = fit_to_dataset(config, train_records, SECONDS_PER_IMAGE[arguments.model], arguments.time_budget * 60)
    small = arguments.model == "small"
    recipe = Recipe(epochs=fit.epochs, batch_size=fit.batch_size, optimizer="adam" if small else "sgd",
                    learning_rate=1e-2 if small else 1e-3, schedule="cosine", warmup_epochs=1.0,
                    weight_decay=5e-4, map_every=validation_interval(fit.epochs, 4), expand_max_ratio=2.0, crop=True,
                    pos_iou_threshold=fit.pos_iou_threshold, neg_iou_limit=min(fit.pos_iou_threshold, 0.4),
                    jit="on" if small else "auto").replace(**_overrides(arguments))  # fmt: skip
    width = (arguments.width_multiplier or SMALL_WIDTH) if small else arguments.width_multiplier
    return dataclasses.replace(config, scales=fit.scales), recipe, width, fit


def _pretrained_builder(arguments, preset):
    """``--weights``: the config to train (the weights' anchors, the preset's classes) and the
    model builder (:func:`ssd_lib.pretrained.finetuning_builder`)."""
    from .vgg_ssd import build_ssd300
    from .pretrained import finetuning_builder

    if preset is None or preset.build is not build_ssd300:
        given = f"preset {arguments.preset!r}" if preset is not None else f"--model {arguments.model}"
        raise ValueError(f"--weights: the pretrained weights are SSD300s; {given} is not (use --preset "
                         "ssd300_voc or ssd300_shapes)")  # fmt: skip
    if arguments.vgg16_imagenet:
        raise ValueError("--weights and --vgg16-imagenet: choose one starting point")
    return finetuning_builder(arguments.weights, preset.config)


def _check_counts(arguments) -> None:
    """Refuse counts that cannot be right (``ValueError`` naming the flag)."""
    for flag in ("max_train_images", "max_val_images", "workers", "width_multiplier"):
        value = getattr(arguments, flag)
        if value is not None and not value > 0:
            kind = "number" if flag == "width_multiplier" else "integer"
            raise ValueError(f"--{flag.replace('_', '-')} must be a positive {kind}, got {value}")


def _prepare_run_folder(arguments) -> None:
    """Check ``--out``; with ``--overwrite`` move a run it holds aside (nothing is deleted), so that
    ``model.json`` and ``train.log`` start afresh with the new run."""
    out = check_run_folder(arguments.out)
    if arguments.overwrite and ((out / SETTINGS_FILE).exists() or (out / MODEL_FILE).exists()):
        moved = move_aside(out)
        out.mkdir()
        logger.info("%s held a run: moved it to %s", out, moved)


def _preprocess_of(model) -> dict:
    """The :class:`~ssd_lib.model_layers.Preprocess` settings of a built model (its input convention)."""
    settings = model.get_layer("preprocess").get_config()
    return {name: settings[name] for name in ("mean", "scale", "to_bgr")}


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.train`` and ``ssd-train``; returns the exit status (1
    with one ``error:`` line for bad settings or data)."""
    show_status()  # the status lines, also into train.log
    try:
        arguments, preset, recipe = parse_arguments(argv)
        classes = tuple(name.strip() for name in arguments.classes.split(",")) if arguments.classes else None
        if preset is not None:
            if classes is not None and classes != tuple(preset.config.class_names):
                raise ValueError(f"--classes: the preset {arguments.preset} has the classes "
                                 f"{', '.join(preset.config.class_names)}; use --model for others")  # fmt: skip
            train_records, val_records, classes = read_splits(arguments, preset.config.class_names)
            config, model_name = preset.config, model_name_of(preset.build)
            width = arguments.width_multiplier or preset.width_multiplier
            fit = None
            if arguments.weights:
                config, build_pretrained = _pretrained_builder(arguments, preset)
        else:
            if arguments.weights:
                _pretrained_builder(arguments, preset)  # refuses: SSD300 presets only
            train_records, val_records, classes = read_splits(arguments, classes)
            config, recipe, width, fit = fitted_run(arguments, train_records, classes)
            model_name = arguments.model
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        cluster = Cluster(arguments.coordinator_address, arguments.num_processes, arguments.process_id)
        if initialize_cluster(cluster):
            logger.info("process %d of %d; if one stops, the others stop within %s s", process_index(),
                        process_count(), cluster.heartbeat_seconds)  # fmt: skip
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    set_random_seed(recipe.seed)
    build_options = {} if width is None else {"width_multiplier": width}
    devices = configure_devices(recipe.precision)
    logger.info("%s: %s", arguments.model or arguments.preset, devices.describe(recipe.jit))

    def build():
        if arguments.weights:  # model.json records the weights' input convention
            model = build_pretrained(recipe.weight_decay)
            if process_index() == 0:  # process 0 writes the run folder
                write_model_file(arguments.out, model_name, config, {"preprocess": _preprocess_of(model)})
            return model
        model = MODEL_BUILDERS[model_name](config, l2_regularization=recipe.weight_decay, **build_options)
        if arguments.vgg16_imagenet:
            from .vgg16_imagenet import load_vgg16_imagenet

            load_vgg16_imagenet(model)
        return model

    budget = None
    if fit is not None and arguments.epochs is None and arguments.total_steps is None:
        budget = fit.time_budget(evaluations=None if arguments.map_every is not None else 4)
    options = RunOptions(devices=devices, workers=arguments.workers, tensorboard=arguments.tensorboard,
                         verbose=arguments.verbose, overwrite=arguments.overwrite, time_budget=budget)  # fmt: skip
    command = "python -m ssd_lib.train " + " ".join(sys.argv[1:] if argv is None else argv)
    log_file = None
    try:
        if process_index() == 0:  # process 0 writes the run folder
            _prepare_run_folder(arguments)
            if not arguments.weights:
                write_model_file(arguments.out, model_name, config, build_options)
            log_file = _log_to(Path(arguments.out) / LOG_FILE)
        logger.info("%s", command)
        if fit is not None:
            logger.info("fitted to the data: %s", fit.describe())
        train_and_evaluate(build, config, list(train_records) * (fit.repeats if fit else 1), val_records,
                           arguments.out, recipe, options, command=command)  # fmt: skip
    except Exception as error:  # noqa: BLE001  (a multi-process run must end every process at once)
        if process_count() > 1:
            _end_this_process(error)
        if not isinstance(error, (TrainingDivergedError, RunFolderError, ValueError, ImportError, OSError)):
            raise
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if log_file is not None:
            logging.getLogger(LIBRARY_LOGGER).removeHandler(log_file)
            log_file.close()
    return 0


def _log_to(path: Path) -> logging.Handler:
    """Copy the library's log records (loggers ``ssd_lib.*``) into ``path``, with times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger(LIBRARY_LOGGER).addHandler(handler)
    return handler


def _end_this_process(error: Exception) -> None:
    """End a process of a multi-process run on an error, with one line, at once (a normal exit
    waits for the other processes, which would wait for this one): the others stop within the
    heartbeat. A collective that fails is most often another process that died first."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    print(f"error: process {process_index()} of {process_count()} stops: {first_line}. If another process of "
          "the run stopped first (its log says why), this one cannot go on without it.", file=sys.stderr, flush=True)  # fmt: skip
    sys.stdout.flush()
    os._exit(1)


if __name__ == "__main__":
    raise SystemExit(main())
