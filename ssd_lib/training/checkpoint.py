"""Checkpoints of a run: weights, optimizer state (with its step counter) and the epoch.

:func:`save_checkpoint` writes ``<out>/checkpoint/`` after every epoch: the new checkpoint is
written beside the old one (``checkpoint.new``) and swapped in by renaming (the old one moves to
``checkpoint.old`` for the instant of the swap). :func:`load_checkpoint` restores it into a
compiled model, so a run resumes after its last finished epoch.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import keras
import numpy as np

from .run_folder import CHECKPOINT_DIR

__all__ = ["save_checkpoint", "load_checkpoint"]


def _write_checkpoint(model, folder: Path, state: dict) -> None:
    folder.mkdir(parents=True)
    model.save_weights(folder / "model.weights.h5")
    optimizer = model.optimizer
    if optimizer is not None and optimizer.built:
        arrays = {f"v{index:04d}": keras.ops.convert_to_numpy(variable)
                  for index, variable in enumerate(optimizer.variables)}  # fmt: skip
        np.savez(folder / "optimizer.npz", **arrays)
        state = {**state, "optimizer_variables": [variable.path for variable in optimizer.variables]}
    (folder / "state.json").write_text(json.dumps(state, indent=1))


def save_checkpoint(model: keras.Model, out_dir, epoch: int, **extra) -> Path:
    """Save weights, optimizer state and ``epoch`` (epochs finished) to ``<out_dir>/checkpoint``.

    The new checkpoint is written beside the old one and swapped in by renaming, so a kill at any
    moment leaves a complete checkpoint (the new or the previous one).

    Returns:
        The checkpoint folder.
    """
    out_dir = Path(out_dir)
    final, new, old = (out_dir / name for name in (CHECKPOINT_DIR, CHECKPOINT_DIR + ".new", CHECKPOINT_DIR + ".old"))
    for leftover in (new, old):
        shutil.rmtree(leftover, ignore_errors=True)
    _write_checkpoint(model, new, {"epoch": int(epoch), **extra})
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(model: keras.Model, out_dir) -> dict | None:
    """Restore the checkpoint of ``out_dir`` into a compiled ``model``, if there is one.

    Returns:
        The saved state (``{"epoch": epochs finished, ...}``), or ``None`` when ``out_dir`` has
        no checkpoint (a fresh run).

    Raises:
        ValueError: the checkpoint does not fit the model (another architecture or optimizer);
            the message names the checkpoint folder.
    """
    out_dir = Path(out_dir)
    folder = out_dir / CHECKPOINT_DIR
    if not (folder / "state.json").exists():
        folder = out_dir / (CHECKPOINT_DIR + ".old")  # killed while swapping checkpoints
        if not (folder / "state.json").exists():
            return None
    state = json.loads((folder / "state.json").read_text())
    optimizer = getattr(model, "optimizer", None)  # None before compile
    optimizer_file = folder / "optimizer.npz"
    values = None
    if optimizer is not None and optimizer_file.exists():
        if not optimizer.built:  # its variables (momentum ...) exist once it is built
            optimizer.build(model.trainable_variables)
        with np.load(optimizer_file) as arrays:
            values = [arrays[f"v{index:04d}"] for index in range(len(arrays.files))]
        if len(values) != len(optimizer.variables) or any(
            tuple(value.shape) != tuple(variable.shape) for value, variable in zip(values, optimizer.variables)
        ):
            raise ValueError(
                f"load_checkpoint: the optimizer state in {folder} ({len(values)} variables) does not "
                f"fit this model and optimizer ({len(optimizer.variables)} variables); was the run "
                "started with another model or optimizer? Use another --out folder or delete this one"
            )
    try:
        model.load_weights(folder / "model.weights.h5")
    except ValueError as error:
        raise ValueError(
            f"load_checkpoint: {folder} does not fit model {model.name!r} ({error}); use another "
            "--out folder or delete this one to start afresh"
        ) from None
    if values is not None:  # (load_weights restores them too; this is the checked copy)
        for variable, value in zip(optimizer.variables, values):
            variable.assign(value)
    return state
