"""Tests of ssd_lib.decoder: golden values, plain reference loops as oracles, bad inputs."""

import math
import warnings

import numpy as np
import pytest

from ssd_lib import decoder, nms
from ssd_lib.anchors import generate_anchors
from ssd_lib.config import SSD300_VOC, SSDConfig
from ssd_lib.decoder import (
    class_probabilities,
    decode_all_boxes,
    decode_detections,
    select_candidates,
)
from ssd_lib.nms import greedy_nms

# A small, non-square config (x and y mix-ups show): 4*6*4 + 2*3*3 = 114 anchors, 3 classes.
TINY = SSDConfig(
    image_height=64,
    image_width=96,
    n_classes=3,
    feature_map_sizes=((4, 6), (2, 3)),
    aspect_ratios=((1.0, 2.0, 0.5), (1.0, 2.0)),
    scales=(0.3, 0.6, 0.9),
)


# ----------------------------------------------------------------------------- reference loops
def reference_iou(a, b):
    """IoU of two corner boxes, written out."""
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    intersection = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - intersection
    return intersection / union if union > 0 else 0.0


def reference_nms(boxes, scores, iou_threshold, max_output_size=None):
    """Greedy NMS as in the textbook: best box first, drop what overlaps a kept box."""
    order = sorted(range(len(scores)), key=lambda k: (-float(scores[k]), k))
    kept = []
    for k in order:
        if max_output_size is not None and len(kept) == max_output_size:
            break
        if all(reference_iou(boxes[k], boxes[other]) <= iou_threshold for other in kept):
            kept.append(k)
    return kept


def reference_grouped_nms(boxes, scores, groups, iou_threshold, max_output_size=None):
    """The reference loop run group by group; kept indices by score (ties: lower index)."""
    expected = []
    for group in np.unique(groups):
        members = np.flatnonzero(groups == group)
        kept = reference_nms(boxes[members], scores[members], iou_threshold, max_output_size)
        expected.extend(members[kept].tolist())
    return sorted(expected, key=lambda k: (-scores[k], k))


def reference_decode(y_pred, config, confidence_threshold, iou_threshold, top_k, max_per_class):
    """One image, one anchor, one class at a time, in float64 Python."""
    anchors = generate_anchors(config)
    width, height = config.image_width, config.image_height
    v0, v1, v2, v3 = config.variances
    results = []
    for image_pred in np.asarray(y_pred, dtype=np.float64):
        candidates = {c: [] for c in range(1, config.n_classes + 1)}  # class -> (score, box, anchor)
        for a, row in enumerate(image_pred):
            if not all(math.isfinite(v) for v in row):
                continue
            logits = row[: config.n_classes + 1]
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            probabilities = [e / sum(exps) for e in exps]
            cx_a, cy_a, w_a, h_a = anchors[a]
            t_cx, t_cy, t_w, t_h = row[-4:]
            try:
                w = w_a * math.exp(t_w * v2)
                h = h_a * math.exp(t_h * v3)
            except OverflowError:
                continue
            cx = cx_a + t_cx * v0 * w_a
            cy = cy_a + t_cy * v1 * h_a
            box = [
                min(max((cx - w / 2) * width, 0), width),
                min(max((cy - h / 2) * height, 0), height),
                min(max((cx + w / 2) * width, 0), width),
                min(max((cy + h / 2) * height, 0), height),
            ]
            if not all(math.isfinite(v) for v in box) or box[2] <= box[0] or box[3] <= box[1]:
                continue
            for c in range(1, config.n_classes + 1):
                if probabilities[c] > confidence_threshold:
                    candidates[c].append((probabilities[c], box, a))
        detections = []
        for c, class_candidates in candidates.items():
            scores = [s for s, _, _ in class_candidates]
            boxes = [b for _, b, _ in class_candidates]
            for k in reference_nms(boxes, scores, iou_threshold, max_per_class):
                score, box, a = class_candidates[k]
                detections.append((-score, a, c, [c, score, *box]))
        detections.sort(key=lambda d: d[:3])
        results.append(np.array([d[3] for d in detections[:top_k]]).reshape(-1, 6))
    return results


def random_predictions(rng, config, batch, background_margin=2.0, offset_scale=1.0):
    n_outputs = config.n_classes + 1 + 4
    y_pred = rng.normal(size=(batch, config.n_anchors, n_outputs))
    y_pred[..., 0] += background_margin
    y_pred[..., -4:] *= offset_scale
    return y_pred.astype(np.float32)


