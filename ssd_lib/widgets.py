"""Interactive explorers of the notebooks (ipywidgets), one class per explorer.

Every explorer is an :class:`Explorer`: a ``VBox`` holding its controls (sliders, toggles), an
``ipywidgets.Image`` that shows a matplotlib figure rendered to PNG, and an ``Output`` that
shows errors raised while updating. The figure's artists are made once; ``update()`` changes
them in place and re-renders, so a slider move costs one Agg render (tens of milliseconds), not
a new figure.

The update logic is plain Python: in a test (no kernel, no browser) setting
``explorer.some_slider.value = x`` runs ``update()`` synchronously and exceptions propagate.
``benchmarks/bench_widgets.py`` measures the redraw time of each explorer.
"""

from __future__ import annotations

import dataclasses

import ipywidgets as widgets
import numpy as np

from . import augment, viz
from .anchors import best_anchor_iou, cell_box_shapes, cell_centers, generate_anchors, layer_anchors
from .boxes import centroids_to_corners, check_boxes, clip_corners, corners_to_centroids
from .config import SSD300_COCO, SSD300_VOC, SSD512_VOC, scale_schedule
from .decoder import class_probabilities, decode_all_boxes, decode_detections, select_candidates
from .encoder import BACKGROUND, NEUTRAL, POSITIVE, match
from .viz import figure_to_png

__all__ = ["Explorer"]


class Explorer(widgets.VBox):
    """Base class: controls on top, the rendered figure below, errors (if any) at the bottom.

    Subclasses build ``self.figure`` and their artists, call ``super().__init__(controls,
    figure)``, and implement :meth:`draw` (update the artists from the controls' values).
    """

    def __init__(self, controls, figure, image_width: int | None = None):
        self.figure = figure
        self.controls = list(controls)
        width = image_width or int(figure.get_figwidth() * figure.dpi)
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px"))
        self.errors = widgets.Output()
        for control in self.controls:
            control.observe(self._on_change, names="value")
        super().__init__(
            [widgets.HBox(self.controls, layout=widgets.Layout(flex_flow="row wrap")), self.image, self.errors]
        )
        self.update()

    def draw(self) -> None:
        """Update the figure's artists from the current control values (subclasses)."""
        raise NotImplementedError

    def update(self) -> None:
        """Redraw: :meth:`draw`, then render the figure into the image widget."""
        self.draw()
        self.image.value = figure_to_png(self.figure)

    def _on_change(self, change) -> None:
        # In a kernel, errors show under the figure; in plain Python (tests) they propagate.
        self.errors.clear_output()
        with self.errors:
            self.update()


# ------------------------------------------------ anchor explorers (notebooks 01 and 02)
#: Aspect-ratio sets of the scale explorer: a name -> the ratios of every layer (None: as the
#: base configuration has them).
ASPECT_RATIO_SETS = {
    "as preset": None,
    "1": (1.0,),
    "1, 2, 1/2": (1.0, 2.0, 0.5),
    "1, 2, 1/2, 3, 1/3": (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),
}


class BlitExplorer(Explorer):
    """An :class:`Explorer` that re-renders only the artists its :meth:`animated_artists` lists
    (:class:`ssd_lib.viz.BlitRenderer`); everything else is drawn once. ``image_format`` is
    ``"png"`` or ``"jpeg"`` (for figures that show a photo)."""

    image_format = "png"

    def animated_artists(self) -> list:
        """The artists :meth:`draw` changes (subclasses)."""
        raise NotImplementedError

    def update(self) -> None:
        if getattr(self, "_renderer", None) is None:
            self._renderer = viz.BlitRenderer(self.figure, self.animated_artists(), self.image_format)
            self.image.format = self.image_format
        self.draw()
        self.image.value = self._renderer.render()


