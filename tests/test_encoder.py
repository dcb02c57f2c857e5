"""Tests of ssd_lib.matching (the rules), ssd_lib.box_coding (offsets) and ssd_lib.encoder (SSDEncoder
against a plain reference)."""

import dataclasses
import functools

import numpy as np
import pytest

from ssd_lib.anchors import generate_anchors
from ssd_lib.boxes import centroids_to_corners, corners_to_centroids, iou
from ssd_lib.config import SSD300_VOC, SSD512_VOC, SSDConfig
from ssd_lib.box_coding import decode_boxes, encode_boxes
from ssd_lib.encoder import SSDEncoder
from ssd_lib.matching import BACKGROUND, NEUTRAL, POSITIVE, match

# ---------------------------------------------------------------------------------------------
# The reference: the rules of the issue written as plainly as possible (full IoU matrix, greedy
# loop over the whole matrix, per-image loop). The fast encoder must give identical results.


def reference_match(gt_corners, anchor_corners, pos_iou_threshold, neg_iou_limit, matching):
    """(matched_gt_index (n,), state (n,)) by the book."""
    n_anchors = len(anchor_corners)
    matched = np.full(n_anchors, -1)
    state = np.full(n_anchors, BACKGROUND)
    if len(gt_corners) == 0:
        return matched, state
    overlaps = iou(gt_corners, anchor_corners)  # (k, n)
    remaining = overlaps.copy()
    for _ in range(len(gt_corners)):
        # Row-major argmax: the highest pair, ties to the lower box, then the lower anchor.
        box, anchor = np.unravel_index(np.argmax(remaining), remaining.shape)
        if remaining[box, anchor] <= 0:
            break
        matched[anchor] = box
        remaining[box, :] = -1
        remaining[:, anchor] = -1
    bipartite = matched >= 0
    best_box = np.argmax(overlaps, axis=0)
    best_iou = overlaps.max(axis=0)
    if matching == "multi":
        threshold = ~bipartite & (best_iou >= pos_iou_threshold)
        matched[threshold] = best_box[threshold]
    state[matched >= 0] = POSITIVE
    state[(matched < 0) & (best_iou >= neg_iou_limit)] = NEUTRAL
    return matched, state


@functools.lru_cache(maxsize=8)
def reference_anchors(config):
    """(centroids, corners) of the config's anchors, made once per config."""
    anchors = generate_anchors(config)
    return anchors, centroids_to_corners(anchors)


def reference_encode(config, gt_per_image, pos_iou_threshold=0.5, neg_iou_limit=0.5, matching="multi"):
    anchors, anchor_corners = reference_anchors(config)
    width, height = config.image_width, config.image_height
    v0, v1, v2, v3 = config.variances
    y_true = np.zeros((len(gt_per_image), len(anchors), 5), dtype=np.float32)
    for image_index, boxes in enumerate(gt_per_image):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
        corners = np.clip(boxes[:, 1:], 0, [width, height, width, height])
        keep = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])
        corners = corners[keep] / [width, height, width, height]
        labels = boxes[keep, 0]
        matched, state = reference_match(corners, anchor_corners, pos_iou_threshold, neg_iou_limit, matching)
        y_true[image_index, state == NEUTRAL, 0] = NEUTRAL
        positive = state == POSITIVE
        xmin, ymin, xmax, ymax = corners[matched[positive]].T
        cx, cy, w, h = (xmin + xmax) / 2, (ymin + ymax) / 2, xmax - xmin, ymax - ymin
        acx, acy, aw, ah = anchors[positive].T
        y_true[image_index, positive] = np.stack([
            labels[matched[positive]], (cx - acx) / aw / v0, (cy - acy) / ah / v1,
            np.log(w / aw) / v2, np.log(h / ah) / v3,
        ], axis=-1)  # fmt: skip
    return y_true


