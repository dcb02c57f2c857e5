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
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from PIL import Image

from .anchors import cell_box_shapes
from .boxes import centroids_to_corners, check_boxes
from .encoder import NEUTRAL, POSITIVE
from .metrics import ELEVEN_RECALL_LEVELS, eleven_point_precisions, precision_envelope

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


# ------------------------------------------ anchor shapes, coverage and grids (notebooks 01-02)
def ratio_label(aspect_ratio: float) -> str:
    """Short text for an aspect ratio: ``2``, ``1/2``, ``3``, ``1/3``, ``1``, ``1.5``, ``1/1.5``."""
    aspect_ratio = float(aspect_ratio)
    if aspect_ratio >= 1.0:
        return f"{aspect_ratio:.3g}"
    return f"1/{1.0 / aspect_ratio:.3g}"


#: Label of the extra ar = 1 anchor of scale sqrt(s_k * s_{k+1}) in figures and explorers.
EXTRA_BOX_LABEL = "1'"


def cell_box_labels(config, layer: int) -> list[str]:
    """Labels of the anchors of one cell of ``layer``, in the prior-box order: the aspect ratio
    (:func:`ratio_label`), and :data:`EXTRA_BOX_LABEL` for the extra square box."""
    labels = [ratio_label(r) for r in cell_box_shapes(config, layer)[2]]
    if config.two_boxes_for_ar1 and 1.0 in config.aspect_ratios[layer]:
        labels[1] = EXTRA_BOX_LABEL  # the prior-box order: ar = 1, the extra box, the others
    return labels


def aspect_ratio_legend(ax, aspect_ratios, loc="upper right", **kwargs):
    """Add a legend with one line per distinct aspect ratio, in :func:`aspect_ratio_color`."""
    handles = [
        Line2D([], [], color=aspect_ratio_color(r), linewidth=2.5, label=f"r = {ratio_label(r)}")
        for r in sorted(set(float(r) for r in np.ravel(aspect_ratios)), reverse=True)
    ]
    return ax.legend(handles=handles, loc=loc, fontsize=8, **kwargs)


def figure_message(figure: Figure):
    """A hidden, centred text box on ``figure`` for explorers to show errors in (``set_text``,
    ``set_visible``); it is drawn above every axes."""
    return figure.text(
        0.5, 0.5, "", ha="center", va="center", fontsize=12, color="#8b0000", wrap=True,
        visible=False, zorder=10,
        bbox=dict(boxstyle="round,pad=0.6", facecolor="#fff4f4", edgecolor="#8b0000"),
    )  # fmt: skip


class CellShapesArtist:
    """The anchors of one cell drawn around the centre of the unit image square.

    One panel per predictor layer shows the sizes and shapes of that layer's anchors relative
    to the whole image (the dashed square is the image; coordinates are normalized, y down).
    Update in place with :meth:`set_shapes`; the caption (bottom of the panel) is for what
    changes, the title for what does not.

    Args:
        ax: the axes (its limits, aspect and background are set here).
        margin: how far beyond the image square the axes reach (normalized units), so anchors
            larger than the image stay visible.
    """

    def __init__(self, ax, margin: float = 0.35):
        self.ax = ax
        ax.set_facecolor("0.18")
        ax.set_xlim(-margin, 1 + margin)
        ax.set_ylim(1 + margin, -margin)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        self.frame = BoxArtist(ax, edgecolor="0.75", linewidth=1.0, linestyle="dashed", zorder=2)
        self.frame.set_boxes([[0.0, 0.0, 1.0, 1.0]])
        self.boxes = BoxArtist(ax, linewidth=1.5)
        self.caption = ax.text(0.5, 0.02, "", transform=ax.transAxes, ha="center", va="bottom",
                               color="white", fontsize=8, zorder=4)  # fmt: skip

    def set_shapes(self, sizes, aspect_ratios, title: str | None = None, caption: str | None = None):
        """Show boxes of normalized ``sizes`` ``(n, 2)`` (w, h), coloured by ``aspect_ratios``
        ``(n,)``, centred at (0.5, 0.5); optionally set the title and the caption."""
        sizes = np.asarray(sizes, dtype=float).reshape(-1, 2)
        corners = np.concatenate([0.5 - sizes / 2, 0.5 + sizes / 2], axis=-1)  # (n, 4)
        self.boxes.set_boxes(corners, colors=aspect_ratio_color(np.asarray(aspect_ratios)))
        if title is not None:
            self.ax.set_title(title, fontsize=9)
        if caption is not None:
            self.caption.set_text(caption)
        return self


