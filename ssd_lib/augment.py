"""The SSD training augmentation: colour distortions, expand (zoom out), IoU-constrained random
crop (zoom in), horizontal flip and resize; validation images are only resized.

Everything works on ``uint8`` ``(H, W, 3)`` RGB images and ``(k, 4)`` pixel corner boxes
``(xmin, ymin, xmax, ymax)``, with ``(k,)`` labels and optionally ``(k,)`` difficult flags.
Pixel ``(row, col)`` covers the square ``[col, col + 1] x [row, row + 1]``, so a box drawn over
columns ``a .. b - 1`` has ``xmin = a, xmax = b`` and flipping maps ``x`` to ``width - x``.

Two levels:

- Small transforms, one per step of the paper, each a plain function of its parameters
  (:func:`adjust_brightness` ... :func:`swap_channels`, :func:`expand`, :func:`crop`,
  :func:`horizontal_flip`, :func:`resize`) and a random sampler that draws those parameters
  from a ``numpy.random.Generator`` (:class:`PhotometricDistort`, :class:`RandomExpand`,
  :class:`RandomSampleCrop`). Composed in the original order they are the reference.
- :class:`SSDAugmentation`, the entry point, draws the same parameters, works out the boxes
  first (:meth:`SSDAugmentation.plan`, no pixels touched) and then produces the output image in
  one resampling step (:func:`render`): expand + crop + resize become a single OpenCV resize of
  the visible part of the source photo onto a mean-filled output, so the zoomed-out canvas is
  never built and a JPEG can be decoded at reduced size (:func:`render` accepts an
  :class:`ssd_lib.jpeg.EncodedJpeg` and decodes it with libjpeg's DCT scaling).
  The colour distortions are pointwise, so they commute with cropping and flipping; the fused
  path applies them to the output pixels that come from the photo (the canvas keeps the mean),
  which equals the original order up to interpolation rounding.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import cv2
import numpy as np
from PIL import Image

from .boxes import iou
from .config import IMAGENET_MEAN_RGB
from .jpeg import EncodedJpeg, decode_jpeg

__all__ = [
    "DEFAULT_MEAN",
    "CROP_MIN_IOUS",
    "adjust_brightness",
    "adjust_contrast",
    "adjust_saturation",
    "adjust_hue",
    "swap_channels",
    "expand",
    "crop",
    "horizontal_flip",
    "resize",
    "ColorParams",
    "PhotometricDistort",
    "RandomExpand",
    "RandomSampleCrop",
    "AugmentationPlan",
    "resize_plan",
    "photo_region",
    "render",
    "SSDAugmentation",
]

#: Fill colour of the expand canvas: the ImageNet mean (R, G, B) that the model subtracts, so
#: the canvas is ~0 after preprocessing (Caffe SSD fills with its ``mean_value``).
DEFAULT_MEAN = IMAGENET_MEAN_RGB
#: The crop options of the paper: ``None`` keeps the whole image, a number is the minimum IoU
#: that some ground-truth box must have with the patch, ``0.0`` is an unconstrained patch.
CROP_MIN_IOUS = (None, 0.1, 0.3, 0.5, 0.7, 0.9, 0.0)


# ------------------------------------------------------------------------------------------
# Input checks
# ------------------------------------------------------------------------------------------


def _check_image(image) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image: expected a uint8 (height, width, 3) RGB array, got {image.dtype} {image.shape}"
        )
    return image


def _check_annotations(boxes, labels=None, difficult=None):
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


def _check_probability(owner: str, name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise ValueError(f"{owner}.{name}: a probability must be in [0, 1], got {value!r}")


def _check_range(owner: str, name: str, bounds, lowest: float = 0.0) -> None:
    low, high = bounds
    if not lowest <= low <= high:
        raise ValueError(f"{owner}.{name}: expected {lowest} <= low <= high, got {tuple(bounds)!r}")


# ------------------------------------------------------------------------------------------
# Photometric distortions (pointwise; boxes unchanged)
# ------------------------------------------------------------------------------------------


def _lut_brightness(delta: float) -> np.ndarray:
    return np.clip(np.arange(256, dtype=np.float32) + delta, 0, 255)


def _lut_contrast(factor: float) -> np.ndarray:
    return np.clip(np.arange(256, dtype=np.float32) * factor, 0, 255)


def _apply_lut(image: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Map every uint8 value through a 256-entry table, in place; returns ``image``."""
    table = np.rint(lut).astype(np.uint8)
    np.take(table, image, out=image, mode="wrap")  # "wrap": no bounds-check buffering
    return image


