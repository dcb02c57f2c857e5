"""The SSD training augmentation: colour distortions, expand (zoom out), IoU-constrained random
crop (zoom in), horizontal flip and resize; validation images are only resized.

Everything works on ``uint8`` ``(H, W, 3)`` RGB images and ``(k, 4)`` pixel corner boxes
``(xmin, ymin, xmax, ymax)``, with ``(k,)`` labels and optionally ``(k,)`` difficult flags.
Pixel ``(row, col)`` covers the square ``[col, col + 1] x [row, row + 1]``, so a box drawn over
columns ``a .. b - 1`` has ``xmin = a, xmax = b`` and flipping maps ``x`` to ``width - x``.

Modules (one concept each):

- ``color``: the photometric steps (:func:`adjust_brightness` ... :func:`swap_channels`) and
  their sampler :class:`PhotometricDistort`, which draws :class:`ColorParams`;
- ``geometric``: :func:`expand`, :func:`crop`, :func:`horizontal_flip`, :func:`resize` (pixels and
  boxes) and the samplers :class:`RandomExpand`, :class:`RandomSampleCrop`; composed with the
  colour steps in the original order they are the reference;
- ``plan``: :class:`AugmentationPlan`, one sample worked out on the boxes alone
  (:func:`resize_plan` for validation, :func:`photo_region`);
- ``render``: :func:`render`, the plan's output pixels in one resampling step (expand + crop +
  resize fused, JPEGs decoded at reduced size);
- ``ssd_augmentation``: :class:`SSDAugmentation`, the entry point: draws, plans, renders;
- ``checks``: the input checks the others share.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from ssd_lib.augment.color import (
    ColorParams,
    PhotometricDistort,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    swap_channels,
)
from ssd_lib.augment.geometric import (
    CROP_MIN_IOUS,
    DEFAULT_MEAN,
    RandomExpand,
    RandomSampleCrop,
    crop,
    expand,
    horizontal_flip,
    resize,
)
from ssd_lib.augment.plan import AugmentationPlan, photo_region, resize_plan
from ssd_lib.augment.render import render
from ssd_lib.augment.ssd_augmentation import SSDAugmentation

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
