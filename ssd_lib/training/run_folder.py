"""The run folder (``--out``): the files one training run keeps, and reading them back.

A run folder holds:

- ``checkpoint/`` and ``checkpoint.previous/``: the last two finished epochs
  (:mod:`ssd_lib.training.checkpoint`);
- ``log.csv``: one row per epoch (:func:`read_log`);
- ``settings.json``: what made the run, as JSON that loads back (:func:`read_settings`): the
  :class:`~ssd_lib.training.recipe.Recipe`, the :class:`~ssd_lib.config.SSDConfig` and facts
  of the call (resolved epochs and steps, backend, dtype policy, parameter count);
- ``tensorboard/``: TensorBoard logs, when the package is installed;
- after the command line's final evaluation: ``final.weights.h5`` and ``summary.json``;
- ``run.lock``: locked (``fcntl.flock``) while a run trains into the folder, so a second run
  into it refuses (:func:`lock_run_folder`); the operating system drops the lock when the
  process ends, even by ``kill -9``.

:func:`move_aside` moves a whole run folder to a free sibling name (``--overwrite``: nothing is
deleted).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no lock
    fcntl = None

from ..config import SSDConfig
from .recipe import Recipe

__all__ = ["CHECKPOINT_DIR", "LOG_FILE", "SETTINGS_FILE", "TENSORBOARD_DIR", "SUMMARY_FILE", "FINAL_WEIGHTS",
           "LOCK_FILE", "RunFolderError", "read_log", "run_settings", "write_settings", "read_settings",
           "check_run_folder", "lock_run_folder", "move_aside"]  # fmt: skip

CHECKPOINT_DIR = "checkpoint"
LOG_FILE = "log.csv"
SETTINGS_FILE = "settings.json"
TENSORBOARD_DIR = "tensorboard"
SUMMARY_FILE = "summary.json"
FINAL_WEIGHTS = "final.weights.h5"
LOCK_FILE = "run.lock"


class RunFolderError(RuntimeError):
    """A run folder that cannot be used as asked (in use, another run, a damaged checkpoint, a
    full disk); the message is one line that names the folder or file and says what to do."""


def check_run_folder(out_dir) -> Path:
    """``out_dir`` as a ``Path``, created if needed.

    Raises:
        RunFolderError: ``out_dir`` (or a parent) is a file.
    """
    out_dir = Path(out_dir)
    for folder in (out_dir, *out_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise RunFolderError(f"the run folder {out_dir} cannot be made: {folder} is a file; give a folder "
                                 "with --out")  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


@contextlib.contextmanager
def lock_run_folder(out_dir):
    """Hold ``<out_dir>/run.lock`` while the ``with`` block runs.

    Raises:
        RunFolderError: another process holds it (names the folder and that process).
    """
    path = Path(out_dir) / LOCK_FILE
    with open(path, "a+") as file:
        if fcntl is not None:
            try:
                fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                file.seek(0)
                holder = file.read().strip() or "another process"
                raise RunFolderError(f"{out_dir} is in use by another training run ({holder}); wait for it to "
                                     "end or use another --out") from None  # fmt: skip
        file.truncate(0)
        file.write(f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        file.flush()
        try:
            yield path
        finally:
            file.truncate(0)


def move_aside(out_dir) -> Path:
    """Move the run folder ``out_dir`` to ``<name>.replaced-N`` beside it (the first free N).

    Returns:
        Where it went.
    """
    out_dir = Path(out_dir)
    number = 1
    while (out_dir.parent / f"{out_dir.name}.replaced-{number}").exists():
        number += 1
    target = out_dir.parent / f"{out_dir.name}.replaced-{number}"
    os.replace(out_dir, target)
    return target


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


def run_settings(recipe: Recipe, config: SSDConfig, facts: dict) -> dict:
    """What ``settings.json`` holds: ``{"recipe": ..., "config": ..., **facts}``."""
    return {"recipe": recipe.to_dict(), "config": config.to_dict(), **facts}


def write_settings(out_dir, recipe: Recipe, config: SSDConfig, facts: dict) -> Path:
    """Write ``<out_dir>/settings.json`` (:func:`run_settings`; replaced in one rename).

    Returns:
        The file's path.
    """
    path = Path(out_dir) / SETTINGS_FILE
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(run_settings(recipe, config, facts), indent=1))
    os.replace(temporary, path)
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
