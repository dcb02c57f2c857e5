"""Our SSD300 with torchvision's weights equals torchvision's ssd300_vgg16, without torch.

``tests/fixtures/torchvision_ssd300.npz`` holds what torchvision computed (made by
``tools/torchvision_reference.py``, which needs torch): a ``ssd300_vgg16`` with weights drawn
from a numpy seed, run on two fixed images. Here the same weights are drawn again with numpy,
converted by ``ssd_lib.pretrained``, and our model's raw outputs, anchors and detections are
compared with torchvision's; so is our decoder on synthetic head outputs.
"""

import dataclasses
import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from ssd_lib.anchors import generate_anchors
from ssd_lib.boxes import centroids_to_corners
from ssd_lib.config import SSD300_COCO, SSDConfig
from ssd_lib.decoder import decode_all_boxes, decode_detections, class_probabilities
from ssd_lib.nms import greedy_nms
from ssd_lib.pretrained import SOURCES, set_layer_weights
from ssd_lib.pretrained.from_torchvision import (
    COCO_CATEGORIES,
    TORCHVISION_DECODING,
    TORCHVISION_PREPROCESS,
    TORCHVISION_SSD300_COCO,
    torchvision_layer_weights,
)

ROOT = Path(__file__).parents[1]
CONFIG = TORCHVISION_SSD300_COCO
N_OUTPUTS = CONFIG.n_classes + 1


