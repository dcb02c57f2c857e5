"""Input checks shared by the augmentation modules: images, annotations, probabilities, ranges.

Each raises a ``ValueError`` whose message names the argument or field.
"""

from __future__ import annotations

import numpy as np


def check_image(image) -> np.ndarray:
    """``image`` as a uint8 ``(H, W, 3)`` RGB array."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image: expected a uint8 (height, width, 3) RGB array, got {image.dtype} {image.shape}"
        )
    return image


def check_annotations(boxes, labels=None, difficult=None):
    """``(boxes (k, 4) float32, labels (k,) or None, difficult (k,) bool or None)``; every box
    must have positive width and height."""
    boxes = np.asarray(boxes, dtype=np.float32)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes: expected shape (k, 4) pixel corners, got {boxes.shape}")
    inverted = np.flatnonzero(~(boxes[:, 2] > boxes[:, 0]) | ~(boxes[:, 3] > boxes[:, 1]))  # NaN too
    if inverted.size:
        index = int(inverted[0])
        raise ValueError(
            f"boxes[{index}] = {boxes[index].tolist()}: xmax must exceed xmin and ymax exceed ymin"
        )
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if labels.shape[0] != boxes.shape[0]:
            raise ValueError(f"labels: {labels.shape[0]} labels for {boxes.shape[0]} boxes")
    if difficult is not None:
        difficult = np.asarray(difficult, dtype=bool).reshape(-1)
        if difficult.shape[0] != boxes.shape[0]:
            raise ValueError(f"difficult: {difficult.shape[0]} flags for {boxes.shape[0]} boxes")
    return boxes, labels, difficult


def check_probability(owner: str, name: str, value: float) -> None:
    """``owner.name`` must be in [0, 1]."""
    if not 0 <= value <= 1:
        raise ValueError(f"{owner}.{name}: a probability must be in [0, 1], got {value!r}")


def check_range(owner: str, name: str, bounds, lowest: float = 0.0) -> None:
    """``owner.name`` = ``(low, high)`` must satisfy ``lowest <= low <= high``."""
    low, high = bounds
    if not lowest <= low <= high:
        raise ValueError(f"{owner}.{name}: expected {lowest} <= low <= high, got {tuple(bounds)!r}")