def assert_same_detections(actual, expected):
    assert len(actual) == len(expected)
    for image, (got, want) in enumerate(zip(actual, expected)):
        assert got.shape == want.shape, f"image {image}"
        np.testing.assert_array_equal(got[:, 0], want[:, 0], err_msg=f"image {image}")
        np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=1e-5, err_msg=f"image {image}")
        np.testing.assert_allclose(got[:, 2:], want[:, 2:], atol=1e-3, err_msg=f"image {image}")


# ----------------------------------------------------------------------------- greedy_nms
def random_nms_case(rng, n, tie_scores, duplicate_boxes):
    xy = rng.uniform(0, 50, size=(n, 2))
    wh = rng.uniform(5, 30, size=(n, 2))
    boxes = np.concatenate([xy, xy + wh], axis=1)
    scores = rng.uniform(size=n)
    if tie_scores:  # few distinct values: many equal scores
        scores = np.round(scores * 3) / 3
    if duplicate_boxes and n > 1:  # some boxes are exact copies of others
        copies = rng.integers(0, n, size=n // 3)
        boxes[rng.integers(0, n, size=n // 3)] = boxes[copies]
    return boxes, scores


@pytest.mark.parametrize("seed", range(40))
def test_greedy_nms_equals_reference_loop(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 60))
    boxes, scores = random_nms_case(rng, n, tie_scores=seed % 2 == 0, duplicate_boxes=seed % 3 == 0)
    iou_threshold = float(rng.choice([0.0, 0.3, 0.45, 0.7, 1.0]))
    max_output_size = None if seed % 4 else int(rng.integers(1, 10))
    expected = reference_nms(boxes, scores, iou_threshold, max_output_size)
    actual = greedy_nms(boxes, scores, iou_threshold, max_output_size)
    assert actual.tolist() == expected


@pytest.mark.parametrize("seed", range(20))
def test_greedy_nms_groups_are_independent(seed):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(1, 80))
    boxes, scores = random_nms_case(rng, n, tie_scores=seed % 2 == 0, duplicate_boxes=True)
    groups = rng.integers(0, 4, size=n)
    max_output_size = None if seed % 3 else 3
    expected = reference_grouped_nms(boxes, scores, groups, 0.45, max_output_size)
    assert greedy_nms(boxes, scores, 0.45, max_output_size, groups=groups).tolist() == expected


def test_greedy_nms_long_suppression_chain():
    # Boxes sliding right by 2 px: each overlaps the next with IoU 8/12 > 0.5 and the one after
    # with IoU 6/14 < 0.5, so greedy keeps every other box; the vectorized iteration needs many
    # passes to settle this chain.
    boxes = np.array([[2.0 * k, 0, 2.0 * k + 10, 10] for k in range(30)])
    scores = np.linspace(1.0, 0.5, 30)
    assert greedy_nms(boxes, scores, 0.5).tolist() == list(range(0, 30, 2))
    assert greedy_nms(boxes, scores, 0.5).tolist() == reference_nms(boxes, scores, 0.5)


def test_greedy_nms_iou_exactly_at_threshold_is_kept():
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1], [0, 0, 1.9, 1]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7])
    # IoU(0, 1) = 0.5 exactly: not "greater than 0.5", so box 1 stays; IoU(0, 2) = 0.95 goes.
    assert greedy_nms(boxes, scores, iou_threshold=0.5).tolist() == [0, 1]
    assert greedy_nms(boxes, scores, iou_threshold=0.49).tolist() == [0]


def test_greedy_nms_equal_scores_and_identical_boxes():
    boxes = np.array([[0, 0, 10, 10]] * 3 + [[20, 20, 30, 30]] * 2, dtype=float)
    scores = np.array([0.5, 0.5, 0.5, 0.5, 0.9])
    # Box 4 (best) keeps, box 3 (its copy) goes; of the equal-score copies the lowest index stays.
    assert greedy_nms(boxes, scores, 0.45).tolist() == [4, 0]
    # With an IoU threshold of 1, identical boxes (IoU = 1) are not suppressed.
    assert greedy_nms(boxes, scores, 1.0).tolist() == [4, 0, 1, 2, 3]


