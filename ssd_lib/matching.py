"""Matching anchors to ground-truth boxes: positive, neutral or background per anchor.

Matching (:func:`match`) decides, for every anchor, whether it is *positive* (responsible for a
ground-truth box), *neutral* (ignored by the loss) or *background*:

1. **Bipartite stage**: every ground-truth box gets the anchor it overlaps most. Pairs are taken
   greedily, highest IoU first, and an anchor taken by one box is no longer available to the
   others, so no two boxes share an anchor (a box whose remaining anchors all have IoU 0 gets
   none).
2. **Threshold stage** (``matching="multi"`` only): every other anchor whose best IoU with any box
   is at least ``pos_iou_threshold`` becomes positive for that box.
3. Anchors that are not positive but reach ``neg_iou_limit`` with some box are **neutral**;
   all remaining anchors are **background**.

Ties go to the lower index, as ``numpy.argmax`` breaks them: between boxes the lower box index,
between anchors the lower anchor index. :class:`ssd_lib.encoder.SSDEncoder` applies these rules
to a batch of images.

Explained in notebooks/03_encoder.ipynb.
"""

from __future__ import annotations

from typing import NamedTuple

import heapq

import numpy as np

from .boxes import centroids_to_corners, check_boxes, iou

__all__ = ["BACKGROUND", "NEUTRAL", "POSITIVE", "MatchResult", "match"]

#: Label of an anchor that matches no box (class 0), in ``y_true`` and in :attr:`MatchResult.state`.
BACKGROUND = 0
#: Label of an anchor the loss ignores: not positive, but overlapping a box by ``neg_iou_limit``.
NEUTRAL = -1
#: State of an anchor matched to a box (in :attr:`MatchResult.state`; ``y_true`` holds its class).
POSITIVE = 1

_MATCHING_TYPES = ("multi", "bipartite")


class MatchResult(NamedTuple):
    """What :func:`match` decided for ``k`` boxes and ``n`` anchors.

    Attributes:
        matched_gt_index: ``(n,)`` int64, the box each positive anchor is matched to, -1 for
            neutral and background anchors.
        state: ``(n,)`` int8, :data:`POSITIVE`, :data:`NEUTRAL` or :data:`BACKGROUND`.
        max_iou: ``(n,)`` float64, each anchor's highest IoU with any box (0 without boxes).
        bipartite_anchor_index: ``(k,)`` int64, the anchor each box got in the bipartite stage,
            -1 if it got none (all its remaining anchors had IoU 0).
    """

    matched_gt_index: np.ndarray
    state: np.ndarray
    max_iou: np.ndarray
    bipartite_anchor_index: np.ndarray


def _check_matching_options(pos_iou_threshold, neg_iou_limit, matching) -> None:
    """Raise ``ValueError`` for thresholds outside (0, 1] or an unknown matching type."""
    for name, value in (("pos_iou_threshold", pos_iou_threshold), ("neg_iou_limit", neg_iou_limit)):
        if not 0.0 < value <= 1.0:
            raise ValueError(f"{name}: must be in (0, 1], got {value!r}")
    if matching not in _MATCHING_TYPES:
        raise ValueError(f"matching: must be one of {_MATCHING_TYPES}, got {matching!r}")


def _greedy_bipartite(pair_box, pair_anchor, pair_iou, boxes, image_of_box):
    """The bipartite stage on (box, anchor, IoU) pairs, image by image; missing pairs count as 0.

    Greedy matching takes the highest remaining pair (lowest box, then lowest anchor on ties)
    and strikes out its box and anchor, until no pair with IoU > 0 remains. Done lazily: each
    box walks down its own pairs in preference order (IoU descending, anchor ascending); a
    priority queue serves the box whose current pair has the highest IoU (lowest box on ties);
    a box whose anchor was taken meanwhile moves on to its next free anchor.

    Args:
        pair_box, pair_anchor, pair_iou: ``(p,)`` the pairs (only IoU > 0 needed).
        boxes: ``(b,)`` the boxes to match, ascending; ``image_of_box`` ``(b,)`` their images.

    Returns:
        ``(anchor (b,), iou (b,))``: the anchor each box gets (-1 for none) and its IoU.
    """
    order = np.lexsort((pair_anchor, -pair_iou, pair_box))
    sorted_box = pair_box[order]
    start = np.searchsorted(sorted_box, boxes).tolist()
    stop = np.searchsorted(sorted_box, boxes, side="right").tolist()
    anchors, ious = pair_anchor[order].tolist(), pair_iou[order].tolist()
    chosen, chosen_iou = [-1] * len(boxes), [0.0] * len(boxes)
    images = image_of_box.tolist()
    position = 0
    while position < len(boxes):
        end = position
        while end < len(boxes) and images[end] == images[position]:
            end += 1
        queue = [(-ious[start[i]], i) for i in range(position, end) if start[i] < stop[i]]
        heapq.heapify(queue)
        taken = set()
        while queue:
            _, i = heapq.heappop(queue)
            pointer = start[i]
            while pointer < stop[i] and anchors[pointer] in taken:
                pointer += 1
            if pointer == start[i]:
                chosen[i], chosen_iou[i] = anchors[pointer], ious[pointer]
                taken.add(anchors[pointer])
            elif pointer < stop[i]:  # its candidate was taken: queue its next free one
                start[i] = pointer
                heapq.heappush(queue, (-ious[pointer], i))
        position = end
    return np.array(chosen, dtype=np.int64), np.array(chosen_iou)


