"""Pascal VOC average precision (AP), mean AP over classes, and precision-recall curves.

How a detector is scored on a data set, following the Pascal VOC development kit
(``VOCevaldet.m``) and its widely used Python port (``voc_eval.py`` of py-faster-rcnn, which
ssd_keras also uses):

1. **Matching**, per class, over all images at once: detections are visited from the highest
   score down (equal scores: in input order, image by image). A detection is compared with the
   ground-truth boxes of its class in its image; the one with the largest IoU is its candidate.
   If that IoU is at least ``iou_threshold`` (0.5 in VOC):

   - candidate marked ``difficult``: the detection is ignored (neither right nor wrong);
   - candidate not yet taken: **true positive** (TP), the box is now taken;
   - candidate already taken by a better detection: **false positive** (FP, a duplicate).

   Otherwise the detection is a false positive. A detection never falls back to its second-best
   box (pycocotools does; that is one of the differences between VOC and COCO scoring).
2. **Precision-recall curve**: after the best ``k`` detections, ``precision = TP / k`` and
   ``recall = TP / P`` with ``P`` the number of ground-truth boxes of the class that are not
   difficult.
3. **AP**, the area under that curve, made monotone first (precision at recall r becomes the best
   precision at any recall >= r):

   - ``"11point"`` (VOC2007): the mean of that precision at recall 0, 0.1, ..., 1. The recall
     levels are ``numpy.arange(0, 1.1, 0.1)`` as in ``voc_eval.py`` (so 0.3 is
     0.30000000000000004: a recall of exactly 3/10 does not reach it);
   - ``"allpoint"`` (VOC2010 and later): the exact area under the monotone curve.
4. **mAP**: the mean of the per-class APs. A class without (non-difficult) ground truth has no
   recall, so its AP is undefined: it is NaN and left out of the mean (as COCO does), and its
   detections change nothing.

Conventions:

- **No "+1" on widths and heights.** The devkit adds 1 to ``xmax - xmin`` because its coordinates
  are inclusive integer pixel indices (a box from pixel 1 to pixel 1 is 1 pixel wide). Boxes in
  ``ssd_lib`` are continuous pixel coordinates (the decoder outputs them so, and the data set
  records store them so), where the width is ``xmax - xmin``. For large boxes the difference is
  negligible; for boxes a few pixels wide the devkit's IoU is a little higher.
- An IoU exactly at the threshold counts as a match (the devkit's ``ovmax >= minoverlap``).

COCO-style scoring (:func:`evaluate_coco`) is computed by ``pycocotools``, the field's
reference implementation: AP averaged over the IoU thresholds 0.5, 0.55, ..., 0.95 (101-point
interpolation), also per object size (small < 32², medium < 96², large, in original pixels²).

Explained in notebooks/05_decoder.ipynb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io

import numpy as np

from .boxes import check_boxes, iou

__all__ = [
    "MODES",
    "Matches",
    "EvaluationResult",
    "match_detections",
    "precision_recall",
    "precision_envelope",
    "eleven_point_precisions",
    "average_precision",
    "evaluate",
    "COCO_STATISTICS",
    "COCOEvaluationResult",
    "evaluate_coco",
]

MODES = ("11point", "allpoint")
#: The recall levels of the 11-point AP, as ``voc_eval.py`` makes them (0.30000000000000004 ...).
ELEVEN_RECALL_LEVELS = np.arange(0.0, 1.1, 0.1)


@dataclasses.dataclass(frozen=True)
class Matches:
    """The outcome of every detection, flattened over images (in input order, image by image).

    All fields are ``(n_detections,)`` arrays.
    """

    image: np.ndarray  #: int, index of the image
    class_id: np.ndarray  #: int, 1..n_classes
    score: np.ndarray  #: float, the detection's score
    true_positive: np.ndarray  #: bool
    false_positive: np.ndarray  #: bool
    ignored: np.ndarray  #: bool, matched a difficult box (neither TP nor FP)
    iou: np.ndarray  #: float, IoU with the best ground-truth box of its class (0 if none)
    matched_box: np.ndarray  #: int, index of that box in its image's ``boxes``; -1 if none


@dataclasses.dataclass(frozen=True)
class EvaluationResult:
    """Per-class AP, mAP and precision-recall curves of one evaluation.

    Dictionaries are keyed by class id 1..n_classes. Curve arrays have one entry per
    (non-ignored) detection of the class, best score first.
    """

    average_precision: dict  #: class id -> AP in [0, 1]; NaN if the class has no ground truth
    mean_average_precision: float  #: mean AP over classes with ground truth (NaN if none)
    precision: dict  #: class id -> (k,) precision after each detection
    recall: dict  #: class id -> (k,) recall after each detection (NaN without ground truth)
    scores: dict  #: class id -> (k,) score of each detection, descending
    n_ground_truth: dict  #: class id -> number of non-difficult ground-truth boxes
    mode: str
    iou_threshold: float

    def table(self, class_names=None) -> str:
        """A text table: one line per class (name, ground-truth boxes, detections, AP), then mAP.

        Args:
            class_names: optional names of classes 1..n (e.g. ``config.class_names``).
        """
        lines = [f"{'class':>14s} {'boxes':>6s} {'detections':>10s} {'AP':>7s}"]
        for class_id, ap in self.average_precision.items():
            name = class_names[class_id - 1] if class_names is not None else f"class {class_id}"
            ap_text = "    n/a" if np.isnan(ap) else f"{ap:7.4f}"
            lines.append(f"{name:>14s} {self.n_ground_truth[class_id]:6d} "
                         f"{len(self.scores[class_id]):10d} {ap_text}")  # fmt: skip
        lines.append(f"{'mAP (' + self.mode + ')':>32s} {self.mean_average_precision:7.4f}")
        return "\n".join(lines)


def _check_detections(detections, n_classes: int) -> list[np.ndarray]:
    checked = []
    for index, per_image in enumerate(detections):
        per_image = np.asarray(per_image, dtype=np.float64)
        if per_image.size == 0:
            per_image = per_image.reshape(0, 6)
        if per_image.ndim != 2 or per_image.shape[1] != 6:
            raise ValueError(
                f"detections[{index}]: expected shape (k, 6) rows [class_id, score, xmin, ymin, "
                f"xmax, ymax], got {per_image.shape}"
            )
        bad = np.flatnonzero(~np.isfinite(per_image).all(axis=1))
        if len(bad):
            raise ValueError(f"detections[{index}][{bad[0]}]: not finite: {per_image[bad[0]]}")
        class_ids = per_image[:, 0]
        bad = np.flatnonzero((class_ids != np.round(class_ids)) | (class_ids < 1)
                             | (class_ids > n_classes))  # fmt: skip
        if len(bad):
            raise ValueError(
                f"detections[{index}][{bad[0]}]: class id must be an integer in 1..{n_classes}, "
                f"got {class_ids[bad[0]]}"
            )
        checked.append(per_image)
    return checked


def _check_ground_truth(record, index: int, n_classes: int):
    """(boxes (k, 4) float64, labels (k,) int, difficult (k,) bool) of one record."""
    name = f"ground_truths[{index}]"
    if not hasattr(record, "__getitem__") or "boxes" not in record or "labels" not in record:
        raise ValueError(f"{name}: expected a dict with 'boxes' and 'labels' (and optionally "
                         f"'difficult')")  # fmt: skip
    boxes = np.asarray(record["boxes"], dtype=np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    boxes = check_boxes(boxes, f"{name}['boxes']")
    labels = np.asarray(record["labels"]).reshape(-1)
    if boxes.ndim != 2 or len(labels) != len(boxes):
        raise ValueError(f"{name}: expected boxes (k, 4) and labels (k,), got {boxes.shape} and "
                         f"{labels.shape}")  # fmt: skip
    difficult = record.get("difficult") if hasattr(record, "get") else None
    difficult = np.zeros(len(boxes), bool) if difficult is None else np.asarray(difficult, bool)
    if difficult.shape != (len(boxes),):
        raise ValueError(f"{name}['difficult']: expected shape ({len(boxes)},), got "
                         f"{difficult.shape}")  # fmt: skip
    bad = np.flatnonzero((labels != np.round(labels)) | (labels < 1) | (labels > n_classes))
    if len(bad):
        raise ValueError(f"{name}['labels'][{bad[0]}]: must be an integer in 1..{n_classes}, got "
                         f"{labels[bad[0]]}")  # fmt: skip
    bad = np.flatnonzero(~np.isfinite(boxes).all(axis=1) | (boxes[:, 2] <= boxes[:, 0])
                         | (boxes[:, 3] <= boxes[:, 1]))  # fmt: skip
    if len(bad):
        raise ValueError(f"{name}['boxes'][{bad[0]}]: need xmax > xmin and ymax > ymin, got "
                         f"{boxes[bad[0]].tolist()}")  # fmt: skip
    return boxes, labels.astype(np.int64), difficult


def _check_arguments(detections, ground_truths, n_classes, iou_threshold):
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 1:
        raise ValueError(f"n_classes: must be a positive integer, got {n_classes!r}")
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold: must be in (0, 1], got {iou_threshold!r}")
    detections, ground_truths = list(detections), list(ground_truths)
    if len(detections) != len(ground_truths):
        raise ValueError(f"detections: one array per image expected, got {len(detections)} for "
                         f"{len(ground_truths)} ground_truths")  # fmt: skip
    return (_check_detections(detections, n_classes),
            [_check_ground_truth(r, k, n_classes) for k, r in enumerate(ground_truths)])  # fmt: skip


def _match(detections, truths, iou_threshold) -> Matches:
    """Matching on checked inputs (see :func:`match_detections`)."""
    n_per_image = [len(d) for d in detections]
    all_detections = np.concatenate(detections + [np.zeros((0, 6))])
    image = np.repeat(np.arange(len(detections)), n_per_image)
    class_id = all_detections[:, 0].astype(np.int64)
    best_iou = np.zeros(len(all_detections))
    best_box = np.full(len(all_detections), -1)
    best_is_difficult = np.zeros(len(all_detections), dtype=bool)
    box_offset = np.cumsum([0] + [len(boxes) for boxes, _, _ in truths])
    first = 0
    for index, (boxes, labels, difficult) in enumerate(truths):
        rows = slice(first, first + n_per_image[index])
        first += n_per_image[index]
        if len(boxes) == 0 or n_per_image[index] == 0:
            continue
        overlaps = iou(all_detections[rows, 2:], boxes)  # (k_detections, k_boxes)
        same_class = class_id[rows, None] == labels[None, :]
        overlaps = np.where(same_class, overlaps, -1.0)
        best = overlaps.argmax(axis=1)  # first of equal IoUs, as MATLAB's max
        has_box = same_class.any(axis=1)
        best_iou[rows] = np.where(has_box, overlaps[np.arange(len(best)), best], 0.0)
        best_box[rows] = np.where(has_box, best, -1)
        best_is_difficult[rows] = has_box & difficult[best]

    matched = (best_box >= 0) & (best_iou >= iou_threshold)
    ignored = matched & best_is_difficult
    claims = matched & ~best_is_difficult
    # Visit detections from the best score down (stable: equal scores keep the input order);
    # of all detections claiming the same box, the first one visited gets it.
    order = np.lexsort((np.arange(len(class_id)), -all_detections[:, 1]))
    claimed_box = (box_offset[image] + best_box)[order]
    claiming = np.flatnonzero(claims[order])
    _, first_claim = np.unique(claimed_box[claiming], return_index=True)
    true_positive = np.zeros(len(class_id), dtype=bool)
    true_positive[order[claiming[first_claim]]] = True
    return Matches(
        image=image,
        class_id=class_id,
        score=all_detections[:, 1],
        true_positive=true_positive,
        false_positive=~true_positive & ~ignored,
        ignored=ignored,
        iou=best_iou,
        matched_box=best_box,
    )


def match_detections(detections, ground_truths, n_classes: int,
                     iou_threshold: float = 0.5) -> Matches:  # fmt: skip
    """Label every detection true positive, false positive or ignored, as the VOC devkit does.

    Args:
        detections: one ``(k, 6)`` array per image, rows ``[class_id, score, xmin, ymin, xmax,
            ymax]`` in pixels (what :func:`ssd_lib.decoder.decode_detections` returns).
        ground_truths: one record per image: a dict with ``boxes`` ``(k, 4)`` pixel corners,
            ``labels`` ``(k,)`` in 1..n_classes and optionally ``difficult`` ``(k,)`` bool
            (data set records work as they are). Images without boxes are fine.
        n_classes: number of object classes.
        iou_threshold: minimum IoU of a match, in (0, 1].

    Returns:
        :class:`Matches`, one entry per detection.

    Raises:
        ValueError: naming the image (and row or box) of a malformed input.
    """
    detections, truths = _check_arguments(detections, ground_truths, n_classes, iou_threshold)
    return _match(detections, truths, iou_threshold)


def precision_recall(scores, true_positive, n_ground_truth: int):
    """Precision-recall curve of one class.

    Args:
        scores: ``(k,)`` scores of the class's (non-ignored) detections over all images.
        true_positive: ``(k,)`` bool, True for true positives, False for false positives.
        n_ground_truth: number of non-difficult ground-truth boxes of the class.

    Returns:
        ``(precision, recall, sorted_scores)``, each ``(k,)``, best score first: after the best
        ``j + 1`` detections, ``precision[j] = TP / (j + 1)`` and ``recall[j] = TP /
        n_ground_truth`` (NaN if ``n_ground_truth`` is 0).
    """
    scores = np.asarray(scores, dtype=np.float64)
    true_positive = np.asarray(true_positive, dtype=bool)
    if scores.shape != true_positive.shape or scores.ndim != 1:
        raise ValueError(f"precision_recall: scores and true_positive must be (k,) each, got "
                         f"{scores.shape} and {true_positive.shape}")  # fmt: skip
    order = np.argsort(-scores, kind="stable")
    hits = np.cumsum(true_positive[order])
    precision = hits / np.arange(1, len(order) + 1)
    if n_ground_truth > 0:
        recall = hits / n_ground_truth
    else:
        recall = np.full(len(order), np.nan)
    return precision, recall, scores[order]


def precision_envelope(precision) -> np.ndarray:
    """``(k,)`` the best precision at each point of a curve or any later one (higher recall):
    the monotone (interpolated) precision that AP integrates."""
    precision = np.asarray(precision, dtype=np.float64)
    return np.maximum.accumulate(precision[::-1])[::-1]


def eleven_point_precisions(precision, recall) -> np.ndarray:
    """``(11,)`` the VOC2007 samples: best precision at recall >= 0, 0.1, ..., 1 (0 if never).

    Args:
        precision, recall: ``(k,)`` curve, best detection first (from :func:`precision_recall`).
    """
    envelope = np.append(precision_envelope(precision), 0.0)  # 0 past the last point
    # Recall never decreases along the curve: the first point at or above each level.
    first_reaching = np.searchsorted(np.asarray(recall, dtype=np.float64), ELEVEN_RECALL_LEVELS)
    return envelope[first_reaching]


def average_precision(precision, recall, mode: str = "11point") -> float:
    """Area under a precision-recall curve, VOC style.

    Args:
        precision, recall: ``(k,)`` curve, best detection first (from :func:`precision_recall`).
        mode: ``"11point"`` (VOC2007: mean interpolated precision at recall 0, 0.1, ..., 1) or
            ``"allpoint"`` (VOC2010+: exact area under the interpolated curve).

    Returns:
        AP in [0, 1]; 0 for an empty curve; NaN if the recall is NaN (no ground truth).
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    precision = np.asarray(precision, dtype=np.float64)
    recall = np.asarray(recall, dtype=np.float64)
    if np.isnan(recall).any():
        return float("nan")
    if mode == "11point":
        return float(np.mean(eleven_point_precisions(precision, recall)))
    # All points: the precision envelope integrated over the recall steps.
    recall = np.concatenate([[0.0], recall, [1.0]])
    envelope = precision_envelope(np.concatenate([[0.0], precision, [0.0]]))
    steps = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[steps + 1] - recall[steps]) * envelope[steps + 1]))


