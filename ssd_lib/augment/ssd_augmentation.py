"""The SSD training augmentation, the entry point of :mod:`ssd_lib.augment`: :class:`SSDAugmentation`
draws colour, expand, crop and flip, plans the boxes and renders the output in one step.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .checks import check_annotations, check_image, check_probability
from .color import PhotometricDistort
from .geometric import (DEFAULT_MEAN, RandomExpand, RandomSampleCrop, crop_boxes, expand_boxes, flip_boxes,
                        resize_boxes)
from .plan import AugmentationPlan
from .render import render


class SSDAugmentation:
    """The SSD training augmentation; the entry point of :mod:`ssd_lib.augment`.

    Calling it runs, in the original order: colour distortion, expand, random crop, horizontal
    flip, resize to ``height x width`` -- fused into one resampling step (see
    :mod:`ssd_lib.augment.render`). Random draws come from ``rng`` if given, else from the
    instance's own generator seeded with ``seed``; the same generator state gives the same
    sample.

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
        check_probability("SSDAugmentation", "flip_probability", flip_probability)
        self.height, self.width = int(height), int(width)
        self.mean = tuple(float(c) for c in mean)
        self.photometric, self.expansion, self.cropping = photometric, expansion, cropping
        self.flip_probability = flip_probability
        self.rng = np.random.default_rng(seed)

    def plan(self, width: int, height: int, boxes, labels=None, difficult=None,
             rng: np.random.Generator | None = None) -> AugmentationPlan:  # fmt: skip
        """Draw one augmentation for a ``width x height`` image and transform its boxes."""
        rng = self.rng if rng is None else rng
        boxes, labels, difficult = check_annotations(boxes, labels, difficult)
        color = self.photometric.sample(rng) if self.photometric is not None else None
        # Expand: the canvas is [-left, -top, canvas_w - left, canvas_h - top] in source pixels.
        canvas_width, canvas_height, left, top = width, height, 0, 0
        expansion = self.expansion.sample(rng, width, height) if self.expansion is not None else None
        if expansion is not None:
            ratio, left, top = expansion
            canvas_width, canvas_height = int(width * ratio), int(height * ratio)
            boxes = expand_boxes(boxes, left, top)
        window = (0, 0, canvas_width, canvas_height)
        crop_window = None
        if self.cropping is not None:
            crop_window = self.cropping.sample(rng, boxes, canvas_width, canvas_height)
        if crop_window is not None:
            window = crop_window
            boxes, labels, difficult = crop_boxes(boxes, crop_window, labels, difficult)
        flip = bool(rng.random() < self.flip_probability)
        crop_width, crop_height = window[2] - window[0], window[3] - window[1]
        if flip:
            boxes = flip_boxes(boxes, crop_width)
        boxes = resize_boxes(boxes, self.width / crop_width, self.height / crop_height)
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
        width, height = image.size if isinstance(image, Image.Image) else check_image(image).shape[1::-1]
        plan = self.plan(width, height, boxes, labels, difficult, rng=rng)
        return render(image, plan, self.mean), plan.boxes, plan.labels, plan.difficult
