"""Notebook 07's explorer: a grid of SSD training augmentations of one photo."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import augment, viz
from .base import BlitExplorer


class AugmentationExplorer(BlitExplorer):
    """A grid of SSD training augmentations of one photo; a seed slider draws new ones.

    Sample ``k`` of the grid draws from ``numpy.random.default_rng([seed, k])``, so a seed
    always shows the same grid. Checkboxes switch the steps of
    :class:`ssd_lib.augment.SSDAugmentation` on and off (colour distortion, expand, crop,
    flip); each panel's title says what its sample got.

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo.
        boxes: ``(k, 4)`` pixel corners; labels: ``(k,)`` class ids.
        class_names: names of classes 1..n for the box labels.
        height, width: output size of the augmentation (the model input).
        rows, columns: the grid.
        seed: initial seed.
        box_labels: write the class name on every box (text costs ~40% of a redraw).

    Attributes:
        seed, colour, expand, crop, flip: the controls.
        samples: the :class:`ssd_lib.viz.SampleArtist` of each panel.
        plans: the :class:`ssd_lib.augment.AugmentationPlan` of each panel (last draw).

    Explained in notebooks/07_data_pipeline.ipynb.
    """

    image_format = "jpeg"

    def __init__(self, image, boxes, labels, class_names=None, height: int = 300, width: int = 300,
                 rows: int = 2, columns: int = 3, seed: int = 0, box_labels: bool = False):  # fmt: skip
        self.photo = np.asarray(image)
        self.gt_boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.gt_labels = np.asarray(labels).reshape(-1)
        self.output_height, self.output_width = int(height), int(width)
        self.n_samples = rows * columns
        self.seed = widgets.IntSlider(value=seed, min=0, max=999, description="seed", continuous_update=False)
        self.colour = widgets.Checkbox(value=True, description="colour", indent=False)
        self.expand = widgets.Checkbox(value=True, description="expand", indent=False)
        self.crop = widgets.Checkbox(value=True, description="crop", indent=False)
        self.flip = widgets.Checkbox(value=True, description="flip", indent=False)
        for checkbox in (self.colour, self.expand, self.crop, self.flip):
            checkbox.layout = widgets.Layout(width="90px")
        figure, axes = viz.new_figure(figsize=(3.4 * columns, 3.5 * rows), dpi=80, nrows=rows, ncols=columns,
                                      squeeze=False)  # fmt: skip
        self.samples = [viz.SampleArtist(ax, (self.output_height, self.output_width), class_names=class_names,
                                         max_labels=12 if box_labels else 0) for ax in axes.ravel()]  # fmt: skip
        self.plans = []
        super().__init__([self.seed, self.colour, self.expand, self.crop, self.flip], figure)

    def augmentation(self):
        """The :class:`~ssd_lib.augment.SSDAugmentation` the checkboxes describe."""
        return augment.SSDAugmentation(
            self.output_height, self.output_width,
            photometric=augment.PhotometricDistort() if self.colour.value else None,
            expansion=augment.RandomExpand() if self.expand.value else None,
            cropping=augment.RandomSampleCrop() if self.crop.value else None,
            flip_probability=0.5 if self.flip.value else 0.0,
        )  # fmt: skip

    def animated_artists(self) -> list:
        return [artist for sample in self.samples for artist in sample.artists()]

    def draw(self) -> None:
        augmentation = self.augmentation()
        height, width = self.photo.shape[:2]
        self.plans = []
        for index, sample in enumerate(self.samples):
            rng = np.random.default_rng([self.seed.value, index])
            plan = augmentation.plan(width, height, self.gt_boxes, self.gt_labels, rng=rng)
            pixels = augment.render(self.photo, plan, augmentation.mean)
            sample.set_sample(pixels, plan.boxes, plan.labels, title=plan.describe())
            self.plans.append(plan)