def match(gt_boxes, anchors, pos_iou_threshold=0.5, neg_iou_limit=0.5, matching="multi"):
    """Match ground-truth boxes to anchors: positive, neutral or background per anchor.

    The rules (bipartite stage, threshold stage, neutral band, ties to the lower index) are in
    the module docstring. This computes the full ``(k, n)`` IoU matrix; :class:`~ssd_lib.encoder.SSDEncoder`
    gets the same result faster by skipping anchors that cannot matter.

    Args:
        gt_boxes: ``(k, 4)`` ground-truth corners (xmin, ymin, xmax, ymax), normalized like the
            anchors; ``k`` may be 0.
        anchors: ``(n, 4)`` normalized centroids (cx, cy, w, h), e.g. from
            :func:`ssd_lib.anchors.generate_anchors`.
        pos_iou_threshold: IoU from which an anchor is positive in the threshold stage, in (0, 1].
        neg_iou_limit: IoU from which a non-positive anchor is neutral instead of background,
            in (0, 1].
        matching: ``"multi"`` (both stages) or ``"bipartite"`` (first stage only).

    Returns:
        :class:`MatchResult`.

    Raises:
        ValueError: bad shapes, thresholds or matching type.

    Example:
        >>> result = match([[0.1, 0.1, 0.5, 0.5]], [[0.3, 0.3, 0.4, 0.4], [0.8, 0.8, 0.2, 0.2]])
        >>> result.state.tolist(), result.matched_gt_index.tolist()
        ([1, 0], [0, -1])

    Explained in notebooks/03_encoder.ipynb.
    """
    _check_matching_options(pos_iou_threshold, neg_iou_limit, matching)
    gt_boxes = check_boxes(gt_boxes, "gt_boxes").reshape(-1, 4)
    anchors = check_boxes(anchors, "anchors")
    if anchors.ndim != 2:
        raise ValueError(f"anchors: expected shape (n, 4), got {anchors.shape}")
    iou_matrix = iou(gt_boxes, centroids_to_corners(anchors))  # (k, n)
    n_boxes, n_anchors = iou_matrix.shape
    matched_gt_index = np.full(n_anchors, -1, dtype=np.int64)
    state = np.full(n_anchors, BACKGROUND, dtype=np.int8)
    if n_boxes == 0:
        return MatchResult(matched_gt_index, state, np.zeros(n_anchors), np.full(0, -1, dtype=np.int64))
    best_box = iou_matrix.argmax(axis=0)  # (n,) lowest box on ties
    max_iou = iou_matrix[best_box, np.arange(n_anchors)]  # (n,)
    if matching == "multi":
        threshold = max_iou >= pos_iou_threshold
        matched_gt_index[threshold] = best_box[threshold]
    pair_box, pair_anchor = np.nonzero(iou_matrix > 0)
    bipartite, _ = _greedy_bipartite(
        pair_box, pair_anchor, iou_matrix[pair_box, pair_anchor], np.arange(n_boxes), np.zeros(n_boxes)
    )
    has_anchor = bipartite >= 0
    matched_gt_index[bipartite[has_anchor]] = np.flatnonzero(has_anchor)  # the bipartite match wins
    positive = matched_gt_index >= 0
    state[positive] = POSITIVE
    state[~positive & (max_iou >= neg_iou_limit)] = NEUTRAL
    return MatchResult(matched_gt_index, state, max_iou, bipartite)

