"""Augmented training samples and dataset box statistics (notebook 07)."""

from __future__ import annotations

import numpy as np

from .boxes import BoxArtist
from .figures import PixelImage, show_image
from .palette import GT_COLOR


class SampleArtist:
    """One image with its ground-truth boxes and class names on an axes, updatable in place.

    Args:
        ax: the axes.
        image_shape: ``(height, width)`` of the images it will show (fixes the axes limits).
        class_names: names of classes 1..n for the box labels (default: the class ids).
        max_labels: how many box labels to keep ready.
    """

    def __init__(self, ax, image_shape=(300, 300), class_names=None, max_labels: int = 12):
        self.ax = ax
        self.class_names = class_names
        blank = np.zeros((*image_shape[:2], 3), np.uint8)
        show_image(ax, blank).remove()  # limits, aspect and ticks of a photo
        self.image = PixelImage(ax, blank)
        self.boxes = BoxArtist(ax, edgecolor=GT_COLOR, outline=True, max_labels=max_labels)
        self.title = ax.set_title("", fontsize=7.5)

    def set_sample(self, image, boxes, labels=None, title: str | None = None):
        """Show a uint8 ``(H, W, 3)`` image of the shape given at construction with its ``(k, 4)``
        pixel corner ``boxes`` and ``(k,)`` class ids ``labels``."""
        self.image.set_data(np.asarray(image))
        names = None
        if labels is not None:
            names = [self.class_names[int(label) - 1] if self.class_names else str(int(label)) for label in labels]
        self.boxes.set_boxes(np.asarray(boxes, dtype=float).reshape(-1, 4), labels=names)
        if title is not None:
            self.title.set_text(title)
        return self

    def artists(self) -> list:
        """Everything :meth:`set_sample` changes (for blitting)."""
        return [self.image, *self.boxes.artists(), self.title]


def draw_samples(axes, samples, class_names=None) -> list[SampleArtist]:
    """Small multiples: one ``(image, boxes, labels, title)`` sample per axes (extra axes are
    hidden). Returns the :class:`SampleArtist` of each shown sample."""
    axes = list(np.ravel(axes))
    artists = []
    for ax, (image, boxes, labels, title) in zip(axes, samples):
        artist = SampleArtist(ax, np.asarray(image).shape, class_names=class_names)
        artists.append(artist.set_sample(image, boxes, labels, title))
    for ax in axes[len(artists) :]:
        ax.set_visible(False)
    return artists


def box_scale_histogram(ax, box_scales: dict, anchor_scales=(), bins=None, anchor_label: str = "anchor scales"):
    """Histograms of box scales ``sqrt(w * h)`` (fractions of the image side), one per dataset
    (``{name: (k,) scales}``, normalized to a density so datasets of any size compare), with
    the anchor scales ``s_k`` as dotted lines. Returns the axes."""
    bins = np.linspace(0, 1.1, 45) if bins is None else bins
    for name, scales in box_scales.items():
        scales = np.asarray(scales, dtype=float)
        ax.hist(scales, bins=bins, density=True, histtype="step", linewidth=1.8, label=f"{name} ({len(scales)} boxes)")
    for index, scale in enumerate(anchor_scales):
        ax.axvline(scale, color="0.35", linestyle=":", linewidth=1.2, label=anchor_label if index == 0 else None)
    ax.set_xlabel("box scale √(w·h) / image side")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return ax
