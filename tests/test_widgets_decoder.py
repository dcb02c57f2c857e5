"""The decoder explorer of notebook 05 (ssd_lib.explorers.decoder.DecoderExplorer), driven headless: every
control is moved and what was drawn is checked against ssd_lib.decoder."""

import numpy as np
import pytest
from explorer_checks import assert_static_picture

from ssd_lib.config import SSDConfig
from ssd_lib.decoder import decode_detections
from ssd_lib.explorers.decoder import DecoderExplorer

# One 5x6 layer of 3 anchors per cell on an 80x120 image: 90 anchors, 3 named classes.
CONFIG = SSDConfig(80, 120, 3, feature_map_sizes=((5, 6),), aspect_ratios=((1.0, 2.0, 0.5),),
                   scales=(0.3, 0.5), two_boxes_for_ar1=False, class_names=("circle", "square", "bar"))


@pytest.fixture(scope="module")
def explorer():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 80, 120, 3), dtype=np.uint8)
    y_pred = rng.normal(size=(3, CONFIG.n_anchors, CONFIG.n_classes + 5)).astype(np.float32)
    y_pred[..., 0] += 1.5
    ground_truths = [np.array([[10, 10, 40, 30]]), np.zeros((0, 4)), np.array([[0, 0, 50, 60], [60, 5, 110, 20]])]
    return DecoderExplorer(images, y_pred, CONFIG, ground_truths=ground_truths)


def drawn_boxes(artist):
    """(n, 4) corners of the rectangles in a DetectionArtist / BoxArtist collection."""
    paths = artist.get_paths()
    return np.array([[p.vertices[:, 0].min(), p.vertices[:, 1].min(), p.vertices[:, 0].max(),
                      p.vertices[:, 1].max()] for p in paths]).reshape(-1, 4)  # fmt: skip


def check_drawing(explorer):
    index = explorer.image_slider.value
    threshold = explorer.threshold_slider.value
    expected = decode_detections(explorer.y_pred[index : index + 1], CONFIG, threshold,
                                 explorer.iou_slider.value, explorer.top_k_slider.value)[0]  # fmt: skip
    np.testing.assert_array_equal(explorer.detections, expected)
    np.testing.assert_allclose(drawn_boxes(explorer.detection_artist.boxes.collection), expected[:, 2:],
                               atol=1e-4)  # fmt: skip
    labels = [t.get_text() for t in explorer.detection_artist.boxes.labels if t.get_visible()]
    assert len(labels) == min(len(expected), 6)
    if len(expected):
        assert labels[0] == f"{CONFIG.class_names[int(expected[0, 0]) - 1]} {expected[0, 1]:.2f}"
    # Left panel: every pair above the threshold, best first.
    candidates = explorer.candidates
    assert np.all(candidates[:, 1] > threshold) and np.all(np.diff(candidates[:, 1]) <= 0)
    assert len(candidates) >= len(expected)
    assert len(explorer.candidate_artist.boxes.collection.get_paths()) == len(candidates)
    assert explorer.titles[0].get_text().startswith(f"image {index}: {len(candidates)} ")
    assert explorer.titles[1].get_text().endswith(f": {len(expected)} detections")
    gt = explorer.ground_truths[index]
    for photo, gt_artist in zip(explorer.photos, explorer.gt_artists):
        np.testing.assert_array_equal(photo.get_array(), explorer.images[index])
        np.testing.assert_allclose(drawn_boxes(gt_artist.collection), np.reshape(gt, (-1, 4)))
    assert explorer.image.value[:2] == b"\xff\xd8"  # a JPEG was rendered


def test_initial_state(explorer):
    assert explorer.image_slider.max == 2
    assert len(explorer.candidates) > 20  # threshold 0.01: many pairs
    check_drawing(explorer)


def test_every_control(explorer):
    before = len(explorer.candidates)
    explorer.threshold_slider.value = 0.3
    check_drawing(explorer)
    assert len(explorer.candidates) < before

    many = len(explorer.detections)
    explorer.iou_slider.value = 0.1  # suppress more
    check_drawing(explorer)
    assert len(explorer.detections) < many
    explorer.iou_slider.value = 1.0  # suppress nothing: every candidate is a detection
    check_drawing(explorer)
    assert len(explorer.detections) == len(explorer.candidates)

    explorer.top_k_slider.value = 3
    check_drawing(explorer)
    assert len(explorer.detections) == 3

    image_before = explorer.image.value
    for index in (1, 2):
        explorer.image_slider.value = index
        check_drawing(explorer)
    assert explorer.image.value != image_before


def test_bad_inputs():
    images = np.zeros((2, 80, 120, 3), np.uint8)
    y_pred = np.zeros((2, CONFIG.n_anchors, 8), np.float32)
    with pytest.raises(ValueError, match="model input size"):
        DecoderExplorer(np.zeros((2, 32, 32, 3), np.uint8), y_pred, CONFIG)
    with pytest.raises(ValueError, match="2 images but 1 predictions"):
        DecoderExplorer(images, y_pred[:1], CONFIG)


def test_displayed_explorer_carries_a_static_picture(explorer):
    assert_static_picture(explorer)
