"""Anchors: golden SSD300 prior boxes, per-layer counts, order, and the w*h = s^2 definition."""

import dataclasses

import numpy as np
import pytest

from ssd_lib.anchors import (
    anchor_metadata,
    cell_box_shapes,
    cell_centers,
    generate_anchors,
    layer_anchors,
)
from ssd_lib.boxes import centroids_to_corners
from ssd_lib.config import SSD300_COCO, SSD300_VOC, SSD512_VOC, SSDConfig


def caffe_prior_boxes_ssd300():
    """The original Caffe PriorBox layer's arithmetic for SSD300 VOC, written out as loops.

    Pixel min/max sizes from ssd_pascal.py (30/60, 60/111, ... 264/315), flip=True, normalized
    corners (xmin, ymin, xmax, ymax). An independent oracle for generate_anchors.
    """
    image = 300.0
    min_sizes = [30, 60, 111, 162, 213, 264]
    max_sizes = [60, 111, 162, 213, 264, 315]
    extra_ratios = [[2], [2, 3], [2, 3], [2, 3], [2], [2]]
    maps = [38, 19, 10, 5, 3, 1]
    steps = [8, 16, 32, 64, 100, 300]
    out = []
    for k in range(6):
        for h in range(maps[k]):
            for w in range(maps[k]):
                cx, cy = (w + 0.5) * steps[k], (h + 0.5) * steps[k]
                sizes = [(min_sizes[k], min_sizes[k])]
                big = np.sqrt(min_sizes[k] * max_sizes[k])
                sizes.append((big, big))
                for r in extra_ratios[k]:
                    sizes.append((min_sizes[k] * np.sqrt(r), min_sizes[k] / np.sqrt(r)))
                    sizes.append((min_sizes[k] / np.sqrt(r), min_sizes[k] * np.sqrt(r)))
                for bw, bh in sizes:
                    out.append([(cx - bw / 2) / image, (cy - bh / 2) / image,
                                (cx + bw / 2) / image, (cy + bh / 2) / image])  # fmt: skip
    return np.array(out)


def test_ssd300_anchors_equal_the_original_prior_boxes():
    anchors = generate_anchors(SSD300_VOC)
    assert anchors.shape == (8732, 4)
    np.testing.assert_allclose(centroids_to_corners(anchors), caffe_prior_boxes_ssd300(), atol=1e-12)


def test_hand_checked_rows():
    anchors = generate_anchors(SSD300_VOC)
    # first cell of conv4_3: centre (4, 4) px, ar=1 box 30 px, then sqrt(30*60) px, then 2, 1/2
    np.testing.assert_allclose(anchors[0], [4 / 300, 4 / 300, 0.1, 0.1])
    np.testing.assert_allclose(anchors[1], [4 / 300, 4 / 300, np.sqrt(0.02), np.sqrt(0.02)])
    np.testing.assert_allclose(anchors[2], [4 / 300, 4 / 300, 0.1 * np.sqrt(2), 0.1 / np.sqrt(2)])
    # second cell is one step (8 px) to the right: row-major, x moves fastest
    np.testing.assert_allclose(anchors[4, :2], [12 / 300, 4 / 300])
    # 38 cells later we are on the second row
    np.testing.assert_allclose(anchors[4 * 38, :2], [4 / 300, 12 / 300])
    # last layer: one cell in the middle; last box is ar = 1/2 at s = 0.88
    np.testing.assert_allclose(anchors[-1], [0.5, 0.5, 0.88 / np.sqrt(2), 0.88 * np.sqrt(2)])


