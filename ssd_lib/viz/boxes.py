"""Boxes on an image: many rectangles as one updatable artist, ground truth, anchors."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import PolyCollection

from ..boxes import centroids_to_corners, check_boxes
from .palette import GT_COLOR, OUTLINE, aspect_ratio_color


def _polygons(corners: np.ndarray) -> np.ndarray:
    """``(n, 4)`` corners -> ``(n, 4, 2)`` rectangle vertices."""
    x0, y0, x1, y1 = (corners[:, i] for i in range(4))
    return np.stack(
        [np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1), np.stack([x0, y1], -1)],
        axis=1,
    )


class BoxArtist:
    """Many rectangles (one ``PolyCollection``) plus optional text labels, updatable in place.

    Args:
        ax: the axes to draw into.
        edgecolor: one colour for all boxes (overridden per box by ``set_boxes(colors=...)``).
        linewidth: line width in points.
        outline: draw a black outline under the lines (for light colours on photos).
        max_labels: how many text labels to keep ready (label artists are made once).
    """

    def __init__(self, ax, edgecolor=GT_COLOR, linewidth=2.0, outline=False, max_labels=0,
                 linestyle="solid", alpha=1.0, zorder=3):  # fmt: skip
        self.ax = ax
        self.collection = PolyCollection(
            [], closed=True, facecolors="none", edgecolors=edgecolor, linewidths=linewidth,
            linestyles=linestyle, alpha=alpha, zorder=zorder,
        )  # fmt: skip
        if outline:
            self.collection.set_path_effects(OUTLINE)
        ax.add_collection(self.collection)
        self._default_color = edgecolor
        self.labels = [
            ax.text(0, 0, "", fontsize=8, color="white", va="bottom", ha="left", visible=False,
                    zorder=zorder + 1, clip_on=True,
                    bbox=dict(boxstyle="square,pad=0.1", facecolor="black", alpha=0.6, lw=0))
            for _ in range(max_labels)
        ]  # fmt: skip

    def set_boxes(self, corners, colors=None, labels=None):
        """Replace the boxes: ``(n, 4)`` corners in data coordinates, optional per-box colours
        (``(n, 4)`` RGBA or a list) and text labels (drawn at each box's top-left corner)."""
        corners = check_boxes(corners).reshape(-1, 4)
        self.collection.set_verts(_polygons(corners))
        self.collection.set_edgecolor(self._default_color if colors is None else colors)
        labels = [] if labels is None else list(labels)
        for k, text in enumerate(self.labels):
            if k < len(labels) and k < len(corners):
                text.set_position((corners[k, 0], corners[k, 1]))
                text.set_text(labels[k])
                text.set_visible(True)
            else:
                text.set_visible(False)
        return self


def draw_boxes(ax, corners, labels=None, colors=None, edgecolor=GT_COLOR, linewidth=2.0,
               outline=True, **kwargs) -> BoxArtist:  # fmt: skip
    """Draw ``(n, 4)`` corner boxes (data coordinates, e.g. pixels) with optional labels.

    Defaults draw ground truth: white with a black outline.
    """
    corners = check_boxes(corners).reshape(-1, 4)
    n_labels = 0 if labels is None else len(labels)
    artist = BoxArtist(ax, edgecolor=edgecolor, linewidth=linewidth, outline=outline,
                       max_labels=n_labels, **kwargs)  # fmt: skip
    return artist.set_boxes(corners, colors=colors, labels=labels)


def draw_anchors(ax, anchors, image_width, image_height, aspect_ratios=None, linewidth=1.0,
                 **kwargs) -> BoxArtist:  # fmt: skip
    """Draw normalized centroid anchors ``(n, 4)`` on an image of the given size in pixels,
    coloured by aspect ratio when ``aspect_ratios`` ``(n,)`` is given."""
    anchors = check_boxes(anchors).reshape(-1, 4)
    corners = centroids_to_corners(anchors) * np.array([image_width, image_height] * 2)
    colors = None if aspect_ratios is None else aspect_ratio_color(aspect_ratios)
    return draw_boxes(ax, corners, colors=colors, edgecolor="tab:cyan", linewidth=linewidth,
                      outline=False, **kwargs)  # fmt: skip
