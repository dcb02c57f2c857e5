"""Decoding and NMS inside a Keras model (TensorFlow backend), for deployment.

:class:`DecodeDetections` does what :func:`ssd_lib.decoder.decode_detections` does (softmax,
decoding, clipping, dropping NaN/inf anchors and empty boxes, threshold, per-class NMS, top-k)
with TensorFlow ops that every deployment format has as a builtin: the layer saves in a
``.keras`` file (its :class:`~ssd_lib.config.SSDConfig` is stored as JSON in its config), and
converts to a SavedModel, to TFLite with builtin ops only (no Flex ops) and to ONNX
(:mod:`ssd_lib.export`).

Per-class NMS in one NMS call: every box is shifted by ``class_index * (image side + 1)`` pixels,
so boxes of different classes never overlap, and one greedy NMS over all (anchor, class) pairs
(``NonMaxSuppressionV4``, a TFLite builtin and ONNX ``NonMaxSuppression``) keeps the ``top_k``
best. This equals :func:`~ssd_lib.decoder.decode_detections` with ``nms_max_output_size >=
top_k`` (a per-class cap that large never binds), except where two scores are equal or an IoU is
within float32 rounding of the threshold. The per-image loop is a ``tf.map_fn`` (a TFLite
``WHILE``, an ONNX ``Loop``), so any batch size runs.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from .anchors import generate_anchors
from .config import SSDConfig
from .decoder import _check_decoding_arguments

__all__ = ["DecodeDetections", "detection_layer"]


@keras.saving.register_keras_serializable(package="ssd_lib")
class DecodeDetections(keras.layers.Layer):
    """Model output ``(batch, n_anchors, n_classes + 5)`` -> ``(batch, top_k, 6)`` detections.

    Rows are ``[class_id, score, xmin, ymin, xmax, ymax]`` float32, pixel corners of the model
    input, by score descending; rows past an image's detections are zeros (class 0 = no
    detection), so an image's count is ``(rows[:, 0] > 0).sum()``.

    Args:
        config: the detector's configuration (anchors, variances, image size, classes).
        confidence_threshold, iou_threshold, top_k: as in
            :func:`~ssd_lib.decoder.decode_detections`.
    """

    def __init__(self, config, confidence_threshold=0.01, iou_threshold=0.45, top_k=200, **kwargs):
        super().__init__(**{"trainable": False, **kwargs})
        if isinstance(config, dict):  # from get_config
            config = SSDConfig.from_dict(config)
        _check_decoding_arguments(confidence_threshold, iou_threshold, top_k, top_k)
        self.config = config
        self.confidence_threshold = float(confidence_threshold)
        self.iou_threshold = float(iou_threshold)
        self.top_k = int(top_k)
        self.anchors = generate_anchors(config).astype(np.float32)  # (n_anchors, 4) centroids

    def get_config(self):
        return {**super().get_config(), "config": self.config.to_dict(),
                "confidence_threshold": self.confidence_threshold, "iou_threshold": self.iou_threshold,
                "top_k": self.top_k}  # fmt: skip

    def _boxes_and_scores(self, y_pred):
        """Pixel corners ``(batch, n_anchors, 4)`` and class probabilities ``(batch, n_anchors,
        n_classes)`` (zero for anchors with NaN/inf output or an empty clipped box)."""
        config = self.config
        y_pred = tf.cast(y_pred, tf.float32)
        finite = tf.reduce_all(tf.math.is_finite(y_pred), axis=-1)  # (batch, n_anchors)
        y_pred = tf.where(finite[..., None], y_pred, 0.0)
        probabilities = tf.nn.softmax(y_pred[..., : config.n_classes + 1], axis=-1)[..., 1:]
        offsets = y_pred[..., -4:] * tf.constant(config.variances, tf.float32)
        anchors = tf.constant(self.anchors)
        centers = anchors[:, :2] + offsets[..., :2] * anchors[:, 2:]
        sizes = anchors[:, 2:] * tf.exp(offsets[..., 2:])
        image_size = tf.constant([config.image_width, config.image_height] * 2, tf.float32)
        corners = tf.concat([centers - sizes / 2, centers + sizes / 2], axis=-1) * image_size
        valid = finite & tf.reduce_all(tf.math.is_finite(corners), axis=-1)
        corners = tf.clip_by_value(tf.where(valid[..., None], corners, 0.0), 0.0, image_size)
        valid &= (corners[..., 2] > corners[..., 0]) & (corners[..., 3] > corners[..., 1])
        return corners, tf.where(valid[..., None], probabilities, 0.0)

    def _detect_one_image(self, corners_and_scores):
        """``(n_anchors, 4)`` corners and ``(n_anchors, n_classes)`` scores -> ``(top_k, 6)``."""
        corners, scores = corners_and_scores
        n_classes = self.config.n_classes
        # Candidates in (anchor, class) order, as decode_detections breaks ties.
        class_index = tf.tile(tf.range(n_classes), [tf.shape(corners)[0]])  # (n_anchors * n_classes,)
        boxes = tf.reshape(tf.tile(corners[:, None, :], [1, n_classes, 1]), [-1, 4])
        scores = tf.reshape(scores, [-1])
        shift = tf.cast(class_index, tf.float32) * float(max(self.config.image_size) + 1)
        shifted_yx = tf.gather(boxes, [1, 0, 3, 2], axis=-1) + shift[:, None]  # NMS wants (y, x)
        selected, count = tf.raw_ops.NonMaxSuppressionV4(
            boxes=shifted_yx, scores=scores, max_output_size=self.top_k, iou_threshold=self.iou_threshold,
            score_threshold=self.confidence_threshold, pad_to_max_output_size=True,
        )  # fmt: skip
        rows = tf.concat([tf.cast(tf.gather(class_index, selected) + 1, tf.float32)[:, None],
                          tf.gather(scores, selected)[:, None], tf.gather(boxes, selected)], axis=-1)  # fmt: skip
        present = tf.range(self.top_k) < count  # (top_k,)
        return tf.where(present[:, None], rows, 0.0)

    def call(self, y_pred):
        corners, scores = self._boxes_and_scores(y_pred)
        return tf.map_fn(self._detect_one_image, (corners, scores),
                         fn_output_signature=tf.TensorSpec((self.top_k, 6), tf.float32))  # fmt: skip

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.top_k, 6)


def detection_layer(config: SSDConfig, confidence_threshold: float = 0.01, iou_threshold: float = 0.45,
                    top_k: int = 200) -> DecodeDetections:  # fmt: skip
    """A :class:`DecodeDetections` layer: append it to a model to get detections from ``predict``.

    ``keras.Model(model.input, detection_layer(config)(model.output))``.

    Raises:
        ValueError: on out-of-range arguments, as :func:`~ssd_lib.decoder.decode_detections`.
    """
    return DecodeDetections(config, confidence_threshold, iou_threshold, top_k)
