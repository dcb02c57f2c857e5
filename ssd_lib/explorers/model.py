"""Notebook 06's explorer: one cell of one predictor layer, its receptive field, anchors and feature map."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import viz
from ..anchors import cell_box_shapes, cell_centers, layer_anchors
from ..boxes import centroids_to_corners
from .base import BlitExplorer


class ModelExplorer(BlitExplorer):
    """One cell of one predictor layer: its receptive field and anchors on the photo, and the
    layer's feature map.

    Left: the photo at the model's input size with the cell centres of the chosen layer, the
    cell's theoretical receptive field (dashed black square, it may extend beyond the image) and
    its anchors (coloured by aspect ratio). Right: the per-cell L2 norm of the layer's features
    for this photo (before the L2 normalization of conv4_3), with the cell outlined.

    Args:
        model: an SSD (:mod:`ssd_lib.vgg_ssd`, :mod:`ssd_lib.small_ssd`) (its feature maps are computed once, here).
        config: the model's ``SSDConfig``.
        image: ``(H, W, 3)`` RGB photo; resized to the model input size.
        layer: the layer shown first.

    Attributes (after each update): ``layer_name``, ``field`` (a
    :class:`ssd_lib.receptive_fields.ReceptiveField`), ``field_corners`` ``(4,)`` pixels, ``cell_anchors``
    ``(n_boxes, 4)`` pixel corners, ``feature_norms`` (one ``(rows, cols)`` array per layer).

    Explained in notebooks/06_model.ipynb.
    """

    image_format = "jpeg"

    def __init__(self, model, config, image, layer: int = 0):
        # Keras is imported only by the notebooks that build a model.
        from ..prediction_heads import feature_maps, source_layer_names
        from ..receptive_fields import receptive_fields
        from ..augment import resize

        self.config = config
        self.photo, _ = resize(np.asarray(image), np.zeros((0, 4)), config.image_height, config.image_width)
        self.layer_names = source_layer_names(model, before_normalization=True)
        self.fields = list(receptive_fields(model, self.layer_names).values())
        maps = feature_maps(model, self.photo[None].astype("float32"), self.layer_names)
        self.feature_norms = [np.linalg.norm(values[0], axis=-1) for values in maps]  # (rows, cols) each
        rows, cols = config.feature_map_sizes[layer]
        self.layer = widgets.IntSlider(value=layer, min=0, max=config.n_layers - 1, description="layer")
        self.row = widgets.IntSlider(value=rows // 2, min=0, max=rows - 1, description="row")
        self.col = widgets.IntSlider(value=cols // 2, min=0, max=cols - 1, description="column")
        self._shown_layer = layer
        self._syncing = False

        figure, (photo_ax, map_ax) = viz.new_figure(figsize=(9.0, 4.9), dpi=80, ncols=2)
        self.photo_ax, self.map_ax = photo_ax, map_ax
        viz.show_image(photo_ax, self.photo)
        self.centers = viz.CellCentersArtist(photo_ax)
        self.field_box = viz.draw_highlight(photo_ax, linewidth=2.0, zorder=4)
        self.anchor_boxes = viz.BoxArtist(photo_ax, linewidth=1.5, outline=True, zorder=5)
        self.feature_map = viz.FeatureMapArtist(map_ax)
        super().__init__([self.layer, self.row, self.col], figure)

    def animated_artists(self) -> list:
        return [self.centers.points, self.field_box.collection, self.anchor_boxes.collection,
                self.photo_ax.title, self.feature_map.image, self.feature_map.cell.collection,
                self.map_ax.title]  # fmt: skip

    def _on_change(self, change) -> None:
        if not self._syncing:  # slider limits being adjusted by _sync_controls
            super()._on_change(change)

    def _sync_controls(self) -> None:
        """Fit the row/column sliders to the layer's map, keeping the cell's relative position."""
        layer = self.layer.value
        if layer == self._shown_layer:
            return
        (old_rows, old_cols), (rows, cols) = (self.config.feature_map_sizes[self._shown_layer],
                                              self.config.feature_map_sizes[layer])  # fmt: skip
        row_fraction = (self.row.value + 0.5) / old_rows
        col_fraction = (self.col.value + 0.5) / old_cols
        self._syncing = True
        try:
            self.row.max, self.col.max = max(rows - 1, self.row.max), max(cols - 1, self.col.max)
            self.row.value = min(int(row_fraction * rows), rows - 1)
            self.col.value = min(int(col_fraction * cols), cols - 1)
            self.row.max, self.col.max = rows - 1, cols - 1
        finally:
            self._syncing = False
        self._shown_layer = layer

    def draw(self) -> None:
        self._sync_controls()
        config, layer, row, col = self.config, self.layer.value, self.row.value, self.col.value
        height, width = config.image_size
        self.layer_name = self.layer_names[layer]
        self.field = self.fields[layer]
        self.field_corners = self.field.corners(row, col)
        self.field_box.set_boxes(self.field_corners[None])
        _, scales, ratios = cell_box_shapes(config, layer)
        anchors = layer_anchors(config, layer)[row, col]  # (n_boxes, 4) normalized centroids
        self.cell_anchors = centroids_to_corners(anchors) * np.array([width, height] * 2)
        self.anchor_boxes.set_boxes(self.cell_anchors, colors=viz.aspect_ratio_color(ratios))
        self.centers.set_centers(cell_centers(config, layer), width, height)
        rows, cols = config.feature_map_sizes[layer]
        sides = self.cell_anchors[:, 2:] - self.cell_anchors[:, :2]
        self.photo_ax.set_title(
            f"{self.layer_name} cell ({row}, {col}) · field {self.field.size} px · "
            f"anchors {sides.min():.0f}–{sides.max():.0f} px", fontsize=9,
        )  # fmt: skip
        norms = self.feature_norms[layer]
        self.feature_map.set_map(norms, row, col)
        self.map_ax.set_title(
            f"‖features‖ of {self.layer_name} ({rows}×{cols}): {norms.min():.3g} – {norms.max():.3g}",
            fontsize=9,
        )  # fmt: skip