def test_per_layer_counts_and_metadata():
    meta = anchor_metadata(SSD300_VOC)
    counts = np.bincount(meta["layer"])
    assert counts.tolist() == [5776, 2166, 600, 150, 36, 4]
    anchors = generate_anchors(SSD300_VOC)
    # metadata and anchors agree: width * height = scale^2 and width / height = ratio
    np.testing.assert_allclose(anchors[:, 2] * anchors[:, 3], meta["scale"] ** 2)
    np.testing.assert_allclose(anchors[:, 2] / anchors[:, 3], meta["aspect_ratio"])
    centers = np.concatenate([cell_centers(SSD300_VOC, k).reshape(-1, 2) for k in range(6)])
    per_cell = np.repeat(centers, [SSD300_VOC.boxes_per_cell(k) for k in range(6) for _ in
                                   range(np.prod(SSD300_VOC.feature_map_sizes[k]))], axis=0)  # fmt: skip
    np.testing.assert_allclose(anchors[:, :2], per_cell)
    row, col, layer = meta["row"], meta["col"], meta["layer"]
    step = np.array([s[0] for s in SSD300_VOC.steps])[layer]
    np.testing.assert_allclose(anchors[:, 0] * 300, (col + 0.5) * step)
    np.testing.assert_allclose(anchors[:, 1] * 300, (row + 0.5) * step)


@pytest.mark.parametrize("config", [SSD300_VOC, SSD300_COCO, SSD512_VOC], ids=["voc", "coco", "512"])
def test_area_is_scale_squared_and_ratio_is_w_over_h(config):
    for k in range(config.n_layers):
        sizes, scales, ratios = cell_box_shapes(config, k)
        np.testing.assert_allclose(sizes[:, 0] * sizes[:, 1], scales**2)
        np.testing.assert_allclose(sizes[:, 0] / sizes[:, 1], ratios)
        assert ratios[0] == 1.0 and ratios[1] == 1.0  # ar=1, then the extra box
        assert scales[1] == pytest.approx(np.sqrt(config.scales[k] * config.scales[k + 1]))
        assert layer_anchors(config, k).shape == (*config.feature_map_sizes[k], len(scales), 4)


def test_prior_box_order_puts_ar1_first_whatever_the_config_order():
    config = dataclasses.replace(SSD300_VOC, aspect_ratios=[(2.0, 1.0, 0.5)] * 6)
    _, _, ratios = cell_box_shapes(config, 0)
    assert ratios.tolist() == [1.0, 1.0, 2.0, 0.5]


def test_tiny_config_by_hand():
    # a 2x2 map on a 100x100 image: centres at 25 and 75 px; s = 0.5 -> 50 px boxes
    config = SSDConfig(image_height=100, image_width=100, n_classes=1, feature_map_sizes=[2],
                       aspect_ratios=[[1.0]], scales=[0.5, 0.8])  # fmt: skip
    anchors = generate_anchors(config)
    big = np.sqrt(0.5 * 0.8)
    expected = [[0.25, 0.25, 0.5, 0.5], [0.25, 0.25, big, big], [0.75, 0.25, 0.5, 0.5],
                [0.75, 0.25, big, big], [0.25, 0.75, 0.5, 0.5], [0.25, 0.75, big, big],
                [0.75, 0.75, 0.5, 0.5], [0.75, 0.75, big, big]]  # fmt: skip
    np.testing.assert_allclose(anchors, expected)


def test_non_square_image_uses_the_shorter_side_for_scales():
    config = SSDConfig(image_height=100, image_width=200, n_classes=1, feature_map_sizes=[(1, 2)],
                       aspect_ratios=[[1.0]], scales=[0.5, 0.6], two_boxes_for_ar1=False)  # fmt: skip
    anchors = generate_anchors(config)
    # 50 px square boxes: 0.25 of the width, 0.5 of the height; centres at x = 50, 150 px
    np.testing.assert_allclose(anchors, [[0.25, 0.5, 0.25, 0.5], [0.75, 0.5, 0.25, 0.5]])


def test_clip_boxes_keeps_anchors_inside_the_image():
    clipped = generate_anchors(dataclasses.replace(SSD300_VOC, clip_boxes=True))
    corners = centroids_to_corners(clipped)
    assert corners.min() >= 0.0 and corners.max() <= 1.0
    unclipped = generate_anchors(SSD300_VOC)
    assert centroids_to_corners(unclipped).max() > 1.0  # the original SSD300 does not clip
    inside = np.all((centroids_to_corners(unclipped) >= 0) & (centroids_to_corners(unclipped) <= 1), axis=1)
    np.testing.assert_allclose(clipped[inside], unclipped[inside])
    # the last layer's ar=2 box (1.24 wide) is cut to the image width
    np.testing.assert_allclose(clipped[-2], [0.5, 0.5, 1.0, 0.62225397], atol=1e-8)