def evaluate(detections, ground_truths, n_classes: int, iou_threshold: float = 0.5,
             mode: str = "11point") -> EvaluationResult:  # fmt: skip
    """Pascal VOC evaluation: per-class AP, mAP and precision-recall curves.

    Args:
        detections: one ``(k, 6)`` array per image, rows ``[class_id, score, xmin, ymin, xmax,
            ymax]`` in pixels (the output of :func:`ssd_lib.decoder.decode_detections`, mapped
            to the original image sizes if the ground truth is in those).
        ground_truths: one record per image, a dict with ``boxes`` ``(k, 4)`` pixel corners,
            ``labels`` ``(k,)`` in 1..n_classes and optionally ``difficult`` ``(k,)`` bool.
        n_classes: number of object classes (background excluded).
        iou_threshold: minimum IoU of a match, in (0, 1]; VOC uses 0.5.
        mode: ``"11point"`` (VOC2007) or ``"allpoint"`` (VOC2010+).

    Returns:
        :class:`EvaluationResult`.

    Raises:
        ValueError: on a bad mode, threshold or class count, or a malformed detection or record
            (the message names the image and row/box).

    Example:
        >>> import numpy as np
        >>> truth = [{"boxes": np.array([[10.0, 10, 50, 50]]), "labels": np.array([1])}]
        >>> found = [np.array([[1, 0.9, 12, 10, 50, 52]])]
        >>> evaluate(found, truth, n_classes=1).mean_average_precision
        1.0
    """
    if mode not in MODES:
        raise ValueError(f"mode: must be one of {MODES}, got {mode!r}")
    detections, truths = _check_arguments(detections, ground_truths, n_classes, iou_threshold)
    matches = _match(detections, truths, iou_threshold)
    all_labels = np.concatenate([labels[~difficult] for _, labels, difficult in truths] +
                                [np.zeros(0, np.int64)])  # fmt: skip
    n_ground_truth = np.bincount(all_labels, minlength=n_classes + 1)
    result = {"average_precision": {}, "precision": {}, "recall": {}, "scores": {},
              "n_ground_truth": {}}  # fmt: skip
    for class_id in range(1, n_classes + 1):
        members = (matches.class_id == class_id) & ~matches.ignored
        precision, recall, scores = precision_recall(
            matches.score[members], matches.true_positive[members], int(n_ground_truth[class_id])
        )
        undefined = n_ground_truth[class_id] == 0  # no recall, even without detections
        result["average_precision"][class_id] = (
            float("nan") if undefined else average_precision(precision, recall, mode)
        )
        result["precision"][class_id] = precision
        result["recall"][class_id] = recall
        result["scores"][class_id] = scores
        result["n_ground_truth"][class_id] = int(n_ground_truth[class_id])
    defined = [ap for ap in result["average_precision"].values() if not np.isnan(ap)]
    mean_ap = float(np.mean(defined)) if defined else float("nan")
    return EvaluationResult(**result, mean_average_precision=mean_ap, mode=mode,
                            iou_threshold=float(iou_threshold))  # fmt: skip