def adjust_brightness(image, delta: float) -> np.ndarray:
    """Add ``delta`` (e.g. uniform in [-32, 32]) to every channel, clipped to [0, 255]."""
    return _apply_lut(_check_image(image).copy(), _lut_brightness(delta))


def adjust_contrast(image, factor: float) -> np.ndarray:
    """Multiply every channel by ``factor`` (e.g. uniform in [0.5, 1.5]), clipped to [0, 255]."""
    return _apply_lut(_check_image(image).copy(), _lut_contrast(factor))


_scratch = threading.local()
_MAX_SCRATCH_ELEMENTS = 3 * 1024 * 1024  # per buffer; 12 MB of float32 (a 1024 x 1024 RGB image)


def _scratch_buffer(name: str, shape: tuple, dtype=np.float32) -> np.ndarray:
    """A per-thread scratch array, reused from call to call.

    Fresh multi-megabyte temporaries cost page faults on every call (more than the arithmetic
    itself on small VMs); the colour maths below therefore works in buffers that live as long
    as the thread (a few MB at SSD300/SSD512 sizes; larger images get fresh arrays).
    """
    size = math.prod(shape)
    if size > _MAX_SCRATCH_ELEMENTS:  # a large photo: do not keep its buffers alive
        return np.empty(shape, dtype=dtype)
    buffers = _scratch.__dict__.setdefault("buffers", {})
    flat = buffers.get(name)
    if flat is None or flat.size < size or flat.dtype != dtype:
        flat = buffers[name] = np.empty(max(size, 1), dtype=dtype)
    return flat[:size].reshape(shape)


