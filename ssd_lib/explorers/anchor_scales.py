"""Notebook 01's explorer: anchor scales and aspect ratios against the boxes of a dataset."""

from __future__ import annotations

import dataclasses

import ipywidgets as widgets
import numpy as np

from .. import viz
from ..anchors import best_anchor_iou, cell_box_shapes, generate_anchors
from ..boxes import check_boxes
from ..config import SSD300_VOC, scale_schedule
from .base import BlitExplorer

#: Aspect-ratio sets of the scale explorer: a name -> the ratios of every layer (None: as the
#: base configuration has them).
ASPECT_RATIO_SETS = {
    "as preset": None,
    "1": (1.0,),
    "1, 2, 1/2": (1.0, 2.0, 0.5),
    "1, 2, 1/2, 3, 1/3": (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0),
}


class AnchorScaleExplorer(BlitExplorer):
    """Anchor scales and aspect ratios against the ground-truth boxes of a dataset.

    Sliders set ``s_min`` and ``s_max`` of the linear scale schedule; with "first layer fixed"
    the first layer keeps the base configuration's scale and the schedule runs over the other
    layers (as in the SSD300 preset: 0.1, then 0.2 ... 0.88, 1.05), otherwise it runs over all
    layers. Toggles choose the aspect-ratio set and ``two_boxes_for_ar1``; given several sets of
    boxes, a menu chooses the set. The figure shows the anchors of one cell of every layer and
    the anchor coverage: each ground-truth box's best IoU with any anchor. Invalid combinations
    (``s_max <= s_min`` ...) show a message instead.

    Args:
        boxes: ``(k, 4)`` normalized corners of the ground-truth boxes to cover (e.g.
            :func:`ssd_lib.anchors.records_to_normalized_corners` of the samples), or a dict
            name -> such an array (the menu's choices, the first shown first).
        base_config: the ``SSDConfig`` whose feature maps, steps and offsets are kept.
        threshold: the IoU a box's best anchor must reach to count as covered.
        max_boxes: a set with more boxes is shown as a fixed random sample of this many (a
            redraw computes every box's IoU with every anchor: 500 boxes x 8732 anchors take
            about 0.2 s).

    Attributes (after each update): ``config`` (the ``SSDConfig`` drawn, None if invalid),
    ``gt_corners`` ``(k, 4)`` (the boxes shown), ``best_iou`` ``(k,)``, ``covered_share``,
    ``error`` (the message shown, or None).

    Explained in notebooks/01_anchor_scales.ipynb.
    """

    def __init__(self, boxes, base_config=None, threshold: float = 0.5, max_boxes: int = 500):
        self.base_config = SSD300_VOC if base_config is None else base_config
        self.box_sets = box_sets(boxes, max_boxes)
        self.box_set = widgets.Dropdown(options=list(self.box_sets), description="boxes",
                                        layout=widgets.Layout(width="max-content"))  # fmt: skip
        self.gt_corners = self.box_sets[self.box_set.value]
        base = self.base_config
        n_layers = base.n_layers
        slider = dict(step=0.01, readout_format=".2f", style={"description_width": "initial"},
                      continuous_update=False)  # fmt: skip
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
        viz.aspect_ratio_legend(figure, ASPECT_RATIO_SETS["1, 2, 1/2, 3, 1/3"], loc="outside upper center",
                                ncols=5, title="anchor aspect ratios r = w / h", title_fontsize=8)  # fmt: skip
        self.message = viz.figure_message(figure)
        self.config = None
        self.best_iou = np.zeros(len(self.gt_corners))
        self.covered_share = 0.0
        self.error = None
        controls = [self.min_scale, self.max_scale, self.first_layer_fixed,
                    self.two_boxes_for_ar1, self.aspect_ratio_set]  # fmt: skip
        if len(self.box_sets) > 1:
            controls.append(self.box_set)
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
        self.gt_corners = self.box_sets[self.box_set.value]
        self.message.set_visible(False)
        for layer, panel in enumerate(self.shape_panels):
            sizes, _, ratios = cell_box_shapes(config, layer)
            panel.set_shapes(sizes, ratios, caption=viz.cell_shapes_labels(config, layer)[1])
        self.best_iou = best_anchor_iou(self.gt_corners, generate_anchors(config))
        set_name = f"{self.box_set.value} · " if len(self.box_sets) > 1 else ""
        self.covered_share = self.coverage.set_coverage(
            self.gt_corners, self.best_iou, config.scales[:-1], title_prefix=f"{set_name}{config.n_anchors} anchors · ",
        )  # fmt: skip

    def _show_error(self, text: str) -> None:
        self.config, self.error = None, text
        self.gt_corners = self.box_sets[self.box_set.value]
        self.best_iou = np.zeros(len(self.gt_corners))
        self.covered_share = 0.0
        for panel in self.shape_panels:
            panel.set_shapes(np.zeros((0, 2)), np.zeros(0), caption="")
        self.coverage.set_coverage(np.zeros((0, 4)), np.zeros(0))
        self.coverage.ax.set_title("invalid configuration")
        self.message.set_text("Invalid configuration:\n" + text)
        self.message.set_visible(True)


def box_sets(boxes, max_boxes: int) -> dict:
    """The explorer's sets of boxes: name -> ``(k, 4)`` normalized corners, at most
    ``max_boxes`` each (a larger set is replaced by a fixed random sample, named so).

    Raises ``ValueError`` naming the set when one is not ``(k, 4)`` or when there is no set.
    """
    named = dict(boxes) if isinstance(boxes, dict) else {"boxes": boxes}
    if not named:
        raise ValueError("AnchorScaleExplorer: boxes is an empty dict; give at least one set of boxes")
    if max_boxes < 1:
        raise ValueError(f"AnchorScaleExplorer: max_boxes must be at least 1, got {max_boxes}")
    sets = {}
    for name, corners in named.items():
        corners = check_boxes(corners, f"boxes[{name!r}]").reshape(-1, 4)
        if len(corners) > max_boxes:
            keep = np.sort(np.random.default_rng(0).choice(len(corners), max_boxes, replace=False))
            corners, name = corners[keep], f"{name}: a random {max_boxes} of {len(corners)}"
        sets[name] = corners
    return sets
