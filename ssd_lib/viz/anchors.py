"""Anchor shapes, anchor coverage and cell centres (notebooks 01 and 02)."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D

from ..anchors import cell_box_shapes
from ..boxes import check_boxes
from .boxes import BoxArtist
from .palette import ERROR_COLOR, HIGHLIGHT_COLOR, MATCH_COLORS, aspect_ratio_color


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
    """Add a legend to ``ax`` (an axes or a figure) with one line per distinct aspect ratio, in
    :func:`aspect_ratio_color`, from tall to wide."""
    handles = [
        Line2D([], [], color=aspect_ratio_color(r), linewidth=2.5, label=f"r = {ratio_label(r)}")
        for r in sorted(set(float(r) for r in np.ravel(aspect_ratios)))
    ]
    return ax.legend(handles=handles, loc=loc, fontsize=8, **kwargs)


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
    MISSED_COLOR = ERROR_COLOR
    #: Colour of the dotted anchor-scale lines.
    SCALE_COLOR = "0.35"

    def __init__(self, ax, threshold: float = 0.5, max_scale: float = 1.25):
        self.ax = ax
        self.threshold = threshold
        self.scale_lines = LineCollection([], colors=self.SCALE_COLOR, linestyles="dotted", linewidths=1.2,
                                          zorder=1)  # fmt: skip
        ax.add_collection(self.scale_lines)
        ax.axhline(threshold, color="black", linestyle="--", linewidth=1.0, zorder=1)
        self.points = ax.scatter(np.zeros(0), np.zeros(0), s=36, edgecolors="black",
                                 linewidths=0.6, zorder=3)  # fmt: skip
        ax.set_xlim(0.0, max_scale)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("ground-truth box scale √(w·h)")
        ax.set_ylabel("best IoU of any anchor")
        ax.grid(alpha=0.3)
        self.legend = self._make_legend()

    def _make_legend(self):
        """The legend of the points and lines (made once; explorers keep it fixed)."""
        marker = dict(marker="o", linestyle="none", markeredgecolor="black", markersize=6)
        handles = [
            Line2D([], [], markerfacecolor=self.COVERED_COLOR, label=f"covered: best IoU ≥ {self.threshold:g}", **marker),
            Line2D([], [], markerfacecolor=self.MISSED_COLOR, label="not covered", **marker),
            Line2D([], [], color=self.SCALE_COLOR, linestyle="dotted", label="anchor scales $s_k$"),
            Line2D([], [], color="black", linestyle="--", linewidth=1.0, label="IoU threshold"),
        ]  # fmt: skip
        return self.ax.legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)

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
        self.points.set_sizes([36.0 if len(covered) <= 100 else 9.0])  # thousands of boxes: small points
        self.points.set_linewidths([0.6 if len(covered) <= 100 else 0.2])
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

    def __init__(self, ax, color=HIGHLIGHT_COLOR, size=8.0):
        self.points = ax.scatter(np.zeros(0), np.zeros(0), s=size, c=color, edgecolors="white",
                                 linewidths=0.5, zorder=2)  # fmt: skip

    def set_centers(self, centers, image_width, image_height):
        """Show ``(rows, cols, 2)`` (or ``(n, 2)``) normalized ``(cx, cy)`` centres, scaled to pixels."""
        centers = np.asarray(centers, dtype=float).reshape(-1, 2)
        self.points.set_offsets(centers * np.array([image_width, image_height]))
        return self


def draw_cell_centers(ax, centers, image_width, image_height, **kwargs) -> CellCentersArtist:
    """Draw normalized cell centres ``(rows, cols, 2)`` on an image of the given size in pixels."""
    return CellCentersArtist(ax, **kwargs).set_centers(centers, image_width, image_height)