def _saturation_hue(image: np.ndarray, saturation_factor: float, hue_shift: float) -> np.ndarray:
    """Scale the HSV saturation and rotate the hue (degrees) in one pass, in place; returns
    ``image``. float32 maths, no HSV image.

    With ``V = max(r, g, b)`` and chroma ``C = V - min(r, g, b)``, every channel is
    ``V - C * (1 - f_channel(hue))`` where ``f`` are the three triangle functions of the hue
    (explained in notebooks/07_data_pipeline.ipynb). Saturation ``S = C / V`` scaled by ``a``
    and clipped to 1 means ``C' = min(a * C, V)``; a hue rotation moves the hue and recomputes
    the ``f``. ``V`` never changes, so the result stays in [0, 255].
    """
    height, width = image.shape[:2]
    planes = _scratch_buffer("planes", (3, height, width))  # planar float32: fast per-channel maths
    for channel in range(3):
        planes[channel] = image[..., channel]
    red, green, blue = planes
    value, chroma, new_chroma, scratch = (_scratch_buffer(name, (height, width))
                                          for name in ("value", "chroma", "new_chroma", "scratch"))  # fmt: skip
    np.maximum(red, green, out=value)
    np.maximum(value, blue, out=value)
    np.minimum(red, green, out=chroma)
    np.minimum(chroma, blue, out=chroma)
    np.subtract(value, chroma, out=chroma)
    np.multiply(chroma, np.float32(saturation_factor), out=new_chroma)
    np.minimum(new_chroma, value, out=new_chroma)
    if hue_shift == 0:
        # f is unchanged, so V - channel scales with the chroma: out = V - (V - c) * C' / C
        # (grey pixels: C = C' = 0, ratio 0).
        np.maximum(chroma, np.float32(1e-6), out=scratch)
        np.divide(new_chroma, scratch, out=scratch)
        np.subtract(value, planes, out=planes)
        planes *= scratch
    else:
        # hue * C (units of 60 degrees) is g - b where red is the max, else b - r + 2C where
        # green is, else r - g + 4C (the usual if/elif, as 0/1 masks: masked ufuncs are slow).
        hue, is_max, other = (_scratch_buffer(name, (height, width)) for name in ("hue", "is_max", "other"))
        np.subtract(red, green, out=hue)  # blue is the max
        np.multiply(chroma, np.float32(4), out=scratch)
        hue += scratch
        np.subtract(blue, red, out=other)  # green is the max
        np.multiply(chroma, np.float32(2), out=scratch)
        other += scratch
        np.equal(value, green, out=is_max, casting="unsafe")  # 1.0 where green is the max
        other -= hue
        other *= is_max
        hue += other
        np.subtract(green, blue, out=other)  # red is the max
        np.equal(value, red, out=is_max, casting="unsafe")
        other -= hue
        other *= is_max
        hue += other
        np.maximum(chroma, np.float32(1e-6), out=scratch)  # grey pixels: 0 / tiny = hue 0
        hue /= scratch
        hue += np.float32((hue_shift / 60.0) % 6.0)  # now in [-1, 11): wrap into [0, 6)
        np.multiply(hue, np.float32(1 / 6), out=scratch)
        np.floor(scratch, out=scratch)
        scratch *= np.float32(6)
        hue -= scratch
        # Triangle functions f: red is 1 near hue 0 and 6 (far from 3), green peaks at 2 and
        # blue at 4. In ``planes``: 1 - f = clip(2 - |h - 3|, 0, 1) for red and
        # clip(|h - c| - 1, 0, 1) for green (c = 2) and blue (c = 4); then V - C' * (1 - f).
        np.subtract(hue, np.float32(3), out=red)
        np.subtract(hue, np.float32(2), out=green)
        np.subtract(hue, np.float32(4), out=blue)
        np.abs(planes, out=planes)
        np.subtract(np.float32(2), red, out=red)
        np.subtract(planes[1:], np.float32(1), out=planes[1:])
        np.clip(planes, np.float32(0), np.float32(1), out=planes)
        planes *= new_chroma
    np.subtract(value, planes, out=planes)
    planes += np.float32(0.5)  # round to nearest: the values are within [0, 255]
    rounded = _scratch_buffer("rounded", (3, height, width), np.uint8)
    np.copyto(rounded, planes, casting="unsafe")
    for channel in range(3):  # planar -> interleaved, one channel at a time (fast)
        image[..., channel] = rounded[channel]
    return image


def adjust_saturation(image, factor: float) -> np.ndarray:
    """Multiply the HSV saturation by ``factor`` (clipped to 1); hue and value unchanged."""
    return _saturation_hue(_check_image(image).copy(), factor, 0.0)


def adjust_hue(image, degrees: float) -> np.ndarray:
    """Rotate the HSV hue by ``degrees`` (e.g. uniform in [-18, 18]), wrapping around 360."""
    return _saturation_hue(_check_image(image).copy(), 1.0, degrees)


def swap_channels(image, order) -> np.ndarray:
    """Reorder the colour channels, e.g. ``order=(2, 0, 1)`` (the original's "lighting noise")."""
    order = tuple(int(channel) for channel in order)
    if sorted(order) != [0, 1, 2]:
        raise ValueError(f"order: expected a permutation of (0, 1, 2), got {order}")
    return np.ascontiguousarray(_check_image(image)[..., order])


@dataclasses.dataclass(frozen=True)
class ColorParams:
    """One draw of :class:`PhotometricDistort`; neutral values mean "step skipped"."""

    brightness_delta: float = 0.0
    contrast_factor: float = 1.0
    contrast_first: bool = True
    saturation_factor: float = 1.0
    hue_shift: float = 0.0
    channel_order: tuple = (0, 1, 2)