def random_boxes(rng, n_boxes, width, height, n_classes, grid=None):
    """Random (n, 5) pixel boxes, from tiny to full-image, some partly outside the image;
    with ``grid`` the coordinates are multiples of it (many exact ties)."""
    size = np.exp(rng.uniform(np.log(0.02), np.log(1.1), (n_boxes, 1))) * [width, height]
    size *= np.exp(rng.normal(0, 0.5, (n_boxes, 2)))
    centre = rng.uniform(-0.05, 1.05, (n_boxes, 2)) * [width, height]
    corners = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    if grid is not None:
        corners = np.round(corners / grid) * grid
        corners[:, 2:] = np.maximum(corners[:, 2:], corners[:, :2] + grid)
    labels = rng.integers(1, n_classes + 1, (n_boxes, 1))
    return np.concatenate([labels, corners], axis=1)


# A config with power-of-two geometry: anchor corners and grid-aligned boxes are exact binary
# fractions, so IoUs hit thresholds exactly and ties between boxes and between anchors abound.
DYADIC = SSDConfig(
    image_height=256, image_width=256, n_classes=3,
    feature_map_sizes=(8, 4, 2, 1), aspect_ratios=((1.0, 4.0, 0.25),) * 4,
    scales=(0.125, 0.25, 0.5, 0.75, 1.0), two_boxes_for_ar1=False,
)  # fmt: skip


# A non-square input with rectangular feature maps, paper-style steps and offsets that differ in
# y and x: every x/y mix-up in the candidate search would show.
WIDE = SSDConfig(
    image_height=200, image_width=320, n_classes=3,
    feature_map_sizes=((10, 16), (5, 8), (3, 4), (1, 2)), aspect_ratios=((1.0, 2.0, 0.5),) * 4,
    min_scale=0.15, max_scale=0.8, offsets=((0.5, 0.25),) * 4,
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# encode_boxes / decode_boxes


def test_encode_golden_values():
    offsets = encode_boxes([0.55, 0.5, 0.4, 0.1], [0.5, 0.5, 0.2, 0.2], (0.1, 0.1, 0.2, 0.2))
    np.testing.assert_allclose(offsets, [2.5, 0.0, np.log(2) / 0.2, np.log(0.5) / 0.2])


def test_decode_inverts_encode_with_leading_shapes():
    rng = np.random.default_rng(0)
    anchors = np.concatenate([rng.uniform(0, 1, (3, 7, 2)), rng.uniform(0.05, 1, (3, 7, 2))], -1)
    boxes = np.concatenate([rng.uniform(0, 1, (3, 7, 2)), rng.uniform(0.01, 1, (3, 7, 2))], -1)
    variances = SSD300_VOC.variances
    offsets = encode_boxes(boxes, anchors, variances)
    assert offsets.shape == (3, 7, 4)
    np.testing.assert_allclose(decode_boxes(offsets, anchors, variances), boxes, rtol=1e-12, atol=1e-12)
    # Broadcasting one anchor set against a batch of offsets.
    decoded = decode_boxes(offsets[None], anchors, variances)
    assert decoded.shape == (1, 3, 7, 4)


def test_encode_rejects_wrong_last_axis():
    with pytest.raises(ValueError, match="boxes_centroids"):
        encode_boxes(np.zeros((2, 3)), np.ones((2, 4)), (0.1, 0.1, 0.2, 0.2))
    with pytest.raises(ValueError, match="offsets"):
        decode_boxes(np.zeros((2, 5)), np.ones((2, 4)), (0.1, 0.1, 0.2, 0.2))


# ---------------------------------------------------------------------------------------------
# match: the rules on hand-built cases


def centroids(*corners):
    return corners_to_centroids(np.array(corners, dtype=float))


def test_bipartite_gives_each_box_a_distinct_anchor_even_below_threshold():
    # Box 0 overlaps anchor 0 (IoU 0.25) and anchor 1 (IoU 1/9); box 1 equals anchor 0.
    anchors = centroids([0.0, 0.0, 0.5, 0.5], [0.0, 0.125, 0.5, 0.625])
    gt = np.array([[0.0, 0.0, 0.25, 0.25], [0.0, 0.0, 0.5, 0.5]])
    result = match(gt, anchors)
    # Pair (box 1, anchor 0) has IoU 1 and goes first; box 0 then takes anchor 1 at IoU 1/9,
    # although anchor 1 overlaps box 1 more (IoU 0.6): the bipartite match wins.
    assert result.bipartite_anchor_index.tolist() == [1, 0]
    assert result.matched_gt_index.tolist() == [1, 0]
    assert result.state.tolist() == [POSITIVE, POSITIVE]
    np.testing.assert_allclose(result.max_iou, [1.0, 0.6])


def test_ties_go_to_the_lower_box_and_the_lower_anchor():
    anchors = centroids([0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0])
    gt = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]])  # two identical boxes
    result = match(gt, anchors, matching="bipartite")
    # Box 0 (lower box) gets anchor 0 (lower of two equal anchors); box 1 gets anchor 1.
    assert result.bipartite_anchor_index.tolist() == [0, 1]
    assert result.matched_gt_index.tolist() == [0, 1, -1]
    # In the threshold stage an anchor tied between boxes goes to the lower box.
    anchors = centroids([0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5])
    gt = np.array([[0.5, 0.5, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.5, 0.5]])
    result = match(gt, anchors)
    assert result.bipartite_anchor_index.tolist() == [1, 0, 2]
    anchors = np.concatenate([anchors, centroids([0.0, 0.0, 0.5, 0.5])])
    assert match(gt, anchors).matched_gt_index.tolist() == [1, 0, 2, 1]


