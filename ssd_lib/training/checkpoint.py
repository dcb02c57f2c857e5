"""Checkpoints of a run: weights, optimizer state (with its step counter) and the epoch.

:func:`save_checkpoint` writes ``<out>/checkpoint/`` after every epoch and keeps the one before
as ``checkpoint.previous/``. A checkpoint folder holds:

- ``model.weights.h5``: the model's weights only (``model.load_weights`` reads it);
- ``optimizer.npz``: the optimizer's state (step counter, momenta), stored once, without the
  learning rate: a resumed run takes that from its recipe;
- ``state.json``: the epochs finished, written last: a folder without it is incomplete.

The swap is safe under a kill at any instant: the new checkpoint is written to
``checkpoint.new/`` (``state.json`` last), then ``checkpoint`` becomes ``checkpoint.previous``
and ``checkpoint.new`` becomes ``checkpoint``, each by one rename; at every moment one complete
checkpoint of the last or the one before last epoch exists, and :func:`load_checkpoint` restores
the newest complete one, falling back to an older one when a file is damaged. A full disk is
found before writing (or while writing: the partial checkpoint is removed) and leaves the last
checkpoint as it was.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np

from .run_folder import CHECKPOINT_DIR, RunFolderError

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "checkpoint_epoch", "checkpoint_folders"]

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.weights.h5"
OPTIMIZER_FILE = "optimizer.npz"
STATE_FILE = "state.json"
#: Free space kept beyond the checkpoint's size, in bytes.
SPACE_MARGIN = 16 * 2**20


class CheckpointError(RunFolderError):
    """A checkpoint that cannot be written (full disk) or read (damaged files); one line naming the
    file and saying what to do."""


def checkpoint_folders(out_dir) -> tuple[Path, Path, Path]:
    """The run's ``(latest, previous, new)`` checkpoint folders (``new`` exists only while writing)."""
    out_dir = Path(out_dir)
    return tuple(out_dir / (CHECKPOINT_DIR + suffix) for suffix in ("", ".previous", ".new"))


def save_checkpoint(model: keras.Model, out_dir, epoch: int, **extra) -> Path:
    """Save weights, optimizer state and ``epoch`` (epochs finished) to ``<out_dir>/checkpoint``;
    the checkpoint that was there becomes ``checkpoint.previous`` (see the module docstring).

    Returns:
        The checkpoint folder.

    Raises:
        CheckpointError: not enough space on the disk (before or while writing); the partial
            checkpoint is removed and the last one kept.
    """
    latest, previous, new = checkpoint_folders(out_dir)
    latest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(new, ignore_errors=True)  # a checkpoint being written when the run was killed
    _check_free_space(model, latest, epoch)
    try:
        _write_checkpoint(model, new, {"epoch": int(epoch), **extra})
    except OSError as error:
        shutil.rmtree(new, ignore_errors=True)
        raise CheckpointError(_write_failure(error, new, latest)) from None
    if latest.exists():
        shutil.rmtree(previous, ignore_errors=True)
        os.replace(latest, previous)
    os.replace(new, latest)
    return latest


def _optimizer_state(optimizer) -> list:
    """The optimizer variables a checkpoint keeps: all but the learning rate (the recipe's)."""
    return [variable for variable in optimizer.variables if variable.name != "learning_rate"]


def _write_checkpoint(model, folder: Path, state: dict) -> None:
    folder.mkdir(parents=True)
    optimizer = getattr(model, "optimizer", None)
    skip = [optimizer] if optimizer is not None else None  # the optimizer goes to optimizer.npz only
    keras.saving.save_weights(model, folder / WEIGHTS_FILE, objects_to_skip=skip)
    written = [folder / WEIGHTS_FILE]
    if optimizer is not None and optimizer.built:
        variables = _optimizer_state(optimizer)
        np.savez(folder / OPTIMIZER_FILE, **{f"v{index:04d}": keras.ops.convert_to_numpy(variable)
                                             for index, variable in enumerate(variables)})  # fmt: skip
        state = {**state, "optimizer_variables": [variable.path for variable in variables]}
        written.append(folder / OPTIMIZER_FILE)
    for path in written:  # on the disk before state.json says the checkpoint is complete
        with open(path, "rb") as file:
            os.fsync(file.fileno())
    temporary = folder / (STATE_FILE + ".tmp")
    with open(temporary, "w") as file:
        file.write(json.dumps(state, indent=1))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, folder / STATE_FILE)


def _check_free_space(model, latest: Path, epoch: int) -> None:
    """Refuse to start a checkpoint the disk cannot hold (h5py fails badly when it runs out)."""
    if latest.exists():
        needed = sum(path.stat().st_size for path in latest.iterdir() if path.is_file())
    else:
        optimizer = getattr(model, "optimizer", None)
        variables = model.weights + (optimizer.variables if optimizer is not None else [])
        needed = sum(int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize for variable in variables)
    free = shutil.disk_usage(latest.parent).free
    if free < needed + SPACE_MARGIN:
        raise CheckpointError(
            f"no space left on the disk of {latest.parent} for the checkpoint of epoch {epoch} (needs about "
            f"{(needed + SPACE_MARGIN) / 2**20:.0f} MB, {free / 2**20:.0f} MB free); {_kept(latest)}"
        )