def cell_shapes_labels(config, layer: int) -> tuple[str, str]:
    """Title and caption of a cell-shapes panel: ``("layer 0 · 38×38", "s = 0.10 · 4 boxes")``."""
    rows, cols = config.feature_map_sizes[layer]
    caption = f"s = {config.scales[layer]:.2f} · {config.boxes_per_cell(layer)} boxes"
    return f"layer {layer} · {rows}×{cols}", caption


def draw_cell_shapes(ax, config, layer: int, margin: float = 0.35) -> CellShapesArtist:
    """Draw the anchors of one cell of ``layer`` (an ``SSDConfig``) as a :class:`CellShapesArtist`,
    labelled with the layer's map size, scale and number of boxes."""
    sizes, _, ratios = cell_box_shapes(config, layer)
    artist = CellShapesArtist(ax, margin=margin)
    return artist.set_shapes(sizes, ratios, *cell_shapes_labels(config, layer))


class CoverageArtist:
    """Anchor coverage: each ground-truth box's size against the best IoU any anchor reaches.

    x is the box scale ``sqrt(w * h)`` (normalized, the same unit as an anchor scale ``s``), y the
    best IoU; points at or above ``threshold`` are green, the others red. Dotted vertical lines
    mark the anchor scales. Update in place with :meth:`set_coverage`.
    """

    COVERED_COLOR = MATCH_COLORS["positive"]
    MISSED_COLOR = "#d62728"

    def __init__(self, ax, threshold: float = 0.5, max_scale: float = 1.25):
        self.ax = ax
        self.threshold = threshold
        self.scale_lines = LineCollection(
            [], colors="tab:blue", linestyles="dotted", linewidths=1.2, zorder=1
        )
        ax.add_collection(self.scale_lines)
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0, zorder=1)
        self.points = ax.scatter(np.zeros(0), np.zeros(0), s=36, edgecolors="black",
                                 linewidths=0.6, zorder=3)  # fmt: skip
        ax.set_xlim(0.0, max_scale)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("ground-truth box scale √(w·h)   (dotted: anchor scales s_k)")
        ax.set_ylabel("best IoU of any anchor")
        ax.grid(alpha=0.3)

    def set_coverage(self, gt_corners, best_iou, scales=(), title_prefix: str = "") -> float:
        """Show ``(k, 4)`` normalized ``gt_corners`` with their ``(k,)`` ``best_iou``; mark the
        anchor ``scales``. Sets the title (after ``title_prefix``) and returns the share of
        boxes at or above the threshold (0.0 for no boxes)."""
        gt_corners = check_boxes(gt_corners).reshape(-1, 4)
        best_iou = np.asarray(best_iou, dtype=float).reshape(-1)
        widths = gt_corners[:, 2] - gt_corners[:, 0]
        heights = gt_corners[:, 3] - gt_corners[:, 1]
        box_scales = np.sqrt(np.clip(widths * heights, 0, None))
        covered = best_iou >= self.threshold
        self.points.set_offsets(np.stack([box_scales, best_iou], axis=-1))
        self.points.set_facecolors(np.where(covered[:, None], matplotlib.colors.to_rgba_array(
            self.COVERED_COLOR), matplotlib.colors.to_rgba_array(self.MISSED_COLOR)))  # fmt: skip
        self.scale_lines.set_segments([[(s, 0.0), (s, 1.0)] for s in scales])
        share = float(covered.mean()) if len(covered) else 0.0
        self.ax.set_title(
            f"{title_prefix}best IoU ≥ {self.threshold:g}: {int(covered.sum())} of {len(covered)} "
            f"boxes ({share:.0%})", fontsize=10,
        )  # fmt: skip
        return share


