"""Command line: ``python -m ssd_lib.train --preset NAME --data FOLDER --out RUN [recipe flags]``.

Parses the arguments into the library's objects (a preset, its :class:`~ssd_lib.training.Recipe`
with the flags' overrides, :class:`~ssd_lib.training.RunOptions`) and calls
:func:`ssd_lib.training.train_and_evaluate`. The recipe flags and their help come from the
recipe's fields. Running again with the same ``--out`` resumes after the last finished epoch if it is
the same run (new ``--epochs``, ``--learning-rate`` ... are taken; other data or settings are refused
unless ``--overwrite`` moves the old run aside).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import keras

from .datasets import load_splits
from .training import (Recipe, RunFolderError, RunOptions, TrainingDivergedError, configure_devices, presets,
                       train_and_evaluate)  # fmt: skip

__all__ = ["parse_arguments", "main"]


def _add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`Recipe` field (``--learning-rate`` ...), default ``None`` = the preset's."""
    group = parser.add_argument_group("recipe", "what makes the run; each flag defaults to the preset's value")
    for field in dataclasses.fields(Recipe):
        flag, metadata = "--" + field.name.replace("_", "-"), field.metadata
        if metadata["type"] is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=metadata["help"])
        else:
            group.add_argument(flag, type=metadata["type"], nargs="*" if metadata["many"] else None,
                               choices=metadata["choices"], default=None, help=metadata["help"])  # fmt: skip


def parse_arguments(argv=None):
    """The parsed arguments, the preset and its recipe with the flags' overrides.

    Returns:
        ``(arguments, preset, recipe)``.

    Raises:
        ValueError: a recipe flag with an invalid value (names the field).
    """
    known = presets()
    parser = argparse.ArgumentParser(
        prog="python -m ssd_lib.train",
        description="Train an SSD; run again with the same --out to resume after an interruption.",
    )
    parser.add_argument("--preset", required=True, choices=sorted(known), help="model, config and recipe")
    parser.add_argument("--data", required=True, help="dataset folder: data/shapes or data/VOCdevkit")
    parser.add_argument("--out", required=True, help="run folder (checkpoint, log.csv, weights)")
    parser.add_argument("--width-multiplier", type=float, help="small model only: channel factor")
    parser.add_argument("--vgg16-imagenet", action="store_true", help="VGG16 presets: start from ImageNet weights")
    parser.add_argument("--weights", help="SSD300 presets: start from pretrained weights: torchvision-coco, "
                        "ssd-keras-voc, a model converted into data/models, or a .pth/.h5 file (their anchors; "
                        "the class heads start afresh when the classes differ)")  # fmt: skip
    parser.add_argument("--max-train-images", type=int, help="use only the first N training images")
    parser.add_argument("--max-val-images", type=int, help="use only the first N validation images")
    parser.add_argument("--workers", type=int, default=1, help="data loading threads")
    parser.add_argument("--tensorboard", action=argparse.BooleanOptionalAction, default=None,
                        help="TensorBoard logs (default: if the tensorboard package is installed)")  # fmt: skip
    parser.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Keras fit verbosity")
    _add_recipe_flags(parser)
    parser.add_argument("--overwrite", action="store_true",
                        help="when --out holds another run, move it aside (OUT.replaced-N) and start afresh")
    arguments = parser.parse_args(argv)
    _check_counts(arguments)
    preset = known[arguments.preset]
    overrides = {field.name: getattr(arguments, field.name) for field in dataclasses.fields(Recipe)
                 if getattr(arguments, field.name) is not None}  # fmt: skip
    return arguments, preset, preset.recipe.replace(**overrides)


def _pretrained_builder(arguments, preset):
    """``--weights``: the config to train (the weights' anchors, the preset's classes) and the
    model builder (:func:`ssd_lib.pretrained.finetuning_builder`)."""
    from .vgg_ssd import build_ssd300
    from .pretrained import finetuning_builder

    if preset.build is not build_ssd300:
        raise ValueError(f"--weights: the pretrained weights are SSD300s; preset {arguments.preset!r} is not "
                         "(use ssd300_voc or ssd300_shapes)")  # fmt: skip
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


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.train``; returns the exit status (1 with one
    ``error:`` line for bad settings or data)."""
    try:
        arguments, preset, recipe = parse_arguments(argv)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    keras.utils.set_random_seed(recipe.seed)
    config = preset.config
    if arguments.weights:
        try:
            config, build_pretrained = _pretrained_builder(arguments, preset)
        except (ValueError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    devices = configure_devices(recipe.precision)
    print(f"{arguments.preset}: {devices.describe()}")

    def build():
        if arguments.weights:
            return build_pretrained(recipe.weight_decay)
        model = preset.build_model(recipe.weight_decay, arguments.width_multiplier)
        if arguments.vgg16_imagenet:
            from .vgg16_imagenet import load_vgg16_imagenet

            load_vgg16_imagenet(model)
        return model

    options = RunOptions(devices=devices, workers=arguments.workers, tensorboard=arguments.tensorboard,
                         verbose=arguments.verbose, overwrite=arguments.overwrite)  # fmt: skip
    command = "python -m ssd_lib.train " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        train_records, val_records = load_splits(arguments.data, config.class_names)
        train_and_evaluate(build, config, train_records[: arguments.max_train_images],
                           val_records[: arguments.max_val_images], arguments.out, recipe, options,
                           command=command)  # fmt: skip
    except (TrainingDivergedError, RunFolderError, ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
