"""Tests of ssd_lib.metrics: hand-computed APs, VOC devkit rules, agreement with pycocotools."""

import contextlib
import io
import math

import numpy as np
import pytest

from ssd_lib.metrics import (
    COCO_STATISTICS,
    average_precision,
    evaluate,
    evaluate_coco,
    match_detections,
    precision_recall,
)


def record(boxes, labels, difficult=None):
    result = {"boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
              "labels": np.asarray(labels, dtype=np.int64)}  # fmt: skip
    if difficult is not None:
        result["difficult"] = np.asarray(difficult, dtype=bool)
    return result


def detection(class_id, score, box):
    return [class_id, score, *box]


# Four separate boxes of class 1 in one image (no two overlap).
FOUR_BOXES = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]


def hand_case():
    """Detections, best first: TP, FP, TP, FP, TP over 4 ground-truth boxes."""
    truths = [record(FOUR_BOXES, [1, 1, 1, 1])]
    found = [np.array([
        detection(1, 0.9, [0, 0, 10, 10]),  # TP (box 0)
        detection(1, 0.8, [80, 80, 90, 90]),  # FP (nothing there)
        detection(1, 0.7, [21, 0, 30, 10]),  # TP (box 1, IoU 0.9)
        detection(1, 0.6, [0, 0, 10, 4]),  # FP (IoU with box 0 is 0.4)
        detection(1, 0.5, [40, 0, 50, 11]),  # TP (box 2, IoU 10/11)
    ])]  # fmt: skip
    return found, truths


def test_hand_computed_curve_and_both_aps():
    found, truths = hand_case()
    result_11 = evaluate(found, truths, n_classes=1, mode="11point")
    # precision 1, 1/2, 2/3, 2/4, 3/5 at recall 1/4, 1/4, 2/4, 2/4, 3/4
    np.testing.assert_allclose(result_11.precision[1], [1, 1 / 2, 2 / 3, 1 / 2, 3 / 5])
    np.testing.assert_allclose(result_11.recall[1], [0.25, 0.25, 0.5, 0.5, 0.75])
    np.testing.assert_allclose(result_11.scores[1], [0.9, 0.8, 0.7, 0.6, 0.5])
    assert result_11.n_ground_truth == {1: 4}
    # 11 points: recall >= 0, 0.1, 0.2 -> 1; >= 0.3, 0.4, 0.5 -> 2/3; >= 0.6, 0.7 -> 3/5; rest 0.
    assert result_11.average_precision[1] == pytest.approx((3 * 1 + 3 * 2 / 3 + 2 * 0.6) / 11)
    assert result_11.mean_average_precision == pytest.approx(6.2 / 11)
    # All points: 1/4 * 1 + 1/4 * 2/3 + 1/4 * 3/5 (+ 1/4 * 0).
    result_all = evaluate(found, truths, n_classes=1, mode="allpoint")
    assert result_all.average_precision[1] == pytest.approx(0.25 + 1 / 6 + 0.15)


def test_match_labels_and_ious():
    found, truths = hand_case()
    matches = match_detections(found, truths, n_classes=1)
    assert matches.true_positive.tolist() == [True, False, True, False, True]
    assert matches.false_positive.tolist() == [False, True, False, True, False]
    assert not matches.ignored.any()
    assert matches.matched_box.tolist() == [0, 0, 1, 0, 2]  # FP 1 is nearest to box 0 (IoU 0)
    np.testing.assert_allclose(matches.iou, [1.0, 0.0, 0.9, 0.4, 10 / 11])


def test_eleven_point_recall_levels_as_voc_eval_py():
    # numpy.arange(0, 1.1, 0.1)[3] is 0.30000000000000004: a recall of exactly 3/10 misses it.
    boxes = [[20 * k, 0, 20 * k + 10, 10] for k in range(10)]
    found = [np.array([detection(1, 0.9 - 0.1 * k, boxes[k]) for k in range(3)])]
    result = evaluate(found, [record(boxes, [1] * 10)], n_classes=1, mode="11point")
    assert result.recall[1][-1] == 0.3
    assert result.average_precision[1] == pytest.approx(3 / 11)
    assert evaluate(found, [record(boxes, [1] * 10)], 1, mode="allpoint").average_precision[1] \
        == pytest.approx(0.3)


