"""Detections on an image or a row of photos, score maps and precision-recall curves (notebook 05;
photos: 00, 08)."""

from __future__ import annotations

import numpy as np

from ..metrics import ELEVEN_RECALL_LEVELS, eleven_point_precisions, precision_envelope
from .boxes import BoxArtist, draw_boxes
from .figures import show_image
from .palette import class_color


def detection_labels(detections, class_names=None) -> list[str]:
    """``"name 0.93"`` for each row ``[class_id, score, ...]`` of ``(k, 6)`` detections."""
    labels = []
    for class_id, score in np.asarray(detections, dtype=float).reshape(-1, 6)[:, :2]:
        name = class_names[int(class_id) - 1] if class_names is not None else f"class {int(class_id)}"
        labels.append(f"{name} {score:.2f}")
    return labels


class DetectionArtist:
    """Detections ``(k, 6)`` ``[class_id, score, xmin, ymin, xmax, ymax]`` drawn as boxes coloured
    by class, with ``"name score"`` labels on the best ``max_labels``; updatable in place.

    Args:
        ax: the axes (pixel coordinates of the image the boxes belong to).
        class_names: names of classes 1..n (default ``"class i"``).
        max_labels: how many of the best detections get a text label.
        linewidth: line width in points.
        score_opacity: draw each box with opacity 0.15 + 0.85 * score, so that the many
            low-scored boxes of a low threshold stay faint.
    """

    def __init__(self, ax, class_names=None, max_labels: int = 10, linewidth: float = 2.0,
                 score_opacity: bool = False):  # fmt: skip
        self.class_names = class_names
        self.score_opacity = score_opacity
        self.boxes = BoxArtist(ax, edgecolor="tab:blue", linewidth=linewidth, max_labels=max_labels,
                               zorder=4)  # fmt: skip

    def set_detections(self, detections):
        """Show ``(k, 6)`` detections (rows in score order: the first ones get labels)."""
        detections = np.asarray(detections, dtype=float).reshape(-1, 6)
        labelled = detections[: len(self.boxes.labels)]  # only these get a label
        colors = class_color(detections[:, 0].astype(int)).reshape(-1, 4)
        if self.score_opacity:
            colors[:, 3] = 0.15 + 0.85 * np.clip(detections[:, 1], 0, 1)
        self.boxes.set_boxes(detections[:, 2:], colors=colors,
                             labels=detection_labels(labelled, self.class_names))  # fmt: skip
        return self

    def artists(self) -> list:
        """Everything :meth:`set_detections` changes (for blitting)."""
        return self.boxes.artists()


def draw_detections(ax, detections, class_names=None, max_labels: int = 10, **kwargs) -> DetectionArtist:
    """Draw ``(k, 6)`` detections on ``ax``; see :class:`DetectionArtist`."""
    return DetectionArtist(ax, class_names, max_labels, **kwargs).set_detections(detections)


def show_detections(ax, image, detections, class_names=None, min_score: float = 0.5, ground_truth=None,
                    linewidth: float = 1.5) -> np.ndarray:
    """Show ``image`` with its detections scored at least ``min_score``, each labelled, over its
    ground-truth boxes (white) when given: what a detector found on one image.

    Args:
        ax: the axes.
        image: ``(H, W, 3)`` the image the detections' pixel boxes belong to.
        detections: ``(k, 6)`` ``[class_id, score, xmin, ymin, xmax, ymax]``, best first.
        class_names: names of classes 1..n.
        min_score: the lowest score drawn.
        ground_truth: optional ``(m, 4)`` pixel corners.
        linewidth: of the detections (ground truth is drawn 1.5 times as wide).

    Returns:
        The ``(j, 6)`` detections drawn (set the title from them).
    """
    detections = np.asarray(detections, dtype=float).reshape(-1, 6)
    shown = detections[detections[:, 1] >= min_score]
    show_image(ax, image)
    if ground_truth is not None:
        draw_boxes(ax, ground_truth, linewidth=1.5 * linewidth)
    draw_detections(ax, shown, class_names, max_labels=len(shown), linewidth=linewidth)
    return shown