class AnchorScaleExplorer(BlitExplorer):
    """Anchor scales and aspect ratios against the ground-truth boxes of a dataset.

    Sliders set ``s_min`` and ``s_max`` of the linear scale schedule; with "first layer fixed"
    the first layer keeps the base configuration's scale and the schedule runs over the other
    layers (as in the SSD300 preset: 0.1, then 0.2 ... 0.88, 1.05), otherwise it runs over all
    layers. Toggles choose the aspect-ratio set and ``two_boxes_for_ar1``. The figure shows the
    anchors of one cell of every layer and the anchor coverage: each ground-truth box's best IoU
    with any anchor. Invalid combinations (``s_max <= s_min`` ...) show a message instead.

    Args:
        gt_corners: ``(k, 4)`` normalized corners of the ground-truth boxes to cover (e.g.
            :func:`ssd_lib.anchors.records_to_normalized_corners` of the samples).
        base_config: the ``SSDConfig`` whose feature maps, steps and offsets are kept.
        threshold: the IoU a box's best anchor must reach to count as covered.

    Attributes (after each update): ``config`` (the ``SSDConfig`` drawn, None if invalid),
    ``best_iou`` ``(k,)``, ``covered_share``, ``error`` (the message shown, or None).

    Explained in notebooks/01_anchor_scales.ipynb.
    """

    def __init__(self, gt_corners, base_config=None, threshold: float = 0.5):
        self.base_config = SSD300_VOC if base_config is None else base_config
        self.gt_corners = check_boxes(gt_corners, "gt_corners").reshape(-1, 4)
        base = self.base_config
        n_layers = base.n_layers
        slider = dict(step=0.01, readout_format=".2f", style={"description_width": "initial"})
        self.min_scale = widgets.FloatSlider(value=base.scales[1] if n_layers > 1 else base.scales[0],
                                             min=0.02, max=0.6, description="s_min", **slider)  # fmt: skip
        self.max_scale = widgets.FloatSlider(value=base.scales[-2], min=0.2, max=1.2,
                                             description="s_max", **slider)  # fmt: skip
        self.first_layer_fixed = widgets.Checkbox(
            value=n_layers > 1, disabled=n_layers == 1,
            description=f"first layer fixed at s = {base.scales[0]:.2f}",
        )  # fmt: skip
        self.aspect_ratio_set = widgets.ToggleButtons(options=list(ASPECT_RATIO_SETS),
                                                      description="aspect ratios")  # fmt: skip
        self.two_boxes_for_ar1 = widgets.Checkbox(value=base.two_boxes_for_ar1,
                                                  description="two boxes for ar = 1")  # fmt: skip

        figure, axes = viz.new_figure(figsize=(1.45 * n_layers + 0.6, 5.4), dpi=80, nrows=2,
                                      ncols=n_layers, gridspec_kw={"height_ratios": [1.0, 1.7]})  # fmt: skip
        axes = np.asarray(axes).reshape(2, n_layers)
        grid = axes[1, 0].get_gridspec()
        for ax in axes[1]:
            ax.remove()
        self.shape_panels = [viz.CellShapesArtist(ax, margin=0.55) for ax in axes[0]]
        for layer, panel in enumerate(self.shape_panels):  # the titles do not change
            panel.ax.set_title(viz.cell_shapes_labels(base, layer)[0], fontsize=9)
        self.coverage = viz.CoverageArtist(figure.add_subplot(grid[1, :]), threshold=threshold)
        viz.aspect_ratio_legend(self.coverage.ax, ASPECT_RATIO_SETS["1, 2, 1/2, 3, 1/3"],
                                loc="lower right", ncols=5)  # fmt: skip
        self.message = viz.figure_message(figure)
        self.config = None
        self.best_iou = np.zeros(len(self.gt_corners))
        self.covered_share = 0.0
        self.error = None
        controls = [self.min_scale, self.max_scale, self.first_layer_fixed,
                    self.two_boxes_for_ar1, self.aspect_ratio_set]  # fmt: skip
        super().__init__(controls, figure)

    def animated_artists(self) -> list:
        panels = [artist for panel in self.shape_panels
                  for artist in (panel.boxes.collection, panel.caption)]  # fmt: skip
        coverage = [self.coverage.scale_lines, self.coverage.points, self.coverage.ax.title]
        return panels + coverage + [self.message]

    def make_config(self):
        """The ``SSDConfig`` the controls describe; raises ``ValueError`` naming the problem."""
        base = self.base_config
        s_min, s_max = self.min_scale.value, self.max_scale.value
        if s_max <= s_min:
            raise ValueError(f"s_max = {s_max:.2f} must be greater than s_min = {s_min:.2f}")
        if self.first_layer_fixed.value:
            if s_min <= base.scales[0]:
                raise ValueError(
                    f"s_min = {s_min:.2f} must be greater than the fixed first-layer scale "
                    f"{base.scales[0]:.2f} (scales must increase)"
                )
            scales = (base.scales[0],) + scale_schedule(s_min, s_max, base.n_layers - 1)
        else:
            scales = scale_schedule(s_min, s_max, base.n_layers)
        ratios = ASPECT_RATIO_SETS[self.aspect_ratio_set.value]
        return dataclasses.replace(
            base,
            scales=scales,
            aspect_ratios=base.aspect_ratios if ratios is None else (ratios,) * base.n_layers,
            two_boxes_for_ar1=self.two_boxes_for_ar1.value,
        )

    def draw(self) -> None:
        try:
            config = self.make_config()
        except ValueError as error:
            self._show_error(str(error))
            return
        self.config, self.error = config, None
        self.message.set_visible(False)
        for layer, panel in enumerate(self.shape_panels):
            sizes, _, ratios = cell_box_shapes(config, layer)
            panel.set_shapes(sizes, ratios, caption=viz.cell_shapes_labels(config, layer)[1])
        self.best_iou = best_anchor_iou(self.gt_corners, generate_anchors(config))
        self.covered_share = self.coverage.set_coverage(
            self.gt_corners, self.best_iou, config.scales[:-1],
            title_prefix=f"{config.n_anchors} anchors · ",
        )  # fmt: skip

    def _show_error(self, text: str) -> None:
        self.config, self.error = None, text
        self.best_iou = np.zeros(len(self.gt_corners))
        self.covered_share = 0.0
        for panel in self.shape_panels:
            panel.set_shapes(np.zeros((0, 2)), np.zeros(0), caption="")
        self.coverage.set_coverage(np.zeros((0, 4)), np.zeros(0))
        self.coverage.ax.set_title("invalid configuration")
        self.message.set_text("Invalid configuration:\n" + text)
        self.message.set_visible(True)


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
        self.cell_box = viz.BoxArtist(ax, edgecolor="yellow", linewidth=1.5, linestyle="dashed", zorder=4)
        self.anchor_boxes = viz.BoxArtist(ax, linewidth=2.0, outline=True, max_labels=len(kinds), zorder=5)
        self.config = first
        self.cell_anchors = np.zeros((0, 4))
        self.cell_kinds = []
        self._shown = (self.preset.value, layer)
        self._syncing = False
        controls = [self.preset, self.layer, self.row, self.col, self.clip, *self.kind_toggles.values()]
        super().__init__(controls, figure)

    def animated_artists(self) -> list:
        boxes = [self.cell_box.collection, self.anchor_boxes.collection, *self.anchor_boxes.labels]
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