def test_threshold_is_inclusive_and_neutral_band():
    # Exact binary fractions: IoU(box, anchor 0) = 0.5, IoU(box, anchor 1) = 0.25,
    # IoU(box, anchor 2) = 0.375.
    gt = np.array([[0.375, 0.375, 0.625, 0.5]])
    anchors = centroids([0.375, 0.375, 0.625, 0.625], [0.375, 0.375, 0.625, 0.875], [0.375, 0.375, 0.46875, 0.5])
    np.testing.assert_array_equal(iou(gt, centroids_to_corners(anchors))[0], [0.5, 0.25, 0.375])
    # Bipartite: box -> anchor 0 (best). Anchor 2 (0.375) is neutral when neg_iou_limit <= 0.375.
    result = match(gt, anchors, pos_iou_threshold=0.5, neg_iou_limit=0.375)
    assert result.state.tolist() == [POSITIVE, BACKGROUND, NEUTRAL]
    result = match(gt, anchors, pos_iou_threshold=0.25, neg_iou_limit=0.2)
    assert result.state.tolist() == [POSITIVE, POSITIVE, POSITIVE]  # 0.25 >= 0.25: inclusive
    # Add a second copy of anchor 0: it reaches 0.5 exactly -> positive in "multi" ...
    anchors = np.concatenate([anchors, anchors[:1]])
    result = match(gt, anchors)
    assert result.state.tolist() == [POSITIVE, BACKGROUND, BACKGROUND, POSITIVE]
    # ... and neutral in "bipartite", where only the bipartite match is positive.
    result = match(gt, anchors, matching="bipartite")
    assert result.state.tolist() == [POSITIVE, BACKGROUND, BACKGROUND, NEUTRAL]
    assert result.matched_gt_index.tolist() == [0, -1, -1, -1]


def test_no_boxes_means_all_background():
    anchors = generate_anchors(SSD300_VOC)
    result = match(np.zeros((0, 4)), anchors)
    assert (result.state == BACKGROUND).all() and (result.matched_gt_index == -1).all()
    assert result.bipartite_anchor_index.shape == (0,)


def test_box_overlapping_no_anchor_gets_none():
    anchors = centroids([0.0, 0.0, 0.25, 0.25])
    result = match([[0.5, 0.5, 0.75, 0.75]], anchors)
    assert result.bipartite_anchor_index.tolist() == [-1]
    assert result.state.tolist() == [BACKGROUND]