def show_detection_row(figure, photos, detections, class_names=None, min_score: float = 0.5,
                       top_k: int | None = None, title: str | None = None) -> list[np.ndarray]:
    """A row of photos, each with its detections scored at least ``min_score`` and titled with
    how many it shows: what a detector found on a few photos.

    Args:
        figure: an empty figure (``plt.figure(...)`` in a notebook); gets one axes per photo.
        photos: ``n`` images ``(H, W, 3)`` (sizes may differ).
        detections: ``n`` arrays ``(k, 6)`` ``[class_id, score, xmin, ymin, xmax, ymax]`` in
            their photo's pixels, best first (what :func:`ssd_lib.inference.predict` returns).
        class_names: names of classes 1..n.
        min_score: the lowest score drawn.
        top_k: draw at most the ``top_k`` best detections of each photo (the decoder's
            ``top_k``), and say so in the titles.
        title: the figure's title.

    Returns:
        The ``(j, 6)`` detections drawn on each photo.

    Raises:
        ValueError: no photos, not one detections array per photo, or ``top_k`` < 1.
    """
    if len(photos) == 0:
        raise ValueError("show_detection_row: no photos")
    if len(detections) != len(photos):
        raise ValueError(f"show_detection_row: {len(photos)} photos but {len(detections)} detection arrays"
                         " (one per photo)")  # fmt: skip
    if top_k is not None and top_k < 1:
        raise ValueError(f"show_detection_row: top_k must be at least 1, got {top_k}")
    axes = np.atleast_1d(figure.subplots(1, len(photos)))
    limit = f" (at most {top_k})" if top_k is not None else ""
    shown_per_photo = []
    for ax, photo, found in zip(axes, photos, detections):
        found = np.asarray(found, dtype=float).reshape(-1, 6)[:top_k]
        shown = show_detections(ax, photo, found, class_names, min_score=min_score)
        ax.set_title(f"{len(shown)} detections with score ≥ {min_score:g}{limit}")
        shown_per_photo.append(shown)
    if title is not None:
        figure.suptitle(title, fontsize=10)
    return shown_per_photo


def show_score_map(ax, values, title: str | None = None, vmax: float = 1.0, cmap: str = "magma"):
    """Show a ``(rows, cols)`` map of scores in [0, vmax] (one value per feature-map cell) over the
    unit square; returns the ``AxesImage`` (``set_data`` updates it)."""
    artist = ax.imshow(np.asarray(values, dtype=float), cmap=cmap, vmin=0.0, vmax=vmax,
                       interpolation="nearest", extent=(0.0, 1.0, 1.0, 0.0))  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return artist


def draw_precision_recall(ax, precision, recall, label: str = "precision-recall",
                          color="tab:blue", eleven_points: bool = True) -> dict:  # fmt: skip
    """A class's precision-recall curve (best detection first), its monotone envelope (the
    precision AP integrates; shaded = all-point AP) and the 11 VOC2007 sample points.

    Returns a dict of the artists: ``curve``, ``envelope``, ``area`` and ``points`` (if drawn).
    """
    precision = np.asarray(precision, dtype=float)
    recall = np.asarray(recall, dtype=float)
    artists = {}
    (artists["curve"],) = ax.plot(recall, precision, ".-", color=color, markersize=3, linewidth=1,
                                  alpha=0.6, label=label)  # fmt: skip
    envelope = precision_envelope(precision)
    steps_recall = np.concatenate([[0.0], recall])
    steps_precision = np.concatenate([envelope[:1], envelope])
    (artists["envelope"],) = ax.step(steps_recall, steps_precision, where="pre", color=color,
                                     linewidth=2, label="envelope (best precision at this recall or more)")  # fmt: skip
    artists["area"] = ax.fill_between(steps_recall, steps_precision, step="pre", color=color, alpha=0.15,
                                      label="all-point AP = shaded area")  # fmt: skip
    if eleven_points:
        samples = eleven_point_precisions(precision, recall)
        (artists["points"],) = ax.plot(ELEVEN_RECALL_LEVELS, samples, "o", color="black", markersize=5,
                                       label="11-point samples (VOC2007)")  # fmt: skip
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return artists