def _distort_in_place(image: np.ndarray, params: ColorParams) -> np.ndarray:
    """Apply a drawn distortion to a uint8 (H, W, 3) array (or view) in place; returns it.

    Brightness and a contrast that precedes the HSV steps are one combined lookup table.
    """
    lut = _lut_brightness(params.brightness_delta)
    contrast_lut = _lut_contrast(params.contrast_factor)
    if params.contrast_first:
        lut = contrast_lut[np.rint(lut).astype(np.uint8)]
    if params.brightness_delta != 0 or (params.contrast_first and params.contrast_factor != 1):
        _apply_lut(image, lut)
    if params.saturation_factor != 1 or params.hue_shift != 0:
        _saturation_hue(image, params.saturation_factor, params.hue_shift)
    if not params.contrast_first and params.contrast_factor != 1:
        _apply_lut(image, contrast_lut)
    if params.channel_order != (0, 1, 2):
        image[...] = image[..., list(params.channel_order)]
    return image


@dataclasses.dataclass(frozen=True)
class PhotometricDistort:
    """The original random colour distortion, each step with probability ``probability``.

    Order (as in the authors' Caffe code and its PyTorch port): brightness; then either
    contrast, saturation, hue or saturation, hue, contrast (a coin flip); then a random
    channel permutation. Every step clips to [0, 255], as Caffe's uint8 images do.

    Args:
        brightness_delta: added value drawn uniformly in ``[-delta, delta]``.
        contrast_range, saturation_range: factor drawn uniformly in ``[low, high]``.
        hue_delta: hue rotation in degrees drawn uniformly in ``[-delta, delta]``.
        probability: probability of each of brightness, contrast, saturation, hue.
        channel_swap_probability: probability of a random channel permutation.
    """

    brightness_delta: float = 32.0
    contrast_range: tuple = (0.5, 1.5)
    saturation_range: tuple = (0.5, 1.5)
    hue_delta: float = 18.0
    probability: float = 0.5
    channel_swap_probability: float = 0.5

    def __post_init__(self):
        _check_probability("PhotometricDistort", "probability", self.probability)
        _check_probability("PhotometricDistort", "channel_swap_probability", self.channel_swap_probability)
        _check_range("PhotometricDistort", "contrast_range", self.contrast_range)
        _check_range("PhotometricDistort", "saturation_range", self.saturation_range)
        _check_range("PhotometricDistort", "brightness_delta", (0, self.brightness_delta))
        _check_range("PhotometricDistort", "hue_delta", (0, self.hue_delta))

    def sample(self, rng: np.random.Generator) -> ColorParams:
        """Draw the parameters of one distortion (a fixed number of draws from ``rng``)."""
        apply = rng.random(5) < np.array([self.probability] * 4 + [self.channel_swap_probability])
        draws = rng.random(4)
        contrast_first = bool(rng.random() < 0.5)
        permutation = tuple(int(c) for c in rng.permutation(3))
        return ColorParams(
            brightness_delta=float((2 * draws[0] - 1) * self.brightness_delta) if apply[0] else 0.0,
            contrast_factor=float(np.interp(draws[1], [0, 1], self.contrast_range)) if apply[1] else 1.0,
            contrast_first=contrast_first,
            saturation_factor=float(np.interp(draws[2], [0, 1], self.saturation_range)) if apply[2] else 1.0,
            hue_shift=float((2 * draws[3] - 1) * self.hue_delta) if apply[3] else 0.0,
            channel_order=permutation if apply[4] else (0, 1, 2),
        )  # fmt: skip

    @staticmethod
    def apply(image, params: ColorParams) -> np.ndarray:
        """Apply one drawn distortion to a uint8 image; returns a new array."""
        return _distort_in_place(_check_image(image).copy(), params)

    def __call__(self, image, rng: np.random.Generator) -> np.ndarray:
        return self.apply(image, self.sample(rng))


# ------------------------------------------------------------------------------------------
# Geometric transforms: boxes (these are also what the fused path uses) and pixels
# ------------------------------------------------------------------------------------------


def _expand_boxes(boxes: np.ndarray, left: int, top: int) -> np.ndarray:
    return boxes + np.array([left, top, left, top], dtype=np.float32)


