"""Where downloaded and converted pretrained weights live: one folder, whatever the working directory.

A notebook's kernel runs in ``notebooks/``, a terminal usually in the repository: both must find
the same files. So the default folder is the repository's ``data/models`` (absolute), or the
folder named by the environment variable ``SSD_MODELS_DIR``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["MODELS_DIR_VARIABLE", "default_models_dir", "MODELS_DIR", "shown_path"]

#: The environment variable that overrides the default folder.
MODELS_DIR_VARIABLE = "SSD_MODELS_DIR"


def _checkout_root() -> Path | None:
    """The repository holding this ``ssd_lib`` (a folder with ``pyproject.toml`` beside ``ssd_lib/``),
    or None for an installed package."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() else None


def default_models_dir(environ=os.environ) -> Path:
    """The absolute folder for pretrained weights.

    ``$SSD_MODELS_DIR`` when set; else ``data/models`` in the repository checkout that holds
    ``ssd_lib``; else (an installed package) ``data/models`` in the working directory.
    """
    if environ.get(MODELS_DIR_VARIABLE):
        return Path(environ[MODELS_DIR_VARIABLE]).expanduser().absolute()
    return (_checkout_root() or Path.cwd()) / "data" / "models"


#: The default folder of ``download``, ``convert``, ``load_pretrained`` and ``train --weights``.
MODELS_DIR = default_models_dir()


def shown_path(path) -> str:
    """``path`` for a message: relative to the working directory when both are inside the
    repository (``../data/models`` seen from ``notebooks/``), else as given."""
    root = _checkout_root()
    path = Path(path)
    if root is None or not path.is_absolute():
        return str(path)
    here = Path.cwd().resolve()
    inside = all(folder == root or root in folder.parents for folder in (here, path.resolve()))
    return os.path.relpath(path, here) if inside else str(path)