__all__ += ["ASPECT_RATIO_SETS", "BlitExplorer", "AnchorScaleExplorer", "AnchorGridExplorer"]


# ----------------------------------------------------------------- model explorer (notebook 06)
class ModelExplorer(BlitExplorer):
    """One cell of one predictor layer: its receptive field and anchors on the photo, and the
    layer's feature map.

    Left: the photo at the model's input size with the cell centres of the chosen layer, the
    cell's theoretical receptive field (dashed yellow square, it may extend beyond the image) and
    its anchors (coloured by aspect ratio). Right: the per-cell L2 norm of the layer's features
    for this photo (before the L2 normalization of conv4_3), with the cell outlined.

    Args:
        model: an SSD from :mod:`ssd_lib.models` (its feature maps are computed once, here).
        config: the model's ``SSDConfig``.
        image: ``(H, W, 3)`` RGB photo; resized to the model input size.
        layer: the layer shown first.

    Attributes (after each update): ``layer_name``, ``field`` (a
    :class:`ssd_lib.models.ReceptiveField`), ``field_corners`` ``(4,)`` pixels, ``cell_anchors``
    ``(n_boxes, 4)`` pixel corners, ``feature_norms`` (one ``(rows, cols)`` array per layer).

    Explained in notebooks/06_model.ipynb.
    """

    image_format = "jpeg"

    def __init__(self, model, config, image, layer: int = 0):
        from . import models  # Keras is imported only by the notebooks that build a model
        from .augment import resize

        self.config = config
        self.photo, _ = resize(np.asarray(image), np.zeros((0, 4)), config.image_height, config.image_width)
        self.layer_names = models.source_layer_names(model, before_normalization=True)
        self.fields = list(models.receptive_fields(model, self.layer_names).values())
        maps = models.feature_maps(model, self.photo[None].astype("float32"), self.layer_names)
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
        self.field_box = viz.BoxArtist(photo_ax, edgecolor="yellow", linewidth=2.0, linestyle="dashed",
                                       outline=True, zorder=4)  # fmt: skip
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


__all__ += ["ModelExplorer"]


# ------------------------------------------------ augmentation explorer (notebook 07)
class AugmentationExplorer(BlitExplorer):
    """A grid of SSD training augmentations of one photo; a seed slider draws new ones.

    Sample ``k`` of the grid draws from ``numpy.random.default_rng([seed, k])``, so a seed
    always shows the same grid. Checkboxes switch the steps of
    :class:`ssd_lib.augment.SSDAugmentation` on and off (colour distortion, expand, crop,
    flip); each panel's title says what its sample got.

    Args:
        image: ``(H, W, 3)`` uint8 RGB photo.
        boxes: ``(k, 4)`` pixel corners; labels: ``(k,)`` class ids.
        class_names: names of classes 1..n for the box labels.
        height, width: output size of the augmentation (the model input).
        rows, columns: the grid.
        seed: initial seed.
        box_labels: write the class name on every box (text costs ~40% of a redraw).

    Attributes:
        seed, colour, expand, crop, flip: the controls.
        samples: the :class:`ssd_lib.viz.SampleArtist` of each panel.
        plans: the :class:`ssd_lib.augment.AugmentationPlan` of each panel (last draw).

    Explained in notebooks/07_data_pipeline.ipynb.
    """

    image_format = "jpeg"

    def __init__(self, image, boxes, labels, class_names=None, height: int = 300, width: int = 300,
                 rows: int = 2, columns: int = 3, seed: int = 0, box_labels: bool = False):  # fmt: skip
        self.photo = np.asarray(image)
        self.gt_boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        self.gt_labels = np.asarray(labels).reshape(-1)
        self.output_height, self.output_width = int(height), int(width)
        self.n_samples = rows * columns
        self.seed = widgets.IntSlider(value=seed, min=0, max=999, description="seed", continuous_update=False)
        self.colour = widgets.Checkbox(value=True, description="colour", indent=False)
        self.expand = widgets.Checkbox(value=True, description="expand", indent=False)
        self.crop = widgets.Checkbox(value=True, description="crop", indent=False)
        self.flip = widgets.Checkbox(value=True, description="flip", indent=False)
        for checkbox in (self.colour, self.expand, self.crop, self.flip):
            checkbox.layout = widgets.Layout(width="90px")
        figure, axes = viz.new_figure(figsize=(3.4 * columns, 3.5 * rows), dpi=80, nrows=rows, ncols=columns,
                                      squeeze=False)  # fmt: skip
        self.samples = [viz.SampleArtist(ax, (self.output_height, self.output_width), class_names=class_names,
                                         max_labels=12 if box_labels else 0) for ax in axes.ravel()]  # fmt: skip
        self.plans = []
        super().__init__([self.seed, self.colour, self.expand, self.crop, self.flip], figure)

    def augmentation(self):
        """The :class:`~ssd_lib.augment.SSDAugmentation` the checkboxes describe."""
        return augment.SSDAugmentation(
            self.output_height, self.output_width,
            photometric=augment.PhotometricDistort() if self.colour.value else None,
            expansion=augment.RandomExpand() if self.expand.value else None,
            cropping=augment.RandomSampleCrop() if self.crop.value else None,
            flip_probability=0.5 if self.flip.value else 0.0,
        )  # fmt: skip

    def animated_artists(self) -> list:
        return [artist for sample in self.samples for artist in sample.artists()]

    def draw(self) -> None:
        augmentation = self.augmentation()
        height, width = self.photo.shape[:2]
        self.plans = []
        for index, sample in enumerate(self.samples):
            rng = np.random.default_rng([self.seed.value, index])
            plan = augmentation.plan(width, height, self.gt_boxes, self.gt_labels, rng=rng)
            pixels = augment.render(self.photo, plan, augmentation.mean)
            sample.set_sample(pixels, plan.boxes, plan.labels, title=plan.describe())
            self.plans.append(plan)


