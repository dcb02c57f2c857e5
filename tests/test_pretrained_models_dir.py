"""Pretrained weights live in one folder whatever the working directory: the repository's
``data/models`` (a notebook's kernel runs in ``notebooks/``), or ``$SSD_MODELS_DIR``."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssd_lib.pretrained import SOURCES, default_models_dir, load_if_present
from ssd_lib.pretrained import sources as sources_module
from ssd_lib.pretrained.models_dir import shown_path

REPO = Path(__file__).resolve().parents[1]
REPO_MODELS = REPO / "data" / "models"


@pytest.mark.parametrize("working_directory", [REPO, REPO / "notebooks", Path("/")])
def test_the_default_is_the_repository_data_models_from_any_working_directory(working_directory, monkeypatch):
    monkeypatch.chdir(working_directory)
    assert default_models_dir({}) == REPO_MODELS


def test_ssd_models_dir_overrides_the_default(tmp_path, monkeypatch):
    assert default_models_dir({"SSD_MODELS_DIR": str(tmp_path)}) == tmp_path
    monkeypatch.chdir(tmp_path)
    assert default_models_dir({"SSD_MODELS_DIR": "weights"}) == tmp_path / "weights"  # made absolute once
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_models_dir({"SSD_MODELS_DIR": "~/models"}) == tmp_path / "models"
    assert default_models_dir({"SSD_MODELS_DIR": ""}) == REPO_MODELS


def _imported_models_dir(cwd, **variables):
    """MODELS_DIR as a fresh Python (a notebook kernel) started in ``cwd`` sees it."""
    environ = {key: value for key, value in os.environ.items() if key != "SSD_MODELS_DIR"}
    environ.update(PYTHONPATH=str(REPO), **variables)
    command = "from ssd_lib.pretrained import MODELS_DIR; print(MODELS_DIR)"
    result = subprocess.run([sys.executable, "-c", command], cwd=cwd, env=environ, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return Path(result.stdout.strip())


def test_a_kernel_in_notebooks_finds_the_repository_folder(tmp_path):
    assert _imported_models_dir(REPO / "notebooks") == REPO_MODELS
    assert _imported_models_dir(REPO / "notebooks", SSD_MODELS_DIR=str(tmp_path)) == tmp_path


def test_messages_show_paths_relative_inside_the_repository(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO / "notebooks")
    assert shown_path(REPO_MODELS / "x.pth") == "../data/models/x.pth"
    assert shown_path(tmp_path) == str(tmp_path)  # outside the repository: as given
    assert shown_path("data/models") == "data/models"
    monkeypatch.chdir(tmp_path)
    assert shown_path(REPO_MODELS) == str(REPO_MODELS)  # working outside the repository: absolute


def test_the_default_folder_command_works_from_any_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sources_module, "MODELS_DIR", REPO_MODELS)
    monkeypatch.chdir(REPO / "notebooks")
    # without --to: the command's default folder is the same from a terminal in the repository
    assert SOURCES["torchvision-coco"].how_to_get(REPO_MODELS) == (
        "run `python -m ssd_lib.pretrained download torchvision-coco` (or download "
        "https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth by hand and put it at "
        "../data/models/ssd300_vgg16_coco-b556d3b4.pth)")  # fmt: skip
    # another folder is named
    assert load_if_present("torchvision-coco", tmp_path) is None
    assert f"no pretrained weights 'torchvision-coco' in {tmp_path}: run `python -m ssd_lib.pretrained " \
           f"download torchvision-coco --to {tmp_path}`" in capsys.readouterr().out  # fmt: skip