def test_every_box_gets_its_own_anchor_at_ssd300_scale():
    rng = np.random.default_rng(1)
    anchors = generate_anchors(SSD300_VOC)
    boxes = random_boxes(rng, 30, 1.0, 1.0, 1)[:, 1:].clip(0, 1)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    result = match(boxes, anchors)
    chosen = result.bipartite_anchor_index
    assert (chosen >= 0).all() and len(np.unique(chosen)) == len(boxes)
    np.testing.assert_array_equal(result.matched_gt_index[chosen], np.arange(len(boxes)))
    multi = result.state == POSITIVE
    assert (result.max_iou[multi & ~np.isin(np.arange(len(anchors)), chosen)] >= 0.5).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"pos_iou_threshold": 0.0}, "pos_iou_threshold"),
        ({"pos_iou_threshold": 1.5}, "pos_iou_threshold"),
        ({"neg_iou_limit": -0.1}, "neg_iou_limit"),
        ({"matching": "hungarian"}, "matching"),
    ],
)
def test_bad_matching_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        match([[0, 0, 1, 1]], [[0.5, 0.5, 1, 1]], **kwargs)
    with pytest.raises(ValueError, match=message):
        SSDEncoder(DYADIC, **kwargs)


def test_match_rejects_bad_shapes():
    with pytest.raises(ValueError, match="gt_boxes"):
        match(np.zeros((2, 3)), np.ones((5, 4)))
    with pytest.raises(ValueError, match="anchors"):
        match(np.zeros((2, 4)), np.ones((2, 5, 4)))


@pytest.mark.parametrize("seed", range(5))
def test_match_equals_reference(seed):
    rng = np.random.default_rng(seed)
    anchors = generate_anchors(DYADIC)
    boxes = random_boxes(rng, rng.integers(1, 12), 1.0, 1.0, 1, grid=1 / 16)[:, 1:].clip(0, 1)
    boxes = boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
    for matching in ("multi", "bipartite"):
        result = match(boxes, anchors, 0.5, 0.25, matching)
        matched, state = reference_match(boxes, centroids_to_corners(anchors), 0.5, 0.25, matching)
        np.testing.assert_array_equal(result.matched_gt_index, matched)
        np.testing.assert_array_equal(result.state, state)


# ---------------------------------------------------------------------------------------------
# SSDEncoder


def test_encoder_output_layout():
    encoder = SSDEncoder(SSD300_VOC)
    gt = [np.array([[15, 40, 60, 200, 280], [7, 150, 20, 290, 120]]), np.zeros((0, 5))]
    y_true = encoder(gt)
    assert y_true.shape == (2, 8732, 5) and y_true.dtype == np.float32
    assert np.array_equal(encoder.anchors, generate_anchors(SSD300_VOC))
    labels = y_true[..., 0]
    assert set(np.unique(labels[0])) <= {NEUTRAL, BACKGROUND, 15, 7}
    assert (labels[0] == 15).any() and (labels[0] == 7).any()
    assert (labels[1] == BACKGROUND).all()  # an image without boxes is all background
    assert (y_true[labels <= 0][:, 1:] == 0).all()  # offsets only on positives
    # Decoding the positives' offsets gives back their ground-truth box.
    for class_id, box in ((15, [40, 60, 200, 280]), (7, [150, 20, 290, 120])):
        positive = labels[0] == class_id
        decoded = decode_boxes(y_true[0, positive, 1:], encoder.anchors[positive], SSD300_VOC.variances)
        pixels = centroids_to_corners(decoded) * 300
        np.testing.assert_allclose(pixels, np.broadcast_to(box, pixels.shape), atol=1e-3)


def test_empty_batch_elements_and_list_inputs():
    encoder = SSDEncoder(DYADIC)
    y_true = encoder([[], np.zeros((0, 5)), [[1, 0, 0, 128, 128]]])
    assert y_true.shape == (3, encoder.anchors.shape[0], 5)
    assert (y_true[:2] == 0).all() and (y_true[2, :, 0] == 1).any()
    assert encoder([]).shape == (0, encoder.anchors.shape[0], 5)


