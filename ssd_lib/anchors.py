"""Anchors (the paper's "default boxes", Caffe's "prior boxes"): sizes, grids, the full set.

Each predictor layer ``k`` has a ``rows x cols`` feature map. Every cell of it gets the same
set of anchors, centred on the cell centre ``((col + offset_x) * step_x, (row + offset_y) * step_y)``
in pixels. An anchor of scale ``s`` and aspect ratio ``r`` has width ``s * sqrt(r)`` and height
``s / sqrt(r)`` (so ``w * h = s**2`` and ``w / h = r``), in units of ``min(image_height, image_width)``.

Order of the full set (the order of the model's outputs): layer by layer, cells row-major (y,
then x), and within a cell the original prior-box order: ar = 1 at scale ``s_k``, the extra ar = 1
box at scale ``sqrt(s_k * s_{k+1})`` (if ``two_boxes_for_ar1``), then the other aspect ratios in
config order.

All anchors are normalized centroids ``(cx, cy, w, h)``: x and w divided by the image width,
y and h by the image height.

Explained in notebooks/01_anchor_scales.ipynb (sizes) and notebooks/02_anchor_grids.ipynb (grids).
"""

from __future__ import annotations

import numpy as np

from .boxes import (
    check_boxes,
    centroids_to_corners,
    clip_corners,
    corners_to_centroids,
    iou,
    normalize_corners,
)
from .config import SSDConfig

__all__ = [
    "cell_box_shapes",
    "cell_centers",
    "layer_anchors",
    "generate_anchors",
    "anchor_metadata",
]


