"""The in-graph decoding layer: the same detections as decode_detections, and it serialises."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402
from test_decoder import TINY, random_predictions  # noqa: E402

from ssd_lib.decoder import decode_detections  # noqa: E402
from ssd_lib.detection_layer import DecodeDetections, detection_layer  # noqa: E402


def assert_layer_rows_match(rows, expected):
    """``rows`` ``(batch, top_k, 6)`` from the layer equal ``decode_detections``' lists.

    Tolerance: the layer computes in float32 and its NMS compares IoUs of class-shifted boxes
    (rounded differently from decode_detections' float64 IoU), so scores agree to 1e-5 relative and
    boxes to 1e-3 pixels; the class ids and the number of detections must be equal.
    """
    for image, want in enumerate(expected):
        got = rows[image]
        assert np.all(got[len(want) :] == 0), f"image {image}: padding rows must be zeros (class 0)"
        got = got[: len(want)]
        np.testing.assert_array_equal(got[:, 0], want[:, 0], err_msg=f"image {image}")
        np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=1e-5)
        np.testing.assert_allclose(got[:, 2:], want[:, 2:], atol=1e-3)


@pytest.mark.parametrize(
    "seed, confidence_threshold, iou_threshold, top_k",
    [(0, 0.01, 0.45, 200), (1, 0.1, 0.3, 10), (2, 0.05, 0.6, 7)],
)
def test_detection_layer_agrees_with_decode_detections(seed, confidence_threshold, iou_threshold, top_k):
    rng = np.random.default_rng(seed)
    y_pred = random_predictions(rng, TINY, batch=3)
    y_pred[0, 5, 1] = np.nan  # dropped by both
    y_pred[2, 8, -1] = 1e30
    rows = np.asarray(detection_layer(TINY, confidence_threshold, iou_threshold, top_k)(y_pred))
    assert rows.shape == (3, top_k, 6)
    expected = decode_detections(y_pred, TINY, confidence_threshold, iou_threshold, top_k,
                                 nms_max_output_size=top_k)  # fmt: skip
    assert_layer_rows_match(rows, expected)
    assert sum(len(d) for d in expected) > 10


def test_detection_layer_round_trips_through_its_config():
    layer = detection_layer(TINY, 0.2, 0.5, 17)
    config = keras.saving.serialize_keras_object(layer)
    assert config["config"]["config"]["image_width"] == TINY.image_width  # JSON, not repr
    rebuilt = keras.saving.deserialize_keras_object(config)
    assert isinstance(rebuilt, DecodeDetections)
    assert rebuilt.config == TINY
    assert (rebuilt.confidence_threshold, rebuilt.iou_threshold, rebuilt.top_k) == (0.2, 0.5, 17)


def test_detection_layer_bad_arguments():
    with pytest.raises(ValueError, match="top_k"):
        detection_layer(TINY, top_k=0)
    with pytest.raises(ValueError, match="iou_threshold"):
        detection_layer(TINY, iou_threshold=1.5)
