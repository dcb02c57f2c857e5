"""The geometric steps of SSD training, pixels and boxes together: expand (zoom out), crop (zoom
in), horizontal flip and resize, and the samplers that draw expand and crop (:class:`RandomExpand`,
:class:`RandomSampleCrop`).

Images are ``uint8`` ``(H, W, 3)`` RGB; boxes are ``(k, 4)`` pixel corners
``(xmin, ymin, xmax, ymax)`` where pixel ``(row, col)`` covers ``[col, col + 1] x [row, row + 1]``,
so flipping maps ``x`` to ``width - x``. The ``*_boxes`` helpers move boxes only; the fused path
(:mod:`ssd_lib.augment.plan`) uses them without touching pixels.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image

from ..boxes import iou
from ..config import IMAGENET_MEAN_RGB
from .checks import check_annotations, check_image, check_probability, check_range

#: Fill colour of the expand canvas: the ImageNet mean (R, G, B) that the model subtracts, so
#: the canvas is ~0 after preprocessing (Caffe SSD fills with its ``mean_value``).
DEFAULT_MEAN = IMAGENET_MEAN_RGB
#: The crop options of the paper: ``None`` keeps the whole image, a number is the minimum IoU
#: that some ground-truth box must have with the patch, ``0.0`` is an unconstrained patch.
CROP_MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9, 0.0)


def expand_boxes(boxes: np.ndarray, left: int, top: int) -> np.ndarray:
    """``(k, 4)`` boxes moved by ``(left, top)`` pixels: onto the expand canvas."""
    return boxes + np.array([left, top, left, top], dtype=np.float32)


def crop_boxes(boxes, window, labels=None, difficult=None):
    """Keep the boxes whose centre lies strictly inside ``window``; clip and shift them."""
    x0, y0, x1, y1 = (float(v) for v in window)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    keep = (centres[:, 0] > x0) & (centres[:, 0] < x1) & (centres[:, 1] > y0) & (centres[:, 1] < y1)
    kept = np.clip(boxes[keep], [x0, y0, x0, y0], [x1, y1, x1, y1]) - np.float32([x0, y0, x0, y0])
    pick = lambda values: None if values is None else values[keep]  # noqa: E731
    return kept.astype(np.float32), pick(labels), pick(difficult)


def flip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    """``(k, 4)`` boxes mirrored left-right in an image ``width`` pixels wide."""
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def resize_boxes(boxes: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    """``(k, 4)`` float32 boxes scaled by ``scale_x`` horizontally and ``scale_y`` vertically."""
    return (boxes * np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)).astype(np.float32)


def expand(image, boxes, ratio: float, left: int, top: int, fill=DEFAULT_MEAN):
    """Zoom out: place the image at ``(left, top)`` on a ``ratio`` times larger canvas filled
    with ``fill`` (the mean colour); boxes move by ``(left, top)``.

    Returns:
        ``(canvas (int(H * ratio), int(W * ratio), 3) uint8, boxes (k, 4))``.
    """
    image = check_image(image)
    boxes, _, _ = check_annotations(boxes)
    height, width = image.shape[:2]
    canvas_height, canvas_width = int(height * ratio), int(width * ratio)
    if not (0 <= left <= canvas_width - width and 0 <= top <= canvas_height - height):
        raise ValueError(
            f"expand: offset ({left}, {top}) puts the {width}x{height} image outside the "
            f"{canvas_width}x{canvas_height} canvas"
        )
    canvas = np.empty((canvas_height, canvas_width, 3), dtype=np.uint8)
    canvas[...] = np.rint(np.asarray(fill, dtype=np.float32)).astype(np.uint8)
    canvas[top : top + height, left : left + width] = image
    return canvas, expand_boxes(boxes, left, top)


def crop(image, boxes, labels, window, difficult=None):
    """Cut ``window`` = ``(x0, y0, x1, y1)`` (integer pixels) out of the image; keep the boxes
    whose centre lies inside, clipped to the window and in its coordinates.

    Returns:
        ``(image (y1 - y0, x1 - x0, 3), boxes (j, 4), labels (j,), difficult (j,) or None)``.
    """
    image = check_image(image)
    boxes, labels, difficult = check_annotations(boxes, labels, difficult)
    x0, y0, x1, y1 = (int(v) for v in window)
    height, width = image.shape[:2]
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"crop: window {window} is not inside the {width}x{height} image")
    kept, labels, difficult = crop_boxes(boxes, (x0, y0, x1, y1), labels, difficult)
    return image[y0:y1, x0:x1], kept, labels, difficult


def horizontal_flip(image, boxes):
    """Mirror left-right: ``x -> width - x`` (xmin and xmax swap roles)."""
    image = check_image(image)
    boxes, _, _ = check_annotations(boxes)
    return np.ascontiguousarray(image[:, ::-1]), flip_boxes(boxes, image.shape[1])


def resize(image, boxes, height: int, width: int):
    """Resize to ``height x width`` (Pillow bilinear with antialiasing); boxes scale with it.

    This is the whole validation path. Returns ``(image (height, width, 3) uint8, boxes)``.
    """
    image = check_image(image)
    boxes, _, _ = check_annotations(boxes)
    source_height, source_width = image.shape[:2]
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized), resize_boxes(boxes, width / source_width, height / source_height)


# ------------------------------------------------------------------------------------------
# Random geometric samplers
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RandomExpand:
    """Zoom out with probability ``probability``: ratio uniform in ``[1, max_ratio]``, the image
    at a uniformly random integer position on the canvas."""

    max_ratio: float = 4.0
    probability: float = 0.5

    def __post_init__(self):
        check_probability("RandomExpand", "probability", self.probability)
        check_range("RandomExpand", "max_ratio", (1, self.max_ratio), lowest=1)

    def sample(self, rng: np.random.Generator, width: int, height: int):
        """``(ratio, left, top)`` or ``None`` (no expansion); always four draws from ``rng``."""
        draws = rng.random(3)
        if rng.random() >= self.probability:
            return None
        ratio = 1 + draws[0] * (self.max_ratio - 1)
        left = int(draws[1] * (int(width * ratio) - width))
        top = int(draws[2] * (int(height * ratio) - height))
        return float(ratio), left, top


@dataclasses.dataclass(frozen=True)
class RandomSampleCrop:
    """The paper's patch sampling (zoom in).

    An option is drawn from ``min_ious``: ``None`` keeps the whole image; a number ``t`` asks
    for a patch that some ground-truth box overlaps with IoU >= ``t`` (the Caffe sampler's
    constraint; ``0.0`` is an unconstrained patch). Patch sides are uniform in
    ``[min_scale, 1]`` of the image sides with height/width in ``[min_aspect, max_aspect]``,
    and at least one box centre must fall inside (so a crop never drops all boxes; an image
    without boxes can only get an unconstrained patch). ``max_trials`` candidate patches are
    drawn at once; the first valid one wins; if none is valid the image is kept whole.
    """

    min_ious: tuple = CROP_MIN_IOUS
    min_scale: float = 0.3
    min_aspect: float = 0.5
    max_aspect: float = 2.0
    max_trials: int = 50

    def __post_init__(self):
        check_range("RandomSampleCrop", "min_scale", (self.min_scale, 1), lowest=1e-6)
        check_range("RandomSampleCrop", "aspect", (self.min_aspect, self.max_aspect), lowest=1e-6)
        if not self.min_ious or any(t is not None and not 0 <= t <= 1 for t in self.min_ious):
            raise ValueError(f"RandomSampleCrop.min_ious: expected IoUs in [0, 1] or None, got {self.min_ious!r}")
        if self.max_trials < 1:
            raise ValueError(f"RandomSampleCrop.max_trials: must be >= 1, got {self.max_trials!r}")

    def sample(self, rng: np.random.Generator, boxes, width: int, height: int):
        """An integer window ``(x0, y0, x1, y1)`` inside ``width x height``, or ``None``."""
        boxes, _, _ = check_annotations(boxes)
        option = self.min_ious[int(rng.integers(len(self.min_ious)))]
        draws = rng.random((4, self.max_trials))  # always drawn: the stream stays aligned
        if option is None or (boxes.shape[0] == 0 and option > 0):
            return None
        patch_w = width * (self.min_scale + (1 - self.min_scale) * draws[0])
        patch_h = height * (self.min_scale + (1 - self.min_scale) * draws[1])
        x0 = np.floor((width - patch_w) * draws[2])
        y0 = np.floor((height - patch_h) * draws[3])
        windows = np.stack([x0, y0, np.floor(x0 + patch_w), np.floor(y0 + patch_h)], axis=1)
        aspect = patch_h / patch_w
        valid = (aspect >= self.min_aspect) & (aspect <= self.max_aspect)
        valid &= (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
        if boxes.shape[0]:
            overlaps = iou(windows, boxes)  # (trials, k)
            valid &= overlaps.max(axis=1) >= option
            centres = (boxes[:, :2] + boxes[:, 2:]) / 2  # (k, 2)
            inside = (
                (centres[None, :, 0] > windows[:, None, 0]) & (centres[None, :, 0] < windows[:, None, 2])
                & (centres[None, :, 1] > windows[:, None, 1]) & (centres[None, :, 1] < windows[:, None, 3])
            )  # fmt: skip
            valid &= inside.any(axis=1)
        winners = np.flatnonzero(valid)
        if winners.size == 0:
            return None
        return tuple(int(v) for v in windows[winners[0]])
