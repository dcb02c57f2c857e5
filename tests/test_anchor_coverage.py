"""Anchor coverage (ssd_lib.anchors.best_anchor_iou, records_to_normalized_corners) and the sample
photographs in data/samples that notebooks 01-02 measure it on."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssd_lib.anchors import best_anchor_iou, generate_anchors, records_to_normalized_corners
from ssd_lib.boxes import centroids_to_corners
from ssd_lib.config import SSD300_VOC
from ssd_lib.datasets import parse_voc

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


def reference_best_iou(gt_corners, anchors):
    """Readable oracle: one IoU at a time."""
    result = []
    for gx0, gy0, gx1, gy1 in gt_corners:
        best = 0.0
        for ax0, ay0, ax1, ay1 in centroids_to_corners(anchors):
            inter = max(0.0, min(gx1, ax1) - max(gx0, ax0)) * max(0.0, min(gy1, ay1) - max(gy0, ay0))
            union = (gx1 - gx0) * (gy1 - gy0) + (ax1 - ax0) * (ay1 - ay0) - inter
            best = max(best, inter / union if union > 0 else 0.0)
        result.append(best)
    return np.array(result)


def test_best_anchor_iou_golden_values():
    gt = np.array([[0.0, 0.0, 0.5, 0.5], [0.6, 0.6, 0.8, 0.8], [0.0, 0.0, 0.5, 0.5]])
    anchors = np.array([
        [0.25, 0.25, 0.5, 0.5],    # equals gt 0
        [0.25, 0.125, 0.5, 0.25],  # top half of gt 0: IoU 0.5
        [0.7, 0.7, 0.1, 0.1],      # inside gt 1, a quarter of its area: IoU 0.25
    ])  # fmt: skip
    np.testing.assert_allclose(best_anchor_iou(gt, anchors), [1.0, 0.25, 1.0])
    np.testing.assert_allclose(best_anchor_iou(gt[:1], anchors[1:]), [0.5])
    np.testing.assert_allclose(best_anchor_iou(gt[1:2], anchors[:2]), [0.0])


def test_best_anchor_iou_matches_reference_loop():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 0.8, size=(12, 2))
    gt = np.concatenate([xy, xy + rng.uniform(0.02, 0.4, size=(12, 2))], axis=1)
    anchors = np.concatenate([rng.uniform(0, 1, size=(50, 2)), rng.uniform(0.05, 0.6, size=(50, 2))], axis=1)
    result = best_anchor_iou(gt, anchors)
    assert result.shape == (12,)
    np.testing.assert_allclose(result, reference_best_iou(gt, anchors))
    assert np.all((result >= 0) & (result <= 1))


def test_best_anchor_iou_in_chunks_equals_one_matrix():
    rng = np.random.default_rng(1)
    xy = rng.uniform(0, 0.7, size=(700, 2))
    gt = np.concatenate([xy, xy + rng.uniform(0.01, 0.3, size=(700, 2))], axis=1)
    anchors = generate_anchors(SSD300_VOC)
    whole = best_anchor_iou(gt, anchors, chunk_size=len(gt))
    for chunk_size in (1, 7, 256):
        np.testing.assert_array_equal(best_anchor_iou(gt, anchors, chunk_size=chunk_size), whole)


def test_best_anchor_iou_empty_inputs():
    anchors = generate_anchors(SSD300_VOC)
    assert best_anchor_iou(np.zeros((0, 4)), anchors).shape == (0,)
    np.testing.assert_array_equal(best_anchor_iou([[0.1, 0.1, 0.2, 0.2]], np.zeros((0, 4))), [0.0])


@pytest.mark.parametrize("bad, name", [("gt", "gt_corners"), ("anchors", "anchors")])
def test_best_anchor_iou_rejects_wrong_shapes(bad, name):
    gt, anchors = np.zeros((2, 4)), np.zeros((3, 4))
    if bad == "gt":
        gt = np.zeros((2, 3))
    else:
        anchors = np.zeros((3, 5))
    with pytest.raises(ValueError, match=name):
        best_anchor_iou(gt, anchors)


def test_records_to_normalized_corners_uses_each_images_size():
    records = [
        {"boxes": np.array([[10, 20, 110, 70]], np.float32), "size": (200, 100)},
        {"boxes": np.zeros((0, 4), np.float32), "size": (50, 50)},  # no boxes is valid
        {"boxes": np.array([[0, 0, 50, 25], [25, 25, 50, 50]], np.float32), "size": (50, 50)},
    ]
    np.testing.assert_allclose(
        records_to_normalized_corners(records),
        [[0.05, 0.2, 0.55, 0.7], [0.0, 0.0, 1.0, 0.5], [0.5, 0.5, 1.0, 1.0]],
    )
    assert records_to_normalized_corners([]).shape == (0, 4)


def test_ssd300_anchors_cover_the_astronaut_but_not_the_thin_objects_of_the_rocket_photo():
    # Rocket and towers are 1:7 to 1:18 (width:height) once the photo is squashed to 300x300;
    # SSD300's thinnest anchors are 1:3, so no anchor reaches IoU 0.5 with them.
    records = parse_voc(SAMPLES, image_set="samples", classes=None)
    by_id = {Path(r["image_path"]).stem: r for r in records}
    anchors = generate_anchors(SSD300_VOC)
    rocket = best_anchor_iou(records_to_normalized_corners([by_id["rocket"]]), anchors)
    astronaut = best_anchor_iou(records_to_normalized_corners([by_id["astronaut"]]), anchors)
    assert len(rocket) == 5 and np.all(rocket < 0.5)
    assert len(astronaut) == 4 and np.all(astronaut >= 0.5)


# ------------------------------------------------------------------ the sample data itself
def test_samples_form_a_readable_voc_tree():
    ids = (SAMPLES / "ImageSets" / "Main" / "samples.txt").read_text().split()
    assert len(ids) >= 5
    records = parse_voc(SAMPLES, image_set="samples", classes=None)
    assert [Path(r["image_path"]).stem for r in records] == ids
    readme = (SAMPLES / "README.md").read_text()
    for record in records:
        image_id = Path(record["image_path"]).stem
        with Image.open(record["image_path"]) as image:
            assert image.size == tuple(record["size"]), image_id
            assert image.mode == "RGB" and max(image.size) <= 640, image_id
        boxes = record["boxes"]
        assert len(boxes) >= 1, image_id
        width, height = record["size"]
        assert np.all(boxes[:, :2] >= 1) and np.all(boxes[:, 2] <= width) and np.all(boxes[:, 3] <= height)
        assert np.all(boxes[:, 2:] > boxes[:, :2]), image_id
        assert f"| {image_id} |" in readme, f"{image_id} has no source/licence row in README.md"
    names = set(records.class_names)
    assert {"person", "cat", "cup", "rocket"} <= names