def test_clipping_and_dropping():
    encoder = SSDEncoder(SSD300_VOC)
    clipped = encoder([np.array([[3, -50, 100, 120, 400]])])
    inside = encoder([np.array([[3, 0, 100, 120, 300]])])
    np.testing.assert_array_equal(clipped, inside)
    outside = encoder([np.array([[3, 310, 10, 400, 50], [4, -90, -90, -10, 200], [5, 0, 300, 10, 320]])])
    assert (outside == 0).all()
    mixed = encoder([np.array([[4, -90, -90, -10, 200], [3, 0, 100, 120, 300]])])
    np.testing.assert_array_equal(mixed, inside)


@pytest.mark.parametrize(
    "bad_box, reason",
    [
        ([3, 50, 50, 40, 80], "xmax <= xmin"),
        ([3, 50, 50, 50, 80], "xmax <= xmin"),
        ([3, 50, 80, 60, 80], "ymax <= ymin"),
        ([0, 10, 10, 20, 20], "class id outside 1..20"),
        ([21, 10, 10, 20, 20], "class id outside 1..20"),
        ([2.5, 10, 10, 20, 20], "class id outside 1..20"),
        ([3, np.nan, 10, 20, 20], "NaN or infinite"),
        ([3, 10, 10, np.inf, 20], "NaN or infinite"),
    ],
)
def test_bad_boxes_name_image_and_box(bad_box, reason):
    encoder = SSDEncoder(SSD300_VOC)
    good = np.array([[1, 10, 10, 100, 100], [2, 20, 20, 200, 200]])
    batch = [good, np.zeros((0, 5)), np.concatenate([good, [bad_box]])]
    with pytest.raises(ValueError, match=rf"image 2, box 2 .*{reason}"):
        encoder(batch)


def test_bad_array_shape_names_image():
    with pytest.raises(ValueError, match=r"image 1: expected a \(k, 5\)"):
        SSDEncoder(DYADIC)([np.zeros((1, 5)) + [1, 0, 0, 1, 1], np.zeros((2, 4))])


@pytest.mark.parametrize(
    "config, grid, options",
    [
        (SSD300_VOC, None, (0.5, 0.5, "multi")),
        (SSD300_VOC, None, (0.5, 0.4, "bipartite")),
        (SSD300_VOC, None, (0.6, 0.3, "multi")),
        (DYADIC, 16.0, (0.5, 0.5, "multi")),
        (DYADIC, 16.0, (0.5, 0.25, "multi")),
        (DYADIC, 32.0, (0.25, 0.125, "bipartite")),
        (dataclasses.replace(SSD300_VOC, clip_boxes=True), None, (0.5, 0.3, "multi")),
        (dataclasses.replace(DYADIC, clip_boxes=True, offsets=0.25), 8.0, (0.5, 0.375, "multi")),
        (WIDE, None, (0.5, 0.3, "multi")),
        (dataclasses.replace(WIDE, clip_boxes=True), 10.0, (0.4, 0.4, "bipartite")),
    ],
)
def test_fast_encoder_equals_reference(config, grid, options):
    rng = np.random.default_rng(abs(hash((config.n_anchors, grid, options))) % 2**32)
    encoder = SSDEncoder(config, *options)
    for n_images, max_boxes in ((12, 6), (4, 25)):
        batch = [
            random_boxes(rng, rng.integers(0, max_boxes + 1), config.image_width, config.image_height,
                         config.n_classes, grid)  # fmt: skip
            for _ in range(n_images)
        ]
        if grid is not None:  # the same boxes again with other classes: ties between boxes
            copies = batch[0][:3].copy()
            copies[:, 0] = copies[:, 0] % config.n_classes + 1
            batch[0] = np.concatenate([batch[0], copies])
        fast = encoder(batch)
        reference = reference_encode(config, batch, *options)
        np.testing.assert_array_equal(fast[..., 0], reference[..., 0])
        np.testing.assert_allclose(fast[..., 1:], reference[..., 1:], rtol=1e-6, atol=1e-6)


