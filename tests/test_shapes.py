"""Tests for ssd_lib.datasets.shapes: the synthetic shapes dataset (determinism, boxes, balance, sizes,
VOC round trip, reuse) and its ``shapes`` command."""

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ssd_lib import datasets
from ssd_lib.datasets import shapes
from ssd_lib.datasets.cli import main
from ssd_lib.boxes import iou
from ssd_lib.config import SHAPES_CLASSES

SIDE = 128  # small images keep the tests fast; sizes are relative to the side


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """120 training + 20 validation images, parsed back."""
    root = shapes.make_shapes_dataset(tmp_path_factory.mktemp("shapes"), 120, 20, seed=3,
                                      image_size=SIDE)  # fmt: skip
    return root, datasets.parse_voc(root, "train", classes=SHAPES_CLASSES)


def all_boxes(records):
    return np.concatenate([r["boxes"] for r in records]), np.concatenate([r["labels"] for r in records])


def test_layout_and_round_trip(dataset):
    root, train = dataset
    assert len(train) == 120 and train.class_names == SHAPES_CLASSES
    val = datasets.parse_voc(root, "val", classes=SHAPES_CLASSES)
    assert len(val) == 20 and len(datasets.parse_voc(root, "trainval", classes=SHAPES_CLASSES)) == 140
    assert train[0]["image_path"] == str(root / "JPEGImages" / "train_000000.jpg")
    assert val[-1]["image_path"] == str(root / "JPEGImages" / "val_000019.jpg")
    assert datasets.discover_classes(root, "trainval") == tuple(sorted(SHAPES_CLASSES))
    pixels = datasets.load_image(train[0]["image_path"])
    assert pixels.shape == (SIDE, SIDE, 3) and all(r["size"] == (SIDE, SIDE) for r in train)


def test_one_to_six_objects_boxes_inside_the_image(dataset):
    _, train = dataset
    counts = [len(r["labels"]) for r in train]
    assert 1 <= min(counts) and max(counts) <= shapes.MAX_OBJECTS
    assert np.mean(counts) > 2.5  # few placements fail
    boxes, _ = all_boxes(train)
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= SIDE)
    assert np.all(boxes[:, 2:] > boxes[:, :2])
    assert np.array_equal(boxes, np.round(boxes))  # pixel edges


def test_class_balance(dataset):
    _, train = dataset
    _, labels = all_boxes(train)
    counts = np.bincount(labels, minlength=len(SHAPES_CLASSES) + 1)[1:]
    assert counts.min() >= 0.8 * counts.mean() and counts.max() <= 1.2 * counts.mean(), counts


def test_sizes_span_small_to_large_and_aspect_ratios(dataset):
    _, train = dataset
    boxes, labels = all_boxes(train)
    width, height = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    size = np.sqrt(width * height) / SIDE
    assert size.min() < 0.07 and size.max() > 0.6
    assert 0.1 < np.median(size) < 0.3  # log-uniform: small objects are common
    assert np.mean(size < 0.1) > 0.2
    elongation = np.maximum(width, height) / np.minimum(width, height)
    bars = labels == SHAPES_CLASSES.index("bar") + 1
    assert np.median(elongation[bars]) > 2.0
    assert np.median(elongation[~bars]) < 1.3
    standing = height[bars] > width[bars]
    assert 0.3 < standing.mean() < 0.7  # bars both lying and standing


def test_occlusion_happens_and_heavy_occlusion_is_difficult(dataset):
    _, train = dataset
    overlapping = sum(
        np.any(np.triu(iou(r["boxes"], r["boxes"]), k=1) > 0) for r in train if len(r["boxes"]) > 1
    )
    assert overlapping >= 10
    difficult = np.concatenate([r["difficult"] for r in train])
    assert 0 < difficult.mean() < 0.2


def test_boxes_hug_the_painted_pixels(monkeypatch):
    """On a black background every painted pixel lies in a box, and each box edge touches paint."""
    monkeypatch.setattr(shapes, "_background", lambda rng, side: np.zeros((side, side, 3), np.uint8))
    for index in range(20):
        rng = np.random.default_rng(index)
        pixels, boxes, labels, _ = shapes.generate_shapes_image(rng, [1, 2, 3, 4], SIDE)
        painted = pixels.max(axis=-1) > 0
        covered = np.zeros_like(painted)
        for xmin, ymin, xmax, ymax in boxes.astype(int):
            covered[ymin:ymax, xmin:xmax] = True
            inside = painted[ymin:ymax, xmin:xmax]
            assert inside[0].any() and inside[-1].any() and inside[:, 0].any() and inside[:, -1].any()
        assert not np.any(painted & ~covered)
        assert sorted(labels.tolist()) == sorted(set(labels.tolist())) and len(labels) >= 1