@pytest.mark.parametrize("mode", ["11point", "allpoint"])
def test_perfect_detector_scores_one_and_no_detections_zero(mode):
    rng = np.random.default_rng(0)
    truths, perfect = [], []
    for _ in range(5):
        n = int(rng.integers(0, 4))
        boxes = np.array(FOUR_BOXES[:n], dtype=float).reshape(-1, 4) + rng.uniform(0, 5)
        labels = rng.integers(1, 4, size=n)
        truths.append(record(boxes, labels))
        perfect.append(np.column_stack([labels, rng.uniform(0.5, 1, n), boxes]).reshape(-1, 6))
    result = evaluate(perfect, truths, n_classes=3, mode=mode)
    assert all(ap == 1.0 for ap in result.average_precision.values())
    assert result.mean_average_precision == 1.0
    nothing = evaluate([np.zeros((0, 6))] * 5, truths, n_classes=3, mode=mode)
    assert nothing.mean_average_precision == 0.0
    assert all(len(curve) == 0 for curve in nothing.precision.values())


def test_duplicates_are_false_positives():
    truths = [record([[0, 0, 10, 10]], [1])]
    found = [np.array([detection(1, 0.9, [0, 0, 10, 10]), detection(1, 0.8, [0, 0, 10, 9])])]
    matches = match_detections(found, truths, 1)
    assert matches.true_positive.tolist() == [True, False]
    assert matches.false_positive.tolist() == [False, True]
    result = evaluate(found, truths, 1, mode="allpoint")
    np.testing.assert_allclose(result.precision[1], [1.0, 0.5])
    assert result.average_precision[1] == 1.0  # the duplicate comes after full recall
    # The better-scored of two detections gets the box, whatever their order in the input.
    swapped = [found[0][::-1].copy()]
    assert match_detections(swapped, truths, 1).true_positive.tolist() == [False, True]


def test_no_fallback_to_the_second_best_box():
    # Boxes A and B overlap. Detection 1 takes A. Detection 2's best box is also A (IoU 0.77),
    # already taken: the devkit counts a FP even though its IoU with B is 0.59 (pycocotools
    # would give it B).
    truths = [record([[0, 0, 10, 10], [3, 0, 13, 10]], [1, 1])]
    found = [np.array([detection(1, 0.9, [0, 0, 10, 10]), detection(1, 0.8, [1, 0, 11, 10])])]
    matches = match_detections(found, truths, 1)
    assert matches.matched_box.tolist() == [0, 0]
    assert matches.true_positive.tolist() == [True, False]


def test_iou_exactly_at_threshold_matches():
    truths = [record([[0, 0, 10, 10]], [1])]
    found = [np.array([detection(1, 0.9, [0, 0, 10, 5])])]  # IoU = 50 / 100 = 0.5 exactly
    assert match_detections(found, truths, 1, iou_threshold=0.5).true_positive.tolist() == [True]
    assert match_detections(found, truths, 1, iou_threshold=0.51).true_positive.tolist() == [False]


def test_difficult_boxes_are_ignored():
    truths = [record([[0, 0, 10, 10], [20, 0, 30, 10]], [1, 1], difficult=[False, True])]
    found = [np.array([
        detection(1, 0.9, [20, 0, 30, 10]),  # on the difficult box: ignored
        detection(1, 0.8, [20, 0, 30, 10]),  # a duplicate on it: ignored too (devkit)
        detection(1, 0.7, [0, 0, 10, 10]),  # TP
    ])]  # fmt: skip
    matches = match_detections(found, truths, 1)
    assert matches.ignored.tolist() == [True, True, False]
    assert matches.true_positive.tolist() == [False, False, True]
    assert matches.false_positive.tolist() == [False, False, False]
    result = evaluate(found, truths, 1)
    assert result.n_ground_truth[1] == 1  # the difficult box is not counted
    assert result.average_precision[1] == 1.0
    np.testing.assert_allclose(result.scores[1], [0.7])  # ignored detections leave the curve


