"""From raw network output to detections: softmax, box decoding, threshold, per-class NMS, top-k.

The model predicts, for every anchor, ``n_classes + 1`` class logits (class 0 = background) and
four offsets. :func:`decode_detections` turns a batch of such predictions into one list of
detections per image:

1. **softmax** over the logits of each anchor: class probabilities;
2. **decode** the offsets against the anchors with the config's variances: boxes in pixels of the
   model input, clipped to the image (``clip_boxes=False`` keeps them whole, as ssd_keras does);
3. **threshold**: keep the (anchor, class) pairs whose probability is above
   ``confidence_threshold`` (the background class is never a detection), optionally only the
   ``candidates_per_class`` best of each class (torchvision's ``topk_candidates``);
4. **greedy non-maximum suppression (NMS) per class**: visit the candidates of one class from the
   highest score down; keep a box unless a box kept before it overlaps it with IoU above
   ``iou_threshold``;
5. **top-k**: the ``top_k`` best detections over all classes.

The NMS is exactly the greedy algorithm, computed without a Python loop over boxes: see
:func:`ssd_lib.nms.greedy_nms`. For deployment, :mod:`ssd_lib.detection_layer` does the same
inside a Keras model (TensorFlow backend).

Explained in notebooks/05_decoder.ipynb.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .anchors import generate_anchors
from .boxes import centroids_to_corners, check_boxes
from .config import SSDConfig
from .box_coding import decode_boxes
from .nms import greedy_nms

__all__ = [
    "Candidates",
    "class_probabilities",
    "decode_all_boxes",
    "select_candidates",
    "decode_detections",
]


class Candidates(NamedTuple):
    """(anchor, class) pairs above the confidence threshold, flattened over a batch.

    All fields have length ``n_candidates``, in the order (image, anchor, class).
    """

    image: np.ndarray  #: int, index of the image in the batch
    anchor: np.ndarray  #: int, index of the anchor
    class_id: np.ndarray  #: int, 1..n_classes
    score: np.ndarray  #: float32, softmax probability of that class
    box: np.ndarray  #: (n_candidates, 4) float32 pixel corners in the model input


def _check_predictions(y_pred, config: SSDConfig) -> np.ndarray:
    """``y_pred`` as a float array of shape (batch, n_anchors, n_classes + 5), else ValueError."""
    y_pred = np.asarray(y_pred)
    expected = (config.n_anchors, config.n_classes + 1 + 4)
    if y_pred.ndim != 3 or y_pred.shape[1:] != expected:
        raise ValueError(
            f"y_pred: expected shape (batch, {expected[0]}, {expected[1]}) = (batch, n_anchors, "
            f"n_classes + 1 + 4) for this config, got {y_pred.shape}"
        )
    if not np.issubdtype(y_pred.dtype, np.floating):
        y_pred = y_pred.astype(np.float32)
    return y_pred


def _valid_anchors(y_pred: np.ndarray) -> np.ndarray:
    """``(..., n_anchors)`` True where every logit and offset of the anchor is finite."""
    return np.isfinite(y_pred).all(axis=-1)


def _softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of finite logits (shifted by the maximum: no overflow)."""
    exp_logits = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp_logits / exp_logits.sum(axis=-1, keepdims=True)


def class_probabilities(y_pred, config: SSDConfig) -> np.ndarray:
    """Softmax of the class logits of every anchor.

    Args:
        y_pred: ``(batch, n_anchors, n_classes + 1 + 4)`` model output (logits, then offsets).
        config: the detector's configuration.

    Returns:
        ``(batch, n_anchors, n_classes + 1)`` probabilities (column 0 = background), each row
        summing to 1. Anchors with a non-finite logit or offset get all zeros.

    Raises:
        ValueError: if ``y_pred`` does not have the shape the config implies.
    """
    y_pred = _check_predictions(y_pred, config)
    valid = _valid_anchors(y_pred)[..., None]  # (batch, n_anchors, 1)
    probabilities = _softmax(np.where(valid, y_pred[..., : config.n_classes + 1], 0))
    return np.where(valid, probabilities, 0).astype(y_pred.dtype, copy=False)


def _check_anchors(anchors, config: SSDConfig) -> np.ndarray:
    anchors = generate_anchors(config) if anchors is None else check_boxes(anchors, "anchors")
    if anchors.shape != (config.n_anchors, 4):
        raise ValueError(f"anchors: expected shape ({config.n_anchors}, 4), got {anchors.shape}")
    return anchors


