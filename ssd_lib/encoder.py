"""From ground-truth boxes to training targets: :class:`SSDEncoder` encodes a batch.

For every image of a batch it matches anchors to boxes with the rules of
:func:`ssd_lib.matching.match` and encodes the positive anchors' boxes as offsets with
:func:`ssd_lib.box_coding.encode_boxes`; it returns ``y_true`` for
:class:`ssd_lib.losses.SSDLoss`. It gets :func:`~ssd_lib.matching.match`'s result faster by
looking only at the anchors near each box (:class:`_AnchorGroups`).

Explained in notebooks/03_encoder.ipynb.
"""

from __future__ import annotations

import logging

import numpy as np

from .anchors import cell_box_shapes, cell_centers, generate_anchors
from .box_coding import encode_boxes
from .boxes import box_area, centroids_to_corners, corners_to_centroids, paired_iou
from .config import SSDConfig
from .matching import NEUTRAL, POSITIVE, _check_matching_options, _greedy_bipartite, match

logger = logging.getLogger(__name__)
#: A batch whose every box is smaller than this (pixels, both sides) was probably given in
#: normalized 0..1 coordinates: the encoder warns once.
TINY_BOX_PIXELS = 2.0

__all__ = ["SSDEncoder", "record_to_gt_rows"]

# Cells of slack on each side of a candidate rectangle, far above floating-point rounding.
_SLACK = 1e-6


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
            :data:`NEUTRAL` (-1), :data:`~ssd_lib.matching.BACKGROUND` (0) or the class id; offsets are 0 where the
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