class CellCentersArtist:
    """The cell centres of one layer as dots on an image, updatable with :meth:`set_centers`."""

    def __init__(self, ax, color="white", size=6.0):
        self.points = ax.scatter(np.zeros(0), np.zeros(0), s=size, c=color, edgecolors="black",
                                 linewidths=0.3, zorder=2)  # fmt: skip

    def set_centers(self, centers, image_width, image_height):
        """Show ``(rows, cols, 2)`` (or ``(n, 2)``) normalized ``(cx, cy)`` centres, scaled to pixels."""
        centers = np.asarray(centers, dtype=float).reshape(-1, 2)
        self.points.set_offsets(centers * np.array([image_width, image_height]))
        return self


def draw_cell_centers(ax, centers, image_width, image_height, **kwargs) -> CellCentersArtist:
    """Draw normalized cell centres ``(rows, cols, 2)`` on an image of the given size in pixels."""
    return CellCentersArtist(ax, **kwargs).set_centers(centers, image_width, image_height)


__all__ += [
    "ratio_label",
    "EXTRA_BOX_LABEL",
    "cell_box_labels",
    "aspect_ratio_legend",
    "figure_message",
    "CellShapesArtist",
    "draw_cell_shapes",
    "cell_shapes_labels",
    "CoverageArtist",
    "CellCentersArtist",
    "draw_cell_centers",
]


class BlitRenderer:
    """Renders a figure to PNG, redrawing only the artists that change after the first render.

    The first :meth:`render` draws the whole figure without the ``animated_artists`` and keeps
    that image (axes, ticks, labels, photos) as the background; every render then restores the
    background and draws only the animated artists on top (matplotlib's "blitting"). Text and
    tick drawing dominates a full render, so this is several times faster for explorers.
    Only the animated artists may change between renders; the layout is frozen after the first.

    Args:
        figure: a figure from :func:`new_figure`.
        animated_artists: the artists the explorer updates (collections, texts, titles ...).
        image_format: ``"png"`` (lossless; small and fast for plots) or ``"jpeg"`` (quality
            90; several times faster to encode and smaller for figures showing a photo).
    """

    def __init__(self, figure: Figure, animated_artists, image_format: str = "png"):
        if image_format not in ("png", "jpeg"):
            raise ValueError(f"BlitRenderer: image_format must be 'png' or 'jpeg', got {image_format!r}")
        self.figure = figure
        self.image_format = image_format
        self.animated_artists = list(animated_artists)
        for artist in self.animated_artists:
            artist.set_animated(True)
        self._background = None

    def render(self) -> bytes:
        """PNG or JPEG bytes of the figure with the animated artists' current state."""
        canvas = self.figure.canvas
        if self._background is None:
            canvas.draw()
            if self.figure.get_layout_engine() is not None:
                self.figure.set_layout_engine("none")
            self._background = canvas.copy_from_bbox(self.figure.bbox)
        else:
            canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for artist in self.animated_artists:
            if artist.get_visible():
                artist.draw(renderer)
        rgb = Image.fromarray(np.asarray(canvas.buffer_rgba())[..., :3])
        buffer = io.BytesIO()
        if self.image_format == "jpeg":
            rgb.save(buffer, format="jpeg", quality=90)
        else:
            rgb.save(buffer, format="png", compress_level=1)
        return buffer.getvalue()


__all__ += ["BlitRenderer"]


# ------------------------------------------ model: receptive fields, feature maps (notebook 06)
class FeatureMapArtist:
    """A 2-D map of one value per cell (e.g. feature norms) shown as an image, one cell outlined.

    The map is drawn in normalized axes coordinates (the unit square), so maps of any size
    replace each other in place (:meth:`set_map`) without changing the axes limits.
    """

    def __init__(self, ax, cmap="viridis", cell_color="red"):
        self.ax = ax
        self.image = ax.imshow(np.zeros((1, 1)), cmap=cmap, interpolation="nearest",
                               extent=(0.0, 1.0, 1.0, 0.0), aspect="auto")  # fmt: skip
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(1.0, 0.0)
        ax.set_xticks([])
        ax.set_yticks([])
        self.cell = BoxArtist(ax, edgecolor=cell_color, linewidth=2.0, outline=True, zorder=4)

    def set_map(self, values, row: int, col: int):
        """Show ``values`` ``(rows, cols)`` (colour range = its min .. max) and outline cell (row, col)."""
        values = np.asarray(values, dtype=float)
        rows, cols = values.shape
        self.image.set_data(values)
        low, high = float(values.min()), float(values.max())
        self.image.set_clim(low, high if high > low else low + 1.0)
        self.cell.set_boxes(np.array([[col / cols, row / rows, (col + 1) / cols, (row + 1) / rows]]))
        return self


