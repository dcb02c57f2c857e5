"""An augmented sample worked out on the boxes alone: :class:`AugmentationPlan` (window, output
size, flip, colour, output boxes), the validation path as a plan (:func:`resize_plan`) and the
output pixels the photo covers (:func:`photo_region`). No pixels are touched here;
:func:`ssd_lib.augment.render` produces them.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .checks import check_annotations
from .color import ColorParams
from .geometric import resize_boxes


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
    boxes, labels, difficult = check_annotations(boxes, labels, difficult)
    scaled = resize_boxes(boxes, output_width / width, output_height / height)
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