def load_reference_tool():
    spec = importlib.util.spec_from_file_location("torchvision_reference", ROOT / "tools" / "torchvision_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REFERENCE = load_reference_tool()
FIXTURE = np.load(ROOT / "tests" / "fixtures" / "torchvision_ssd300.npz")


@functools.lru_cache(maxsize=1)
def _seeded_state_dict():
    shapes = [tuple(shape[:rank]) for shape, rank in zip(FIXTURE["shapes"], FIXTURE["ranks"])]
    head_scales = dict(zip(FIXTURE["head_scale_names"].tolist(), FIXTURE["head_scale_values"].tolist()))
    return REFERENCE.seeded_state_dict(FIXTURE["names"].tolist(), shapes, head_scales)


def seeded_state_dict():
    """The seeded torchvision state dict (drawn once; a new dict each call)."""
    return dict(_seeded_state_dict())


def reference_detections(key):
    """torchvision's detections per image as (k, 6) [label, score, x0, y0, x1, y1]."""
    return [rows[rows[:, 0] >= 0] for rows in FIXTURE[key]]


@pytest.fixture(scope="module")
def outputs():
    """Our converted model's raw output on the two fixture images: (2, 8732, 91 + 4)."""
    from ssd_lib.vgg_ssd import build_ssd300

    state = seeded_state_dict()
    checksums = np.array([float(np.sum(value, dtype=np.float64)) for value in state.values()])
    np.testing.assert_array_equal(checksums, FIXTURE["weights_checksum"], err_msg="numpy drew other weights")
    images = REFERENCE.fixture_images()
    assert images.sum(dtype=np.int64) == FIXTURE["images_checksum"]
    model = build_ssd300(CONFIG, l2_regularization=0.0, preprocess=TORCHVISION_PREPROCESS)
    set_layer_weights(model, torchvision_layer_weights(state))
    return np.asarray(model.predict_on_batch(images.astype(np.float32)))


def max_difference(ours, theirs):
    """``max |ours - theirs|`` relative to ``max |theirs|`` (the tensor's scale)."""
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


def test_raw_outputs_equal_torchvision(outputs):
    logits, regression = outputs[..., :N_OUTPUTS], outputs[..., N_OUTPUTS:]
    anchors = FIXTURE["sampled_anchors"]
    assert max_difference(logits[:, anchors], FIXTURE["sampled_logits"]) < 1e-4
    assert max_difference(regression[:, anchors], FIXTURE["sampled_regression"]) < 1e-4
    for ours, theirs in ((logits, FIXTURE["logits_statistics"]), (regression, FIXTURE["regression_statistics"])):
        statistics = REFERENCE.layer_statistics(ours)  # (image, layer, [mean, std, min, max])
        np.testing.assert_allclose(statistics, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


def test_anchors_equal_torchvision_default_boxes():
    ours = centroids_to_corners(generate_anchors(CONFIG))  # normalized corners
    theirs = FIXTURE["default_boxes"] / 300.0  # torchvision's pixel corners in the 300x300 input
    assert ours.shape == theirs.shape == (8732, 4)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)


def test_clamped_anchor_sizes_differ_from_the_unclamped_and_from_corner_clipping():
    clamped = generate_anchors(CONFIG)
    plain = generate_anchors(dataclasses.replace(CONFIG, clamp_anchor_sizes=False))
    clipped = generate_anchors(dataclasses.replace(CONFIG, clamp_anchor_sizes=False, clip_boxes=True))
    changed = np.flatnonzero((clamped != plain).any(axis=1))
    # Only boxes wider or taller than the image change: the last two layers' ar 2 and 1/2 boxes
    # (0.69 * sqrt(2) = 0.98 stays; 0.87 * sqrt(2) = 1.23 -> 1), which keep their centre.
    assert np.array_equal(changed, [8728 + 2, 8728 + 3])
    np.testing.assert_allclose(clamped[8730], [0.5, 0.5, 1.0, 0.87 / np.sqrt(2)])
    np.testing.assert_allclose(clamped[8731], [0.5, 0.5, 0.87 / np.sqrt(2), 1.0])
    assert not np.allclose(clamped, clipped)  # corner clipping also moves centres near the border


def as_set(detections):
    """Rows ordered by label, then box (so that the order of equal scores does not matter)."""
    return detections[np.lexsort(detections[:, [5, 4, 3, 2, 0]].T)]


def assert_same_detections(ours, theirs):
    """Same detections, in the same order up to float rounding: labels and boxes (1e-3 px)
    equal as sets, and the scores along the output order equal (relative 1e-4)."""
    assert len(ours) == len(theirs)
    np.testing.assert_allclose(ours[:, 1], theirs[:, 1], rtol=1e-4)
    ours, theirs = as_set(ours), as_set(theirs)
    np.testing.assert_array_equal(ours[:, 0], theirs[:, 0])
    np.testing.assert_allclose(ours[:, 2:], theirs[:, 2:], rtol=0, atol=1e-3)


def test_detections_equal_torchvision(outputs):
    ours = decode_detections(outputs, CONFIG, **TORCHVISION_DECODING)
    for image_ours, image_theirs in zip(ours, reference_detections("detections"), strict=True):
        assert len(image_theirs) == 200  # the fixture exercises detections_per_img
        assert_same_detections(image_ours, image_theirs)


def test_decoder_equals_torchvision_postprocess_on_synthetic_outputs():
    logits, regression = REFERENCE.synthetic_head_outputs()
    probabilities = class_probabilities(np.concatenate([logits, regression], -1), CONFIG)
    assert ((probabilities[..., 1:] > 0.01).sum(axis=1) > 400).any()  # topk_candidates matters
    ours = decode_detections(np.concatenate([logits, regression], -1), CONFIG, **TORCHVISION_DECODING)
    for image_ours, image_theirs in zip(ours, reference_detections("synthetic_detections"), strict=True):
        assert_same_detections(image_ours, image_theirs)


# ----------------------------------------------------------------- candidates_per_class, clip_boxes
TINY = SSDConfig(image_height=40, image_width=40, n_classes=3, feature_map_sizes=(4, 2),
                 aspect_ratios=((1.0, 2.0), (1.0,)), scales=(0.3, 0.6, 0.9))  # fmt: skip


def reference_decode(y_pred, config, confidence_threshold, iou_threshold, top_k, candidates_per_class, clip):
    """A readable loop: per image and class, the best candidates above the threshold, greedy
    NMS (``greedy_nms``, tested on its own), then the ``top_k`` best over all classes."""
    probabilities = class_probabilities(y_pred, config)
    boxes, valid = decode_all_boxes(y_pred, config, clip_boxes=clip)
    results = []
    for image in range(len(y_pred)):
        rows = []
        for class_id in range(1, config.n_classes + 1):
            scores = probabilities[image, :, class_id]
            candidates = [i for i in np.argsort(-scores, kind="stable") if valid[image, i]
                          and scores[i] > confidence_threshold][:candidates_per_class]  # fmt: skip
            candidates = np.array(candidates, dtype=int)
            for kept in candidates[greedy_nms(boxes[image, candidates], scores[candidates], iou_threshold)]:
                rows.append([class_id, scores[kept], *boxes[image, kept]])
        rows = sorted(rows, key=lambda row: -row[1])[:top_k]
        results.append(np.array(rows, dtype=np.float32).reshape(-1, 6))
    return results


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("candidates_per_class, clip", [(1, True), (3, True), (5, False), (None, False)])
def test_candidates_per_class_and_clip_boxes_equal_a_reference_loop(seed, candidates_per_class, clip):
    rng = np.random.default_rng(seed)
    y_pred = rng.normal(0, 1.5, (2, TINY.n_anchors, TINY.n_classes + 5)).astype(np.float32)
    y_pred[..., -2:] *= 3  # large sizes: with clip=False some boxes reach beyond the image
    ours = decode_detections(y_pred, TINY, 0.1, 0.45, 7, candidates_per_class=candidates_per_class, clip_boxes=clip)
    expected = reference_decode(y_pred, TINY, 0.1, 0.45, 7, candidates_per_class, clip)
    for image_ours, image_expected in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(image_ours[:, 0], image_expected[:, 0])
        np.testing.assert_allclose(image_ours[:, 1:], image_expected[:, 1:], rtol=1e-6, atol=1e-4)
    boxes = np.concatenate(ours)[:, 2:]
    inside = (boxes >= 0).all() and (boxes <= 40).all()
    assert inside if clip else not inside


@pytest.mark.parametrize("value", [0, -1, 2.5, True])
def test_candidates_per_class_must_be_a_positive_integer(value):
    y_pred = np.zeros((1, TINY.n_anchors, TINY.n_classes + 5), dtype=np.float32)
    with pytest.raises(ValueError, match=f"candidates_per_class: must be a positive integer, got {value!r}"):
        decode_detections(y_pred, TINY, candidates_per_class=value)


# ------------------------------------------------------------------------ conversion and sources
def test_conversion_layouts_and_the_input_convention():
    state = seeded_state_dict()
    weights = torchvision_layer_weights(state)
    kernel = state["backbone.features.0.weight"]  # (out, in, h, w)
    assert weights["conv1_1"][0].shape == (3, 3, 3, 64)
    assert weights["conv1_1"][0][2, 0, 1, 5] == kernel[5, 1, 2, 0]  # [h, w, in, out] = [out, in, h, w]
    np.testing.assert_array_equal(weights["conv4_3_norm"][0], state["backbone.scale_weight"])
    np.testing.assert_array_equal(weights["box_head_5"][1], state["head.regression_head.module_list.5.bias"])
    np.testing.assert_allclose(TORCHVISION_PREPROCESS["mean"], (122.99925, 116.9991, 103.9992))
    assert TORCHVISION_PREPROCESS["to_bgr"] is False and TORCHVISION_PREPROCESS["scale"] == 1.0


def test_coco_categories_are_torchvisions_91_outputs_with_gaps():
    assert len(COCO_CATEGORIES) == CONFIG.n_classes == 90
    assert [i + 1 for i, name in enumerate(COCO_CATEGORIES) if name == "N/A"] == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    assert CONFIG.class_name(1) == "person" and CONFIG.class_name(90) == "toothbrush"
    assert CONFIG.scales == SSD300_COCO.scales and CONFIG.n_anchors == 8732
    assert SOURCES["torchvision-coco"].config_for(90) is CONFIG
    assert SOURCES["torchvision-coco"].config_for(4).class_name(1) == "class 1"  # a fine-tuned file


def test_a_state_dict_that_is_not_torchvisions_ssd300_is_named():
    state = seeded_state_dict()
    del state["backbone.extra.0.7.1.weight"]
    state["backbone.extra.5.0.weight"] = np.zeros((1, 1, 1, 1), np.float32)
    with pytest.raises(ValueError, match=r"x.pth: not torchvision's ssd300_vgg16 state dict: missing "
                                         r"\['backbone.extra.0.7.1.weight'\], unknown \['backbone.extra.5.0.weight'\]"):
        torchvision_layer_weights(state, "x.pth")
