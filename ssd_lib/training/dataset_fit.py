"""Defaults for a dataset nobody tuned for: anchor scales, matching threshold, batch and run length
chosen from the training boxes and a time budget.

``python -m ssd_lib.train --model small --data PATH`` starts from a model's configuration and
adapts it to the data:

- **anchor scales**: among chains of scales growing by a constant factor (and the model's own),
  the one whose anchors cover the most training boxes, i.e. give them a best IoU of at least the
  matching threshold (:func:`ssd_lib.anchors.best_anchor_iou`, notebook 01's coverage); ties go
  to the higher mean best IoU;
- **matching**: IoU 0.5 (the paper) when the chosen anchors cover at least 90 % of the boxes
  there, else 0.4, so that small and thin boxes still get positive anchors;
- **batch and run length**: batches of at most 32 and at least 8 images, an epoch of at least
  :data:`MIN_EPOCH_IMAGES` images (a small dataset is repeated; augmentation makes the copies
  differ), and a first estimate of the epochs that fit in the time budget at the model's
  typical seconds per image, between :data:`MIN_STEPS` and :data:`MAX_STEPS` optimizer steps.
  The training then times its first epoch and sets the run's length
  (:mod:`ssd_lib.training.time_budget`, :meth:`DatasetFit.time_budget`): image sizes, CPUs and
  the machine's load differ too much for a fixed cost per image.

Explained in notebooks/01_anchor_scales.ipynb (coverage).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..anchors import best_anchor_iou, generate_anchors, records_to_normalized_corners
from ..config import SSDConfig
from .time_budget import TimeBudget

__all__ = ["DatasetFit", "candidate_scales", "best_ious_by_scales", "choose_scales", "fit_to_dataset", "SECONDS_PER_IMAGE",
           "MIN_EPOCH_IMAGES", "MIN_STEPS", "MAX_STEPS"]  # fmt: skip

#: Training seconds per image and epoch (forward, backward, loading and augmenting a photo),
#: measured on the 2-core CI machine: the small model at width 0.5 (192 px) and the VGG16 SSDs;
#: only the first estimate of a run's length (the first epoch is timed).
SECONDS_PER_IMAGE = {"small": 0.03, "ssd300": 0.6, "ssd512": 1.8}
#: Images per epoch at least: a smaller training set is repeated.
MIN_EPOCH_IMAGES = 256
#: Optimizer steps of a run at least (below, a model from scratch has not converged) and at most.
MIN_STEPS, MAX_STEPS = 300, 4000
#: Boxes sampled for the coverage search (the search is over the whole anchor set).
MAX_COVERAGE_BOXES = 1000
_SMALLEST = (0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.13, 0.16, 0.2)
_LARGEST = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def candidate_scales(config: SSDConfig) -> list[tuple]:
    """``config.scales`` and geometric chains from each of ``0.02 .. 0.2`` to each of ``0.5 .. 0.95``."""
    return [tuple(config.scales)] + [_geometric_scales(small, large, config.n_layers)
                                     for small in _SMALLEST for large in _LARGEST]  # fmt: skip


def _geometric_scales(smallest: float, largest: float, n_layers: int) -> tuple[float, ...]:
    """``n_layers + 1`` scales from ``smallest`` to ``largest`` (layer ``n_layers - 1``) growing by a
    constant factor, plus the next one for the last layer's extra box."""
    factor = (largest / smallest) ** (1.0 / max(n_layers - 1, 1))
    return tuple(float(smallest * factor**k) for k in range(n_layers + 1))


def best_ious_by_scales(config: SSDConfig, gt_corners) -> dict[tuple, np.ndarray]:
    """``{scales: (k,) best anchor IoU of each box}`` for every :func:`candidate_scales`."""
    return {scales: best_anchor_iou(gt_corners, generate_anchors(dataclasses.replace(config, scales=scales)))
            for scales in candidate_scales(config)}  # fmt: skip


def choose_scales(best_ious: dict[tuple, np.ndarray], threshold: float = 0.5) -> tuple[tuple, float]:
    """The scales whose anchors cover the most boxes (best IoU >= ``threshold``); ties go to the
    higher mean best IoU.

    Args:
        best_ious: :func:`best_ious_by_scales`' result.

    Returns:
        ``(scales, coverage)``: coverage is the fraction of boxes covered.
    """
    scales = max(best_ious, key=lambda key: (np.mean(best_ious[key] >= threshold), np.mean(best_ious[key])))
    return scales, float(np.mean(best_ious[scales] >= threshold))