def test_crowded_image_uses_the_full_matrix_and_still_agrees():
    # Forty copies of one small box compete for the same few anchors: late boxes get anchors
    # far below their nearest anchor's IoU, so the candidate search cannot prove the result and
    # the encoder falls back to the full IoU matrix for that image (and only that image).
    encoder = SSDEncoder(SSD300_VOC)
    crowded = np.tile([[1, 100, 100, 130, 125]], (40, 1))
    normal = np.array([[2, 10, 10, 150, 200]])
    batch = [normal, crowded, normal]
    y_true = encoder(batch)
    assert encoder.n_full_matches == 1
    np.testing.assert_array_equal(y_true[..., 0], reference_encode(SSD300_VOC, batch)[..., 0])
    assert (y_true[1, :, 0] == 1).sum() >= 40


def test_candidate_search_avoids_the_full_matrix_on_ordinary_images():
    rng = np.random.default_rng(7)
    encoder = SSDEncoder(SSD300_VOC)
    batch = [random_boxes(rng, rng.integers(1, 7), 300, 300, 20) for _ in range(64)]
    encoder(batch)
    assert encoder.n_full_matches <= 2


def test_ssd512_smoke():
    encoder = SSDEncoder(SSD512_VOC)
    y_true = encoder([np.array([[1, 10, 10, 30, 30], [2, 0, 0, 512, 512]])])
    assert y_true.shape == (1, 24564, 5)
    assert (y_true[0, :, 0] == 1).any() and (y_true[0, :, 0] == 2).any()


@pytest.mark.parametrize("config", [SSD300_VOC, SSD512_VOC, DYADIC, WIDE])
def test_anchor_groups_describe_the_anchor_grid(config):
    # The candidate search relies on every (layer, box) group being a regular grid in the
    # anchor order of generate_anchors; rebuild every anchor from the group description.
    from ssd_lib.anchors import layer_anchors
    from ssd_lib.encoder import _AnchorGroups

    unclipped = np.concatenate([layer_anchors(config, k).reshape(-1, 4) for k in range(config.n_layers)])
    groups = _AnchorGroups(config, generate_anchors(config))
    rebuilt = np.zeros_like(unclipped)
    for g in range(len(groups.first)):
        rows, cols = np.meshgrid(np.arange(groups.rows[g]), np.arange(groups.cols[g]), indexing="ij")
        index = groups.first[g] + (rows * groups.cols[g] + cols) * groups.boxes_per_cell[g]
        rebuilt[index] = np.stack([groups.x0[g] + cols * groups.step_x[g], groups.y0[g] + rows * groups.step_y[g],
                                   np.full(rows.shape, groups.width[g]), np.full(rows.shape, groups.height[g])], -1)  # fmt: skip
    np.testing.assert_allclose(rebuilt, unclipped, atol=1e-12)


def test_record_to_gt_rows_scales_boxes_with_the_image():
    from ssd_lib.config import SSD300_VOC
    from ssd_lib.encoder import record_to_gt_rows

    record = {"size": (600, 150), "boxes": np.array([[60.0, 15.0, 300.0, 150.0]]), "labels": np.array([3])}
    np.testing.assert_allclose(record_to_gt_rows(record, SSD300_VOC), [[3, 30, 30, 150, 300]])
    empty = {"size": (10, 10), "boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}
    assert record_to_gt_rows(empty, SSD300_VOC).shape == (0, 5)


def test_normalized_boxes_are_warned_about_once(caplog):
    """Boxes in 0..1 coordinates where pixels are expected: every box is under 2 pixels."""
    encoder = SSDEncoder(SSD300_VOC)
    normalized = [np.array([[12, 0.1, 0.2, 0.6, 0.9]]), np.array([[3, 0.3, 0.3, 0.5, 0.4]])]
    encoder(normalized)
    encoder(normalized)
    warnings = [r.getMessage() for r in caplog.records if r.name == "ssd_lib.encoder"]
    assert len(warnings) == 1
    assert "every box of this batch is smaller than 2 pixels: normalized 0..1 coordinates?" in warnings[0]
    caplog.clear()
    SSDEncoder(SSD300_VOC)([np.array([[12, 0.1, 0.2, 0.6, 0.9], [12, 10, 20, 160, 290]])])
    assert not [r for r in caplog.records if r.name == "ssd_lib.encoder"]  # one real box: quiet
