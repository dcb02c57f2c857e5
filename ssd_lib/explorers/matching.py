"""Notebook 03's explorer: which anchors a photo's boxes get, as thresholds and anchors change."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import viz
from ..anchors import generate_anchors
from ..boxes import check_boxes
from ..config import SSD300_COCO, SSD300_VOC, SSD512_VOC
from ..matching import BACKGROUND, NEUTRAL, POSITIVE, match
from .base import BlitExplorer


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
    (the :class:`ssd_lib.matching.MatchResult`), ``counts`` (``{"positive", "neutral",
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
        viz.show_image(self.ax, self.photo, fade=viz.MATCH_FADE)
        self.match_artist = viz.MatchArtist(self.ax)
        viz.draw_boxes(self.ax, self.gt_boxes, linewidth=2.5, zorder=6)
        viz.match_legend(self.ax, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=4)  # below the photo
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
