"""Greedy non-maximum suppression (NMS), exactly, without a Python loop over boxes.

:func:`greedy_nms` keeps the best box and drops every box of its group (class) that overlaps a
kept box too much. The decoder (:func:`ssd_lib.decoder.decode_detections`) runs it per class and
image; :mod:`ssd_lib.detection_layer` does the same inside a Keras model.

Explained in notebooks/05_decoder.ipynb ("greedy NMS without a loop").
"""

from __future__ import annotations

import numpy as np

from .boxes import box_area, check_boxes, iou, paired_iou

__all__ = ["greedy_nms"]

#: At most this many box pairs have their IoU computed at once inside :func:`greedy_nms`.
_PAIRS_PER_CHUNK = 1 << 22
#: Groups (classes of an image) up to this size compare all their pairs at once; larger ones
#: are processed in blocks of ``_NMS_BLOCK_SIZE`` boxes (see :func:`greedy_nms`).
_PAIRWISE_GROUP_SIZE = 512
_NMS_BLOCK_SIZE = 256


def _overlapping_pairs(boxes: np.ndarray, group: np.ndarray, iou_threshold: float):
    """Edges ``(i, j)``, i < j in the same group, with ``IoU(boxes[i], boxes[j]) > threshold``.

    ``boxes`` ``(n, 4)`` float64 are sorted group by group (``group`` is non-decreasing). Only
    pairs that overlap enough in x are enumerated (sweep along x): ``IoU > t`` needs an
    intersection width above ``t`` times each box's width, so a box whose left edge is at
    ``x0_j >= x0_i`` must start before ``x1_i - t * w_i``. Pairs are made in chunks of
    ``_PAIRS_PER_CHUNK`` to bound memory.
    """
    n = len(boxes)
    x0, x1 = boxes[:, 0], boxes[:, 2]
    area = box_area(boxes)
    # Positions sorted by (group, x0); in that order each box's partners follow it, up to the
    # first box of its group that starts right of its window (a conservative, searchable key).
    by_x = np.lexsort((x0, group))
    low, span = x0.min(), max(float(x1.max() - x0.min()), 1e-300)
    key = 2.0 * group + (x0 - low) / span
    window_end = 2.0 * group + (x1 - 0.5 * iou_threshold * (x1 - x0) - low) / span + 1e-9
    partners_end = np.searchsorted(key[by_x], window_end[by_x], side="right")  # (n,)
    pair_counts = partners_end - np.arange(n) - 1
    first_pair = np.concatenate([[0], np.cumsum(pair_counts)])  # (n + 1,)
    sources, targets = [], []
    start = 0
    while start < n:
        limit = first_pair[start] + max(_PAIRS_PER_CHUNK, int(pair_counts[start]))
        stop = min(max(int(np.searchsorted(first_pair, limit, side="right")) - 1, start + 1), n)
        counts = pair_counts[start:stop]
        # Pair k of position p pairs p with p + 1 + (k - first pair of p).
        p = np.repeat(np.arange(start, stop), counts)
        q = np.arange(len(p)) + np.repeat(
            np.arange(start, stop) + 1 - (first_pair[start:stop] - first_pair[start]), counts
        )
        i, j = np.minimum(by_x[p], by_x[q]), np.maximum(by_x[p], by_x[q])  # i before j
        # The same floating-point steps as boxes.iou (used for large groups): identical values.
        overlapping = paired_iou(boxes[i], boxes[j], area[i], area[j]) > iou_threshold
        sources.append(i[overlapping])
        targets.append(j[overlapping])
        start = stop
    return np.concatenate(sources), np.concatenate(targets)


