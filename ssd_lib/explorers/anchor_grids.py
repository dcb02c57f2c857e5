"""Notebook 02's explorer: the anchors of one cell on a photo, with the centre grid of its layer."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import viz
from ..anchors import cell_box_shapes, cell_centers, layer_anchors
from ..boxes import centroids_to_corners, clip_corners, corners_to_centroids
from ..config import SSD300_COCO, SSD300_VOC, SSD512_VOC
from .base import BlitExplorer


class AnchorGridExplorer(BlitExplorer):
    """The anchors of one cell on a photo, with the centre grid of its layer.

    Controls: the configuration preset, the layer, the cell's row and column, one toggle per kind
    of box (aspect ratio; ``1'`` is the extra ar = 1 box of scale ``sqrt(s_k * s_{k+1})``) and
    ``clip_boxes``. Kinds the chosen layer does not have are disabled. Changing the layer keeps
    the cell at the same relative position.

    Args:
        image: ``(H, W, 3)`` photo; anchors are normalized, so they are drawn scaled to its size
            (as the model sees the photo resized to its input size).
        presets: name -> ``SSDConfig``; default SSD300 VOC, SSD300 COCO and SSD512 VOC.
        layer: the layer shown first.

    Attributes (after each update): ``config``, ``cell_anchors`` ``(n, 4)`` normalized
    centroids of the boxes drawn, ``cell_kinds`` (their toggle names).

    Explained in notebooks/02_anchor_grids.ipynb.
    """

    image_format = "jpeg"

    def __init__(self, image, presets=None, layer: int = 0):
        self.presets = dict(presets or {"SSD300 VOC": SSD300_VOC, "SSD300 COCO": SSD300_COCO,
                                        "SSD512 VOC": SSD512_VOC})  # fmt: skip
        self.photo = np.asarray(image)
        self.image_height, self.image_width = self.photo.shape[:2]
        first = next(iter(self.presets.values()))
        rows, cols = first.feature_map_sizes[layer]
        self.preset = widgets.Dropdown(options=list(self.presets), description="preset")
        self.layer = widgets.IntSlider(value=layer, min=0, max=first.n_layers - 1, description="layer")
        self.row = widgets.IntSlider(value=rows // 2, min=0, max=rows - 1, description="row")
        self.col = widgets.IntSlider(value=cols // 2, min=0, max=cols - 1, description="column")
        self.clip = widgets.Checkbox(value=False, description="clip to image")
        ratios = sorted({r for config in self.presets.values() for layer_ratios in config.aspect_ratios
                         for r in layer_ratios}, reverse=True)  # fmt: skip
        kinds = [viz.ratio_label(r) for r in ratios]
        kinds.insert(kinds.index("1") + 1 if "1" in kinds else 0, viz.EXTRA_BOX_LABEL)
        self.kind_toggles = {
            kind: widgets.ToggleButton(
                value=True, description=kind, layout=widgets.Layout(width="52px"),
                tooltip="extra ar = 1 box" if kind == viz.EXTRA_BOX_LABEL else f"r = {kind}",
            )
            for kind in kinds
        }  # fmt: skip

        figure, ax = viz.new_figure(figsize=(6.0, 6.2), dpi=80)
        self.ax = ax
        viz.show_image(ax, self.photo)
        self.centers = viz.CellCentersArtist(ax)
        self.cell_box = viz.draw_highlight(ax, zorder=4)
        self.anchor_boxes = viz.BoxArtist(ax, linewidth=2.0, outline=True, max_labels=len(kinds), zorder=5)
        self.config = first
        self.cell_anchors = np.zeros((0, 4))
        self.cell_kinds = []
        self._shown = (self.preset.value, layer)
        self._syncing = False
        controls = [self.preset, self.layer, self.row, self.col, self.clip, *self.kind_toggles.values()]
        super().__init__(controls, figure)

    def animated_artists(self) -> list:
        boxes = [self.cell_box.collection, *self.anchor_boxes.artists()]
        return [self.centers.points, *boxes, self.ax.title]

    def _on_change(self, change) -> None:
        if not self._syncing:  # slider limits being adjusted by _sync_controls
            super()._on_change(change)

    def _sync_controls(self, config) -> None:
        """Fit the layer/row/column sliders to the preset and layer; keep the relative position."""
        old_preset, old_layer = self._shown
        old_rows, old_cols = self.presets[old_preset].feature_map_sizes[old_layer]
        self._syncing = True
        try:
            self.layer.max = config.n_layers - 1
            rows, cols = config.feature_map_sizes[self.layer.value]
            if (self.preset.value, self.layer.value) != self._shown:
                row_fraction = self.row.value / max(old_rows - 1, 1)
                col_fraction = self.col.value / max(old_cols - 1, 1)
                self.row.max, self.col.max = max(rows - 1, self.row.max), max(cols - 1, self.col.max)
                self.row.value = int(round(row_fraction * (rows - 1)))
                self.col.value = int(round(col_fraction * (cols - 1)))
            self.row.max, self.col.max = rows - 1, cols - 1
            self._shown = (self.preset.value, self.layer.value)
        finally:
            self._syncing = False

    def draw(self) -> None:
        config = self.config = self.presets[self.preset.value]
        self._sync_controls(config)
        layer, row, col = self.layer.value, self.row.value, self.col.value
        _, _, ratios = cell_box_shapes(config, layer)
        kinds = viz.cell_box_labels(config, layer)
        for kind, toggle in self.kind_toggles.items():
            toggle.disabled = kind not in kinds
        shown = np.array([self.kind_toggles[kind].value for kind in kinds], dtype=bool)
        anchors = layer_anchors(config, layer)[row, col][shown]  # (n_shown, 4) centroids
        corners = centroids_to_corners(anchors)
        if self.clip.value:
            corners = clip_corners(corners)
        self.cell_anchors = corners_to_centroids(corners)
        self.cell_kinds = [kind for kind, keep in zip(kinds, shown) if keep]
        size = np.array([self.image_width, self.image_height] * 2)
        self.anchor_boxes.set_boxes(corners * size, colors=viz.aspect_ratio_color(ratios[shown]),
                                    labels=self.cell_kinds)  # fmt: skip
        centers = cell_centers(config, layer)  # (rows, cols, 2)
        self.centers.set_centers(centers, self.image_width, self.image_height)
        step_y, step_x = config.steps[layer]
        half_cell = np.array([step_x / config.image_width, step_y / config.image_height]) / 2
        center = centers[row, col]
        self.cell_box.set_boxes(np.concatenate([center - half_cell, center + half_cell])[None] * size)
        rows, cols = config.feature_map_sizes[layer]
        self.ax.set_title(
            f"layer {layer}: {rows}×{cols} map, step {step_x:g} px · cell (row {row}, col {col})"
            f" · {len(anchors)} of {len(kinds)} boxes{' · clipped' if self.clip.value else ''}",
            fontsize=9,
        )  # fmt: skip
