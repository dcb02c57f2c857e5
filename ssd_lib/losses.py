"""The SSD loss: softmax cross-entropy with hard negative mining plus smooth L1 on the offsets.

For one batch, with ``N`` the number of positive anchors in it::

    loss = (L_conf + alpha * L_loc) / max(N, 1)

- ``L_conf``: softmax cross-entropy (from logits) of the positives against their class, plus that
  of the *hardest negatives* against the background class: the background anchors with the
  highest cross-entropy, at most ``neg_pos_ratio`` times the number of positives of the same
  image (``mining="per_image"``, the default) or of the whole batch (``mining="batch"``, as the
  Keras port ssd_keras does), and at least ``n_neg_min``.
- ``L_loc``: smooth L1 between the predicted and the target offsets of the positives.
- Neutral anchors (label -1, see :mod:`ssd_lib.matching`) count nowhere.

Ties among negatives with equal loss go to the lower anchor index (in batch mining: the lower
image, then the lower anchor), on every backend. An all-background batch gives a finite loss
(0 unless ``n_neg_min`` > 0) and finite gradients.

Only ``keras.ops`` is used, so the loss runs under the TensorFlow, JAX and PyTorch backends.

Explained in notebooks/04_loss.ipynb.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from .config import SSDConfig

__all__ = ["SSDLoss", "smooth_l1", "softmax_cross_entropy", "check_labels"]

_MINING = ("per_image", "batch")


def smooth_l1(difference):
    """Elementwise smooth L1 (Huber with delta 1): ``0.5 x**2`` if ``|x| < 1`` else ``|x| - 0.5``."""
    absolute = ops.abs(difference)
    return ops.where(absolute < 1.0, 0.5 * difference * difference, absolute - 0.5)


def softmax_cross_entropy(labels, logits):
    """``-log softmax(logits)[label]`` per anchor.

    Args:
        labels: ``(...)`` integer class ids in 0..n_classes.
        logits: ``(..., n_classes + 1)`` unnormalized scores.

    Returns:
        ``(...)`` float cross-entropy.
    """
    log_probabilities = ops.log_softmax(logits, axis=-1)
    one_hot = ops.one_hot(labels, ops.shape(logits)[-1], dtype=log_probabilities.dtype)
    return -ops.sum(one_hot * log_probabilities, axis=-1)


#: Rows whose mining keeps at most this many values find the cut-off with a partial sort
#: (``top_k``), much faster than a full sort of thousands of anchors (on a CPU under XLA:
#: 5 ms instead of 115 ms for 32 x 18 414 values); larger ``n_keep`` falls back to ``sort``.
PARTIAL_SORT_SIZE = 512


def _kth_largest(values, n_keep):
    """``(rows, 1)``: the ``n_keep[row]``-th largest of each row of ``values`` ``(rows, n)``
    (``n_keep`` clipped to ``1..n``). Both branches give the same value: ``top_k`` returns the
    first entries of the descending sort."""
    n = ops.shape(values)[1]
    position = ops.clip(n_keep - 1, 0, n - 1)[:, None]  # (rows, 1)

    def from_sort():
        return ops.take_along_axis(-ops.sort(-values, axis=1), position, axis=1)

    if not isinstance(n, int) or n <= PARTIAL_SORT_SIZE:
        return from_sort()

    def from_top_k():
        largest, _ = ops.top_k(values, PARTIAL_SORT_SIZE)  # (rows, PARTIAL_SORT_SIZE), descending
        return ops.take_along_axis(largest, ops.minimum(position, PARTIAL_SORT_SIZE - 1), axis=1)

    return ops.cond(ops.max(n_keep) <= PARTIAL_SORT_SIZE, from_top_k, from_sort)


def _hardest(values, n_keep):
    """``(rows, n)`` float mask of the ``n_keep[row]`` largest ``values`` of each row.

    Ties are broken by position (lower index first) without relying on a stable sort: the
    ``n_keep``-th largest value ``v`` is found by sorting the values only (:func:`_kth_largest`);
    every value above ``v`` is kept, and of the values equal to ``v`` the first ones in index
    order (counted with a cumulative sum) fill the remaining places. See
    notebooks/04_loss.ipynb, "Mining step by step". Callers make sure ``n_keep`` <= the number
    of entries that should compete.
    """
    kth_value = _kth_largest(values, n_keep)  # (rows, 1)
    above = values > kth_value
    equal = ops.cast(values == kth_value, "int32")
    places_left = n_keep[:, None] - ops.sum(ops.cast(above, "int32"), axis=1, keepdims=True)
    first_equals = ops.logical_and(equal > 0, ops.cumsum(equal, axis=1) <= places_left)
    keep = ops.logical_and(ops.logical_or(above, first_equals), n_keep[:, None] > 0)
    return ops.cast(keep, values.dtype)


def _concrete(tensor) -> np.ndarray | None:
    """``tensor`` as a numpy array when its values are known now (numpy input, eager TensorFlow,
    JAX or PyTorch), None while a graph is being traced (``tf.function``, XLA, ``jax.jit``)."""
    if isinstance(tensor, np.ndarray):
        return tensor
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            return None
    elif backend == "jax":
        import jax

        if isinstance(tensor, jax.core.Tracer):
            return None
    return ops.convert_to_numpy(tensor)


def check_labels(y_true, n_classes: int) -> None:
    """Refuse ``y_true`` labels other than -1 (neutral), 0 (background) and 1..n_classes.

    Out-of-range labels would otherwise count as positives whose cross-entropy is silently 0
    (their one-hot vector is empty). Runs only when the values are known (eager calls); inside a
    compiled graph (``model.fit``, XLA, ``jax.jit``) the labels were checked where they entered:
    :class:`ssd_lib.encoder.SSDEncoder` refuses class ids outside 1..n_classes.

    Raises:
        ValueError: naming the first bad entry ``y_true[image, anchor, 0]``.
    """
    values = _concrete(y_true)
    if values is None:
        return
    labels = np.asarray(values)[..., 0]
    bad = (labels != np.round(labels)) | (labels < -1) | (labels > n_classes)
    if bad.any():
        where = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(
            f"SSDLoss: y_true[{', '.join(map(str, where))}, 0] = {labels[where]:g}: labels must be -1 "
            f"(neutral), 0 (background) or a class id 1..{n_classes} (y_pred has n_classes + 5 = "
            f"{n_classes + 5} values per anchor)"
        )


@keras.saving.register_keras_serializable(package="ssd_lib")
class SSDLoss(keras.losses.Loss):
    """The SSD multibox loss, usable as ``model.compile(loss=SSDLoss())``.

    Args:
        neg_pos_ratio: at most this many hard negatives per positive.
        n_neg_min: at least this many negatives (per image with ``mining="per_image"``, per
            batch with ``mining="batch"``), if there are that many; lets all-background images
            teach the background class.
        alpha: weight of the localization term.
        mining: ``"per_image"`` (each image keeps ``neg_pos_ratio`` x its own positives) or
            ``"batch"`` (the hardest negatives of the whole batch, ``neg_pos_ratio`` x all
            positives, as ssd_keras does).
        config: optional :class:`~ssd_lib.config.SSDConfig`; if given, ``y_pred``'s last axis
            must be ``config.n_classes + 1 + 4``.
        name: the loss name in Keras logs.

    Inputs (``__call__(y_true, y_pred)``):
        y_true: ``(batch, n_anchors, 5)`` ``[label, tx, ty, tw, th]`` from
            :class:`ssd_lib.encoder.SSDEncoder` (label -1 neutral, 0 background, >0 class).
        y_pred: ``(batch, n_anchors, n_classes + 1 + 4)``: class logits, then 4 offsets.

    Returns:
        A scalar: ``(L_conf + alpha * L_loc) / max(N, 1)`` over the batch. :meth:`terms` gives
        the parts.

    Raises:
        ValueError: (eager calls) labels outside -1..n_classes, see :func:`check_labels`.

    Explained in notebooks/04_loss.ipynb.
    """

    def __init__(self, neg_pos_ratio=3, n_neg_min=0, alpha=1.0, mining="per_image", *,
                 config: SSDConfig | None = None, name="ssd_loss", **kwargs):  # fmt: skip
        if isinstance(neg_pos_ratio, SSDConfig):
            raise TypeError("SSDLoss: pass the config as a keyword, SSDLoss(config=config)")
        if not neg_pos_ratio > 0:
            raise ValueError(f"SSDLoss.neg_pos_ratio: must be > 0, got {neg_pos_ratio!r}")
        if int(n_neg_min) != n_neg_min or n_neg_min < 0:
            raise ValueError(f"SSDLoss.n_neg_min: must be an integer >= 0, got {n_neg_min!r}")
        if not alpha >= 0:
            raise ValueError(f"SSDLoss.alpha: must be >= 0, got {alpha!r}")
        if mining not in _MINING:
            raise ValueError(f"SSDLoss.mining: must be one of {_MINING}, got {mining!r}")
        kwargs.pop("reduction", None)  # always "sum": the division by N is part of the loss
        super().__init__(name=name, reduction="sum", **kwargs)
        self.neg_pos_ratio = float(neg_pos_ratio)
        self.n_neg_min = int(n_neg_min)
        self.alpha = float(alpha)
        self.mining = mining
        self.config = config

    def terms(self, y_true, y_pred) -> dict:
        """Every part of the loss, for inspection (notebooks, explorers, tests).

        Returns a dict of tensors (``b`` = batch, ``n`` = anchors):

        - ``"classification_per_anchor"`` ``(b, n)``: cross-entropy of every anchor against its
          target class (background for neutrals; they are masked out below);
        - ``"localization_per_anchor"`` ``(b, n)``: smooth L1 summed over the 4 offsets
          (every anchor; only positives count);
        - ``"positive_mask"``, ``"negative_mask"`` (all background anchors),
          ``"kept_negative_mask"`` (the mined ones): ``(b, n)`` 0/1 floats;
        - ``"positive_classification"``, ``"negative_classification"``, ``"localization"``:
          ``(b,)`` sums per image;
        - ``"n_positives"``, ``"n_kept_negatives"``: ``(b,)``;
        - ``"per_image"``: ``(b,)`` each image's ``L_conf + alpha * L_loc`` (not yet divided);
        - ``"total"``: the scalar loss.
        """
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.cast(y_true, "float32")
        if self.config is not None and y_pred.shape[-1] != self.config.n_classes + 5:
            raise ValueError(
                f"SSDLoss: y_pred has {y_pred.shape[-1]} values per anchor, expected "
                f"n_classes + 1 + 4 = {self.config.n_classes + 5}"
            )
        check_labels(y_true, y_pred.shape[-1] - 5)
        logits = ops.cast(y_pred[..., :-4], "float32")  # (b, n, n_classes + 1)
        predicted_offsets = ops.cast(y_pred[..., -4:], "float32")  # (b, n, 4)
        labels = y_true[..., 0]  # (b, n)
        positive = ops.cast(labels > 0, "float32")
        negative = ops.cast(labels == 0, "float32")
        n_positives = ops.sum(positive, axis=1)  # (b,)

        class_loss = softmax_cross_entropy(ops.cast(ops.maximum(labels, 0), "int32"), logits)  # (b, n)
        location_loss = ops.sum(smooth_l1(predicted_offsets - y_true[..., 1:]), axis=-1)  # (b, n)

        # Hard negative mining: positives and neutrals get -1 (cross-entropy is >= 0), so they
        # never compete; the mask is a constant for the gradient.
        mining_values = ops.stop_gradient(ops.where(negative > 0, class_loss, -1.0))
        n_negatives = ops.sum(negative, axis=1)  # (b,)
        if self.mining == "per_image":
            wanted = ops.maximum(self.neg_pos_ratio * n_positives, float(self.n_neg_min))
            n_keep = ops.cast(ops.minimum(wanted, n_negatives), "int32")  # (b,)
            kept = _hardest(mining_values, n_keep)
        else:
            wanted = ops.maximum(self.neg_pos_ratio * ops.sum(n_positives), float(self.n_neg_min))
            n_keep = ops.cast(ops.minimum(wanted, ops.sum(n_negatives)), "int32")
            kept = ops.reshape(_hardest(ops.reshape(mining_values, (1, -1)), ops.reshape(n_keep, (1,))),
                               ops.shape(mining_values))  # fmt: skip
        kept = ops.stop_gradient(kept)

        positive_classification = ops.sum(class_loss * positive, axis=1)
        negative_classification = ops.sum(class_loss * kept, axis=1)
        localization = ops.sum(location_loss * positive, axis=1)
        per_image = positive_classification + negative_classification + self.alpha * localization
        total = ops.sum(per_image) / ops.maximum(ops.sum(n_positives), 1.0)
        return {
            "classification_per_anchor": class_loss,
            "localization_per_anchor": location_loss,
            "positive_mask": positive,
            "negative_mask": negative,
            "kept_negative_mask": kept,
            "positive_classification": positive_classification,
            "negative_classification": negative_classification,
            "localization": localization,
            "n_positives": n_positives,
            "n_kept_negatives": ops.sum(kept, axis=1),
            "per_image": per_image,
            "total": total,
        }

    def call(self, y_true, y_pred):
        """``(batch,)`` each image's share of the loss; Keras sums them (reduction ``"sum"``)."""
        terms = self.terms(y_true, y_pred)
        return terms["per_image"] / ops.maximum(ops.sum(terms["n_positives"]), 1.0)

    def get_config(self) -> dict:
        """The constructor arguments for Keras serialization (``config`` is not stored: it only
        adds a shape check)."""
        return {
            "name": self.name,
            "neg_pos_ratio": self.neg_pos_ratio,
            "n_neg_min": self.n_neg_min,
            "alpha": self.alpha,
            "mining": self.mining,
        }