def _write_failure(error: OSError, new: Path, latest: Path) -> str:
    if error.errno == errno.ENOSPC or "No space left" in str(error):
        return f"no space left on the disk of {new.parent} while writing the checkpoint; {_kept(latest)}"
    return f"could not write the checkpoint {new} ({_first_line(error)}); {_kept(latest)}"


def _kept(latest: Path) -> str:
    epoch = _complete_epoch(latest)
    kept = "no checkpoint was saved yet" if epoch is None else f"the checkpoint of epoch {epoch} is kept"
    return f"{kept}; free some space and run the same command again to resume"


def _complete_epoch(folder: Path) -> int | None:
    """The epoch of a complete checkpoint folder (one with a readable ``state.json``), else ``None``."""
    try:
        return int(json.loads((folder / STATE_FILE).read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _candidates(out_dir) -> list[Path]:
    """The checkpoint folders to try, newest first: ``checkpoint.new`` when it is complete and
    newer (a kill during the swap), ``checkpoint``, ``checkpoint.previous``."""
    latest, previous, new = checkpoint_folders(out_dir)
    new_epoch, latest_epoch = _complete_epoch(new), _complete_epoch(latest)
    folders = [latest, previous]
    if new_epoch is not None and (latest_epoch is None or new_epoch > latest_epoch):
        folders.insert(0, new)
    return [folder for folder in folders if folder.exists()]


def checkpoint_epoch(out_dir) -> int | None:
    """Epochs finished in the newest complete checkpoint of ``out_dir`` (``None``: none), read
    without a model, e.g. for all processes of a distributed run to agree on where to resume.
    (:func:`load_checkpoint` may fall back to an older one when this one's files are damaged.)"""
    epochs = [_complete_epoch(folder) for folder in _candidates(out_dir)]
    return next((epoch for epoch in epochs if epoch is not None), None)


def load_checkpoint(model: keras.Model, out_dir) -> dict | None:
    """Restore the newest intact checkpoint of ``out_dir`` into a compiled ``model``, if any.

    A checkpoint with a damaged file (truncated, unreadable) is passed over for the one before,
    with a warning naming the file. The optimizer's learning rate is not restored: the recipe's
    learning rate (or schedule, at the restored step) applies.

    Returns:
        The saved state (``{"epoch": epochs finished, ...}``), or ``None`` when ``out_dir`` has
        no checkpoint (a fresh run).

    Raises:
        ValueError: the checkpoint does not fit the model (another architecture or optimizer);
            the message names the checkpoint folder.
        CheckpointError: every checkpoint is damaged (names the file; says to use ``--overwrite``).
    """
    damaged = []
    for folder in _candidates(out_dir):
        try:
            state = _restore(model, folder)
        except CheckpointError as error:
            damaged.append(str(error))
            continue
        if damaged:
            logger.warning("%s; resuming from %s (epoch %d) instead", damaged[0], folder, state["epoch"])
        return state
    if damaged:
        raise CheckpointError(f"{damaged[0]}, and there is no intact earlier checkpoint; start afresh with "
                              "--overwrite (moves this run aside) or use another --out")  # fmt: skip
    return None


def _restore(model: keras.Model, folder: Path) -> dict:
    """Load ``folder`` into ``model``; a damaged file raises :class:`CheckpointError` naming it."""
    state = _read(folder / STATE_FILE, _read_state)
    optimizer = getattr(model, "optimizer", None)  # None before compile
    optimizer_file = folder / OPTIMIZER_FILE
    values = None
    if optimizer is not None and optimizer_file.exists():
        if not optimizer.built:  # its variables (momentum ...) exist once it is built
            optimizer.build(model.trainable_variables)
        values = _read(optimizer_file, _read_arrays)
        saved_paths = state.get("optimizer_variables", [])  # older checkpoints kept the learning rate too
        values = [value for index, value in enumerate(values)
                  if index >= len(saved_paths) or not saved_paths[index].endswith("/learning_rate")]  # fmt: skip
        variables = _optimizer_state(optimizer)
        if len(values) != len(variables) or any(
            tuple(value.shape) != tuple(variable.shape) for value, variable in zip(values, variables)
        ):
            raise ValueError(
                f"load_checkpoint: the optimizer state in {folder} ({len(values)} variables) does not "
                f"fit this model and optimizer ({len(variables)} variables); was the run "
                "started with another model or optimizer? Use another --out folder or --overwrite"
            )
    weights = folder / WEIGHTS_FILE
    try:
        model.load_weights(weights, objects_to_skip=[optimizer] if optimizer is not None else None)
    except ValueError as error:
        raise ValueError(
            f"load_checkpoint: {folder} does not fit model {model.name!r} ({_first_line(error)}); use another "
            "--out folder or --overwrite to start afresh"
        ) from None
    except (OSError, KeyError, RuntimeError) as error:
        raise CheckpointError(f"{weights} is damaged ({_first_line(error)})") from None
    if values is not None:
        for variable, value in zip(variables, values):
            variable.assign(value)
    return state


def _read_state(path: Path) -> dict:
    state = json.loads(path.read_text())
    if not isinstance(state, dict) or not isinstance(state.get("epoch"), int):
        raise ValueError("no epoch")
    return state


def _read_arrays(path: Path) -> list:
    with np.load(path) as arrays:
        return [arrays[f"v{index:04d}"] for index in range(len(arrays.files))]


def _read(path: Path, reader):
    """``reader(path)``, or :class:`CheckpointError` naming ``path`` when it is missing or damaged."""
    try:
        return reader(path)
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is damaged ({_first_line(error)})") from None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:160]
