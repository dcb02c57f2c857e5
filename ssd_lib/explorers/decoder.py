"""Notebook 05's explorer: decode one image's predictions with your own threshold, NMS IoU and top-k."""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from .. import viz
from ..anchors import generate_anchors
from ..decoder import class_probabilities, decode_all_boxes, decode_detections, select_candidates
from .base import BlitExplorer


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
