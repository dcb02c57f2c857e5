"""Whether a run folder holds the same run: what a resume compares before it continues.

``settings.json`` records what made a run
(:func:`~ssd_lib.training.run_folder.run_settings`): the :class:`~ssd_lib.training.recipe.Recipe`,
the :class:`~ssd_lib.config.SSDConfig`, the model (name and parameter count) and the training
data's fingerprint (:func:`data_fingerprint`: the
image list and a hash of the annotations). Training again into the folder
(:func:`check_same_run`):

- with the same settings resumes;
- with changes to recipe fields marked ``resumable`` (more ``epochs``, a new
  ``learning_rate`` ...) resumes and uses the new values; a longer run continues on the schedule
  of the new length, at the step the checkpoint reached;
- with any other change refuses, listing what differs, unless ``overwrite`` asks to start afresh:
  then the old run folder is moved aside (:func:`~ssd_lib.training.run_folder.move_aside`).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import numpy as np

from .recipe import Recipe
from .run_folder import SETTINGS_FILE, RunFolderError, move_aside

__all__ = ["data_fingerprint", "setting_changes", "check_same_run"]


def data_fingerprint(records) -> dict:
    """``{"images": count, "sha256": hash}`` of training records: the image file names (relative to
    the images' common folder, so a moved dataset stays the same) and their boxes, labels and
    ``difficult`` flags, in order."""
    records = list(records)
    paths = [str(record["image_path"]) for record in records]
    root = os.path.commonpath([os.path.dirname(path) for path in paths]) if paths else ""
    digest = hashlib.sha256()
    for path, record in zip(paths, records):
        digest.update(os.path.relpath(path, root).encode())
        for key in ("boxes", "labels", "difficult"):
            if key in record:
                digest.update(np.ascontiguousarray(record[key]).tobytes())
    return {"images": len(records), "sha256": digest.hexdigest()}


def setting_changes(stored: dict, current: dict) -> tuple[list[str], list[str]]:
    """The differences between two run settings (``settings.json``), as ``"name: old -> new"`` lines.

    Returns:
        ``(other_run, resumable)``: changes that make another run, and changes a resume takes.
        Settings missing from ``stored`` (an older run folder) are not compared.
    """
    stored, current = json.loads(json.dumps(stored)), json.loads(json.dumps(current))  # tuples as lists
    resumable_fields = {field.name for field in dataclasses.fields(Recipe) if field.metadata["resumable"]}
    other_run, resumable = [], []
    for group in ("recipe", "config"):
        for name, new in current[group].items():
            old = stored.get(group, {}).get(name, new)
            if old != new:
                change = f"{name}: {_shown(old)} -> {_shown(new)}"
                (resumable if group == "recipe" and name in resumable_fields else other_run).append(change)
    for name in ("model", "parameters", "data"):
        old, new = stored.get(name), current.get(name)
        if old is not None and new is not None and old != new:
            other_run.append(f"{'training data' if name == 'data' else name}: {_shown(old)} -> {_shown(new)}")
    return other_run, resumable


def _shown(value) -> str:
    if isinstance(value, dict) and "sha256" in value:
        return f"{value['images']} images ({value['sha256'][:8]})"
    return json.dumps(value)


def check_same_run(out_dir, settings: dict, overwrite: bool = False) -> tuple[list[str], Path | None]:
    """Compare ``settings`` with ``<out_dir>/settings.json`` before training into ``out_dir``.

    Returns:
        ``(resumable changes, where the old run was moved or None)``.

    Raises:
        RunFolderError: the folder holds another run (lists the settings that differ) or a damaged
            ``settings.json``, and ``overwrite`` is false.
    """
    out_dir = Path(out_dir)
    path = out_dir / SETTINGS_FILE
    if not path.exists():
        return [], None
    try:
        stored = json.loads(path.read_text())
        other_run, resumable = setting_changes(stored, settings)
    except (ValueError, TypeError, AttributeError) as error:
        other_run, resumable = [f"{path} is damaged ({str(error)[:100]})"], []
    if not other_run:
        return resumable, None
    if not overwrite:
        raise RunFolderError(f"{out_dir} holds another run ({'; '.join(other_run)}); use another --out, or "
                             "--overwrite to move that run aside and start afresh")  # fmt: skip
    moved = move_aside(out_dir)
    out_dir.mkdir()
    return [], moved
