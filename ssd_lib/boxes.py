"""Box formats, areas, pairwise IoU and clipping (numpy, vectorized).

Formats (the name of every function says which one it takes):

- ``corners``: ``(xmin, ymin, xmax, ymax)``
- ``centroids``: ``(cx, cy, w, h)``

Boxes are arrays whose last axis has length 4; any leading shape works unless a function says
otherwise. Coordinates are pixels or normalized ([0, 1] of the image width/height) alike.

Explained in notebooks/02_anchor_grids.ipynb (formats) and notebooks/03_encoder.ipynb (IoU).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "check_boxes",
    "corners_to_centroids",
    "centroids_to_corners",
    "box_area",
    "iou",
    "paired_iou",
    "clip_corners",
    "normalize_corners",
    "denormalize_corners",
]


def check_boxes(boxes, name: str = "boxes") -> np.ndarray:
    """Return ``boxes`` as a float array whose last axis is 4, else raise ``ValueError``."""
    boxes = np.asarray(boxes)
    if boxes.ndim == 0 or boxes.shape[-1] != 4:
        raise ValueError(f"{name}: expected shape (..., 4), got {boxes.shape}")
    if not np.issubdtype(boxes.dtype, np.floating):
        boxes = boxes.astype(np.float64)
    return boxes


def corners_to_centroids(boxes) -> np.ndarray:
    """``(..., 4)`` corners (xmin, ymin, xmax, ymax) -> centroids (cx, cy, w, h)."""
    boxes = check_boxes(boxes)
    xy_min, xy_max = boxes[..., :2], boxes[..., 2:]
    return np.concatenate([(xy_min + xy_max) / 2, xy_max - xy_min], axis=-1)


def centroids_to_corners(boxes) -> np.ndarray:
    """``(..., 4)`` centroids (cx, cy, w, h) -> corners (xmin, ymin, xmax, ymax)."""
    boxes = check_boxes(boxes)
    centre, size = boxes[..., :2], boxes[..., 2:]
    return np.concatenate([centre - size / 2, centre + size / 2], axis=-1)


def box_area(corners) -> np.ndarray:
    """``(...)`` area of ``(..., 4)`` corner boxes; inverted boxes have area 0."""
    corners = check_boxes(corners)
    width = np.clip(corners[..., 2] - corners[..., 0], 0, None)
    height = np.clip(corners[..., 3] - corners[..., 1], 0, None)
    return width * height


def iou(boxes_a, boxes_b) -> np.ndarray:
    """Pairwise intersection over union of two sets of corner boxes.

    ``IoU(A, B) = |A ∩ B| / |A ∪ B|``, symmetric and in [0, 1]; 0 where the union is empty.

    Args:
        boxes_a: ``(N, 4)`` corners.
        boxes_b: ``(M, 4)`` corners, same units as ``boxes_a``.

    Returns:
        ``(N, M)`` IoU matrix, ``result[i, j] = IoU(boxes_a[i], boxes_b[j])``.
    """
    boxes_a = check_boxes(boxes_a, "boxes_a")
    boxes_b = check_boxes(boxes_b, "boxes_b")
    if boxes_a.ndim != 2 or boxes_b.ndim != 2:
        raise ValueError(
            f"iou: expected (N, 4) and (M, 4) boxes, got {boxes_a.shape} and {boxes_b.shape}"
        )
    a = boxes_a[:, None, :]  # (N, 1, 4)
    b = boxes_b[None, :, :]  # (1, M, 4)
    inter_w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    inter_h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    intersection = inter_w * inter_h  # (N, M)
    union = box_area(boxes_a)[:, None] + box_area(boxes_b)[None, :] - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        result = np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)
    return result


def paired_iou(boxes_a, boxes_b, area_a=None, area_b=None) -> np.ndarray:
    """Element-wise IoU of ``boxes_a[i]`` with ``boxes_b[i]`` (corners).

    The same floating-point steps as :func:`iou`, so both give bit-identical values for a pair.

    Args:
        boxes_a, boxes_b: ``(n, 4)`` corners.
        area_a, area_b: optional precomputed :func:`box_area` of each (for hot loops).

    Returns:
        ``(n,)`` IoU values.
    """
    area_a = box_area(boxes_a) if area_a is None else area_a
    area_b = box_area(boxes_b) if area_b is None else area_b
    inter_w = np.clip(np.minimum(boxes_a[:, 2], boxes_b[:, 2]) - np.maximum(boxes_a[:, 0], boxes_b[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(boxes_a[:, 3], boxes_b[:, 3]) - np.maximum(boxes_a[:, 1], boxes_b[:, 1]), 0, None)
    intersection = inter_w * inter_h
    union = area_a + area_b - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, intersection / np.where(union > 0, union, 1), 0.0)


def clip_corners(corners, width: float = 1.0, height: float = 1.0) -> np.ndarray:
    """Clip ``(..., 4)`` corner boxes to the image ``[0, width] x [0, height]``."""
    corners = check_boxes(corners)
    upper = np.array([width, height, width, height], dtype=corners.dtype)
    return np.clip(corners, 0, upper)


def normalize_corners(corners, image_width: float, image_height: float) -> np.ndarray:
    """Pixel corners -> corners as fractions of the image width/height."""
    corners = check_boxes(corners)
    return corners / np.array([image_width, image_height, image_width, image_height])


def denormalize_corners(corners, image_width: float, image_height: float) -> np.ndarray:
    """Normalized corners -> pixel corners."""
    corners = check_boxes(corners)
    return corners * np.array([image_width, image_height, image_width, image_height])
