"""The output pixels of an :class:`~ssd_lib.augment.plan.AugmentationPlan` in one resampling step.

Expand + crop + resize become a single OpenCV resize of the visible part of the source photo onto
a mean-filled output, so the zoomed-out canvas is never built and a JPEG can be decoded at
reduced size (:class:`ssd_lib.jpeg.EncodedJpeg`, libjpeg's DCT scaling). The colour distortion
is pointwise, so it commutes with cropping and flipping: it runs on the output pixels that come
from the photo (the canvas keeps the mean), which equals the original order up to interpolation
rounding.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from ..jpeg import EncodedJpeg, decode_jpeg
from .checks import check_image
from .color import distort_in_place
from .geometric import DEFAULT_MEAN
from .plan import AugmentationPlan, photo_region


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
        source = np.ascontiguousarray(check_image(image))
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
    canvas = np.rint(np.asarray(fill, dtype=np.float32)).astype(np.uint8)
    if rows[1] <= rows[0] or columns[1] <= columns[0]:  # the photo covers no output pixel
        pixels[...] = np.tile(canvas, (output_width, 1))  # row by row: numpy copies whole rows
        return pixels
    part = _resampled_photo(image, plan, rows, columns)
    # The photo with the expand canvas around it (no border when it fills the output), written
    # in one step (filling a band of a uint8 array with a 3-value colour in numpy takes longer
    # than the rest of the sample).
    framed = cv2.copyMakeBorder(part, rows[0], output_height - rows[1], columns[0], output_width - columns[1],
                                cv2.BORDER_CONSTANT, dst=pixels, value=canvas.tolist())  # fmt: skip
    if framed is not pixels:  # OpenCV wrote a new array (``out`` not contiguous)
        pixels[...] = framed
    if color and plan.color is not None:
        # Pointwise, so the same as distorting the photo before expand/crop; the canvas keeps
        # the mean.
        distort_in_place(pixels[rows[0] : rows[1], columns[0] : columns[1]], plan.color)
    return pixels