def _crop_boxes(boxes, window, labels=None, difficult=None):
    """Keep the boxes whose centre lies strictly inside ``window``; clip and shift them."""
    x0, y0, x1, y1 = (float(v) for v in window)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    keep = (centres[:, 0] > x0) & (centres[:, 0] < x1) & (centres[:, 1] > y0) & (centres[:, 1] < y1)
    kept = np.clip(boxes[keep], [x0, y0, x0, y0], [x1, y1, x1, y1]) - np.float32([x0, y0, x0, y0])
    pick = lambda values: None if values is None else values[keep]  # noqa: E731
    return kept.astype(np.float32), pick(labels), pick(difficult)


def _flip_boxes(boxes: np.ndarray, width: float) -> np.ndarray:
    return np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)


def _resize_boxes(boxes: np.ndarray, scale_x: float, scale_y: float) -> np.ndarray:
    return (boxes * np.array([scale_x, scale_y, scale_x, scale_y], dtype=np.float32)).astype(np.float32)


def expand(image, boxes, ratio: float, left: int, top: int, fill=DEFAULT_MEAN):
    """Zoom out: place the image at ``(left, top)`` on a ``ratio`` times larger canvas filled
    with ``fill`` (the mean colour); boxes move by ``(left, top)``.

    Returns:
        ``(canvas (int(H * ratio), int(W * ratio), 3) uint8, boxes (k, 4))``.
    """
    image = _check_image(image)
    boxes, _, _ = _check_annotations(boxes)
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
    return canvas, _expand_boxes(boxes, left, top)


def crop(image, boxes, labels, window, difficult=None):
    """Cut ``window`` = ``(x0, y0, x1, y1)`` (integer pixels) out of the image; keep the boxes
    whose centre lies inside, clipped to the window and in its coordinates.

    Returns:
        ``(image (y1 - y0, x1 - x0, 3), boxes (j, 4), labels (j,), difficult (j,) or None)``.
    """
    image = _check_image(image)
    boxes, labels, difficult = _check_annotations(boxes, labels, difficult)
    x0, y0, x1, y1 = (int(v) for v in window)
    height, width = image.shape[:2]
    if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
        raise ValueError(f"crop: window {window} is not inside the {width}x{height} image")
    kept, labels, difficult = _crop_boxes(boxes, (x0, y0, x1, y1), labels, difficult)
    return image[y0:y1, x0:x1], kept, labels, difficult


def horizontal_flip(image, boxes):
    """Mirror left-right: ``x -> width - x`` (xmin and xmax swap roles)."""
    image = _check_image(image)
    boxes, _, _ = _check_annotations(boxes)
    return np.ascontiguousarray(image[:, ::-1]), _flip_boxes(boxes, image.shape[1])


def resize(image, boxes, height: int, width: int):
    """Resize to ``height x width`` (Pillow bilinear with antialiasing); boxes scale with it.

    This is the whole validation path. Returns ``(image (height, width, 3) uint8, boxes)``.
    """
    image = _check_image(image)
    boxes, _, _ = _check_annotations(boxes)
    source_height, source_width = image.shape[:2]
    resized = Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized), _resize_boxes(boxes, width / source_width, height / source_height)


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
        _check_probability("RandomExpand", "probability", self.probability)
        _check_range("RandomExpand", "max_ratio", (1, self.max_ratio), lowest=1)

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
        _check_range("RandomSampleCrop", "min_scale", (self.min_scale, 1), lowest=1e-6)
        _check_range("RandomSampleCrop", "aspect", (self.min_aspect, self.max_aspect), lowest=1e-6)
        if not self.min_ious or any(t is not None and not 0 <= t <= 1 for t in self.min_ious):
            raise ValueError(f"RandomSampleCrop.min_ious: expected IoUs in [0, 1] or None, got {self.min_ious!r}")
        if self.max_trials < 1:
            raise ValueError(f"RandomSampleCrop.max_trials: must be >= 1, got {self.max_trials!r}")

    def sample(self, rng: np.random.Generator, boxes, width: int, height: int):
        """An integer window ``(x0, y0, x1, y1)`` inside ``width x height``, or ``None``."""
        boxes, _, _ = _check_annotations(boxes)
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


