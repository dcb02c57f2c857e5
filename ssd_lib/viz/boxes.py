"""Boxes on an image: many rectangles as one updatable artist, with labels laid out to stay readable."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.collections import PolyCollection
from matplotlib.text import Text

from ..boxes import centroids_to_corners, check_boxes
from .palette import GT_COLOR, HIGHLIGHT_COLOR, OUTLINE, aspect_ratio_color
from .palette import outline as outline_effects


def _polygons(corners: np.ndarray) -> np.ndarray:
    """``(n, 4)`` corners -> ``(n, 4, 2)`` rectangle vertices."""
    x0, y0, x1, y1 = (corners[:, i] for i in range(4))
    return np.stack(
        [np.stack([x0, y0], -1), np.stack([x1, y0], -1), np.stack([x1, y1], -1), np.stack([x0, y1], -1)],
        axis=1,
    )


class BoxLabels(matplotlib.artist.Artist):
    """The text labels of a :class:`BoxArtist`, laid out when drawn so that none is cut off or
    hidden by another.

    A label sits just above its box's top-left corner. Where the axes end above the box, it
    moves inside the box; where they end on the right, it moves left to fit; a label that would
    cover an earlier one moves down below it. Positions are computed at every draw, in display
    pixels, so they hold for any figure size and layout.
    """

    #: Text style of a label: white on translucent black.
    STYLE = dict(fontsize=8, color="white", bbox=dict(boxstyle="square,pad=0.1", facecolor="black", alpha=0.6, lw=0))

    def __init__(self, ax, n_labels: int, zorder: float):
        super().__init__()
        self.set_zorder(zorder)
        self.texts = [Text(0, 0, "", visible=False, **self.STYLE) for _ in range(n_labels)]
        self._boxes = np.zeros((0, 4))
        ax.add_artist(self)
        for text in self.texts:
            text.set_figure(ax.figure)
            text.axes = ax
            text.set_transform(ax.transData)
            text.set_clip_path(ax.patch)

    def set_labels(self, corners, labels) -> None:
        """Label the first ``len(labels)`` of ``(n, 4)`` data-coordinate ``corners``."""
        count = min(len(labels), len(corners), len(self.texts))
        self._boxes = np.asarray(corners, dtype=float)[:count]
        for index, text in enumerate(self.texts):
            text.set_visible(index < count)
            if index < count:
                text.set_text(labels[index])
        self.stale = True

    def draw(self, renderer) -> None:
        if not self.get_visible():
            return
        ax = self.axes
        to_display, to_data = ax.transData.transform, ax.transData.inverted().transform
        frame = ax.bbox
        placed = []
        for text, (x0, y0, _, y1) in zip(self.texts, self._boxes):
            (left, edge_0), (_, edge_1) = to_display([(x0, y0), (x0, y1)])
            text.set_horizontalalignment("left")
            text.set_verticalalignment("bottom")
            text.set_position(to_data((left, max(edge_0, edge_1))))  # display y grows upwards: the top edge
            extent = text.get_window_extent(renderer)
            if extent.y1 > frame.y1:  # past the top of the axes: inside the box
                extent = extent.translated(0, -extent.height - 2)
            extent = extent.translated(max(min(0.0, frame.x1 - extent.x1), frame.x0 - extent.x0), 0)
            for _ in placed:  # below every earlier label it would cover
                covered = [other for other in placed if extent.overlaps(other)]
                if not covered:
                    break
                extent = extent.translated(0, min(other.y0 for other in covered) - extent.y1 - 1)
            text.set_position(to_data((extent.x0, extent.y0)))
            text.draw(renderer)
            placed.append(extent)
        self.stale = False


class BoxArtist:
    """Many rectangles (one ``PolyCollection``) plus optional text labels, updatable in place.

    Args:
        ax: the axes to draw into.
        edgecolor: one colour for all boxes (overridden per box by ``set_boxes(colors=...)``).
        linewidth: line width in points.
        outline: ``True`` draws a black outline under the lines (light lines on photos); a colour
            draws an outline of that colour (``"white"`` for highlights, :func:`draw_highlight`).
        max_labels: how many text labels to keep ready (:class:`BoxLabels`, made once).
    """

    def __init__(self, ax, edgecolor=GT_COLOR, linewidth=2.0, outline=False, max_labels=0,
                 linestyle="solid", alpha=1.0, zorder=3):  # fmt: skip
        self.ax = ax
        self.collection = PolyCollection(
            [], closed=True, facecolors="none", edgecolors=edgecolor, linewidths=linewidth,
            linestyles=linestyle, alpha=alpha, zorder=zorder,
        )  # fmt: skip
        if outline:
            self.collection.set_path_effects(OUTLINE if outline is True else outline_effects(outline))
        ax.add_collection(self.collection)
        self._default_color = edgecolor
        self.label_layer = BoxLabels(ax, max_labels, zorder + 1)
        self.labels = self.label_layer.texts

    def set_boxes(self, corners, colors=None, labels=None):
        """Replace the boxes: ``(n, 4)`` corners in data coordinates, optional per-box colours
        (``(n, 4)`` RGBA or a list) and text labels for the first boxes (:class:`BoxLabels`)."""
        corners = check_boxes(corners).reshape(-1, 4)
        self.collection.set_verts(_polygons(corners))
        self.collection.set_edgecolor(self._default_color if colors is None else colors)
        self.label_layer.set_labels(corners, [] if labels is None else list(labels))
        return self

    def artists(self) -> list:
        """Everything :meth:`set_boxes` changes (for blitting explorers)."""
        return [self.collection, self.label_layer]


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
    return draw_boxes(ax, corners, colors=colors, edgecolor=aspect_ratio_color(1.0), linewidth=linewidth,
                      outline=False, **kwargs)  # fmt: skip


def draw_highlight(ax, corners=None, linewidth=1.5, **kwargs) -> BoxArtist:
    """Draw the region looked at (a cell, a receptive field): ``(n, 4)`` corners in data
    coordinates (none yet by default), black and dashed with a white outline
    (:data:`~ssd_lib.viz.palette.HIGHLIGHT_COLOR`)."""
    corners = np.zeros((0, 4)) if corners is None else corners
    return draw_boxes(ax, corners, edgecolor=HIGHLIGHT_COLOR, linewidth=linewidth, linestyle="dashed",
                      outline="white", **kwargs)  # fmt: skip