def _offsets_to_pixel_corners(offsets: np.ndarray, anchors: np.ndarray, config: SSDConfig,
                              clip_boxes: bool = True):  # fmt: skip
    """Finite offsets ``(..., 4)`` and their anchors -> float32 pixel corners (clipped to the
    image with ``clip_boxes``), valid."""
    with np.errstate(over="ignore", invalid="ignore"):  # exp may overflow: dropped below
        corners = centroids_to_corners(decode_boxes(offsets, anchors, config.variances))
    valid = np.isfinite(corners).all(axis=-1)
    size = np.array([config.image_width, config.image_height] * 2, dtype=corners.dtype)
    corners = np.where(valid[..., None], corners, 0) * size
    if clip_boxes:
        corners = np.clip(corners, 0, size)
    valid &= (corners[..., 2] > corners[..., 0]) & (corners[..., 3] > corners[..., 1])
    return corners.astype(np.float32, copy=False), valid


def decode_all_boxes(y_pred, config: SSDConfig, anchors=None,
                     clip_boxes: bool = True) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Decode the offsets of every anchor into pixel corner boxes of the model input.

    Args:
        y_pred: ``(batch, n_anchors, n_classes + 1 + 4)`` model output.
        config: the detector's configuration (anchors, variances, image size).
        anchors: optional precomputed ``generate_anchors(config)``.
        clip_boxes: clip the boxes to the image.

    Returns:
        ``(boxes, valid)``: ``boxes`` ``(batch, n_anchors, 4)`` float32 pixel corners
        (xmin, ymin, xmax, ymax), clipped to the image with ``clip_boxes``; ``valid``
        ``(batch, n_anchors)`` bool,
        False where a logit or offset is NaN/inf, the decoded box is not finite (an offset so
        large that ``exp`` overflows), or the clipped box has zero width or height.

    Raises:
        ValueError: if ``y_pred`` or ``anchors`` does not have the shape the config implies.
    """
    y_pred = _check_predictions(y_pred, config)
    anchors = _check_anchors(anchors, config)
    valid = _valid_anchors(y_pred)
    offsets = np.where(valid[..., None], y_pred[..., -4:], 0)
    corners, decoded = _offsets_to_pixel_corners(offsets, anchors, config, clip_boxes)
    return corners, valid & decoded


def select_candidates(probabilities, boxes, valid, confidence_threshold: float) -> Candidates:
    """The (anchor, class) pairs whose probability is above the threshold (background excluded).

    Args:
        probabilities: ``(batch, n_anchors, n_classes + 1)`` from :func:`class_probabilities`.
        boxes, valid: from :func:`decode_all_boxes`.
        confidence_threshold: keep pairs with probability strictly greater than this.

    Returns:
        :class:`Candidates`, ordered by (image, anchor, class).
    """
    above = probabilities[..., 1:] > confidence_threshold  # (batch, n_anchors, n_classes)
    above &= valid[..., None]
    image, anchor, class_index = np.nonzero(above)
    return Candidates(
        image=image,
        anchor=anchor,
        class_id=class_index + 1,
        score=probabilities[image, anchor, class_index + 1].astype(np.float32, copy=False),
        box=boxes[image, anchor],
    )


def _candidates_fast(y_pred, config, anchors, confidence_threshold, clip_boxes=True) -> Candidates:
    """What ``select_candidates(class_probabilities(...), *decode_all_boxes(...))`` returns,
    computing softmax and boxes only for the anchors that can pass the threshold.

    The softmax denominator contains the background term, so ``p_c <= exp(l_c - l_0)``, and
    ``p_c > threshold`` needs ``l_c > l_0 + log(threshold)`` (tested with a little slack for
    rounding). A trained model is sure about background almost everywhere: few anchors pass.
    """
    logits = y_pred[..., : config.n_classes + 1]
    background = logits[..., 0]
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # log(0) = -inf; rows
        slack = 1e-3 + 1e-5 * np.abs(background)  # with NaN/inf fail here or are dropped below
        bound = background + np.log(confidence_threshold) - slack  # (batch, n_anchors)
        maybe = logits[..., 1:] > bound[..., None]  # (batch, n_anchors, n_classes)
    positions = np.flatnonzero(maybe) // config.n_classes  # sorted anchor positions, repeated
    positions = positions[np.flatnonzero(np.diff(positions, prepend=-1))]  # unique
    image, anchor = np.divmod(positions, config.n_anchors)
    rows = y_pred[image, anchor]  # (n_rows, n_classes + 5)
    valid = _valid_anchors(rows)
    rows = np.where(valid[:, None], rows, 0)
    probabilities = _softmax(rows[:, : config.n_classes + 1]).astype(rows.dtype, copy=False)
    boxes, decoded = _offsets_to_pixel_corners(rows[:, -4:], anchors[anchor], config, clip_boxes)
    above = probabilities[:, 1:] > confidence_threshold
    above &= (valid & decoded)[:, None]
    row, class_index = np.nonzero(above)
    return Candidates(
        image=image[row],
        anchor=anchor[row],
        class_id=class_index + 1,
        score=probabilities[row, class_index + 1],
        box=boxes[row],
    )


def _rank_in_runs(sorted_ids: np.ndarray, n_ids: int) -> np.ndarray:
    """Position of each element within its run of equal ids (``sorted_ids`` sorted, < n_ids)."""
    counts = np.bincount(sorted_ids, minlength=n_ids)
    return np.arange(len(sorted_ids)) - np.repeat(np.cumsum(counts) - counts, counts)


def _class_groups(candidates: Candidates, n_classes: int) -> np.ndarray:
    """One group id per candidate for each (image, class): ``image * (n_classes + 1) + class_id``."""
    return candidates.image * (n_classes + 1) + candidates.class_id


def _best_per_class(candidates: Candidates, limit: int, n_classes: int, batch_size: int) -> Candidates:
    """The ``limit`` best-scoring candidates of each image and class, in their order."""
    groups = _class_groups(candidates, n_classes)
    by_score = np.lexsort((-candidates.score, groups))  # stable: ties keep (image, anchor, class)
    keep = np.zeros(len(groups), dtype=bool)
    keep[by_score] = _rank_in_runs(groups[by_score], batch_size * (n_classes + 1)) < limit
    return Candidates(*(field[keep] for field in candidates))


def _check_decoding_arguments(confidence_threshold, iou_threshold, top_k, nms_max_output_size,
                              candidates_per_class=None):  # fmt: skip
    if not 0.0 <= confidence_threshold < 1.0:
        raise ValueError(
            f"confidence_threshold: must be in [0, 1), got {confidence_threshold!r}"
        )
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold: must be in [0, 1], got {iou_threshold!r}")
    counts = (("top_k", top_k), ("nms_max_output_size", nms_max_output_size))
    if candidates_per_class is not None:
        counts += (("candidates_per_class", candidates_per_class),)
    for name, value in counts:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name}: must be a positive integer, got {value!r}")


def _check_original_sizes(original_sizes, batch_size: int) -> np.ndarray:
    """``(batch, 2)`` float (width, height) per image, else ValueError naming the image."""
    sizes = np.asarray(original_sizes, dtype=np.float64)
    if sizes.shape != (batch_size, 2):
        raise ValueError(
            f"original_sizes: expected one (width, height) per image, shape ({batch_size}, 2), "
            f"got {sizes.shape}"
        )
    bad = np.flatnonzero(~(np.isfinite(sizes) & (sizes > 0)).all(axis=1))
    if len(bad):
        raise ValueError(
            f"original_sizes[{bad[0]}]: width and height must be positive, got {sizes[bad[0]]}"
        )
    return sizes


def decode_detections(y_pred, config: SSDConfig, confidence_threshold: float = 0.01,
                      iou_threshold: float = 0.45, top_k: int = 200,
                      nms_max_output_size: int = 400, original_sizes=None, anchors=None,
                      clip_boxes: bool = True,
                      candidates_per_class: int | None = None) -> list[np.ndarray]:  # fmt: skip
    """Detections of a batch of SSD predictions: softmax, decode, threshold, per-class NMS, top-k.

    Settings that reproduce other implementations' post-processing (``ssd_lib.pretrained``
    holds them as ``SOURCES[name].decoding``):

    - ssd_keras's ``decode_detections``: the defaults with ``clip_boxes=False``;
    - torchvision's ``SSD.postprocess_detections``: ``clip_boxes=True`` and
      ``candidates_per_class=400`` (its ``score_thresh`` 0.01 is ``confidence_threshold``,
      ``topk_candidates`` 400 is ``candidates_per_class``, ``nms_thresh`` 0.45 is
      ``iou_threshold``, ``detections_per_img`` 200 is ``top_k``).

    Args:
        y_pred: ``(batch, n_anchors, n_classes + 1 + 4)`` model output: class logits (class 0 =
            background), then the four encoded offsets (numpy array or tensor).
        config: the detector's configuration (anchors, variances, image size, classes).
        confidence_threshold: per class, keep (anchor, class) pairs with probability strictly
            greater than this, in [0, 1).
        iou_threshold: NMS suppresses a box whose IoU with a kept box of the same class is
            strictly greater than this, in [0, 1].
        top_k: at most this many detections per image (the highest scores over all classes).
        nms_max_output_size: at most this many boxes per class and image survive NMS.
        original_sizes: optional ``(batch, 2)`` (width, height) of each original image in
            pixels; the boxes are then scaled from the model input to those sizes.
        anchors: optional precomputed ``generate_anchors(config)`` (saves ~1 ms per call).
        clip_boxes: clip the decoded boxes to the image before NMS (as torchvision does);
            False keeps them as decoded (as ssd_keras does).
        candidates_per_class: if given, only the best this many candidates of each class and
            image (above the threshold) enter NMS, as torchvision's ``topk_candidates``.

    Returns:
        A list with one ``(k, 6)`` float32 array per image, ``k <= top_k``, rows
        ``[class_id, score, xmin, ymin, xmax, ymax]`` with pixel corners (model input, or the
        original image with ``original_sizes``), by score descending (equal scores: lower anchor
        index, then lower class id). Anchors with NaN/inf in their output are dropped, as are
        boxes that have no area once clipped to the image.

    Raises:
        ValueError: on a wrong ``y_pred`` shape, a threshold out of range, a non-positive
            ``top_k``/``nms_max_output_size``, or ``original_sizes`` that do not fit the batch.

    Example:
        >>> import numpy as np
        >>> from ssd_lib.config import SSD300_VOC
        >>> y_pred = np.zeros((2, SSD300_VOC.n_anchors, 25), dtype=np.float32)
        >>> y_pred[..., 0] = 10.0  # confident background everywhere
        >>> [d.shape for d in decode_detections(y_pred, SSD300_VOC)]
        [(0, 6), (0, 6)]
    """
    _check_decoding_arguments(confidence_threshold, iou_threshold, top_k, nms_max_output_size,
                              candidates_per_class)  # fmt: skip
    y_pred = _check_predictions(y_pred, config)
    batch_size = len(y_pred)
    sizes = None if original_sizes is None else _check_original_sizes(original_sizes, batch_size)

    candidates = _candidates_fast(y_pred, config, _check_anchors(anchors, config),
                                  confidence_threshold, clip_boxes)  # fmt: skip
    if candidates_per_class is not None:
        candidates = _best_per_class(candidates, candidates_per_class, config.n_classes, batch_size)

    # Best first within each image, in the output order: (image, score descending); candidates
    # come in (image, anchor, class) order and the sort is stable, so equal scores stay in it.
    order = np.lexsort((-candidates.score, candidates.image))
    candidates = Candidates(*(field[order] for field in candidates))
    rank = _rank_in_runs(candidates.image, batch_size)
    n_per_image = np.bincount(candidates.image, minlength=batch_size)
    groups = _class_groups(candidates, config.n_classes)

    # Per-class NMS of every image at once (one group per image and class). Whether greedy NMS
    # keeps a box depends only on better boxes, so NMS on each image's best ``limit`` candidates
    # is exact for those; once ``top_k`` of them are kept, worse candidates cannot reach the
    # output. Start with 2 * top_k candidates per image, and look further where that is too few.
    kept = []
    limit = np.full(batch_size, 2 * top_k)
    pending = n_per_image > 0
    while pending.any():
        selected = np.flatnonzero(pending[candidates.image] & (rank < limit[candidates.image]))
        kept_now = selected[greedy_nms(candidates.box[selected], candidates.score[selected],
                                       iou_threshold, nms_max_output_size,
                                       groups[selected])]  # fmt: skip
        n_kept = np.bincount(candidates.image[kept_now], minlength=batch_size)
        done = pending & ((n_kept >= top_k) | (limit >= n_per_image))
        kept.append(kept_now[done[candidates.image[kept_now]]])
        pending &= ~done
        limit *= 4
    kept = np.sort(np.concatenate(kept + [np.zeros(0, dtype=np.int64)]))  # output order
    kept = kept[_rank_in_runs(candidates.image[kept], batch_size) < top_k]

    detections = np.empty((len(kept), 6), dtype=np.float32)
    detections[:, 0] = candidates.class_id[kept]
    detections[:, 1] = candidates.score[kept]
    detections[:, 2:] = candidates.box[kept]
    image = candidates.image[kept]
    if sizes is not None:
        model_size = np.array([config.image_width, config.image_height] * 2, dtype=np.float64)
        scale = np.tile(sizes, 2)[image] / model_size  # (k, 4)
        detections[:, 2:] = detections[:, 2:] * scale
    ends = np.cumsum(np.bincount(image, minlength=batch_size))
    return [detections[end - count : end] for end, count in zip(ends, np.diff(ends, prepend=0))]