def test_images_without_boxes_and_classes_without_ground_truth():
    truths = [record([], []), record([[0, 0, 10, 10]], [1]), record([], [])]
    found = [
        np.array([detection(1, 0.95, [0, 0, 10, 10]), detection(2, 0.9, [5, 5, 20, 20])]),
        np.array([detection(1, 0.8, [0, 0, 10, 10])]),
        np.zeros((0, 6)),
    ]
    result = evaluate(found, truths, n_classes=3, mode="allpoint")
    # class 1: a FP in the empty image (0.95), then the TP: precision 1/2 at recall 1.
    np.testing.assert_allclose(result.precision[1], [0.0, 0.5])
    assert result.average_precision[1] == pytest.approx(0.5)
    # Classes 2 and 3 have no ground truth: AP undefined (NaN), left out of the mean.
    assert math.isnan(result.average_precision[2]) and math.isnan(result.average_precision[3])
    assert np.isnan(result.recall[2]).all() and len(result.recall[2]) == 1
    assert result.mean_average_precision == pytest.approx(0.5)
    assert "n/a" in result.table() and "class 1" in result.table()
    assert "circle" in result.table(("circle", "square", "triangle"))
    empty = evaluate([np.zeros((0, 6))], [record([], [])], n_classes=2)
    assert math.isnan(empty.mean_average_precision)


def test_detections_of_other_classes_do_not_match():
    truths = [record([[0, 0, 10, 10]], [2])]
    found = [np.array([detection(1, 0.9, [0, 0, 10, 10]), detection(2, 0.5, [0, 0, 10, 10])])]
    matches = match_detections(found, truths, 2)
    assert matches.true_positive.tolist() == [False, True]
    assert matches.matched_box.tolist() == [-1, 0]


def test_precision_recall_and_average_precision_directly():
    precision, recall, scores = precision_recall([0.2, 0.9, 0.5], [False, True, True], 4)
    np.testing.assert_allclose(scores, [0.9, 0.5, 0.2])
    np.testing.assert_allclose(precision, [1, 1, 2 / 3])
    np.testing.assert_allclose(recall, [0.25, 0.5, 0.5])
    assert average_precision(precision, recall, "allpoint") == pytest.approx(0.5)
    assert average_precision(precision, recall, "11point") == pytest.approx(6 / 11)
    assert average_precision([], [], "11point") == 0.0
    assert math.isnan(average_precision([0.5], [np.nan], "allpoint"))


@pytest.mark.parametrize(
    "detections, truths, kwargs, message",
    [
        ([np.zeros((1, 5))], [record([], [])], {}, r"detections\[0\]: expected shape \(k, 6\)"),
        ([np.zeros((0, 6))] * 2, [record([], [])], {}, "one array per image"),
        ([np.array([[4, 0.5, 0, 0, 1, 1]])], [record([], [])], {}, r"detections\[0\]\[0\]: class"),
        ([np.array([[1.5, 0.5, 0, 0, 1, 1]])], [record([], [])], {}, "class id"),
        ([np.array([[1, np.nan, 0, 0, 1, 1]])], [record([], [])], {}, "not finite"),
        ([np.zeros((0, 6))], [{"boxes": np.zeros((0, 4))}], {}, "'labels'"),
        ([np.zeros((0, 6))], [record([[0, 0, 1, 1]], [4])], {}, r"\['labels'\]\[0\]"),
        ([np.zeros((0, 6))], [record([[0, 0, 1, 1]], [1, 2])], {}, "labels"),
        ([np.zeros((0, 6))], [record([[0, 0, 1, 1], [5, 5, 4, 6]], [1, 1])], {},
         r"ground_truths\[0\]\['boxes'\]\[1\]"),
        ([np.zeros((0, 6))], [record([[0, 0, 1, 1]], [1], difficult=[True, False])], {},
         "difficult"),
        ([np.zeros((0, 6))], [record([], [])], {"mode": "101point"}, "mode"),
        ([np.zeros((0, 6))], [record([], [])], {"iou_threshold": 0.0}, "iou_threshold"),
        ([np.zeros((0, 6))], [record([], [])], {"n_classes": 0}, "n_classes"),
    ],
)  # fmt: skip
def test_bad_inputs(detections, truths, kwargs, message):
    arguments = {"n_classes": 3}
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        evaluate(detections, truths, **arguments)