# ------------------------------------------------------------------------------------------
# The fused path: plan on boxes, render pixels once
# ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AugmentationPlan:
    """Everything one augmented sample needs, worked out from the image size and boxes alone.

    Attributes:
        source_size: ``(width, height)`` of the source image.
        window: ``(x0, y0, x1, y1)`` in source pixels that becomes the output image; it may
            extend beyond the source (the expand canvas), where the output is ``fill``.
        output_size: ``(width, height)`` of the output image.
        flip: mirror the output left-right.
        color: the colour distortion, or ``None``.
        boxes, labels, difficult: the annotations of the output image (pixels of the output).
        expansion, crop_window: the drawn expand ``(ratio, left, top)`` and crop window (in
            canvas pixels), or ``None``; kept to show and test the steps.
    """

    source_size: tuple
    window: tuple
    output_size: tuple
    flip: bool
    color: ColorParams | None
    boxes: np.ndarray
    labels: np.ndarray | None
    difficult: np.ndarray | None
    expansion: tuple | None = None
    crop_window: tuple | None = None

    def describe(self) -> str:
        """A short caption: ``"colour · zoom out x2.4 · crop 61%x48% · flip · 2 boxes"``."""
        parts = []
        if self.color is not None and self.color != ColorParams():
            parts.append("colour")
        if self.expansion is not None:
            parts.append(f"zoom out ×{self.expansion[0]:.1f}")
        if self.crop_window is not None:
            x0, y0, x1, y1 = self.crop_window
            width, height = self.source_size
            if self.expansion is not None:
                width, height = int(width * self.expansion[0]), int(height * self.expansion[0])
            parts.append(f"crop {100 * (x1 - x0) / width:.0f}%×{100 * (y1 - y0) / height:.0f}%")
        if self.flip:
            parts.append("flip")
        parts.append(f"{len(self.boxes)} box{'' if len(self.boxes) == 1 else 'es'}")
        return " · ".join(parts)


def resize_plan(width: int, height: int, boxes, labels=None, difficult=None, output_height=300,
                output_width=300) -> AugmentationPlan:  # fmt: skip
    """The validation path as a plan: the whole image resized to the output size."""
    boxes, labels, difficult = _check_annotations(boxes, labels, difficult)
    scaled = _resize_boxes(boxes, output_width / width, output_height / height)
    return AugmentationPlan((width, height), (0, 0, width, height), (output_width, output_height),
                            False, None, scaled, labels, difficult)  # fmt: skip


def photo_region(plan: AugmentationPlan) -> tuple[tuple[int, int], tuple[int, int]]:
    """The output pixels the photo covers: ``(rows, columns)``, each a half-open ``(start, stop)``
    (columns after the flip). The rest of the output is the expand canvas; where the photo's edge
    falls inside an output pixel, that pixel is canvas (at most one pixel per side)."""
    source_width, source_height = plan.source_size
    x0, y0, x1, y1 = (float(value) for value in plan.window)
    output_width, output_height = plan.output_size
    scale_x, scale_y = output_width / (x1 - x0), output_height / (y1 - y0)
    epsilon = 1e-6  # rounding inwards to whole pixels, with slack for floating point
    columns = (max(0, math.ceil(-x0 * scale_x - epsilon)),
               min(output_width, math.floor((source_width - x0) * scale_x + epsilon)))  # fmt: skip
    rows = (max(0, math.ceil(-y0 * scale_y - epsilon)),
            min(output_height, math.floor((source_height - y0) * scale_y + epsilon)))  # fmt: skip
    if plan.flip:
        columns = (output_width - columns[1], output_width - columns[0])
    return rows, columns


