"""From ground-truth boxes to training targets: matching anchors to boxes, encoding offsets.

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
between anchors the lower anchor index.

Encoding (:func:`encode_boxes`) turns a matched box into the four numbers the network regresses,
relative to its anchor and divided by the config's variances::

    tx = (cx - cx_a) / w_a / v0      ty = (cy - cy_a) / h_a / v1
    tw = log(w / w_a) / v2           th = log(h / h_a) / v3

and :func:`decode_boxes` inverts it. :class:`SSDEncoder` does all of it for a batch of images
and returns ``y_true`` for :class:`ssd_lib.losses.SSDLoss`.

Explained in notebooks/03_encoder.ipynb.
"""

from __future__ import annotations

from typing import NamedTuple

import heapq
import logging

import numpy as np

from .anchors import cell_box_shapes, cell_centers, generate_anchors
from .boxes import box_area, centroids_to_corners, check_boxes, corners_to_centroids, iou, paired_iou
from .config import SSDConfig

logger = logging.getLogger(__name__)
#: A batch whose every box is smaller than this (pixels, both sides) was probably given in
#: normalized 0..1 coordinates: the encoder warns once.
TINY_BOX_PIXELS = 2.0

__all__ = [
    "BACKGROUND",
    "NEUTRAL",
    "POSITIVE",
    "MatchResult",
    "match",
    "encode_boxes",
    "decode_boxes",
    "SSDEncoder",
    "record_to_gt_rows",
]

#: Label of an anchor that matches no box (class 0), in ``y_true`` and in :attr:`MatchResult.state`.
BACKGROUND = 0
#: Label of an anchor the loss ignores: not positive, but overlapping a box by ``neg_iou_limit``.
NEUTRAL = -1
#: State of an anchor matched to a box (in :attr:`MatchResult.state`; ``y_true`` holds its class).
POSITIVE = 1

_MATCHING_TYPES = ("multi", "bipartite")
# Cells of slack on each side of a candidate rectangle, far above floating-point rounding.
_SLACK = 1e-6


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
    the module docstring. This computes the full ``(k, n)`` IoU matrix; :class:`SSDEncoder`
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


def encode_boxes(boxes_centroids, anchors_centroids, variances) -> np.ndarray:
    """Offsets of boxes relative to anchors, divided by the variances.

    Args:
        boxes_centroids: ``(..., 4)`` boxes (cx, cy, w, h), widths and heights > 0.
        anchors_centroids: ``(..., 4)`` anchors (cx, cy, w, h) in the same units, broadcastable.
        variances: the four variances ``(v0, v1, v2, v3)``, e.g. ``config.variances``.

    Returns:
        ``(..., 4)`` offsets ``(tx, ty, tw, th)``.

    Explained in notebooks/03_encoder.ipynb.
    """
    boxes = check_boxes(boxes_centroids, "boxes_centroids")
    anchors = check_boxes(anchors_centroids, "anchors_centroids")
    variances = np.asarray(variances, dtype=np.float64)
    centre = (boxes[..., :2] - anchors[..., :2]) / anchors[..., 2:] / variances[:2]
    size = np.log(boxes[..., 2:] / anchors[..., 2:]) / variances[2:]
    return np.concatenate([centre, size], axis=-1)


def decode_boxes(offsets, anchors_centroids, variances) -> np.ndarray:
    """Boxes from offsets relative to anchors: the inverse of :func:`encode_boxes`.

    Args:
        offsets: ``(..., 4)`` offsets ``(tx, ty, tw, th)``.
        anchors_centroids: ``(..., 4)`` anchors (cx, cy, w, h), broadcastable with ``offsets``.
        variances: the four variances ``(v0, v1, v2, v3)``.

    Returns:
        ``(..., 4)`` boxes as centroids (cx, cy, w, h), in the units of the anchors.

    Explained in notebooks/03_encoder.ipynb.
    """
    offsets = check_boxes(offsets, "offsets")
    anchors = check_boxes(anchors_centroids, "anchors_centroids")
    variances = np.asarray(variances, dtype=np.float64)
    centre = offsets[..., :2] * variances[:2] * anchors[..., 2:] + anchors[..., :2]
    size = np.exp(offsets[..., 2:] * variances[2:]) * anchors[..., 2:]
    return np.concatenate([centre, size], axis=-1)