#: The twelve numbers of pycocotools' ``COCOeval.summarize()``, in its order: AP over IoU
#: 0.5:0.95, at 0.5, at 0.75, for small/medium/large objects; AR with 1, 10, 100 detections per
#: image, and for small/medium/large objects (100 detections).
COCO_STATISTICS = ("mAP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
                   "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class COCOEvaluationResult:
    """COCO-style scores of one evaluation (NaN where undefined: no ground truth of that size
    or class).

    Attributes:
        statistics: name (:data:`COCO_STATISTICS`) -> value in [0, 1].
        average_precision: class id 1..n_classes -> AP over IoU 0.5:0.95 of that class.
    """

    statistics: dict
    average_precision: dict

    @property
    def mean_average_precision(self) -> float:
        """mAP@[.5:.95], the COCO headline number."""
        return self.statistics["mAP"]

    def table(self, class_names=None) -> str:
        """A text table: AP@[.5:.95] per class, then the twelve statistics."""
        lines = [f"{'class':>14s} {'AP@[.5:.95]':>11s}"]
        for class_id, ap in self.average_precision.items():
            name = class_names[class_id - 1] if class_names is not None else f"class {class_id}"
            lines.append(f"{name:>14s} {'n/a' if np.isnan(ap) else f'{ap:.4f}':>11s}")
        lines += [f"{name:>14s} {'n/a' if np.isnan(value) else f'{value:.4f}':>11s}"
                  for name, value in self.statistics.items()]  # fmt: skip
        return "\n".join(lines)


def evaluate_coco(detections, ground_truths, n_classes: int) -> COCOEvaluationResult:
    """COCO-style evaluation with ``pycocotools``: mAP@[.5:.95], AP50, AP75, small/medium/large.

    Ground-truth boxes marked ``difficult`` are given to pycocotools as ``iscrowd`` (COCO's
    way of ignoring a box: matching it neither helps nor hurts). Object size is the box area in
    pixels², as the boxes are given (original image pixels, so that COCO's size limits mean what
    they say). As in COCO, at most the 100 best detections of each image count.

    Args:
        detections: one ``(k, 6)`` array per image, rows ``[class_id, score, xmin, ymin, xmax,
            ymax]`` in original image pixels (as for :func:`evaluate`).
        ground_truths: one record per image: ``boxes`` ``(k, 4)`` pixel corners, ``labels``
            ``(k,)`` in 1..n_classes, optionally ``difficult`` ``(k,)`` (dataset records work).
        n_classes: number of object classes.

    Returns:
        :class:`COCOEvaluationResult`.

    Raises:
        ValueError: as :func:`evaluate`, naming the image and row of a malformed input.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    detections, truths = _check_arguments(detections, ground_truths, n_classes, 0.5)
    categories = [{"id": class_id} for class_id in range(1, n_classes + 1)]
    images = [{"id": image_id} for image_id in range(1, len(truths) + 1)]

    def coco(annotations):
        dataset = COCO()
        dataset.dataset = {"images": images, "categories": categories, "annotations": annotations}
        dataset.createIndex()
        return dataset

    def annotation(index, image_id, class_id, box, **fields):
        width, height = float(box[2] - box[0]), float(box[3] - box[1])
        return {"id": index, "image_id": image_id, "category_id": int(class_id),
                "bbox": [float(box[0]), float(box[1]), width, height], "area": width * height,
                **fields}  # fmt: skip

    truth_rows = [(image_id, label, box, hard) for image_id, (boxes, labels, difficult)
                  in enumerate(truths, start=1) for box, label, hard in zip(boxes, labels, difficult)]  # fmt: skip
    found_rows = [(image_id, row) for image_id, rows in enumerate(detections, start=1) for row in rows]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        ground = coco([annotation(k, image_id, label, box, iscrowd=int(hard))
                       for k, (image_id, label, box, hard) in enumerate(truth_rows, start=1)])  # fmt: skip
        found = coco([annotation(k, image_id, row[0], row[2:], score=float(row[1]), iscrowd=0)
                      for k, (image_id, row) in enumerate(found_rows, start=1)])  # fmt: skip
        evaluation = COCOeval(ground, found, iouType="bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    statistics = {name: float(value) if value >= 0 else float("nan")
                  for name, value in zip(COCO_STATISTICS, evaluation.stats)}  # fmt: skip
    # precision: (IoU thresholds, recall levels, classes, area ranges, max detections); -1 where
    # a class has no ground truth. Area range 0 is "all", max detections -1 is 100.
    precision = evaluation.eval["precision"][:, :, :, 0, -1]
    per_class = {class_id: float(np.mean(precision[:, :, class_id - 1]))
                 if np.all(precision[:, :, class_id - 1] > -1) else float("nan")
                 for class_id in range(1, n_classes + 1)}  # fmt: skip
    return COCOEvaluationResult(statistics=statistics, average_precision=per_class)