def cell_box_shapes(config: SSDConfig, layer: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The anchors of one cell of ``layer``, in the prior-box order.

    Returns:
        ``(sizes, scales, aspect_ratios)``: ``sizes`` ``(n_boxes, 2)`` normalized ``(w, h)``
        (at most 1 with ``config.clamp_anchor_sizes``);
        ``scales`` ``(n_boxes,)`` the scale of each box (``sqrt(s_k * s_{k+1})`` for the extra
        box); ``aspect_ratios`` ``(n_boxes,)``.
    """
    s_k, s_next = config.scales[layer], config.scales[layer + 1]
    ratios = config.aspect_ratios[layer]
    scales, box_ratios = [], []
    if 1.0 in ratios:
        scales.append(s_k)
        box_ratios.append(1.0)
        if config.two_boxes_for_ar1:
            scales.append(np.sqrt(s_k * s_next))
            box_ratios.append(1.0)
    for r in ratios:
        if r != 1.0:
            scales.append(s_k)
            box_ratios.append(r)
    scales = np.array(scales)
    box_ratios = np.array(box_ratios)
    side = min(config.image_height, config.image_width)  # the unit of the scales, in pixels
    widths = scales * np.sqrt(box_ratios) * side / config.image_width
    heights = scales / np.sqrt(box_ratios) * side / config.image_height
    sizes = np.stack([widths, heights], axis=-1)
    if config.clamp_anchor_sizes:
        sizes = np.minimum(sizes, 1.0)
    return sizes, scales, box_ratios


def cell_centers(config: SSDConfig, layer: int) -> np.ndarray:
    """``(rows, cols, 2)`` normalized ``(cx, cy)`` of the cell centres of ``layer``."""
    rows, cols = config.feature_map_sizes[layer]
    step_y, step_x = config.steps[layer]
    offset_y, offset_x = config.offsets[layer]
    cx = (np.arange(cols) + offset_x) * step_x / config.image_width  # (cols,)
    cy = (np.arange(rows) + offset_y) * step_y / config.image_height  # (rows,)
    grid_x, grid_y = np.meshgrid(cx, cy)  # each (rows, cols): row-major, y then x
    return np.stack([grid_x, grid_y], axis=-1)


def layer_anchors(config: SSDConfig, layer: int) -> np.ndarray:
    """``(rows, cols, n_boxes, 4)`` normalized centroid anchors of one layer (unclipped)."""
    centers = cell_centers(config, layer)  # (rows, cols, 2)
    sizes, _, _ = cell_box_shapes(config, layer)  # (n_boxes, 2)
    rows, cols = centers.shape[:2]
    n_boxes = len(sizes)
    centers = np.broadcast_to(centers[:, :, None, :], (rows, cols, n_boxes, 2))
    sizes = np.broadcast_to(sizes[None, None, :, :], (rows, cols, n_boxes, 2))
    return np.concatenate([centers, sizes], axis=-1)


def generate_anchors(config: SSDConfig) -> np.ndarray:
    """All anchors of ``config``, in the model's output order.

    Returns:
        ``(n_anchors, 4)`` float64 normalized centroids ``(cx, cy, w, h)``; with
        ``config.clip_boxes`` they are clipped to the image in corner form first.

    Example:
        >>> from ssd_lib.config import SSD300_VOC
        >>> generate_anchors(SSD300_VOC).shape
        (8732, 4)
    """
    anchors = np.concatenate(
        [layer_anchors(config, k).reshape(-1, 4) for k in range(config.n_layers)], axis=0
    )
    if config.clip_boxes:
        anchors = corners_to_centroids(clip_corners(centroids_to_corners(anchors)))
    return anchors


def anchor_metadata(config: SSDConfig) -> dict[str, np.ndarray]:
    """Where each anchor of :func:`generate_anchors` comes from; every array is ``(n_anchors,)``.

    Keys: ``layer``, ``row``, ``col``, ``box`` (index within the cell), ``scale``,
    ``aspect_ratio``.
    """
    parts = {key: [] for key in ("layer", "row", "col", "box", "scale", "aspect_ratio")}
    for k in range(config.n_layers):
        rows, cols = config.feature_map_sizes[k]
        _, scales, ratios = cell_box_shapes(config, k)
        n_boxes = len(scales)
        row, col, box = np.meshgrid(np.arange(rows), np.arange(cols), np.arange(n_boxes), indexing="ij")
        parts["layer"].append(np.full(rows * cols * n_boxes, k))
        parts["row"].append(row.ravel())
        parts["col"].append(col.ravel())
        parts["box"].append(box.ravel())
        parts["scale"].append(np.tile(scales, rows * cols))
        parts["aspect_ratio"].append(np.tile(ratios, rows * cols))
    return {key: np.concatenate(values) for key, values in parts.items()}


# ---------------------------------------------------------------- anchor coverage (notebook 01)
def records_to_normalized_corners(records) -> np.ndarray:
    """All ground-truth boxes of dataset records, each normalized by its own image size.

    The model sees every image resized to its input size, so what anchors must cover is a
    box's position and size as fractions of its image's width and height.

    Args:
        records: dataset records (``ssd_lib.datasets``) with ``boxes`` ``(k, 4)`` pixel corners
            and ``size`` ``(width, height)``.

    Returns:
        ``(total_boxes, 4)`` normalized corners, records in order; ``(0, 4)`` without boxes.
    """
    parts = [
        normalize_corners(np.asarray(record["boxes"], dtype=np.float64).reshape(-1, 4), *record["size"])
        for record in records
    ]
    return np.concatenate(parts, axis=0) if parts else np.zeros((0, 4))


def best_anchor_iou(gt_corners, anchors, chunk_size: int = 256) -> np.ndarray:
    """For each ground-truth box, the best IoU any anchor reaches with it.

    A box whose best IoU stays below the matching threshold (0.5 in SSD) can only be matched by
    the "best anchor for every box" rule, with a poorly fitting anchor: the anchor set does not
    cover that box's size and shape.

    Args:
        gt_corners: ``(k, 4)`` normalized corners of ground-truth boxes.
        anchors: ``(n, 4)`` normalized centroids, e.g. :func:`generate_anchors`.
        chunk_size: boxes per ``(chunk_size, n)`` IoU matrix, so that the memory stays bounded
            for a whole dataset (47 223 VOC boxes x 8732 anchors would be 3.3 GB at once).

    Returns:
        ``(k,)`` best IoU per box, in [0, 1]; 0 for every box when there are no anchors.

    Explained in notebooks/01_anchor_scales.ipynb (anchor coverage).
    """
    gt_corners = check_boxes(gt_corners, "gt_corners").reshape(-1, 4)
    anchors = check_boxes(anchors, "anchors").reshape(-1, 4)
    if len(anchors) == 0:
        return np.zeros(len(gt_corners))
    anchor_corners = centroids_to_corners(anchors)
    best = np.zeros(len(gt_corners))
    for start in range(0, len(gt_corners), chunk_size):
        chunk = slice(start, start + chunk_size)
        best[chunk] = iou(gt_corners[chunk], anchor_corners).max(axis=1)  # (chunk, n) -> (chunk,)
    return best


__all__ += ["records_to_normalized_corners", "best_anchor_iou"]