__all__ += ["AugmentationExplorer"]


# ------------------------------------------------------------- decoder explorer (notebook 05)
class DecoderExplorer(BlitExplorer):
    """Decode one image's predictions with your own threshold, NMS IoU and top-k.

    Left: every (anchor, class) pair whose probability is above the confidence threshold (the
    boxes NMS starts from; the lower the score, the fainter the box). Right: what :func:`ssd_lib.decoder.decode_detections` returns with
    these settings (after per-class NMS and top-k), the best six labelled. Ground truth, when
    given, is drawn white on both.

    Args:
        images: ``(n, H, W, 3)`` images the size of the model input (what the model saw).
        y_pred: ``(n, n_anchors, n_classes + 1 + 4)`` the model's output for them.
        config: the model's configuration.
        ground_truths: optional list of ``(k, 4)`` pixel corner boxes per image (model input).
        image_index, confidence_threshold, iou_threshold, top_k: initial control values.

    Attributes:
        image_slider, threshold_slider, iou_slider, top_k_slider: the controls.
        candidates: ``(m, 6)`` the pairs above the threshold, best first (left panel).
        detections: ``(k, 6)`` the decoded detections (right panel).
    """

    image_format = "jpeg"

    def __init__(self, images, y_pred, config, ground_truths=None, image_index: int = 0,
                 confidence_threshold: float = 0.01, iou_threshold: float = 0.45, top_k: int = 200):  # fmt: skip
        self.images = np.asarray(images)
        self.y_pred = np.asarray(y_pred)
        self.config = config
        expected = (config.image_height, config.image_width, 3)
        if self.images.ndim != 4 or self.images.shape[1:] != expected:
            raise ValueError(f"DecoderExplorer: images must be (n, {expected[0]}, {expected[1]}, 3) "
                             f"(the model input size), got {self.images.shape}")  # fmt: skip
        if len(self.y_pred) != len(self.images):
            raise ValueError(f"DecoderExplorer: {len(self.images)} images but {len(self.y_pred)} "
                             f"predictions")  # fmt: skip
        self.ground_truths = ground_truths
        self.anchors = generate_anchors(config)
        # Softmax and box decoding do not depend on the controls: once for all images.
        self._probabilities = class_probabilities(self.y_pred, config)
        self._boxes, self._valid = decode_all_boxes(self.y_pred, config, self.anchors)
        self.candidates = np.zeros((0, 6), np.float32)
        self.detections = np.zeros((0, 6), np.float32)

        self.image_slider = widgets.IntSlider(value=image_index, min=0, max=len(self.images) - 1,
                                              description="image")  # fmt: skip
        self.threshold_slider = widgets.FloatSlider(
            value=confidence_threshold, min=0.01, max=0.99, step=0.01, description="confidence >",
            readout_format=".2f", continuous_update=False, style={"description_width": "initial"},
        )  # fmt: skip
        self.iou_slider = widgets.FloatSlider(
            value=iou_threshold, min=0.05, max=1.0, step=0.05, description="NMS IoU >",
            readout_format=".2f", continuous_update=False, style={"description_width": "initial"},
        )  # fmt: skip
        self.top_k_slider = widgets.IntSlider(value=top_k, min=1, max=200, description="top-k",
                                              continuous_update=False)  # fmt: skip

        figure, axes = viz.new_figure(figsize=(10.0, 5.4), ncols=2)
        class_names = config.class_names
        self.photos, self.gt_artists, self.titles = [], [], []
        for ax in axes:
            self.photos.append(viz.show_image(ax, self.images[image_index]))
            self.gt_artists.append(viz.BoxArtist(ax, edgecolor=viz.GT_COLOR, linewidth=1.5, outline=True,
                                                 zorder=3))  # fmt: skip
            self.titles.append(ax.set_title("", fontsize=10))
        self.candidate_artist = viz.DetectionArtist(axes[0], class_names, max_labels=0, linewidth=1.0,
                                                    score_opacity=True)  # fmt: skip
        self.candidate_artist.boxes.collection.set_antialiased(False)  # thousands of boxes: faster
        self.detection_artist = viz.DetectionArtist(axes[1], class_names, max_labels=6)
        super().__init__([self.image_slider, self.threshold_slider, self.iou_slider, self.top_k_slider],
                         figure)  # fmt: skip

    def animated_artists(self) -> list:
        # The photos are part of the background: drawn once per image, not on every move.
        return [*(gt.collection for gt in self.gt_artists), *self.titles,
                *self.candidate_artist.artists(), *self.detection_artist.artists()]  # fmt: skip

    def _on_change(self, change) -> None:
        if change["owner"] is self.image_slider:
            for photo in self.photos:
                photo.set_data(self.images[self.image_slider.value])
            self._renderer = None  # a new background with the new photo (BlitExplorer.update)
        super()._on_change(change)

    def draw(self) -> None:
        index = self.image_slider.value
        threshold = self.threshold_slider.value
        one = slice(index, index + 1)
        found = select_candidates(self._probabilities[one], self._boxes[one], self._valid[one], threshold)
        order = np.argsort(-found.score, kind="stable")
        self.candidates = np.column_stack([found.class_id, found.score, found.box])[order].astype(np.float32)
        self.detections = decode_detections(self.y_pred[one], self.config, threshold, self.iou_slider.value,
                                            self.top_k_slider.value, anchors=self.anchors)[0]  # fmt: skip
        gt_boxes = np.zeros((0, 4)) if self.ground_truths is None else self.ground_truths[index]
        for gt_artist in self.gt_artists:
            gt_artist.set_boxes(np.asarray(gt_boxes, dtype=float).reshape(-1, 4))
        self.candidate_artist.set_detections(self.candidates)
        self.detection_artist.set_detections(self.detections)
        self.titles[0].set_text(f"image {index}: {len(self.candidates)} (anchor, class) pairs "
                                f"with p > {threshold:.2f}")  # fmt: skip
        self.titles[1].set_text(f"after NMS (IoU > {self.iou_slider.value:.2f}) and top-"
                                f"{self.top_k_slider.value}: {len(self.detections)} detections")  # fmt: skip