# ----------------------------------------------------------------------------- pycocotools
def random_case(rng, n_images=8, n_classes=3):
    """Ground truth without overlapping boxes (one per cell of a 4x4 grid of 25 px cells), so
    a detection has IoU >= 0.5 with at most one box and VOC and COCO match it the same way."""
    truths, found = [], []
    for _ in range(n_images):
        cells = rng.permutation(16)[: rng.integers(0, 6)]
        xy = np.stack([cells % 4, cells // 4], axis=1) * 25.0 + rng.uniform(0, 5, (len(cells), 2))
        size = rng.uniform(8, 20, (len(cells), 2))
        boxes = np.concatenate([xy, xy + size], axis=1)
        labels = rng.integers(1, n_classes + 1, size=len(cells))
        truths.append(record(boxes, labels))
        rows = []
        for box, label in zip(boxes, labels):
            for _ in range(rng.integers(0, 3)):  # 0, 1 or 2 (a duplicate) detections per box
                jitter = rng.normal(0, 2.0, 4)
                wrong_class = rng.random() < 0.15
                class_id = rng.integers(1, n_classes + 1) if wrong_class else label
                rows.append(detection(class_id, rng.random(), box + jitter))
        for _ in range(rng.integers(0, 4)):  # background false positives
            corner = rng.uniform(0, 90, 2)
            rows.append(detection(rng.integers(1, n_classes + 1), rng.random(),
                                  np.concatenate([corner, corner + rng.uniform(5, 20, 2)])))  # fmt: skip
        found.append(np.array(rows, dtype=np.float64).reshape(-1, 6))
    return found, truths


def pycocotools_evaluation(found, truths, n_classes, **params):
    """pycocotools run directly (ground truth and ``loadRes`` results built here), with
    ``COCOeval.params`` changed as given; evaluated, accumulated and (with the default
    parameters, which ``summarize`` needs) summarized into ``stats``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [{"id": k + 1} for k in range(len(truths))]
    annotations = []
    for k, truth in enumerate(truths):
        difficult = truth.get("difficult", np.zeros(len(truth["labels"]), bool))
        for box, label, hard in zip(truth["boxes"].astype(float), truth["labels"], difficult):
            annotations.append({"id": len(annotations) + 1, "image_id": k + 1,
                                "category_id": int(label), "iscrowd": int(hard),
                                "area": float((box[2] - box[0]) * (box[3] - box[1])),
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]]})  # fmt: skip
    results = [{"image_id": k + 1, "category_id": int(row[0]), "score": float(row[1]),
                "bbox": [row[2], row[3], row[4] - row[2], row[5] - row[3]]}
               for k, rows in enumerate(found) for row in rows]  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = {"images": images, "annotations": annotations,
                          "categories": [{"id": c} for c in range(1, n_classes + 1)]}  # fmt: skip
        ground.createIndex()
        evaluation = COCOeval(ground, ground.loadRes(results), iouType="bbox")
        for name, value in params.items():
            setattr(evaluation.params, name, value)
        evaluation.evaluate()
        evaluation.accumulate()
        if not params:
            evaluation.summarize()
    return evaluation


def coco_evaluation(found, truths, n_classes):
    """pycocotools at the single IoU 0.5, all areas, no limit on detections per image."""
    return pycocotools_evaluation(found, truths, n_classes, iouThrs=np.array([0.5]), maxDets=[10_000],
                                  areaRng=[[0, 1e10]], areaRngLbl=["all"])  # fmt: skip


def coco_101_point_ap(precision, recall):
    """COCO's interpolated AP (precision envelope sampled at recall 0, 0.01, ..., 1) from a
    curve of ours: the same curve must give pycocotools' number."""
    envelope = np.maximum.accumulate(np.asarray(precision)[::-1])[::-1]
    positions = np.searchsorted(recall, np.linspace(0, 1, 101), side="left")
    return np.mean([envelope[p] if p < len(envelope) else 0.0 for p in positions])


@pytest.mark.parametrize("seed", range(6))
def test_agreement_with_pycocotools(seed):
    rng = np.random.default_rng(seed)
    n_classes = 3
    found, truths = random_case(rng, n_classes=n_classes)
    evaluation = coco_evaluation(found, truths, n_classes)
    result = evaluate(found, truths, n_classes, mode="allpoint")

    # 1. Per-detection matching: pycocotools' dtMatches (matched annotation id, 0 if none).
    matches = match_detections(found, truths, n_classes)
    coco_true_positive = {}
    for image_result in evaluation.evalImgs:
        if image_result is None:
            continue
        for det_id, gt_id in zip(image_result["dtIds"], image_result["dtMatches"][0]):
            coco_true_positive[det_id] = gt_id > 0
    # loadRes numbers detections 1..n in the order given, i.e. our flattened order.
    assert [coco_true_positive[k + 1] for k in range(len(matches.score))] \
        == matches.true_positive.tolist()

    # 2. Per class: COCO's 101-point AP from our curve equals pycocotools'; our all-point AP is
    #    the exact area, within a sampling step of it.
    compared = 0
    for class_id in range(1, n_classes + 1):
        coco_precision = evaluation.eval["precision"][0, :, class_id - 1, 0, -1]  # (101,)
        if result.n_ground_truth[class_id] == 0:
            assert math.isnan(result.average_precision[class_id])
            assert np.all(coco_precision == -1)  # COCO: undefined too
            continue
        coco_ap = float(np.mean(coco_precision))
        ours_101 = coco_101_point_ap(result.precision[class_id], result.recall[class_id])
        assert ours_101 == pytest.approx(coco_ap, abs=1e-9)
        assert result.average_precision[class_id] == pytest.approx(coco_ap, abs=0.03)
        compared += 1
    assert compared >= 2


# ---------------------------------------------------------------------------------------------
# COCO-style mAP@[.5:.95] (pycocotools)
# ---------------------------------------------------------------------------------------------


def test_coco_golden_case():
    """One 100x100 box found at IoU 0.72: a match at the thresholds 0.5 .. 0.7 (5 of 10), so
    mAP@[.5:.95] = 0.5, AP50 = 1, AP75 = 0; the box is large (> 96²); class 2 has no ground
    truth (NaN), an empty image changes nothing."""
    truths = [record([[0, 0, 100, 100]], [1]), record(np.zeros((0, 4)), [])]
    found = [np.array([detection(1, 0.9, [0, 0, 100, 72])]), np.zeros((0, 6))]
    result = evaluate_coco(found, truths, n_classes=2)
    assert result.mean_average_precision == pytest.approx(0.5)
    assert result.statistics["AP50"] == pytest.approx(1.0) and result.statistics["AP75"] == 0.0
    assert result.statistics["AP_large"] == pytest.approx(0.5)
    assert math.isnan(result.statistics["AP_small"]) and math.isnan(result.statistics["AP_medium"])
    assert result.average_precision[1] == pytest.approx(0.5) and math.isnan(result.average_precision[2])
    assert "AP@[.5:.95]" in result.table(["a", "b"])
    nothing = evaluate_coco([np.zeros((0, 6))] * 2, truths, n_classes=2)
    assert nothing.mean_average_precision == 0.0


@pytest.mark.parametrize("seed", range(3))
def test_coco_figures_equal_pycocotools_run_directly(seed):
    rng = np.random.default_rng(seed)
    found, truths = random_case(rng, n_classes=3)
    # images scaled up so that boxes of every COCO size class occur; some difficult boxes
    # (given to pycocotools as iscrowd)
    for k, scale in enumerate(rng.choice([1.0, 4.0, 8.0], len(truths))):
        truths[k]["boxes"] = truths[k]["boxes"] * scale
        truths[k]["difficult"] = rng.random(len(truths[k]["labels"])) < 0.1
        found[k] = found[k] * np.array([1, 1, scale, scale, scale, scale])
    ours = evaluate_coco(found, truths, n_classes=3)
    reference = pycocotools_evaluation(found, truths, n_classes=3)
    for name, value in zip(COCO_STATISTICS, reference.stats):
        expected = float("nan") if value < 0 else value
        assert ours.statistics[name] == pytest.approx(expected, nan_ok=True), name
    for class_id in (1, 2, 3):
        precision = reference.eval["precision"][:, :, class_id - 1, 0, -1]
        assert ours.average_precision[class_id] == pytest.approx(float(np.mean(precision)))