def draw_receptive_fields_vs_anchors(ax, layer_names, field_sizes, anchor_sides, steps, image_size):
    """Per predictor layer: theoretical receptive field, anchor side range and step, in pixels.

    Args:
        ax: axes to draw into (log-scale y).
        layer_names: ``n_layers`` names for the x axis.
        field_sizes: ``(n_layers,)`` receptive field sides in pixels.
        anchor_sides: ``n_layers`` arrays of the anchors' widths and heights in pixels.
        steps: ``(n_layers,)`` distances between cells in pixels.
        image_size: the input side in pixels (drawn as a horizontal line).
    """
    positions = np.arange(len(layer_names))
    low = [np.min(sides) for sides in anchor_sides]
    high = [np.max(sides) for sides in anchor_sides]
    ax.vlines(positions, low, high, color="tab:orange", linewidth=8, alpha=0.7,
              label="anchor widths and heights")  # fmt: skip
    ax.plot(positions, field_sizes, "o-", color="tab:blue", label="theoretical receptive field")
    ax.plot(positions, steps, "s--", color="tab:gray", label="step (distance between cells)")
    ax.axhline(image_size, color="black", linewidth=1, linestyle=":", label=f"image side ({image_size} px)")
    ax.set_yscale("log")
    ax.set_xticks(positions, layer_names)
    ax.set_ylabel("pixels (log scale)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="major", axis="y", alpha=0.3)


__all__ += ["FeatureMapArtist", "draw_receptive_fields_vs_anchors"]


# ------------------------------------------ augmented samples (notebook 07)
class PixelImage(matplotlib.artist.Artist):
    """An RGB image that fills its axes, resized by Pillow to the axes' size in pixels at draw
    time and drawn without matplotlib's resampling pipeline (several times faster than
    ``imshow`` for explorers that redraw photos). The axes limits must be the image extent
    (as :func:`show_image` sets them).
    """

    def __init__(self, ax, image):
        super().__init__()
        self.axes = ax
        self.set_figure(ax.figure)
        self.set_data(image)
        ax.add_artist(self)

    def set_data(self, image) -> None:
        """The ``(H, W, 3)`` uint8 pixels to show."""
        self._pixels = np.asarray(image)
        self.stale = True

    def get_array(self) -> np.ndarray:
        return self._pixels

    def draw(self, renderer) -> None:
        if not self.get_visible():
            return
        x0, y0, x1, y1 = (int(round(v)) for v in self.axes.bbox.extents)  # display pixels
        if x1 <= x0 or y1 <= y0:
            return
        shown = Image.fromarray(self._pixels).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
        rgba = np.array(shown.transpose(Image.Transpose.FLIP_TOP_BOTTOM).convert("RGBA"))  # rows bottom-up
        context = renderer.new_gc()
        renderer.draw_image(context, x0, y0, rgba)
        context.restore()
        self.stale = False


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
        return [self.image, self.boxes.collection, *self.boxes.labels, self.title]


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


__all__ += ["PixelImage", "SampleArtist", "draw_samples"]


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


__all__ += ["box_scale_histogram"]


# ------------------------------------------ detections, score maps, precision-recall (notebook 05)
def detection_labels(detections, class_names=None) -> list[str]:
    """``"name 0.93"`` for each row ``[class_id, score, ...]`` of ``(k, 6)`` detections."""
    labels = []
    for class_id, score in np.asarray(detections, dtype=float).reshape(-1, 6)[:, :2]:
        name = class_names[int(class_id) - 1] if class_names is not None else f"class {int(class_id)}"
        labels.append(f"{name} {score:.2f}")
    return labels


class DetectionArtist:
    """Detections ``(k, 6)`` ``[class_id, score, xmin, ymin, xmax, ymax]`` drawn as boxes coloured
    by class, with ``"name score"`` labels on the best ``max_labels``; updatable in place.

    Args:
        ax: the axes (pixel coordinates of the image the boxes belong to).
        class_names: names of classes 1..n (default ``"class i"``).
        max_labels: how many of the best detections get a text label.
        linewidth: line width in points.
        score_opacity: draw each box with opacity 0.15 + 0.85 * score, so that the many
            low-scored boxes of a low threshold stay faint.
    """

    def __init__(self, ax, class_names=None, max_labels: int = 10, linewidth: float = 2.0,
                 score_opacity: bool = False):  # fmt: skip
        self.class_names = class_names
        self.score_opacity = score_opacity
        self.boxes = BoxArtist(ax, edgecolor="tab:blue", linewidth=linewidth, max_labels=max_labels,
                               zorder=4)  # fmt: skip

    def set_detections(self, detections):
        """Show ``(k, 6)`` detections (rows in score order: the first ones get labels)."""
        detections = np.asarray(detections, dtype=float).reshape(-1, 6)
        labelled = detections[: len(self.boxes.labels)]  # only these get a label
        colors = class_color(detections[:, 0].astype(int)).reshape(-1, 4)
        if self.score_opacity:
            colors[:, 3] = 0.15 + 0.85 * np.clip(detections[:, 1], 0, 1)
        self.boxes.set_boxes(detections[:, 2:], colors=colors,
                             labels=detection_labels(labelled, self.class_names))  # fmt: skip
        return self

    def artists(self) -> list:
        """Everything :meth:`set_detections` changes (for blitting)."""
        return [self.boxes.collection, *self.boxes.labels]


def draw_detections(ax, detections, class_names=None, max_labels: int = 10, **kwargs) -> DetectionArtist:
    """Draw ``(k, 6)`` detections on ``ax``; see :class:`DetectionArtist`."""
    return DetectionArtist(ax, class_names, max_labels, **kwargs).set_detections(detections)


def show_score_map(ax, values, title: str | None = None, vmax: float = 1.0, cmap: str = "magma"):
    """Show a ``(rows, cols)`` map of scores in [0, vmax] (one value per feature-map cell) over the
    unit square; returns the ``AxesImage`` (``set_data`` updates it)."""
    artist = ax.imshow(np.asarray(values, dtype=float), cmap=cmap, vmin=0.0, vmax=vmax,
                       interpolation="nearest", extent=(0.0, 1.0, 1.0, 0.0))  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return artist


def draw_precision_recall(ax, precision, recall, label: str = "precision-recall",
                          color="tab:blue", eleven_points: bool = True) -> dict:  # fmt: skip
    """A class's precision-recall curve (best detection first), its monotone envelope (the
    precision AP integrates; shaded = all-point AP) and the 11 VOC2007 sample points.

    Returns a dict of the artists: ``curve``, ``envelope``, ``area`` and ``points`` (if drawn).
    """
    precision = np.asarray(precision, dtype=float)
    recall = np.asarray(recall, dtype=float)
    artists = {}
    (artists["curve"],) = ax.plot(recall, precision, ".-", color=color, markersize=3, linewidth=1,
                                  alpha=0.6, label=label)  # fmt: skip
    envelope = precision_envelope(precision)
    steps_recall = np.concatenate([[0.0], recall])
    steps_precision = np.concatenate([envelope[:1], envelope])
    (artists["envelope"],) = ax.step(steps_recall, steps_precision, where="pre", color=color,
                                     linewidth=2, label="envelope (best precision at this recall or more)")  # fmt: skip
    artists["area"] = ax.fill_between(steps_recall, steps_precision, step="pre", color=color, alpha=0.15,
                                      label="all-point AP = shaded area")  # fmt: skip
    if eleven_points:
        samples = eleven_point_precisions(precision, recall)
        (artists["points"],) = ax.plot(ELEVEN_RECALL_LEVELS, samples, "o", color="black", markersize=5,
                                       label="11-point samples (VOC2007)")  # fmt: skip
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return artists


__all__ += ["detection_labels", "DetectionArtist", "draw_detections", "show_score_map", "draw_precision_recall"]


# ------------------------------------------ matching and the loss (notebooks 03 and 04)
#: Colour of the hard negatives the loss keeps (notebook 04).
HARD_NEGATIVE_COLOR = "#d62728"


class MatchArtist:
    """The result of matching drawn on a photo: neutral anchors (thin orange), positive anchors
    (green) and each box's bipartite anchor (thick green, outlined); update with :meth:`set_match`.

    Ground-truth boxes are drawn separately (:func:`draw_boxes`), so they stay fixed.
    """

    def __init__(self, ax):
        self.neutral = BoxArtist(ax, edgecolor=MATCH_COLORS["neutral"], linewidth=0.8, zorder=3)
        self.positive = BoxArtist(ax, edgecolor=MATCH_COLORS["positive"], linewidth=1.0, zorder=4)
        self.bipartite = BoxArtist(ax, edgecolor=MATCH_COLORS["positive"], linewidth=2.5, outline=True, zorder=5)

    def set_match(self, anchors, result, image_width, image_height):
        """Show ``result`` (a :class:`ssd_lib.encoder.MatchResult`) for normalized centroid
        ``anchors`` ``(n, 4)`` on an image of the given size in pixels."""
        corners = centroids_to_corners(anchors) * np.array([image_width, image_height] * 2)
        self.neutral.set_boxes(corners[result.state == NEUTRAL])
        self.positive.set_boxes(corners[result.state == POSITIVE])
        chosen = result.bipartite_anchor_index
        self.bipartite.set_boxes(corners[chosen[chosen >= 0]])
        return self

    def artists(self) -> list:
        """The collections :meth:`set_match` changes (for blitting explorers)."""
        return [self.neutral.collection, self.positive.collection, self.bipartite.collection]


def match_legend(ax, hard_negatives: bool = False, loc="lower left", **kwargs):
    """Legend of the matching colours: ground truth, bipartite match, positive, neutral; with
    ``hard_negatives`` (the loss's view): ground truth, positive, hard negative."""
    if hard_negatives:
        entries = [(GT_COLOR, 2.5, "ground truth"), (MATCH_COLORS["positive"], 1.0, "positive"),
                   (HARD_NEGATIVE_COLOR, 1.0, "hard negative")]  # fmt: skip
    else:
        entries = [(GT_COLOR, 2.5, "ground truth"), (MATCH_COLORS["positive"], 2.5, "bipartite match"),
                   (MATCH_COLORS["positive"], 1.0, "positive"), (MATCH_COLORS["neutral"], 1.0, "neutral")]  # fmt: skip
    handles = [
        Line2D([], [], color=color, linewidth=width, label=label,
               path_effects=_OUTLINE if color == GT_COLOR else None)
        for color, width, label in entries
    ]  # fmt: skip
    return ax.legend(handles=handles, loc=loc, fontsize=7, framealpha=0.8, **kwargs)


__all__ += ["HARD_NEGATIVE_COLOR", "MatchArtist", "match_legend"]


# ------------------------------------------ training curves (notebook 08)
def smooth_curve(values, smoothing: float) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing slider).

    ``m_t = smoothing * m_{t-1} + (1 - smoothing) * x_t`` divided by ``1 - smoothing**t`` (so the
    first values are not pulled towards 0). NaN entries (epochs without that metric) stay NaN
    and do not enter the average. ``smoothing`` in [0, 1); 0 returns the values unchanged.
    """
    values = np.asarray(values, dtype=float)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smooth_curve: smoothing must be in [0, 1), got {smoothing}")
    smoothed = np.full_like(values, np.nan)
    average, weight = 0.0, 0.0
    for index, value in enumerate(values):
        if np.isnan(value):
            continue
        average = smoothing * average + (1.0 - smoothing) * value
        weight = smoothing * weight + (1.0 - smoothing)
        smoothed[index] = average / weight
    return smoothed


class TrainingCurvesArtist:
    """Loss curves on one axes, validation mAP and learning rate on another; updatable in place.

    Training and validation loss are drawn twice: faint (the logged values) and solid (smoothed
    with :func:`smooth_curve`). The learning rate shares the mAP axes as a fraction of its
    largest value (dashed), which shows the schedule's shape without a second axis.

    Args:
        loss_ax, metric_ax: the two axes.
    """

    def __init__(self, loss_ax, metric_ax):
        self.loss_ax, self.metric_ax = loss_ax, metric_ax
        (self.train_raw,) = loss_ax.plot([], [], color="tab:blue", alpha=0.3, linewidth=1)
        (self.train_line,) = loss_ax.plot([], [], color="tab:blue", linewidth=2, label="training loss")
        (self.val_raw,) = loss_ax.plot([], [], color="tab:orange", alpha=0.3, linewidth=1)
        (self.val_line,) = loss_ax.plot([], [], color="tab:orange", linewidth=2, label="validation loss")
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("loss")
        (self.map_line,) = metric_ax.plot([], [], "o-", color="tab:green", markersize=4, label="validation mAP@0.5")
        (self.rate_line,) = metric_ax.plot([], [], "--", color="tab:gray", linewidth=1,
                                           label="learning rate / its maximum")  # fmt: skip
        metric_ax.set_ylim(0.0, 1.05)
        metric_ax.set_xlabel("epoch")
        metric_ax.legend(loc="lower right", fontsize=8)

    @staticmethod
    def _column(log, key) -> np.ndarray:
        return np.array([row.get(key, np.nan) for row in log], dtype=float)

    def set_log(self, log, smoothing: float = 0.0, epochs: tuple | None = None):
        """Show the rows of a training log (``ssd_lib.train.read_log``), optionally only the
        epochs ``first .. last`` (inclusive); returns ``self``."""
        log = list(log)
        if epochs is not None:
            log = [row for row in log if epochs[0] <= row["epoch"] <= epochs[1]]
        epoch = self._column(log, "epoch")
        for key, raw, line in (("loss", self.train_raw, self.train_line),
                               ("val_loss", self.val_raw, self.val_line)):  # fmt: skip
            values = self._column(log, key)
            raw.set_data(epoch, values)
            line.set_data(epoch, smooth_curve(values, smoothing))
        logged = [line for line in (self.train_line, self.val_line) if np.isfinite(line.get_ydata()).any()]
        self.loss_ax.legend(handles=logged, loc="upper right", fontsize=8)  # no entry for a loss never logged
        mean_ap = self._column(log, "val_mAP")
        evaluated = ~np.isnan(mean_ap)
        self.map_line.set_data(epoch[evaluated], mean_ap[evaluated])
        rate = self._column(log, "learning_rate")
        known = ~np.isnan(rate)
        peak = np.max(rate[known]) if known.any() else 1.0
        self.rate_line.set_data(epoch[known], rate[known] / (peak if peak > 0 else 1.0))
        self.loss_ax.relim()
        self.loss_ax.autoscale_view()
        if len(epoch):
            self.loss_ax.set_xlim(epoch[0] - 0.5, epoch[-1] + 0.5)
            self.metric_ax.set_xlim(epoch[0] - 0.5, epoch[-1] + 0.5)
        losses = self._column(log, "loss")
        last_loss = f" · last {losses[-1]:.3f}" if len(losses) and np.isfinite(losses[-1]) else ""
        self.loss_ax.set_title(f"loss · {len(log)} epochs{last_loss}", fontsize=10)
        best = f" · best {np.nanmax(mean_ap):.3f}" if evaluated.any() else ""
        self.metric_ax.set_title(f"validation mAP · {int(evaluated.sum())} evaluations{best}", fontsize=10)
        return self


__all__ += ["smooth_curve", "TrainingCurvesArtist"]


#: Colours of a detection's outcome in the VOC evaluation (notebook 05).
OUTCOME_COLORS = {"true positive": "#2ca02c", "false positive": "#d62728", "ignored": "#ff7f0e"}
__all__ += ["OUTCOME_COLORS"]