def _contains(keys: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``(q,)`` bool: which ``queries`` occur in ``keys`` (integer arrays)."""
    keys = np.sort(keys)
    position = np.minimum(np.searchsorted(keys, queries), max(len(keys) - 1, 0))
    return keys[position] == queries if len(keys) else np.zeros(len(queries), dtype=bool)


class _AnchorGroups:
    """The anchors of a config as groups on regular grids: one group per (layer, box in cell).

    Group ``g`` has anchors of one size ``(width[g], height[g])`` centred at
    ``x = x0[g] + col * step_x[g]``, ``y = y0[g] + row * step_y[g]``; its anchor at (row, col) is
    ``first[g] + (row * cols[g] + col) * boxes_per_cell[g]`` in the full anchor list. This lets
    the encoder find, for a box, the rectangle of grid cells that can reach a given IoU
    arithmetically instead of testing every anchor.
    """

    def __init__(self, config: SSDConfig, anchors: np.ndarray):
        columns = {name: [] for name in ("x0", "y0", "step_x", "step_y", "cols", "rows", "first",
                                         "boxes_per_cell", "width", "height", "min_area")}  # fmt: skip
        first = 0
        for layer in range(config.n_layers):
            rows, cols = config.feature_map_sizes[layer]
            centers = cell_centers(config, layer)  # (rows, cols, 2)
            sizes, _, _ = cell_box_shapes(config, layer)  # (n_boxes, 2)
            n_boxes = len(sizes)
            of_layer = anchors[first : first + rows * cols * n_boxes]  # (rows * cols * n_boxes, 4)
            layer_areas = (of_layer[:, 2] * of_layer[:, 3]).reshape(-1, n_boxes)
            for box in range(n_boxes):
                columns["x0"].append(centers[0, 0, 0])
                columns["y0"].append(centers[0, 0, 1])
                columns["step_x"].append(config.steps[layer][1] / config.image_width)
                columns["step_y"].append(config.steps[layer][0] / config.image_height)
                columns["cols"].append(cols)
                columns["rows"].append(rows)
                columns["first"].append(first + box)
                columns["boxes_per_cell"].append(n_boxes)
                columns["width"].append(sizes[box, 0])
                columns["height"].append(sizes[box, 1])
                # Clipped anchors (config.clip_boxes) are smaller than the grid's nominal size.
                columns["min_area"].append(layer_areas[:, box].min())
            first += rows * cols * n_boxes
        for name, values in columns.items():
            setattr(self, name, np.asarray(values))

    def best_nearest_iou(self, boxes_centroids: np.ndarray) -> np.ndarray:
        """``(b,)`` for each box, the highest IoU over groups with the group's grid anchor
        nearest the box centre (nominal, unclipped size): a cheap estimate of its best IoU."""
        cx, cy, w, h = (boxes_centroids[:, i : i + 1] for i in range(4))  # each (b, 1)
        anchor_x = self.x0 + self.step_x * np.clip(np.rint((cx - self.x0) / self.step_x), 0, self.cols - 1)
        anchor_y = self.y0 + self.step_y * np.clip(np.rint((cy - self.y0) / self.step_y), 0, self.rows - 1)
        half_w, half_h = self.width / 2, self.height / 2
        overlap_w = np.minimum(cx + w / 2, anchor_x + half_w) - np.maximum(cx - w / 2, anchor_x - half_w)
        overlap_h = np.minimum(cy + h / 2, anchor_y + half_h) - np.maximum(cy - h / 2, anchor_y - half_h)
        intersection = np.maximum(overlap_w, 0) * np.maximum(overlap_h, 0)  # (b, G)
        return (intersection / (w * h + self.width * self.height - intersection)).max(axis=1)

    def cell_ranges(self, boxes_centroids: np.ndarray, min_iou: np.ndarray):
        """For each box and group, the rectangle of cells whose anchor may reach ``min_iou``.

        An anchor reaches IoU ``t`` only if its intersection with the box is at least
        ``t * (anchor area + box area) / (1 + t)``; since the intersection is (x overlap) times
        (y overlap) and the y overlap is at most ``min(h_a, h)``, the x overlap must be at least
        that area over ``min(h_a, h)``, which bounds the distance between the centres in x; the
        same holds in y. A slack of ``_SLACK`` cells on each side absorbs rounding. The anchor
        area used is the group's smallest (clipped anchors are smaller; the intersection is
        unchanged because boxes lie inside the image). With ``min_iou = 0`` the rectangle covers
        every anchor that overlaps the box at all.

        Args:
            boxes_centroids: ``(b, 4)`` normalized boxes inside the image.
            min_iou: ``(b,)`` the IoU each box needs, in [0, 1].

        Returns:
            ``(row_lo, row_hi, col_lo, col_hi)``, each ``(b, G)`` int64, inclusive; empty where
            ``lo > hi``.
        """
        cx, cy, w, h = (boxes_centroids[:, i : i + 1] for i in range(4))  # each (b, 1)
        t = min_iou[:, None]
        needed = t * (self.min_area + w * h) / (1 + t)  # (b, G) intersection needed
        overlap_w = np.minimum(self.width, w)
        overlap_h = np.minimum(self.height, h)
        reachable = needed <= overlap_w * overlap_h * (1 + 1e-9)  # centred placement reaches it
        half_x = (self.width + w) / 2 - needed / overlap_h  # max |dx| between centres
        half_y = (self.height + h) / 2 - needed / overlap_w
        col_lo = np.maximum(np.ceil((cx - half_x - self.x0) / self.step_x - _SLACK), 0)
        col_hi = np.minimum(np.floor((cx + half_x - self.x0) / self.step_x + _SLACK), self.cols - 1)
        row_lo = np.maximum(np.ceil((cy - half_y - self.y0) / self.step_y - _SLACK), 0)
        row_hi = np.minimum(np.floor((cy + half_y - self.y0) / self.step_y + _SLACK), self.rows - 1)
        row_hi = np.where(reachable, row_hi, -1)  # unreachable: empty rectangle
        return tuple(a.astype(np.int64) for a in (row_lo, row_hi, col_lo, col_hi))

    def anchors_in_ranges(self, row_lo, row_hi, col_lo, col_hi):
        """All anchors of the non-empty rectangles, with the rectangle (flat box*G index) each
        comes from: ``(anchor_index (c,), rectangle (c,))``."""
        n_rows = np.maximum(row_hi - row_lo + 1, 0).ravel()
        n_cols = np.maximum(col_hi - col_lo + 1, 0).ravel()
        counts = n_rows * n_cols  # (b * G,)
        rectangle = np.repeat(np.arange(counts.size), counts)  # (c,)
        local = np.arange(rectangle.size) - np.repeat(np.cumsum(counts) - counts, counts)
        width = n_cols[rectangle]
        n_groups = self.first.size
        group = rectangle % n_groups
        row = row_lo.ravel()[rectangle] + local // width
        col = col_lo.ravel()[rectangle] + local % width
        anchor = self.first[group] + (row * self.cols[group] + col) * self.boxes_per_cell[group]
        return anchor, rectangle


def record_to_gt_rows(record, config: SSDConfig) -> np.ndarray:
    """A dataset record's boxes as :class:`SSDEncoder` input, for its image resized to the model.

    Args:
        record: a dataset record (``ssd_lib.datasets``): ``size`` (width, height), ``boxes``
            (k, 4) pixel corners, ``labels`` (k,).
        config: gives the model input size.

    Returns:
        ``(k, 5)`` rows ``[class_id, xmin, ymin, xmax, ymax]`` in pixels of the model input.
    """
    width, height = record["size"]
    scale = np.array([config.image_width / width, config.image_height / height] * 2)
    boxes = np.asarray(record["boxes"], dtype=np.float64).reshape(-1, 4)
    return np.concatenate([np.asarray(record["labels"], dtype=np.float64)[:, None], boxes * scale], axis=1)


class SSDEncoder:
    """Turns ground-truth boxes into ``y_true`` for :class:`ssd_lib.losses.SSDLoss`.

    Call it on a batch: a list with one ``(k, 5)`` array per image, rows
    ``[class_id, xmin, ymin, xmax, ymax]`` in pixels of the model input (``k`` may be 0). It
    clips boxes to the image, drops boxes that lie fully outside it, matches with :func:`match`'s
    rules and encodes the positive anchors' boxes with :func:`encode_boxes` and the config's
    variances.

    Speed: most anchors are far from every box, so for each box the encoder only looks at the
    grid cells where an anchor can reach a useful IoU (``_AnchorGroups.cell_ranges``), computes
    the IoU for those candidates, and matches on that small matrix. It then checks that no
    skipped anchor could have changed the bipartite stage (each box's bipartite IoU is at least
    the bound the skipped anchors stay below); the rare image where that check fails is matched
    on the full IoU matrix instead. The result equals :func:`match` on all anchors.

    A batch whose every box is smaller than 2 pixels logs one warning (per encoder): such boxes
    are usually normalized 0..1 coordinates given where pixels are expected.

    Args:
        config: the :class:`~ssd_lib.config.SSDConfig`; anchors, image size, number of classes
            and variances come from it.
        pos_iou_threshold, neg_iou_limit, matching: as in :func:`match`.

    Attributes:
        anchors: ``(n_anchors, 4)`` normalized centroids, ``generate_anchors(config)``.
        n_full_matches: how many images so far needed the full IoU matrix (the fallback).

    Example:
        >>> from ssd_lib.config import SSD300_VOC
        >>> encoder = SSDEncoder(SSD300_VOC)
        >>> y_true = encoder([np.array([[15, 40, 60, 200, 280]]), np.zeros((0, 5))])
        >>> y_true.shape, int((y_true[0, :, 0] == 15).sum()) > 0, bool((y_true[1, :, 0] == 0).all())
        ((2, 8732, 5), True, True)

    Explained in notebooks/03_encoder.ipynb.
    """

    # Each box's candidate search radius is set by min(threshold, _REACH * IoU of its nearest
    # anchor): below 1 so that a box whose best anchors are taken by other boxes still finds its
    # bipartite match among the candidates (else the image falls back to the full matrix).
    _REACH = 0.9

    def __init__(self, config: SSDConfig, pos_iou_threshold=0.5, neg_iou_limit=0.5, matching="multi"):
        _check_matching_options(pos_iou_threshold, neg_iou_limit, matching)
        self.config = config
        self.pos_iou_threshold = pos_iou_threshold
        self.neg_iou_limit = neg_iou_limit
        self.matching = matching
        self.anchors = generate_anchors(config)
        self._anchor_corners = centroids_to_corners(self.anchors)
        self._anchor_areas = box_area(self._anchor_corners)
        self._groups = _AnchorGroups(config, self.anchors)
        # Anchors below this IoU with every box are background in both stages.
        self._min_useful_iou = neg_iou_limit if matching == "bipartite" else min(pos_iou_threshold, neg_iou_limit)
        self.n_full_matches = 0
        self._warned_tiny = False

    # ------------------------------------------------------------------ input checking
    def _gather_boxes(self, gt_per_image):
        """Check, clip and normalize a batch's boxes.

        Returns ``(labels (B,), corners (B, 4) normalized, image_of_box (B,), boxes_per_image
        (batch,))`` for the ``B`` boxes kept, in image order.
        """
        config = self.config
        arrays = []
        for image_index, boxes in enumerate(gt_per_image):
            boxes = np.asarray(boxes, dtype=np.float64)
            if boxes.size == 0:
                boxes = boxes.reshape(0, 5)
            if boxes.ndim != 2 or boxes.shape[1] != 5:
                raise ValueError(
                    f"image {image_index}: expected a (k, 5) array of [class_id, xmin, ymin, "
                    f"xmax, ymax] rows, got shape {boxes.shape}"
                )
            arrays.append(boxes)
        counts = np.array([len(a) for a in arrays], dtype=np.int64)
        boxes = np.concatenate(arrays, axis=0) if arrays else np.zeros((0, 5))
        labels, corners = boxes[:, 0], boxes[:, 1:]
        problems = [
            (~np.isfinite(boxes).all(axis=1), "has a NaN or infinite value"),
            ((labels != np.round(labels)) | (labels < 1) | (labels > config.n_classes),
             f"has a class id outside 1..{config.n_classes}"),
            (corners[:, 2] <= corners[:, 0], "has xmax <= xmin"),
            (corners[:, 3] <= corners[:, 1], "has ymax <= ymin"),
        ]  # fmt: skip
        for bad, reason in problems:
            if bad.any():
                flat = int(np.flatnonzero(bad)[0])
                image_index = int(np.searchsorted(np.cumsum(counts), flat, side="right"))
                box_index = flat - int(counts[:image_index].sum())
                raise ValueError(
                    f"image {image_index}, box {box_index} {boxes[flat].tolist()} {reason} "
                    "(rows are [class_id, xmin, ymin, xmax, ymax] in pixels)"
                )
        width, height = config.image_width, config.image_height
        if len(corners) and np.all(corners[:, 2:] - corners[:, :2] < TINY_BOX_PIXELS) and not self._warned_tiny:
            self._warned_tiny = True
            logger.warning(
                "SSDEncoder: every box of this batch is smaller than %g pixels: normalized 0..1 "
                "coordinates? The encoder expects pixels of the %dx%d model input",
                TINY_BOX_PIXELS, width, height,
            )
        corners = np.clip(corners, 0, [width, height, width, height])
        keep = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])  # not fully outside
        image_of_box = np.repeat(np.arange(len(arrays)), counts)[keep]
        counts = np.bincount(image_of_box, minlength=len(arrays))
        corners = corners[keep] / np.array([width, height, width, height], dtype=np.float64)
        return labels[keep].astype(np.int64), corners, image_of_box, counts

    # ------------------------------------------------------------------ encoding
    def __call__(self, gt_per_image) -> np.ndarray:
        """Encode a batch.

        Args:
            gt_per_image: sequence (one entry per image) of ``(k, 5)`` arrays
                ``[class_id, xmin, ymin, xmax, ymax]``, pixels of the model input; class ids
                in 1..n_classes.

        Returns:
            ``y_true`` ``(batch, n_anchors, 5)`` float32: ``[label, tx, ty, tw, th]`` with label
            :data:`NEUTRAL` (-1), :data:`BACKGROUND` (0) or the class id; offsets are 0 where the
            label is <= 0.

        Raises:
            ValueError: a malformed array, a NaN/inf coordinate, a class id outside
                1..n_classes, or a box with xmax <= xmin or ymax <= ymin; the message names the
                image index and the box index.
        """
        labels, gt_corners, image_of_box, boxes_per_image = self._gather_boxes(gt_per_image)
        batch_size = len(boxes_per_image)
        n_anchors = len(self.anchors)
        y_true = np.zeros((batch_size, n_anchors, 5), dtype=np.float32)
        if len(labels) == 0:
            return y_true
        positives, neutrals = self._match_batch(gt_corners, image_of_box, boxes_per_image)
        image, anchor, box = positives
        y_true[image, anchor, 0] = labels[box]
        y_true[image, anchor, 1:] = encode_boxes(
            corners_to_centroids(gt_corners[box]), self.anchors[anchor], self.config.variances
        )
        y_true[neutrals[0], neutrals[1], 0] = NEUTRAL
        return y_true

    def _match_batch(self, gt_corners, image_of_box, boxes_per_image):
        """Match every image of a batch on sparse (box, candidate anchor) pairs.

        Returns the positives as ``(image, anchor, box)`` index arrays (``box`` indexes
        ``gt_corners``) and the neutrals as ``(image, anchor)``; no (image, anchor) repeats.
        """
        groups = self._groups
        n_anchors = len(self.anchors)
        n_boxes, n_groups = len(gt_corners), len(groups.first)
        gt_areas = box_area(gt_corners)  # (B,)
        gt_centroids = corners_to_centroids(gt_corners)  # (B, 4)

        # 1. How far to search around each box: every anchor skipped for a box has IoU < reach.
        #    Below the thresholds by a margin when even the box's nearest anchors overlap it
        #    little, so that its bipartite match is among its candidates.
        reach = np.minimum(self._min_useful_iou, self._REACH * groups.best_nearest_iou(gt_centroids))

        # 2. Candidate pairs, grouped by box (boxes in batch order), and their IoU.
        anchor, rectangle = groups.anchors_in_ranges(*groups.cell_ranges(gt_centroids, reach))
        box = rectangle // n_groups  # (P,)
        pair_iou = paired_iou(gt_corners[box], self._anchor_corners[anchor], gt_areas[box], self._anchor_areas[anchor])
        pair_key = image_of_box[box] * n_anchors + anchor  # (image, anchor) as one number

        # 3. Bipartite stage. Each box's best candidate (lowest anchor on ties); where no two
        #    boxes of an image want the same anchor, that is the greedy result.
        pairs_per_box = np.bincount(box, minlength=n_boxes)
        first_pair = np.cumsum(pairs_per_box) - pairs_per_box
        has_pairs = pairs_per_box > 0
        bipartite_iou = np.zeros(n_boxes)
        bipartite = np.full(n_boxes, -1, dtype=np.int64)
        if has_pairs.any():
            bipartite_iou[has_pairs] = np.maximum.reduceat(pair_iou, first_pair[has_pairs])
            is_best = pair_iou == bipartite_iou[box]
            bipartite[has_pairs] = np.minimum.reduceat(np.where(is_best, anchor, n_anchors), first_pair[has_pairs])
        bipartite[bipartite_iou <= 0] = -1
        wanted = np.sort(image_of_box[bipartite >= 0] * n_anchors + bipartite[bipartite >= 0])
        first_box = np.cumsum(boxes_per_image) - boxes_per_image
        contested = np.unique(wanted[1:][wanted[1:] == wanted[:-1]] // n_anchors)
        if len(contested):
            # Two boxes want one anchor: run the greedy loop on these images' pairs.
            in_contested = np.isin(image_of_box[box], contested) & (pair_iou > 0)
            boxes = np.flatnonzero(np.isin(image_of_box, contested))
            chosen, chosen_iou = _greedy_bipartite(
                box[in_contested], anchor[in_contested], pair_iou[in_contested], boxes, image_of_box[boxes]
            )
            bipartite[boxes], bipartite_iou[boxes] = chosen, chosen_iou

        # The skipped anchors of a box stay below its reach, so the greedy result is the one of
        # the full matrix if every box's bipartite IoU reaches its reach (or its reach is 0:
        # then only anchors that do not overlap the box at all were skipped).
        proven = (reach == 0) | ((bipartite >= 0) & (bipartite_iou >= reach))
        full_images = np.unique(image_of_box[~proven])
        has_anchor = bipartite >= 0
        positive_key = image_of_box[has_anchor] * n_anchors + bipartite[has_anchor]
        positive_box = np.flatnonzero(has_anchor)

        # 4. Threshold stage and neutrals: only pairs that reach the lower of the two thresholds
        #    can matter (every skipped pair is below it). For each
        #    (image, anchor), its best box (lowest box on ties): sorted by (image, anchor, box),
        #    it is the first pair of its run of equal keys that reaches the run's maximum.
        strong = np.flatnonzero(pair_iou >= self._min_useful_iou)
        order = strong[np.argsort(pair_key[strong] * n_boxes + box[strong])]
        run_start = np.flatnonzero(np.r_[True, pair_key[order[1:]] != pair_key[order[:-1]]])
        if len(order):
            run_max = np.maximum.reduceat(pair_iou[order], run_start)
            position = np.where(pair_iou[order] == np.repeat(run_max, np.diff(np.r_[run_start, len(order)])),
                                np.arange(len(order)), len(order))  # fmt: skip
            best = order[np.minimum.reduceat(position, run_start)]  # one pair per (image, anchor)
        else:
            best = order
        if self.matching == "multi":
            threshold = best[(pair_iou[best] >= self.pos_iou_threshold) & ~_contains(positive_key, pair_key[best])]
            positive_key = np.concatenate([positive_key, pair_key[threshold]])
            positive_box = np.concatenate([positive_box, box[threshold]])
        neutral = best[(pair_iou[best] >= self.neg_iou_limit) & ~_contains(positive_key, pair_key[best])]
        neutral_key = pair_key[neutral]

        # 5. Images the candidates could not settle: match them on the full IoU matrix.
        if len(full_images):
            self.n_full_matches += len(full_images)
            keep = ~np.isin(positive_key // n_anchors, full_images)
            positive_key, positive_box = positive_key[keep], positive_box[keep]
            neutral_key = neutral_key[~np.isin(neutral_key // n_anchors, full_images)]
            positive_parts, neutral_parts = [positive_key], [neutral_key]
            box_parts = [positive_box]
            for image_index in full_images:
                boxes = slice(first_box[image_index], first_box[image_index] + boxes_per_image[image_index])
                result = match(gt_corners[boxes], self.anchors, self.pos_iou_threshold, self.neg_iou_limit,
                               self.matching)  # fmt: skip
                is_positive = result.state == POSITIVE
                positive_parts.append(image_index * n_anchors + np.flatnonzero(is_positive))
                box_parts.append(boxes.start + result.matched_gt_index[is_positive])
                neutral_parts.append(image_index * n_anchors + np.flatnonzero(result.state == NEUTRAL))
            positive_key, positive_box = np.concatenate(positive_parts), np.concatenate(box_parts)
            neutral_key = np.concatenate(neutral_parts)
        positive_image, positive_anchor = np.divmod(positive_key, n_anchors)
        return (positive_image, positive_anchor, positive_box), np.divmod(neutral_key, n_anchors)
