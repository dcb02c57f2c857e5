"""The whole SSD pipeline as one diagram, drawn from a configuration (notebook 00)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

_INK = "#34495e"
_STAGE_COLORS = {"backbone": "#f3eee2", "heads": "#e3ebf5", "step": "#eef2f7", "result": "#f7f7f7"}
_CELL_COLORS = ListedColormap(["#c9d9ea", "#f4f8fc"])  # a feature map's cells as a checkerboard
_WIDTH, _HEIGHT = 17.0, 7.6  # the diagram's extent in data units (x right, y up)


def _stage(ax, x0, y0, width, height, text, color, fontsize=10):
    ax.add_patch(FancyBboxPatch((x0, y0), width, height, boxstyle="round,pad=0.03,rounding_size=0.12",
                                facecolor=color, edgecolor=_INK, linewidth=1.0))  # fmt: skip
    return ax.text(x0 + width / 2, y0 + height / 2, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end):
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color=_INK, linewidth=1.2,
                                 shrinkA=0, shrinkB=0))  # fmt: skip


def _feature_map(ax, x0, y0, side, rows, cols):
    """A map of ``rows x cols`` cells as a checkerboard square with its lower-left corner at (x0, y0)."""
    cells = (np.add.outer(np.arange(rows), np.arange(cols)) % 2).astype(float)
    ax.imshow(cells, cmap=_CELL_COLORS, vmin=0, vmax=1, extent=(x0, x0 + side, y0, y0 + side),
              interpolation="antialiased", zorder=2)  # fmt: skip
    ax.add_patch(Rectangle((x0, y0), side, side, facecolor="none", edgecolor=_INK, linewidth=1.0, zorder=3))


def draw_ssd_pipeline(ax, config, sources=None, image=None):
    """Draw image → backbone → source feature maps → heads → decoding → NMS → detections.

    Every number comes from ``config``: the input size, each source map's cells (drawn to scale
    as a checkerboard, the side growing with the square root of the cell count), its anchors
    per cell and in all, the classes, and the total output rows.

    Args:
        ax: the axes to draw into (limits, aspect and axis are set here; about 12 × 5.4 inches
            is a good figure size).
        config: the detector's :class:`~ssd_lib.config.SSDConfig`.
        sources: optional ``(name, channels)`` of each source layer, e.g. from
            :func:`ssd_lib.prediction_heads.source_layer_names` and the layers' output shapes.
        image: optional ``(H, W, 3)`` image drawn as the input.

    Returns:
        The list of text artists, top to bottom and left to right.

    Raises:
        ValueError: ``sources`` does not have one entry per source layer of ``config``.

    Explained in notebooks/00_what_ssd_does.ipynb.
    """
    n_layers = config.n_layers
    if sources is not None and len(sources) != n_layers:
        raise ValueError(f"draw_ssd_pipeline: sources has {len(sources)} entries, config has {n_layers} "
                         f"source layers")  # fmt: skip
    texts = []
    left, right = 2.9, _WIDTH - 0.1
    centres = left + (right - left) / n_layers * (np.arange(n_layers) + 0.5)
    map_top, heads_y = 5.95, 1.25
    if image is not None:
        ax.imshow(np.asarray(image), extent=(0.1, 2.3, 3.75, 5.95), zorder=2)
    else:
        ax.add_patch(Rectangle((0.1, 3.75), 2.2, 2.2, facecolor="#cccccc", edgecolor=_INK))
    texts.append(ax.text(1.2, 3.6, f"image\n{config.image_width}×{config.image_height} px", ha="center",
                         va="top", fontsize=10))  # fmt: skip
    texts.append(_stage(ax, left, 6.6, right - left, 0.7, "backbone: convolutions that make the feature map "
                        f"coarser step by step; {n_layers} of its maps are sources", _STAGE_COLORS["backbone"]))
    _arrow(ax, (1.2, 6.0), (left - 0.05, 6.95))
    largest = max(rows for rows, _ in config.feature_map_sizes)
    for layer, (centre, (rows, cols)) in enumerate(zip(centres, config.feature_map_sizes)):
        side = 0.5 + 1.3 * np.sqrt(rows / largest)
        _arrow(ax, (centre, 6.6), (centre, map_top + 0.02))
        _feature_map(ax, centre - side / 2, map_top - side, side, rows, cols)
        name, depth = (f"{sources[layer][0]}\n", f"×{sources[layer][1]}") if sources is not None else ("", "")
        texts.append(ax.text(centre, map_top - side - 0.08, f"{name}{rows}×{cols}{depth}", ha="center", va="top",
                             fontsize=9.5))  # fmt: skip
        _arrow(ax, (centre, 3.0), (centre, heads_y + 0.8))
        texts.append(ax.text(centre + 0.1, 2.45, f"{config.boxes_per_cell(layer)} per cell\n"
                             f"= {config.anchors_per_layer()[layer]:,}", ha="left", va="center", fontsize=9))
    texts.append(ax.text(left - 0.15, 2.45, "anchors", ha="right", va="center", fontsize=9.5, style="italic"))
    texts.append(_stage(ax, left, heads_y, right - left, 0.8, "3×3 convolution heads on every source, joined: "
                        f"{config.n_anchors:,} anchors × ({config.n_classes + 1} class scores + 4 box offsets)",
                        _STAGE_COLORS["heads"], fontsize=10.5))
    steps = [("decode: softmax, and\noffsets + anchors → boxes", "step"),
             ("confidence threshold,\nNMS per class, top-k", "step"), ("detections:\nclass, score, box", "result")]
    gap = 0.6
    step_width = (right - left - 2 * gap) / len(steps)
    for k, (text, kind) in enumerate(steps):
        x0 = left + k * (step_width + gap)
        texts.append(_stage(ax, x0, 0.05, step_width, 0.85, text, _STAGE_COLORS[kind]))
        if k:
            _arrow(ax, (x0 - gap, 0.47), (x0 - 0.03, 0.47))
    _arrow(ax, (left + step_width / 2, heads_y - 0.02), (left + step_width / 2, 0.92))
    ax.set_xlim(0, _WIDTH)
    ax.set_ylim(0, _HEIGHT)
    ax.set_aspect("equal")
    ax.axis("off")
    return texts