@pytest.mark.parametrize("seed", range(12))
def test_greedy_nms_blocks_and_chunks_equal_reference_loop(monkeypatch, seed):
    # Force the paths meant for large groups onto small cases: pairs in chunks of 5, groups of
    # more than 3 boxes through blocks of 4 boxes.
    monkeypatch.setattr(nms, "_PAIRS_PER_CHUNK", 5)
    monkeypatch.setattr(nms, "_PAIRWISE_GROUP_SIZE", 3)
    monkeypatch.setattr(nms, "_NMS_BLOCK_SIZE", 4)
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(1, 70))
    boxes, scores = random_nms_case(rng, n, tie_scores=seed % 2 == 0, duplicate_boxes=seed % 3 == 0)
    groups = rng.integers(0, 3, size=n)
    max_output_size = None if seed % 3 else int(rng.integers(1, 6))
    expected = reference_grouped_nms(boxes, scores, groups, 0.3, max_output_size)
    assert greedy_nms(boxes, scores, 0.3, max_output_size, groups=groups).tolist() == expected


@pytest.mark.parametrize("iou_threshold", [0.0, 0.3, 0.45, 0.9, 1.0])
def test_overlapping_pairs_sweep_finds_every_overlapping_pair(iou_threshold):
    # The sweep along x only enumerates pairs close enough in x; it must miss none.
    rng = np.random.default_rng(int(iou_threshold * 100))
    boxes, _ = random_nms_case(rng, 90, tie_scores=False, duplicate_boxes=True)
    boxes[:5, 2] = boxes[:5, 0]  # zero-width boxes
    boxes[5:10] = np.round(boxes[5:10] / 10) * 10  # exactly touching edges
    group = np.sort(rng.integers(0, 3, size=90))
    expected = {
        (i, j)
        for i in range(90)
        for j in range(i + 1, 90)
        if group[i] == group[j] and reference_iou(boxes[i], boxes[j]) > iou_threshold
    }
    sources, targets = nms._overlapping_pairs(boxes, group, iou_threshold)
    assert set(zip(sources.tolist(), targets.tolist())) == expected
    assert len(sources) == len(expected)  # no pair twice


def test_greedy_nms_empty_and_single():
    assert greedy_nms(np.zeros((0, 4)), np.zeros(0)).shape == (0,)
    assert greedy_nms([[0, 0, 1, 1]], [0.3]).tolist() == [0]


@pytest.mark.parametrize(
    "boxes, scores, kwargs, message",
    [
        (np.zeros((2, 3)), np.zeros(2), {}, r"\(\.\.\., 4\)"),
        (np.zeros((2, 4)), np.zeros(3), {}, "scores"),
        (np.zeros((2, 4)), np.zeros(2), {"iou_threshold": 1.5}, "iou_threshold"),
        (np.zeros((2, 4)), np.zeros(2), {"max_output_size": 0}, "max_output_size"),
        (np.zeros((2, 4)), np.zeros(2), {"groups": np.zeros(3, int)}, "groups"),
        (np.zeros((2, 4)), np.zeros(2), {"groups": np.zeros(2)}, "groups"),
        (np.array([[0, 0, 1, 1], [0, 0, np.nan, 1]]), np.zeros(2), {}, r"boxes\[1\]"),
        (np.zeros((2, 4)), np.array([0.1, np.inf]), {}, r"scores\[1\]"),
    ],
)
def test_greedy_nms_bad_inputs(boxes, scores, kwargs, message):
    with pytest.raises(ValueError, match=message):
        greedy_nms(boxes, scores, **kwargs)


# ----------------------------------------------------------------------------- decoding steps
def test_decode_golden_box_and_score():
    # One anchor of TINY; offsets chosen by hand with the variances (0.1, 0.1, 0.2, 0.2).
    anchors = generate_anchors(TINY)
    y_pred = np.zeros((1, TINY.n_anchors, 8), dtype=np.float32)
    y_pred[..., 0] = 20.0  # background everywhere, except anchor 9:
    a = 9
    cx_a, cy_a, w_a, h_a = anchors[a]
    y_pred[0, a, :4] = [0.0, math.log(3.0), 0.0, 0.0]  # p(class 1) = 3 / (1 + 3 + 1 + 1) = 0.5
    y_pred[0, a, 4:] = [1.0, -2.0, 5 * math.log(1.5), 0.0]  # cx + 0.1 w_a, cy - 0.2 h_a, w * 1.5
    cx, cy, w, h = cx_a + 0.1 * w_a, cy_a - 0.2 * h_a, 1.5 * w_a, h_a
    expected_box = np.array([(cx - w / 2) * 96, (cy - h / 2) * 64, (cx + w / 2) * 96, (cy + h / 2) * 64])
    expected_box = np.clip(expected_box, 0, [96, 64, 96, 64])

    probabilities = class_probabilities(y_pred, TINY)
    np.testing.assert_allclose(probabilities[0, a], [1 / 6, 1 / 2, 1 / 6, 1 / 6], rtol=1e-6)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-6)
    boxes, valid = decode_all_boxes(y_pred, TINY)
    assert boxes.shape == (1, TINY.n_anchors, 4) and valid.all()
    np.testing.assert_allclose(boxes[0, a], expected_box, atol=1e-4)

    (detections,) = decode_detections(y_pred, TINY, confidence_threshold=0.2)
    assert detections.shape == (1, 6) and detections.dtype == np.float32
    assert detections[0, 0] == 1
    np.testing.assert_allclose(detections[0, 1], 0.5, rtol=1e-6)
    np.testing.assert_allclose(detections[0, 2:], expected_box, atol=1e-4)


