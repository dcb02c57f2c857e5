"""Receptive fields and feature maps of the network (notebook 06)."""

from __future__ import annotations

import numpy as np

from .boxes import BoxArtist
from .palette import HIGHLIGHT_COLOR, aspect_ratio_color


class FeatureMapArtist:
    """A 2-D map of one value per cell (e.g. feature norms) shown as an image, one cell outlined.

    The map is drawn in normalized axes coordinates (the unit square), so maps of any size
    replace each other in place (:meth:`set_map`) without changing the axes limits.
    """

    def __init__(self, ax, cmap="viridis"):
        self.ax = ax
        self.image = ax.imshow(np.zeros((1, 1)), cmap=cmap, interpolation="nearest",
                               extent=(0.0, 1.0, 1.0, 0.0), aspect="auto")  # fmt: skip
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(1.0, 0.0)
        ax.set_xticks([])
        ax.set_yticks([])
        self.cell = BoxArtist(ax, edgecolor=HIGHLIGHT_COLOR, linewidth=2.0, outline="white", zorder=4)

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
    ax.vlines(positions, low, high, color=aspect_ratio_color(1.0), linewidth=8, alpha=0.6,
              label="anchor widths and heights")  # fmt: skip
    ax.plot(positions, field_sizes, "o-", color=HIGHLIGHT_COLOR, label="theoretical receptive field")
    ax.plot(positions, steps, "s--", color="0.5", label="step (distance between cells)")
    ax.axhline(image_size, color="black", linewidth=1, linestyle=":", label=f"image side ({image_size} px)")
    ax.set_yscale("log")
    ax.set_xticks(positions, layer_names)
    ax.set_ylabel("pixels (log scale)")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(True, which="major", axis="y", alpha=0.3)