__all__ += ["DecoderExplorer"]


# ------------------------------------------------ matching and loss explorers (notebooks 03, 04)
class MatchingExplorer(BlitExplorer):
    """Which anchors a photo's boxes get, as the matching thresholds and the anchors change.

    Controls: the configuration preset, ``pos_iou_threshold``, ``neg_iou_limit`` and the
    matching type (``"multi"`` or ``"bipartite"``). Left: the photo with its ground-truth boxes,
    positive anchors (green; each box's bipartite match thick) and neutral anchors (orange).
    Right: how many anchors each box got (log scale); a box that only has its bipartite match
    shows 1.

    Args:
        image: ``(H, W, 3)`` photo.
        gt_boxes: ``(k, 4)`` pixel corners of its boxes.
        box_names: ``k`` names for the bars (default ``box 0``, ``box 1`` ...).
        presets: name -> ``SSDConfig``; default SSD300 VOC, SSD300 COCO and SSD512 VOC.

    Attributes (after each update): ``config``, ``anchors`` (normalized centroids), ``result``
    (the :class:`ssd_lib.encoder.MatchResult`), ``counts`` (``{"positive", "neutral",
    "background"}`` anchor counts) and ``anchors_per_box`` ``(k,)``.

    Explained in notebooks/03_encoder.ipynb.
    """

    image_format = "jpeg"

    def __init__(self, image, gt_boxes, box_names=None, presets=None):
        self.presets = dict(presets or {"SSD300 VOC": SSD300_VOC, "SSD300 COCO": SSD300_COCO,
                                        "SSD512 VOC": SSD512_VOC})  # fmt: skip
        self.photo = np.asarray(image)
        self.image_height, self.image_width = self.photo.shape[:2]
        self.gt_boxes = check_boxes(gt_boxes, "gt_boxes").reshape(-1, 4)
        n_boxes = len(self.gt_boxes)
        self.box_names = list(box_names) if box_names is not None else [f"box {i}" for i in range(n_boxes)]
        self._anchors = {}  # preset name -> anchors, made on first use
        style = {"description_width": "initial"}
        self.preset = widgets.Dropdown(options=list(self.presets), description="preset")
        self.pos_iou_threshold = widgets.FloatSlider(value=0.5, min=0.1, max=0.9, step=0.05, style=style,
                                                     description="pos_iou_threshold", continuous_update=False)  # fmt: skip
        self.neg_iou_limit = widgets.FloatSlider(value=0.5, min=0.1, max=0.9, step=0.05, style=style,
                                                 description="neg_iou_limit", continuous_update=False)  # fmt: skip
        self.matching = widgets.ToggleButtons(options=["multi", "bipartite"], value="multi", description="matching")

        figure, (self.ax, self.bars_ax) = viz.new_figure(figsize=(9.0, 5.4), dpi=80, ncols=2,
                                                         gridspec_kw={"width_ratios": [2.2, 1]})  # fmt: skip
        viz.show_image(self.ax, self.photo)
        self.match_artist = viz.MatchArtist(self.ax)
        viz.draw_boxes(self.ax, self.gt_boxes, linewidth=2.5, zorder=6)
        viz.match_legend(self.ax)
        self.bars = self.bars_ax.bar(np.arange(n_boxes), np.ones(n_boxes), color=viz.MATCH_COLORS["positive"])
        self.bar_labels = [self.bars_ax.text(i, 1, "", ha="center", va="bottom", fontsize=9) for i in range(n_boxes)]
        self.bars_ax.set_xticks(np.arange(n_boxes), self.box_names, rotation=30, ha="right")
        self.bars_ax.set_yscale("log")
        self.bars_ax.set_ylim(0.7, 1.5 * max(config.n_anchors for config in self.presets.values()))
        self.bars_ax.set_ylabel("positive anchors (log scale)")
        self.bars_ax.set_title("anchors per box", fontsize=10)
        self.bars_ax.grid(True, axis="y", alpha=0.3)
        super().__init__([self.preset, self.pos_iou_threshold, self.neg_iou_limit, self.matching], figure)

    def animated_artists(self) -> list:
        return [*self.match_artist.artists(), *self.bars.patches, *self.bar_labels, self.ax.title]

    def draw(self) -> None:
        name = self.preset.value
        self.config = self.presets[name]
        if name not in self._anchors:
            self._anchors[name] = generate_anchors(self.config)
        self.anchors = self._anchors[name]
        normalized = self.gt_boxes / np.array([self.image_width, self.image_height] * 2)
        self.result = match(normalized, self.anchors, self.pos_iou_threshold.value, self.neg_iou_limit.value,
                            self.matching.value)  # fmt: skip
        state = self.result.state
        self.counts = {"positive": int((state == POSITIVE).sum()), "neutral": int((state == NEUTRAL).sum()),
                       "background": int((state == BACKGROUND).sum())}  # fmt: skip
        self.match_artist.set_match(self.anchors, self.result, self.image_width, self.image_height)
        matched = self.result.matched_gt_index
        self.anchors_per_box = np.bincount(matched[matched >= 0], minlength=len(self.gt_boxes))
        for bar, label, count in zip(self.bars, self.bar_labels, self.anchors_per_box):
            bar.set_height(max(count, 0.7))
            label.set_position((label.get_position()[0], max(count, 0.7)))
            label.set_text(str(count))
        self.ax.set_title(
            f"{name} ({len(self.anchors)} anchors) · {self.matching.value}: {self.counts['positive']} positive · "
            f"{self.counts['neutral']} neutral · {self.counts['background']} background", fontsize=9)  # fmt: skip