def test_select_candidates_excludes_background_and_invalid():
    probabilities = np.array([[[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.05, 0.9, 0.05]]])
    boxes = np.arange(12, dtype=np.float32).reshape(1, 3, 4)
    valid = np.array([[True, True, False]])
    candidates = select_candidates(probabilities, boxes, valid, 0.15)
    assert candidates.anchor.tolist() == [0, 0, 1]
    assert candidates.class_id.tolist() == [1, 2, 2]
    np.testing.assert_allclose(candidates.score, [0.3, 0.2, 0.8])
    np.testing.assert_array_equal(candidates.box, boxes[0, [0, 0, 1]])


@pytest.mark.parametrize("confidence_threshold", [0.0, 0.01, 0.3])
def test_fast_candidates_equal_the_step_by_step_ones(confidence_threshold):
    # decode_detections only decodes anchors that can pass the threshold; the result must be
    # what the notebook's step-by-step functions give.
    rng = np.random.default_rng(3)
    y_pred = random_predictions(rng, TINY, batch=3, background_margin=1.0)
    y_pred[0, 5, 2] = np.nan
    y_pred[1, 7, 0] = -np.inf
    y_pred[2, 9, 1] = np.inf
    y_pred[2, 11, -1] = 1e30
    y_pred[2, :20, 0] = 1e6  # huge, finite logits
    y_pred[2, :10, 1] = 1e6 - 4.0
    probabilities = class_probabilities(y_pred, TINY)
    boxes, valid = decode_all_boxes(y_pred, TINY)
    expected = select_candidates(probabilities, boxes, valid, confidence_threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        actual = decoder._candidates_fast(y_pred, TINY, generate_anchors(TINY), confidence_threshold)
    assert len(actual.score) > 10
    for name in ("image", "anchor", "class_id"):
        np.testing.assert_array_equal(getattr(actual, name), getattr(expected, name), err_msg=name)
    np.testing.assert_allclose(actual.score, expected.score, rtol=1e-6)
    np.testing.assert_array_equal(actual.box, expected.box)


# ----------------------------------------------------------------------------- decode_detections
@pytest.mark.parametrize(
    "seed, confidence_threshold, iou_threshold, top_k, max_per_class",
    [
        (0, 0.01, 0.45, 200, 400),
        (1, 0.05, 0.45, 200, 400),
        (2, 0.1, 0.3, 7, 400),
        (3, 0.01, 0.6, 200, 2),
        (4, 0.2, 0.0, 5, 3),
    ],
)
def test_decode_detections_equals_reference_loop(seed, confidence_threshold, iou_threshold, top_k,
                                                 max_per_class):  # fmt: skip
    rng = np.random.default_rng(seed)
    y_pred = random_predictions(rng, TINY, batch=3)
    y_pred[1, :, 0] += 6  # a nearly empty image
    actual = decode_detections(y_pred, TINY, confidence_threshold, iou_threshold, top_k,
                               max_per_class)  # fmt: skip
    expected = reference_decode(y_pred, TINY, confidence_threshold, iou_threshold, top_k,
                                max_per_class)  # fmt: skip
    assert sum(len(d) for d in expected) > 5  # the case is not trivial
    assert_same_detections(actual, expected)


def test_decode_detections_output_properties_at_ssd300_scale():
    rng = np.random.default_rng(5)
    y_pred = random_predictions(rng, SSD300_VOC, batch=2, background_margin=4.0, offset_scale=0.5)
    detections = decode_detections(y_pred, SSD300_VOC, top_k=50)
    assert len(detections) == 2
    for per_image in detections:
        assert per_image.dtype == np.float32 and per_image.shape == (50, 6)
        assert np.all(np.diff(per_image[:, 1]) <= 0)  # by score, descending
        assert set(per_image[:, 0].astype(int)) <= set(range(1, 21))
        assert np.all(per_image[:, 1] > 0.01)
        boxes = per_image[:, 2:]
        assert np.all((boxes >= 0) & (boxes <= 300))
        assert np.all((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))
        # no two kept boxes of one class overlap by more than the NMS threshold
        for class_id in np.unique(per_image[:, 0]):
            same = boxes[per_image[:, 0] == class_id].astype(float)
            for i in range(len(same)):
                for j in range(i + 1, len(same)):
                    assert reference_iou(same[i], same[j]) <= 0.45 + 1e-6


def test_non_finite_predictions_are_dropped_without_warnings():
    rng = np.random.default_rng(11)
    y_pred = random_predictions(rng, TINY, batch=2)
    clean = y_pred.copy()
    y_pred[0, 3, 1] = np.nan
    y_pred[0, 17, -1] = np.inf
    y_pred[0, 40, 0] = -np.inf
    y_pred[1, 41, -2] = 1e30  # a finite offset whose exp overflows
    y_pred[1, 100, :] = np.nan
    clean[0, [3, 17, 40], 0] = 50.0  # the same anchors, as certain background
    clean[1, [41, 100], 0] = 50.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        actual = decode_detections(y_pred, TINY, confidence_threshold=0.05)
        _, valid = decode_all_boxes(y_pred, TINY)
    assert not valid[0, [3, 17, 40]].any() and not valid[1, [41, 100]].any()
    assert_same_detections(actual, decode_detections(clean, TINY, confidence_threshold=0.05))
    assert_same_detections(actual, reference_decode(y_pred, TINY, 0.05, 0.45, 200, 400))


def test_all_nan_and_all_background_give_empty_detections():
    y_pred = np.full((2, TINY.n_anchors, 8), np.nan, dtype=np.float32)
    y_pred[1] = 0
    y_pred[1, :, 0] = 30
    detections = decode_detections(y_pred, TINY)
    assert [d.shape for d in detections] == [(0, 6), (0, 6)]
    assert decode_detections(np.zeros((0, TINY.n_anchors, 8)), TINY) == []


def test_original_sizes_scale_x_by_width_and_y_by_height():
    rng = np.random.default_rng(2)
    y_pred = random_predictions(rng, TINY, batch=2)
    model_boxes = decode_detections(y_pred, TINY, confidence_threshold=0.1)
    sizes = [(960, 320), (48, 128)]  # (width, height): x10/x5 and x0.5/x2
    mapped = decode_detections(y_pred, TINY, confidence_threshold=0.1, original_sizes=sizes)
    for (width, height), model, original in zip(sizes, model_boxes, mapped):
        np.testing.assert_array_equal(original[:, :2], model[:, :2])
        scale = np.array([width / 96, height / 64] * 2, dtype=np.float32)
        np.testing.assert_allclose(original[:, 2:], model[:, 2:] * scale, rtol=1e-6)


def test_precomputed_anchors_give_the_same_result():
    y_pred = random_predictions(np.random.default_rng(4), TINY, batch=1)
    plain = decode_detections(y_pred, TINY)
    with_anchors = decode_detections(y_pred, TINY, anchors=generate_anchors(TINY))
    np.testing.assert_array_equal(plain[0], with_anchors[0])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"y_pred": np.zeros((1, 10, 8))}, r"y_pred: expected shape \(batch, 114, 8\)"),
        ({"y_pred": np.zeros((114, 8))}, "y_pred"),
        ({"y_pred": np.zeros((1, 114, 25))}, "n_classes"),
        ({"confidence_threshold": 1.0}, "confidence_threshold"),
        ({"confidence_threshold": -0.1}, "confidence_threshold"),
        ({"iou_threshold": 1.1}, "iou_threshold"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"nms_max_output_size": 0}, "nms_max_output_size"),
        ({"original_sizes": [(10, 10)]}, r"original_sizes: expected .* \(2, 2\)"),
        ({"original_sizes": [(10, 10), (0, 5)]}, r"original_sizes\[1\]"),
        ({"anchors": np.zeros((5, 4))}, "anchors"),
    ],
)
def test_decode_detections_bad_inputs(kwargs, message):
    arguments = {"y_pred": np.zeros((2, TINY.n_anchors, 8), dtype=np.float32), "config": TINY}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        decode_detections(**arguments)
