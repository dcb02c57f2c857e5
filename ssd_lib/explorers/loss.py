"""Notebook 04's explorer: the SSD loss of a blended prediction, term by term, and hard negative mining."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import viz
from ..anchors import generate_anchors
from ..boxes import centroids_to_corners
from .base import BlitExplorer


class LossExplorer(BlitExplorer):
    """The SSD loss of a blended prediction: each term, and which negatives the mining keeps.

    The prediction is ``quality * perfect + (1 - quality) * noise``: "perfect" has logits
    favouring the target class by a wide margin and the target offsets, "noise" is fixed random
    logits and offsets. Controls: ``neg_pos_ratio``, the prediction quality and the mining
    (``"per_image"`` or ``"batch"``). Left: the first image with positive anchors (green) and the
    hard negatives kept (magenta). Middle: the first image's background anchors sorted by their
    loss, the kept ones in magenta. Right: the loss terms of the batch, divided by the positives.

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

        from ..losses import SSDLoss

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
        viz.show_image(self.photo_ax, self.photo, fade=viz.MATCH_FADE)
        self.hard_negatives = viz.hard_negative_artist(self.photo_ax)
        self.positives = viz.positive_artist(self.photo_ax)
        if gt_boxes is not None:
            viz.draw_boxes(self.photo_ax, gt_boxes, linewidth=2.0, zorder=6)
        shown = ["ground truth", "positive", "hard negative"] if gt_boxes is not None else ["positive", "hard negative"]
        # Below the photo, where no box crosses it.
        viz.match_legend(self.photo_ax, shown, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncols=3)

        (self.rank_line,) = self.rank_ax.plot([], [], color=viz.MATCH_COLORS["background"], linewidth=1.2,
                                              label="background anchors")  # fmt: skip
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
                                            color=[viz.MATCH_COLORS["positive"], viz.HARD_NEGATIVE_COLOR, "0.35", "black"])  # fmt: skip
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