def test_deterministic_for_a_seed(tmp_path):
    first = shapes.make_shapes_dataset(tmp_path / "a", 5, 3, seed=7, image_size=96)
    second = shapes.make_shapes_dataset(tmp_path / "b", 5, 3, seed=7, image_size=96)
    other = shapes.make_shapes_dataset(tmp_path / "c", 5, 3, seed=8, image_size=96)
    files = sorted(path.relative_to(first) for path in first.rglob("*") if path.is_file())
    assert len(files) == 2 * 8 + 3 + 1  # images + annotations, 3 image sets, shapes.json
    assert all((first / f).read_bytes() == (second / f).read_bytes() for f in files)
    assert any((first / f).read_bytes() != (other / f).read_bytes() for f in files
               if f.suffix == ".jpg")  # fmt: skip


def test_reuse_regenerate_and_refuse(tmp_path):
    root = shapes.make_shapes_dataset(tmp_path / "s", 3, 1, seed=0, image_size=64)
    image = root / "JPEGImages" / "train_000000.jpg"
    stamp = image.stat().st_mtime_ns
    shapes.make_shapes_dataset(root, 3, 1, seed=0, image_size=64)  # up to date: untouched
    assert image.stat().st_mtime_ns == stamp
    shapes.make_shapes_dataset(root, 2, 0, seed=1, image_size=64)  # other parameters: replaced
    assert sorted(p.name for p in (root / "JPEGImages").iterdir()) == ["train_000000.jpg", "train_000001.jpg"]
    assert (root / "ImageSets" / "Main" / "val.txt").read_text() == ""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="not empty and holds no shapes.json"):
        shapes.make_shapes_dataset(tmp_path / "mine", 2, 0)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("arguments, message", [
    ((-1, 0), "n_train and n_val must be >= 0"),
    ((1, 0, 0, 16), "image_size must be >= 32"),
])  # fmt: skip
def test_bad_arguments(tmp_path, arguments, message):
    with pytest.raises(ValueError, match=message):
        shapes.make_shapes_dataset(tmp_path / "x", *arguments)


def test_command_line_shapes(tmp_path, capsys):
    code = main(["shapes", "--to", str(tmp_path / "s"), "--train", "4", "--val", "2",
                          "--seed", "1", "--image-size", "64"])  # fmt: skip
    assert code == 0 and "ready: " in capsys.readouterr().out
    assert len(datasets.parse_voc(tmp_path / "s", "val", classes=SHAPES_CLASSES)) == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file.txt").write_text("x")
    assert main(["shapes", "--to", str(tmp_path / "other"), "--train", "1"]) == 1
    assert "error: " in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    """``python -m ssd_lib.datasets shapes ...`` runs as documented."""
    result = subprocess.run(
        [sys.executable, "-m", "ssd_lib.datasets", "shapes", "--to", str(tmp_path / "s"),
         "--train", "2", "--val", "1", "--image-size", "64"],
        cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ready: " in result.stdout and result.stderr == ""
    assert (tmp_path / "s" / "ImageSets" / "Main" / "trainval.txt").read_text().split() == [
        "train_000000", "train_000001", "val_000000"]  # fmt: skip


class Terminal(io.StringIO):
    """stderr as a terminal, to see the progress bar a user sees."""

    def isatty(self):
        return True


def test_generation_shows_progress_on_a_terminal_only(tmp_path, monkeypatch, capsys):
    from ssd_lib.datasets import records

    shapes.make_shapes_dataset(tmp_path / "quiet", 2, 1, image_size=48)
    assert capsys.readouterr().err == ""  # not a terminal: nothing
    monkeypatch.setattr(records, "PROGRESS_DELAY", 0.0)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    shapes.make_shapes_dataset(tmp_path / "shown", 2, 1, image_size=48)
    assert "generating train shapes:   0%| " in terminal.getvalue() and "0/2 [" in terminal.getvalue()
