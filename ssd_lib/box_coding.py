"""Box offsets relative to anchors: the four numbers the network regresses, and back.

:func:`encode_boxes` turns a matched box into offsets relative to its anchor, divided by the
config's variances::

    tx = (cx - cx_a) / w_a / v0      ty = (cy - cy_a) / h_a / v1
    tw = log(w / w_a) / v2           th = log(h / h_a) / v3

and :func:`decode_boxes` inverts it.

Explained in notebooks/03_encoder.ipynb.
"""

from __future__ import annotations

import numpy as np

from .boxes import check_boxes

__all__ = ["encode_boxes", "decode_boxes"]


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

