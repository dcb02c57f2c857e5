"""The run folder (``--out``): the files one training run keeps, and reading them back.

A run folder holds:

- ``checkpoint/``: the last finished epoch (:mod:`ssd_lib.training.checkpoint`);
- ``log.csv``: one row per epoch (:func:`read_log`);
- ``settings.json``: what made the run, as JSON that loads back (:func:`read_settings`): the
  :class:`~ssd_lib.training.recipe.Recipe`, the :class:`~ssd_lib.config.SSDConfig` and facts
  of the call (resolved epochs and steps, backend, dtype policy, parameter count);
- ``tensorboard/``: TensorBoard logs, when the package is installed;
- after the command line's final evaluation: ``final.weights.h5`` and ``summary.json``.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from ..config import SSDConfig
from .recipe import Recipe

__all__ = ["CHECKPOINT_DIR", "LOG_FILE", "SETTINGS_FILE", "TENSORBOARD_DIR", "SUMMARY_FILE", "FINAL_WEIGHTS",
           "read_log", "write_settings", "read_settings"]  # fmt: skip

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "log.csv"
SETTINGS_FILE = "settings.json"
TENSORBOARD_DIR = "tensorboard"
SUMMARY_FILE = "summary.json"
FINAL_WEIGHTS = "final.weights.h5"


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


def write_settings(out_dir, recipe: Recipe, config: SSDConfig, facts: dict) -> Path:
    """Write ``<out_dir>/settings.json``: ``{"recipe": ..., "config": ..., **facts}``.

    Returns:
        The file's path.
    """
    path = Path(out_dir) / SETTINGS_FILE
    settings = {"recipe": recipe.to_dict(), "config": config.to_dict(), **facts}
    path.write_text(json.dumps(settings, indent=1))
    return path


def read_settings(out_dir) -> tuple[Recipe, SSDConfig, dict]:
    """The recipe, the configuration and the other facts of ``<out_dir>/settings.json``.

    Raises:
        FileNotFoundError: the folder has no ``settings.json`` (names it).
        ValueError: the file is not the JSON :func:`write_settings` writes (names it).
    """
    path = Path(out_dir) / SETTINGS_FILE
    if not path.exists():
        raise FileNotFoundError(f"read_settings: no {path}; is {out_dir} a run folder?")
    try:
        facts = json.loads(path.read_text())
        return Recipe.from_dict(facts.pop("recipe")), SSDConfig.from_dict(facts.pop("config")), facts
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"read_settings: {path} is not a run's settings ({error})") from None
