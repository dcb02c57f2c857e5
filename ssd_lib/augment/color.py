"""The photometric distortions of SSD training, on the host: brightness, contrast, saturation,
hue and a channel permutation of ``uint8`` ``(H, W, 3)`` RGB images (pointwise; boxes unchanged).

:class:`PhotometricDistort` draws one distortion (:class:`ColorParams`) from a
``numpy.random.Generator``; the ``adjust_*`` functions and :func:`swap_channels` are its steps one
by one. The training pipeline runs the same maths on the accelerator (:mod:`ssd_lib.photometric`).

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import threading

import numpy as np

from .checks import check_image, check_probability, check_range


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
    return _apply_lut(check_image(image).copy(), _lut_brightness(delta))


def adjust_contrast(image, factor: float) -> np.ndarray:
    """Multiply every channel by ``factor`` (e.g. uniform in [0.5, 1.5]), clipped to [0, 255]."""
    return _apply_lut(check_image(image).copy(), _lut_contrast(factor))


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
    return _saturation_hue(check_image(image).copy(), factor, 0.0)


def adjust_hue(image, degrees: float) -> np.ndarray:
    """Rotate the HSV hue by ``degrees`` (e.g. uniform in [-18, 18]), wrapping around 360."""
    return _saturation_hue(check_image(image).copy(), 1.0, degrees)


def swap_channels(image, order) -> np.ndarray:
    """Reorder the colour channels, e.g. ``order=(2, 0, 1)`` (the original's "lighting noise")."""
    order = tuple(int(channel) for channel in order)
    if sorted(order) != [0, 1, 2]:
        raise ValueError(f"order: expected a permutation of (0, 1, 2), got {order}")
    return np.ascontiguousarray(check_image(image)[..., order])


@dataclasses.dataclass(frozen=True)
class ColorParams:
    """One draw of :class:`PhotometricDistort`; neutral values mean "step skipped"."""

    brightness_delta: float = 0.0
    contrast_factor: float = 1.0
    contrast_first: bool = True
    saturation_factor: float = 1.0
    hue_shift: float = 0.0
    channel_order: tuple = (0, 1, 2)


def distort_in_place(image: np.ndarray, params: ColorParams) -> np.ndarray:
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
        check_probability("PhotometricDistort", "probability", self.probability)
        check_probability("PhotometricDistort", "channel_swap_probability", self.channel_swap_probability)
        check_range("PhotometricDistort", "contrast_range", self.contrast_range)
        check_range("PhotometricDistort", "saturation_range", self.saturation_range)
        check_range("PhotometricDistort", "brightness_delta", (0, self.brightness_delta))
        check_range("PhotometricDistort", "hue_delta", (0, self.hue_delta))

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
        return distort_in_place(check_image(image).copy(), params)

    def __call__(self, image, rng: np.random.Generator) -> np.ndarray:
        return self.apply(image, self.sample(rng))
