"""Box conversions, areas, IoU and clipping: golden values and properties."""

import numpy as np
import pytest

from ssd_lib.boxes import (
    box_area,
    centroids_to_corners,
    clip_corners,
    corners_to_centroids,
    denormalize_corners,
    iou,
    normalize_corners,
    paired_iou,
)


def random_corners(rng, n, size=100.0):
    xy = rng.uniform(0, size, (n, 2))
    wh = rng.uniform(1, size / 2, (n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def test_conversion_golden_values():
    corners = np.array([[10.0, 20.0, 50.0, 40.0]])
    np.testing.assert_allclose(corners_to_centroids(corners), [[30.0, 30.0, 40.0, 20.0]])
    np.testing.assert_allclose(centroids_to_corners([[30.0, 30.0, 40.0, 20.0]]), corners)


def test_conversions_round_trip_any_leading_shape():
    rng = np.random.default_rng(0)
    corners = random_corners(rng, 24).reshape(2, 3, 4, 4)
    np.testing.assert_allclose(centroids_to_corners(corners_to_centroids(corners)), corners)
    centroids = corners_to_centroids(corners)
    np.testing.assert_allclose(corners_to_centroids(centroids_to_corners(centroids)), centroids)
    assert corners_to_centroids(corners[0, 0, 0]).shape == (4,)


def test_area_and_inverted_boxes():
    assert box_area([[0, 0, 2, 3]]) == pytest.approx(6.0)
    assert box_area([[2, 0, 0, 3]]) == 0.0
    assert box_area(np.zeros((2, 5, 4))).shape == (2, 5)


def test_iou_golden_values():
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0], [5, 5, 6, 6]])
    np.testing.assert_allclose(iou(a, b), [[1 / 7, 1.0, 0.0, 0.0]])
    # a box inside another: IoU = small area / large area
    assert iou([[0, 0, 4, 4]], [[1, 1, 3, 3]])[0, 0] == pytest.approx(4 / 16)


def test_iou_properties():
    rng = np.random.default_rng(1)
    a, b = random_corners(rng, 30), random_corners(rng, 20)
    matrix = iou(a, b)
    assert matrix.shape == (30, 20)
    assert np.all(matrix >= 0) and np.all(matrix <= 1)
    np.testing.assert_allclose(matrix, iou(b, a).T)
    np.testing.assert_allclose(np.diag(iou(a, a)), 1.0)
    # scale invariance: the same boxes in other units give the same IoU
    np.testing.assert_allclose(iou(a / 100, b / 100), matrix, atol=1e-12)


def test_iou_of_degenerate_boxes_is_zero_not_nan():
    point = np.array([[1.0, 1.0, 1.0, 1.0]])
    assert iou(point, point)[0, 0] == 0.0
    assert iou(np.zeros((0, 4)), point).shape == (0, 1)


@pytest.mark.parametrize("bad", [np.zeros((3, 5)), np.zeros(3), np.float64(1.0)])
def test_wrong_shapes_are_rejected(bad):
    with pytest.raises(ValueError, match="4"):
        corners_to_centroids(bad)


def test_iou_needs_two_dimensional_inputs():
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        iou(np.zeros((2, 2, 4)), np.zeros((2, 4)))


def test_clip_and_normalize():
    boxes = np.array([[-10.0, 5.0, 310.0, 200.0]])
    np.testing.assert_allclose(clip_corners(boxes, 300, 150), [[0, 5, 300, 150]])
    np.testing.assert_allclose(clip_corners([[-0.1, 0.2, 1.3, 0.9]]), [[0, 0.2, 1, 0.9]])
    normalized = normalize_corners(boxes, 300, 200)
    np.testing.assert_allclose(normalized, [[-10 / 300, 5 / 200, 310 / 300, 1.0]])
    np.testing.assert_allclose(denormalize_corners(normalized, 300, 200), boxes)


def test_paired_iou_equals_the_diagonal_of_iou():
    rng = np.random.default_rng(2)
    a, b = random_corners(rng, 40), random_corners(rng, 40)
    b[:10] = a[:10]  # identical pairs
    np.testing.assert_array_equal(paired_iou(a, b), np.diag(iou(a, b)))
    assert paired_iou(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)