@dataclasses.dataclass(frozen=True)
class DatasetFit:
    """What :func:`fit_to_dataset` chose, and why.

    Attributes:
        scales: the anchor scales (``SSDConfig.scales``).
        coverage: fraction of the training boxes with an anchor of IoU >= ``pos_iou_threshold``.
        model_coverage: the same with the model's own scales.
        pos_iou_threshold: the matching threshold (positives; also the background limit).
        batch_size, epochs: the run's batches and length (the first estimate).
        repeats: how often each training image occurs per epoch.
        n_boxes: training boxes the coverage was measured on.
        min_epochs, max_epochs: the epochs of :data:`MIN_STEPS` and :data:`MAX_STEPS`.
        budget_seconds: the time budget.
    """

    scales: tuple
    coverage: float
    model_coverage: float
    pos_iou_threshold: float
    batch_size: int
    epochs: int
    repeats: int
    n_boxes: int
    min_epochs: int
    max_epochs: int
    budget_seconds: float

    def describe(self) -> str:
        """One paragraph for the log."""
        scales = ", ".join(f"{scale:.3f}" for scale in self.scales)
        return (f"anchor scales {scales}: {self.coverage:.0%} of {self.n_boxes} training boxes have an anchor "
                f"with IoU >= {self.pos_iou_threshold} (the model's own scales: {self.model_coverage:.0%}); "
                f"matching at IoU {self.pos_iou_threshold}; batch {self.batch_size}, each training image "
                f"{self.repeats}x per epoch; about {self.epochs} epochs in {self.budget_seconds / 60:g} min, "
                f"set after the first epoch")  # fmt: skip

    def time_budget(self, evaluations: int | None = 4) -> TimeBudget:
        """The :class:`~ssd_lib.training.time_budget.TimeBudget` that sets the run's length
        (``evaluations``: validation mAPs over the run, ``None`` keeps the recipe's interval)."""
        return TimeBudget(self.budget_seconds, max_epochs=self.max_epochs, advised_epochs=self.min_epochs,
                          evaluations=evaluations)  # fmt: skip


def fit_to_dataset(config: SSDConfig, records, seconds_per_image: float, budget_seconds: float,
                   seed: int = 0) -> DatasetFit:  # fmt: skip
    """Anchor scales, matching threshold, batch size and epochs for ``records`` (module docstring).

    Args:
        config: the model's configuration (its layers; its scales are one candidate).
        records: the training records (pixel boxes and image sizes).
        seconds_per_image: the model's training time per image (:data:`SECONDS_PER_IMAGE`).
        budget_seconds: the training time to aim for.
        seed: which boxes are sampled when there are more than :data:`MAX_COVERAGE_BOXES`.

    Raises:
        ValueError: no records, no boxes, or a budget that is not positive.
    """
    if not len(records):
        raise ValueError("fit_to_dataset: no training images")
    if not budget_seconds > 0:
        raise ValueError(f"fit_to_dataset: the time budget must be > 0 seconds, got {budget_seconds!r}")
    corners = records_to_normalized_corners(records)
    if len(corners) == 0:
        raise ValueError("fit_to_dataset: the training images have no boxes")
    if len(corners) > MAX_COVERAGE_BOXES:
        corners = corners[np.random.default_rng(seed).choice(len(corners), MAX_COVERAGE_BOXES, replace=False)]
    best_ious = best_ious_by_scales(config, corners)
    threshold = 0.5 if choose_scales(best_ious, 0.5)[1] >= 0.9 else 0.4
    scales, coverage = choose_scales(best_ious, threshold)
    model_coverage = float(np.mean(best_ious[tuple(config.scales)] >= threshold))
    n_images = len(records)
    batch_size = int(min(32, max(8, 2 ** math.floor(math.log2(max(n_images // 8, 1))))))
    repeats = math.ceil(MIN_EPOCH_IMAGES / n_images)
    steps_per_epoch = math.ceil(n_images * repeats / batch_size)
    steps = budget_seconds / (seconds_per_image * batch_size)
    steps = min(max(steps, MIN_STEPS), MAX_STEPS)
    epochs = max(math.ceil(steps / steps_per_epoch), 2)
    min_epochs, max_epochs = (max(math.ceil(limit / steps_per_epoch), 2) for limit in (MIN_STEPS, MAX_STEPS))
    return DatasetFit(scales, coverage, model_coverage, threshold, batch_size, epochs, repeats, len(corners),
                      min_epochs, max_epochs, float(budget_seconds))  # fmt: skip