def _resampled_photo(image, plan: AugmentationPlan, rows, columns) -> np.ndarray:
    """The photo's part of the output, ``(rows, columns)`` of :func:`photo_region`: RGB uint8."""
    x0, y0, x1, y1 = (float(value) for value in plan.window)
    output_width, output_height = plan.output_size
    scale_x, scale_y = output_width / (x1 - x0), output_height / (y1 - y0)
    left = output_width - columns[1] if plan.flip else columns[0]  # before the flip
    part_size = (columns[1] - columns[0], rows[1] - rows[0])
    box = (x0 + left / scale_x, y0 + rows[0] / scale_y,
           x0 + (left + part_size[0]) / scale_x, y0 + rows[1] / scale_y)  # source pixels  # fmt: skip
    is_bgr = isinstance(image, EncodedJpeg)
    if is_bgr:
        source = decode_jpeg(image, min(1 / scale_x, 1 / scale_y))
    elif isinstance(image, Image.Image):
        source = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
    else:
        source = np.ascontiguousarray(_check_image(image))
    # The box in the decoded pixels, to whole pixels (a DCT-scaled decode may make it fractional:
    # then the photo moves by at most half an output pixel).
    to_x, to_y = source.shape[1] / plan.source_size[0], source.shape[0] / plan.source_size[1]
    left, right = (min(max(round(value * to_x), 0), source.shape[1]) for value in (box[0], box[2]))
    top, bottom = (min(max(round(value * to_y), 0), source.shape[0]) for value in (box[1], box[3]))
    region = source[top : max(bottom, top + 1), left : max(right, left + 1)]
    # Bilinear, or an area average where it still shrinks twofold (no aliasing).
    shrinking = min(region.shape[1] / part_size[0], region.shape[0] / part_size[1]) >= 2
    part = cv2.resize(region, part_size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    if plan.flip:
        part = cv2.flip(part, 1)
    return cv2.cvtColor(part, cv2.COLOR_BGR2RGB) if is_bgr else part


def render(image, plan: AugmentationPlan, fill=DEFAULT_MEAN, color: bool = True, out=None) -> np.ndarray:
    """Produce the output pixels of a plan in one resampling step.

    ``image`` is the source as a uint8 RGB array, a ``PIL.Image`` or an
    :class:`ssd_lib.jpeg.EncodedJpeg` (decoded here, at 1/2, 1/4 or 1/8 of its size when the plan
    shrinks it that much). The part of the window the photo covers (:func:`photo_region`) is
    resampled with OpenCV, bilinear (an area average where it still shrinks twofold or more); the
    rest is ``fill`` (the expand canvas). The colour distortion then runs in place on the photo's
    pixels only; ``color=False`` leaves it out (the training pipeline applies it on the
    accelerator, :mod:`ssd_lib.photometric`).

    Args:
        out: optional ``(output_height, output_width, 3)`` uint8 array to write into (e.g. a
            slot of a batch), instead of a new array.

    Returns:
        ``(output_height, output_width, 3)`` uint8 RGB array (``out`` if given).
    """
    rows, columns = photo_region(plan)
    output_width, output_height = plan.output_size
    pixels = np.empty((output_height, output_width, 3), np.uint8) if out is None else out
    covered = rows[1] > rows[0] and columns[1] > columns[0]
    if not covered:
        rows = columns = (0, 0)
    canvas = np.rint(np.asarray(fill, dtype=np.float32)).astype(np.uint8)
    for band in (pixels[: rows[0]], pixels[rows[1] :], pixels[rows[0] : rows[1], : columns[0]],
                 pixels[rows[0] : rows[1], columns[1] :]):  # fmt: skip
        band[...] = canvas  # the expand canvas around the photo (nothing when it fills the output)
    if covered:
        photo = pixels[rows[0] : rows[1], columns[0] : columns[1]]
        photo[...] = _resampled_photo(image, plan, rows, columns)
        if color and plan.color is not None:
            # Pointwise, so the same as distorting the photo before expand/crop; the canvas
            # keeps the mean.
            _distort_in_place(photo, plan.color)
    return pixels


class SSDAugmentation:
    """The SSD training augmentation; the entry point of this module.

    Calling it runs, in the original order: colour distortion, expand, random crop, horizontal
    flip, resize to ``height x width`` -- fused into one resampling step (see the module
    docstring). Random draws come from ``rng`` if given, else from the instance's own
    generator seeded with ``seed``; the same generator state gives the same sample.

    Args:
        height, width: output (model input) size in pixels.
        mean: RGB fill colour of the expand canvas.
        seed: seed of the instance's generator.
        photometric, expansion, cropping: the samplers; ``None`` disables a step.
        flip_probability: probability of a horizontal flip.

    Example:
        >>> augment = SSDAugmentation(300, 300, seed=0)
        >>> image, boxes, labels, difficult = augment(photo, boxes, labels)
    """

    def __init__(self, height: int = 300, width: int = 300, mean=DEFAULT_MEAN, seed=None,
                 photometric: PhotometricDistort | None = PhotometricDistort(),
                 expansion: RandomExpand | None = RandomExpand(),
                 cropping: RandomSampleCrop | None = RandomSampleCrop(),
                 flip_probability: float = 0.5):  # fmt: skip
        if int(height) < 1 or int(width) < 1:
            raise ValueError(f"SSDAugmentation: output size must be positive, got {height}x{width}")
        if len(mean) != 3:
            raise ValueError(f"SSDAugmentation.mean: expected 3 values (R, G, B), got {mean!r}")
        _check_probability("SSDAugmentation", "flip_probability", flip_probability)
        self.height, self.width = int(height), int(width)
        self.mean = tuple(float(c) for c in mean)
        self.photometric, self.expansion, self.cropping = photometric, expansion, cropping
        self.flip_probability = flip_probability
        self.rng = np.random.default_rng(seed)

    def plan(self, width: int, height: int, boxes, labels=None, difficult=None,
             rng: np.random.Generator | None = None) -> AugmentationPlan:  # fmt: skip
        """Draw one augmentation for a ``width x height`` image and transform its boxes."""
        rng = self.rng if rng is None else rng
        boxes, labels, difficult = _check_annotations(boxes, labels, difficult)
        color = self.photometric.sample(rng) if self.photometric is not None else None
        # Expand: the canvas is [-left, -top, canvas_w - left, canvas_h - top] in source pixels.
        canvas_width, canvas_height, left, top = width, height, 0, 0
        expansion = self.expansion.sample(rng, width, height) if self.expansion is not None else None
        if expansion is not None:
            ratio, left, top = expansion
            canvas_width, canvas_height = int(width * ratio), int(height * ratio)
            boxes = _expand_boxes(boxes, left, top)
        window = (0, 0, canvas_width, canvas_height)
        crop_window = None
        if self.cropping is not None:
            crop_window = self.cropping.sample(rng, boxes, canvas_width, canvas_height)
        if crop_window is not None:
            window = crop_window
            boxes, labels, difficult = _crop_boxes(boxes, crop_window, labels, difficult)
        flip = bool(rng.random() < self.flip_probability)
        crop_width, crop_height = window[2] - window[0], window[3] - window[1]
        if flip:
            boxes = _flip_boxes(boxes, crop_width)
        boxes = _resize_boxes(boxes, self.width / crop_width, self.height / crop_height)
        source_window = (window[0] - left, window[1] - top, window[2] - left, window[3] - top)
        return AugmentationPlan((width, height), source_window, (self.width, self.height), flip,
                                color, boxes, labels, difficult, expansion, crop_window)  # fmt: skip

    def __call__(self, image, boxes, labels, difficult=None, rng: np.random.Generator | None = None):
        """Augment one sample.

        Args:
            image: ``(H, W, 3)`` uint8 RGB array (or a ``PIL.Image``).
            boxes: ``(k, 4)`` pixel corners; ``k = 0`` is fine.
            labels: ``(k,)`` class ids; difficult: optional ``(k,)`` bool.
            rng: generator to draw from (default: the instance's).

        Returns:
            ``(image (height, width, 3) uint8, boxes (j, 4) float32 output pixels, labels (j,),
            difficult (j,) or None)``; ``j <= k`` (the crop drops boxes whose centre is outside).
        """
        width, height = image.size if isinstance(image, Image.Image) else _check_image(image).shape[1::-1]
        plan = self.plan(width, height, boxes, labels, difficult, rng=rng)
        return render(image, plan, self.mean), plan.boxes, plan.labels, plan.difficult