class LossExplorer(BlitExplorer):
    """The SSD loss of a blended prediction: each term, and which negatives the mining keeps.

    The prediction is ``quality * perfect + (1 - quality) * noise``: "perfect" has logits
    favouring the target class by a wide margin and the target offsets, "noise" is fixed random
    logits and offsets. Controls: ``neg_pos_ratio``, the prediction quality and the mining
    (``"per_image"`` or ``"batch"``). Left: the first image with positive anchors (green) and the
    hard negatives kept (red). Middle: the first image's background anchors sorted by their
    loss, the kept ones in red. Right: the loss terms of the batch, divided by the positives.

    Args:
        image: ``(H, W, 3)`` photo of the first image of the batch.
        y_true: ``(batch, n_anchors, 5)`` from :class:`ssd_lib.encoder.SSDEncoder` (image 0 =
            the photo; more images make batch mining differ from per-image mining).
        config: the :class:`~ssd_lib.config.SSDConfig` that encoded ``y_true``.
        gt_boxes: optional ``(k, 4)`` pixel corners on the photo to draw.
        seed: seed of the noise.

    Attributes (after each update): ``y_pred``, ``terms`` (numpy versions of
    :meth:`ssd_lib.losses.SSDLoss.terms`), ``loss`` (the scalar), ``term_values`` (the four
    bars: positive and hard-negative classification, localization, total; per positive).

    Explained in notebooks/04_loss.ipynb.
    """

    image_format = "jpeg"
    #: Where the (log-scale) bars of the loss terms start.
    BAR_START = 1e-3

    def __init__(self, image, y_true, config, gt_boxes=None, seed: int = 0):
        from keras import ops

        from .losses import SSDLoss

        self._ops, self._loss_class = ops, SSDLoss
        self.photo = np.asarray(image)
        self.image_height, self.image_width = self.photo.shape[:2]
        self.y_true = np.asarray(y_true, dtype=np.float32)
        self.config = config
        self.anchors = generate_anchors(config)
        rng = np.random.default_rng(seed)
        batch, n_anchors = self.y_true.shape[:2]
        n_logits = config.n_classes + 1
        labels = np.maximum(self.y_true[..., 0], 0).astype(int)
        perfect_logits = 8.0 * np.eye(n_logits, dtype=np.float32)[labels]  # (b, n, n_classes + 1)
        self._perfect = np.concatenate([perfect_logits, self.y_true[..., 1:]], axis=-1)
        self._noise = rng.normal(0.0, 2.0, (batch, n_anchors, n_logits + 4)).astype(np.float32)

        self.neg_pos_ratio = widgets.IntSlider(value=3, min=1, max=10, description="neg_pos_ratio",
                                               style={"description_width": "initial"})  # fmt: skip
        self.quality = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="quality",
                                           continuous_update=False)  # fmt: skip
        self.mining = widgets.ToggleButtons(options=["per_image", "batch"], value="per_image", description="mining")

        figure, axes = viz.new_figure(figsize=(12.0, 4.8), dpi=80, ncols=3,
                                      gridspec_kw={"width_ratios": [1.2, 1.1, 1.0]})  # fmt: skip
        self.photo_ax, self.rank_ax, self.terms_ax = axes
        # One status line for everything that changes (text is the slowest thing to draw).
        self.status = figure.suptitle(" ", fontsize=10)
        self.photo_ax.set_title("image 0: positives and kept hard negatives", fontsize=9)
        self.rank_ax.set_title("image 0: background anchors sorted by loss", fontsize=9)
        self.terms_ax.set_title("loss terms of the batch", fontsize=9)
        viz.show_image(self.photo_ax, self.photo)
        self.hard_negatives = viz.BoxArtist(self.photo_ax, edgecolor=viz.HARD_NEGATIVE_COLOR, linewidth=0.8, zorder=3)
        self.positives = viz.BoxArtist(self.photo_ax, edgecolor=viz.MATCH_COLORS["positive"], linewidth=1.2, zorder=4)
        if gt_boxes is not None:
            viz.draw_boxes(self.photo_ax, gt_boxes, linewidth=2.0, zorder=6)
        viz.match_legend(self.photo_ax, hard_negatives=True)

        (self.rank_line,) = self.rank_ax.plot([], [], color="0.3", linewidth=1.2, label="background anchors")
        (self.kept_line,) = self.rank_ax.plot([], [], color=viz.HARD_NEGATIVE_COLOR, linewidth=3, label="kept")
        self.rank_ax.set_xscale("log")
        self.rank_ax.set_yscale("log")
        self.rank_ax.set_xlim(1, n_anchors)
        self.rank_ax.set_ylim(1e-3, 30)
        self.rank_ax.set_xlabel("rank among the image's background anchors (log scale)")
        self.rank_ax.set_ylabel("cross-entropy (log scale)")
        self.rank_ax.grid(True, alpha=0.3)
        self.rank_ax.legend(loc="upper right", fontsize=8)

        names = ["positive\nclassification", "hard-negative\nclassification", "localization", "total"]
        self.term_bars = self.terms_ax.barh(np.arange(4)[::-1], np.zeros(4), left=self.BAR_START,
                                            color=[viz.MATCH_COLORS["positive"], viz.HARD_NEGATIVE_COLOR, "tab:blue", "0.2"])  # fmt: skip
        self.term_labels = [self.terms_ax.text(0, y, "", va="center", fontsize=9) for y in np.arange(4)[::-1]]
        self.terms_ax.set_yticks(np.arange(4)[::-1], names, fontsize=9)
        self.terms_ax.set_xscale("log")
        self.terms_ax.set_xlabel("per positive (log scale)")
        self.terms_ax.grid(True, axis="x", alpha=0.3)
        worst = self._compute(quality=0.0, neg_pos_ratio=self.neg_pos_ratio.max, mining="per_image")
        self.terms_ax.set_xlim(self.BAR_START, 8 * float(worst["total"]))
        super().__init__([self.neg_pos_ratio, self.quality, self.mining], figure)

    def _compute(self, quality, neg_pos_ratio, mining) -> dict:
        """Numpy loss terms of the blended prediction."""
        y_pred = quality * self._perfect + (1.0 - quality) * self._noise
        loss = self._loss_class(neg_pos_ratio=neg_pos_ratio, mining=mining)
        terms = {key: self._ops.convert_to_numpy(value) for key, value in loss.terms(self.y_true, y_pred).items()}
        terms["y_pred"] = y_pred
        return terms

    def animated_artists(self) -> list:
        return [self.hard_negatives.collection, self.positives.collection, self.rank_line, self.kept_line,
                *self.term_bars.patches, *self.term_labels, self.status]  # fmt: skip

    def draw(self) -> None:
        terms = self._compute(self.quality.value, self.neg_pos_ratio.value, self.mining.value)
        self.y_pred = terms.pop("y_pred")
        self.terms = terms
        self.loss = float(terms["total"])
        size = np.array([self.image_width, self.image_height] * 2)
        corners = centroids_to_corners(self.anchors) * size
        kept = terms["kept_negative_mask"][0] > 0
        positive = terms["positive_mask"][0] > 0
        self.hard_negatives.set_boxes(corners[kept])
        self.positives.set_boxes(corners[positive])
        negative_losses = np.sort(terms["classification_per_anchor"][0][terms["negative_mask"][0] > 0])[::-1]
        # Ranks 1, 2, ... n on a log axis: about 300 log-spaced ranks draw the same curve.
        ranks = np.unique(np.geomspace(1, max(len(negative_losses), 1), 300).astype(int))
        self.rank_line.set_data(ranks, negative_losses[ranks - 1])
        n_kept = int(kept.sum())
        kept_ranks = np.unique(np.r_[ranks[ranks < n_kept], n_kept]) if n_kept else ranks[:0]
        self.kept_line.set_data(kept_ranks, negative_losses[kept_ranks - 1])
        n_positives = max(float(terms["n_positives"].sum()), 1.0)
        self.term_values = [float(terms["positive_classification"].sum() / n_positives),
                            float(terms["negative_classification"].sum() / n_positives),
                            float(terms["localization"].sum() / n_positives), self.loss]  # fmt: skip
        for bar, label, value in zip(self.term_bars, self.term_labels, self.term_values):
            bar.set_width(max(value - self.BAR_START, 0.0))
            label.set_position((max(value, self.BAR_START), label.get_position()[1]))
            label.set_text(f" {value:.2f}")
        kept_all = int(terms["n_kept_negatives"].sum())
        self.status.set_text(
            f"image 0: {int(positive.sum())} positives, {n_kept} negatives ({self.mining.value}) · "
            f"batch: {int(n_positives)} positives, {kept_all} negatives · loss {self.loss:.3f}")  # fmt: skip