def _nms_pairwise(boxes: np.ndarray, group_size: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy keep mask of boxes sorted group by group, best first, from all overlapping pairs.

    The fixed-point iteration explained in :func:`greedy_nms`; cost grows with the square of the
    group sizes, so it serves small groups (and blocks of large ones).
    """
    n = len(boxes)
    keep = np.ones(n, dtype=bool)
    if n == 0:
        return keep
    group = np.repeat(np.arange(len(group_size)), group_size)  # (n,)
    edge_from, edge_to = _overlapping_pairs(boxes, group, iou_threshold)
    while True:
        suppressed = np.zeros(n, dtype=bool)
        suppressed[edge_to[keep[edge_from]]] = True
        if np.array_equal(~suppressed, keep):
            return keep
        keep = ~suppressed


def _nms_blockwise(boxes: np.ndarray, iou_threshold: float, max_output_size: int | None):
    """Greedy keep mask of one large group sorted best first, a block of boxes at a time.

    Each block first loses the boxes that overlap a box kept in earlier blocks (those are final),
    then the survivors are resolved among themselves with :func:`_nms_pairwise`. The work grows
    with n * (kept + block size) instead of n**2, and stops once ``max_output_size`` are kept.
    """
    keep = np.zeros(len(boxes), dtype=bool)
    for start in range(0, len(boxes), _NMS_BLOCK_SIZE):
        block = np.arange(start, min(start + _NMS_BLOCK_SIZE, len(boxes)))
        kept_before = np.flatnonzero(keep[:start])
        if len(kept_before):
            overlaps = iou(boxes[block], boxes[kept_before]) > iou_threshold  # (block, kept)
            block = block[~overlaps.any(axis=1)]
        keep[block] = _nms_pairwise(boxes[block], np.array([len(block)]), iou_threshold)
        if max_output_size is not None and np.count_nonzero(keep) >= max_output_size:
            break
    return keep


def greedy_nms(boxes, scores, iou_threshold: float = 0.45, max_output_size: int | None = None,
               groups=None) -> np.ndarray:  # fmt: skip
    """Greedy non-maximum suppression, exactly, without a Python loop over boxes.

    The greedy algorithm: visit the boxes from the highest score down (equal scores: lower index
    first); keep a box unless a box kept before it overlaps it with IoU > ``iou_threshold``.
    Boxes of different ``groups`` (classes) never suppress each other.

    How it is vectorized (notebooks/05_decoder.ipynb, "greedy NMS without a loop"): sort the boxes;
    compute the IoU of every pair (i, j), i before j, of the same group and keep the overlapping
    pairs as edges i -> j; then iterate ``keep[j] = no edge i -> j with keep[i]`` starting from
    "keep everything". Edges only point forward, so this equation has a single solution, the
    greedy one, and the iteration reaches it (the first box is right after one pass, and each
    pass fixes at least the next link of every suppression chain); it stops when nothing changes.
    Groups larger than ``_PAIRWISE_GROUP_SIZE`` boxes (an untrained model's nearly uniform
    scores) go through blocks of boxes instead of all pairs, which gives the same result.

    Args:
        boxes: ``(n, 4)`` corners (xmin, ymin, xmax, ymax), finite.
        scores: ``(n,)`` finite scores.
        iou_threshold: a box is suppressed by an IoU strictly greater than this, in [0, 1].
        max_output_size: keep at most this many boxes per group (the best ones); None = no limit.
        groups: optional ``(n,)`` integer group of each box (e.g. class id); None = one group.

    Returns:
        ``(k,)`` int64 indices of the kept boxes, by score descending (equal scores: lower index).

    Raises:
        ValueError: on shape mismatches, non-finite values, or a threshold outside [0, 1].
    """
    boxes = check_boxes(boxes)
    scores = np.asarray(scores)
    n = len(boxes)
    if boxes.ndim != 2 or scores.shape != (n,):
        raise ValueError(f"greedy_nms: expected boxes (n, 4) and scores (n,), got {boxes.shape} "
                         f"and {scores.shape}")  # fmt: skip
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    if groups.shape != (n,) or not np.issubdtype(groups.dtype, np.integer):
        raise ValueError(f"greedy_nms: groups must be ({n},) integers, got {groups.shape} "
                         f"{groups.dtype}")  # fmt: skip
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"greedy_nms: iou_threshold must be in [0, 1], got {iou_threshold}")
    if max_output_size is not None and max_output_size < 1:
        raise ValueError(f"greedy_nms: max_output_size must be >= 1, got {max_output_size}")
    for name, values in (("boxes", boxes), ("scores", scores[:, None])):
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if len(bad):
            raise ValueError(f"greedy_nms: {name}[{bad[0]}] is not finite: {values[bad[0]].tolist()}")
    if n == 0:
        return np.zeros(0, dtype=np.int64)

    order = np.lexsort((np.arange(n), -scores, groups))  # group by group, best first
    sorted_boxes = boxes[order].astype(np.float64)
    sorted_groups = groups[order]
    group_start = np.flatnonzero(np.concatenate([[True], sorted_groups[1:] != sorted_groups[:-1]]))
    group_size = np.diff(np.append(group_start, n))

    keep = np.zeros(n, dtype=bool)
    is_small = group_size <= _PAIRWISE_GROUP_SIZE
    in_small_group = np.repeat(is_small, group_size)  # (n,)
    keep[in_small_group] = _nms_pairwise(sorted_boxes[in_small_group], group_size[is_small],
                                         iou_threshold)  # fmt: skip
    for start, size in zip(group_start[~is_small], group_size[~is_small]):
        keep[start : start + size] = _nms_blockwise(sorted_boxes[start : start + size],
                                                    iou_threshold, max_output_size)  # fmt: skip

    if max_output_size is not None:
        kept_so_far = np.cumsum(keep)  # rank of each kept box within its group:
        rank = kept_so_far - np.repeat(kept_so_far[group_start] - keep[group_start], group_size)
        keep &= rank <= max_output_size
    kept = order[keep]
    return kept[np.lexsort((kept, -scores[kept]))]
