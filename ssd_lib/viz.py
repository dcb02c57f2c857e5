"""Drawing boxes, anchors and images with matplotlib; the same colours in every notebook.

Colour conventions:

- ground truth: white with a black outline;
- anchors: coloured by aspect ratio (:func:`aspect_ratio_color`);
- matching: positive / neutral / background anchors in :data:`MATCH_COLORS`;
- detections: coloured by class (:func:`class_color`).

Functions draw into a given ``Axes`` and return the artists they made, so explorers can update
them in place (``BoxArtist.set_boxes``) instead of redrawing the figure.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from PIL import Image

from .boxes import centroids_to_corners, check_boxes

__all__ = [
    "GT_COLOR",
    "MATCH_COLORS",
    "aspect_ratio_color",
    "class_color",
    "new_figure",
    "figure_to_png",
    "show_image",
    "BoxArtist",
    "draw_boxes",
    "draw_anchors",
]

GT_COLOR = "white"
MATCH_COLORS = {"positive": "#2ca02c", "neutral": "#ff7f0e", "background": "#7f7f7f"}
_OUTLINE = [patheffects.Stroke(linewidth=3.5, foreground="black"), patheffects.Normal()]
_RATIO_CMAP = matplotlib.colormaps["coolwarm"]
_CLASS_CMAP = matplotlib.colormaps["tab20"]


def aspect_ratio_color(aspect_ratio):
    """RGBA colour of an aspect ratio: blue for tall (r < 1), grey-white for 1, red for wide.

    Uses ``log(r)`` on a symmetric scale, so r and 1/r are equally far from the middle.
    Accepts a scalar or an array (returns ``(..., 4)``).
    """
    position = 0.5 + np.log(np.asarray(aspect_ratio, dtype=float)) / (2 * np.log(4.0))
    return _RATIO_CMAP(np.clip(position, 0.0, 1.0))


def class_color(class_id):
    """RGBA colour of a class id (0 = background is grey); scalar or array."""
    class_id = np.asarray(class_id, dtype=int)
    colors = np.asarray(_CLASS_CMAP(((class_id - 1) * 2) % 20 + ((class_id - 1) // 10) % 2))
    return np.where((class_id == 0)[..., None], matplotlib.colors.to_rgba("#7f7f7f"), colors)


def new_figure(figsize=(6.0, 6.0), dpi: int = 80, **subplot_kw) -> tuple[Figure, object]:
    """A figure detached from pyplot (for explorers): ``(figure, axes)``.

    It is drawn by :func:`figure_to_png`, never shown inline by the notebook backend.
    ``subplot_kw`` goes to ``Figure.subplots`` (``nrows``, ``ncols``, ``gridspec_kw`` ...).
    """
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(**subplot_kw)
    return figure, axes


def figure_to_png(figure: Figure, freeze_layout: bool = True) -> bytes:
    """Render a figure with Agg and encode it as PNG bytes (fast compression).

    With ``freeze_layout`` the layout computed by this first render is kept for later renders
    (constrained layout costs as much as the drawing itself), as explorers want.
    """
    figure.canvas.draw()
    if freeze_layout and figure.get_layout_engine() is not None:
        figure.set_layout_engine("none")
    rgba = np.asarray(figure.canvas.buffer_rgba())
    buffer = io.BytesIO()
    Image.fromarray(rgba[..., :3]).save(buffer, format="png", compress_level=1)
    return buffer.getvalue()


def show_image(ax, image, title: str | None = None):
    """Show an ``(H, W, 3)`` image with pixel coordinates (origin top-left); return the artist."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8) if image.max() > 1.0 else image
    artist = ax.imshow(image, interpolation="antialiased")
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return artist


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
            self.collection.set_path_effects(_OUTLINE)
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