__all__ += ["MatchingExplorer", "LossExplorer"]


# ------------------------------------------------ training curves (notebook 08)
class TrainingCurvesExplorer(BlitExplorer):
    """Loss, validation mAP and learning rate of a training run, read from its ``log.csv``.

    Controls: ``smoothing`` (exponential moving average of the losses, as TensorBoard's
    slider), ``epochs`` (the range shown) and ``log_scale`` (loss axis). :meth:`refresh` re-reads
    the log, so a Keras callback calling it at every epoch end turns it into a live plot.
    Moving ``smoothing`` redraws only the two smoothed lines (blitting); the other controls
    change axes limits and titles and redraw the whole figure.

    Args:
        log: a ``log.csv`` path (:func:`ssd_lib.train.read_log` reads it) or a list of rows.
        title: optional figure title.

    Attributes:
        rows: the log rows shown (dicts, as ``read_log`` returns them).
    """

    def __init__(self, log, title: str | None = None):
        self.source = log
        self.rows = self._read()
        last = self._last_epoch()
        self.smoothing = widgets.FloatSlider(value=0.0, min=0.0, max=0.95, step=0.05, description="smoothing",
                                             continuous_update=False)  # fmt: skip
        self.epochs = widgets.IntRangeSlider(value=(1, last), min=1, max=last, description="epochs",
                                             continuous_update=False)  # fmt: skip
        self.log_scale = widgets.Checkbox(value=False, description="log loss axis")
        figure, (loss_ax, metric_ax) = viz.new_figure(figsize=(9.0, 3.4), ncols=2)
        if title:
            figure.suptitle(title, fontsize=11)
        self.artist = viz.TrainingCurvesArtist(loss_ax, metric_ax)
        super().__init__([self.smoothing, self.epochs, self.log_scale], figure)

    def _read(self) -> list:
        if isinstance(self.source, (list, tuple)):
            return list(self.source)
        from .train import read_log  # imports Keras: only when reading a file

        return read_log(self.source)

    def _last_epoch(self) -> int:
        return max([int(row["epoch"]) for row in self.rows] + [1])

    def refresh(self) -> None:
        """Re-read the log (new epochs) and redraw; a range that ended at the last epoch grows."""
        was_at_end = self.epochs.value[1] == self.epochs.max
        self.rows = self._read()
        last = self._last_epoch()
        with self.hold_trait_notifications():
            self.epochs.max = max(last, self.epochs.min)
            if was_at_end:
                self.epochs.value = (self.epochs.value[0], last)
        self.update()

    def animated_artists(self) -> list:
        return [self.artist.train_line, self.artist.val_line]

    def update(self) -> None:
        layout = (self.epochs.value, self.log_scale.value, len(self.rows), id(self.rows))
        if layout != getattr(self, "_layout", None):  # limits or titles change: draw everything
            self._layout, self._renderer = layout, None
        super().update()

    def draw(self) -> None:
        self.artist.loss_ax.set_yscale("log" if self.log_scale.value else "linear")
        self.artist.set_log(self.rows, self.smoothing.value, self.epochs.value)


__all__ += ["TrainingCurvesExplorer"]
