"""Tests of ssd_lib.losses.SSDLoss against a plain numpy reference, on two backends, and training."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssd_lib.config import SSDConfig  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402
from ssd_lib.losses import SSDLoss, smooth_l1  # noqa: E402
from jax_subprocess import jax_environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# The reference: the loss written with numpy loops, image by image.


def reference_loss(y_true, y_pred, neg_pos_ratio=3, n_neg_min=0, alpha=1.0, mining="per_image"):
    """(total, kept negative mask (b, n)) computed plainly."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    batch, n_anchors = y_true.shape[:2]
    logits, offsets = y_pred[..., :-4], y_pred[..., -4:]
    labels = y_true[..., 0].astype(int)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    cross_entropy = -np.take_along_axis(log_softmax, np.maximum(labels, 0)[..., None], axis=-1)[..., 0]
    difference = np.abs(offsets - y_true[..., 1:])
    huber = np.where(difference < 1, 0.5 * difference**2, difference - 0.5).sum(axis=-1)
    positive = labels > 0
    negative = labels == 0
    kept = np.zeros((batch, n_anchors), dtype=bool)
    if mining == "per_image":
        for image in range(batch):
            n_keep = min(max(int(neg_pos_ratio * positive[image].sum()), n_neg_min), negative[image].sum())
            candidates = [(-cross_entropy[image, a], a) for a in range(n_anchors) if negative[image, a]]
            for _, anchor in sorted(candidates)[:n_keep]:  # highest loss first, then lower index
                kept[image, anchor] = True
    else:
        n_keep = min(max(int(neg_pos_ratio * positive.sum()), n_neg_min), negative.sum())
        candidates = [
            (-cross_entropy[image, a], image, a)
            for image in range(batch) for a in range(n_anchors) if negative[image, a]
        ]  # fmt: skip
        for _, image, anchor in sorted(candidates)[:n_keep]:
            kept[image, anchor] = True
    total = (cross_entropy[positive].sum() + cross_entropy[kept].sum() + alpha * huber[positive].sum())
    return total / max(positive.sum(), 1), kept


def make_case(rng, batch=3, n_anchors=40, n_classes=3, positive_share=0.1, neutral_share=0.1):
    labels = rng.choice(
        [-1, 0, 1], size=(batch, n_anchors), p=[neutral_share, 1 - neutral_share - positive_share, positive_share]
    )
    labels = np.where(labels == 1, rng.integers(1, n_classes + 1, labels.shape), labels)
    offsets = np.where((labels > 0)[..., None], rng.normal(0, 1, (batch, n_anchors, 4)), 0)
    y_true = np.concatenate([labels[..., None], offsets], axis=-1).astype(np.float32)
    y_pred = rng.normal(0, 2, (batch, n_anchors, n_classes + 1 + 4)).astype(np.float32)
    return y_true, y_pred


def numpy_terms(loss, y_true, y_pred):
    return {key: keras.ops.convert_to_numpy(value) for key, value in loss.terms(y_true, y_pred).items()}


# ---------------------------------------------------------------------------------------------


def test_smooth_l1_values():
    x = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(smooth_l1(x)), [2.5, 0.5, 0.125, 0, 0.125, 0.5, 1.5])


@pytest.mark.parametrize("mining", ["per_image", "batch"])
@pytest.mark.parametrize("seed", range(4))
def test_matches_numpy_reference(seed, mining):
    rng = np.random.default_rng(seed)
    y_true, y_pred = make_case(rng)
    options = dict(neg_pos_ratio=[3, 2, 1.5, 3][seed], n_neg_min=[0, 0, 5, 2][seed], alpha=[1.0, 0.5, 2.0, 1.0][seed])
    loss = SSDLoss(mining=mining, **options)
    expected, expected_kept = reference_loss(y_true, y_pred, mining=mining, **options)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), expected, rtol=1e-5)
    terms = numpy_terms(loss, y_true, y_pred)
    np.testing.assert_array_equal(terms["kept_negative_mask"] > 0, expected_kept)
    np.testing.assert_allclose(float(terms["total"]), expected, rtol=1e-5)


def test_hand_built_case_with_ties_and_neutrals():
    # One image, 8 anchors, 1 object class. Logits [background, class 1]; anchors 0 and 1 are
    # positive, anchor 2 is neutral; anchors 3..7 background. Anchors 4, 5 and 7 have the same
    # (highest) negative loss, anchor 3 a lower one, anchor 6 the lowest.
    labels = [1, 1, -1, 0, 0, 0, 0, 0]
    logits = [[0, 2], [0, -1], [0, 9], [0, 1], [0, 3], [0, 3], [0, -2], [0, 3]]
    y_true = np.zeros((1, 8, 5), np.float32)
    y_true[0, :, 0] = labels
    y_true[0, 0, 1:] = [0.5, 0.0, 2.0, 0.0]  # smooth L1 against 0 predicted offsets: 0.125 + 1.5
    y_pred = np.zeros((1, 8, 6), np.float32)
    y_pred[0, :, :2] = logits
    ce = lambda z_true, z_other: np.log1p(np.exp(z_other - z_true))  # noqa: E731  two-class CE
    # neg_pos_ratio 1 -> 2 negatives: anchors 4 and 5 (ties with 7 go to the lower index).
    loss = SSDLoss(neg_pos_ratio=1)
    terms = numpy_terms(loss, y_true, y_pred)
    assert terms["kept_negative_mask"][0].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    positives = ce(2, 0) + ce(-1, 0)
    negatives = 2 * ce(0, 3)
    np.testing.assert_allclose(terms["positive_classification"], [positives], rtol=1e-6)
    np.testing.assert_allclose(terms["negative_classification"], [negatives], rtol=1e-6)
    np.testing.assert_allclose(terms["localization"], [1.625], rtol=1e-6)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), (positives + negatives + 1.625) / 2, rtol=1e-6)
    # neg_pos_ratio 1.5 -> 3 negatives: all three tied anchors; 2 -> 4: anchor 3 too.
    assert numpy_terms(SSDLoss(neg_pos_ratio=1.5), y_true, y_pred)["kept_negative_mask"][0].tolist() == [0, 0, 0, 0, 1, 1, 0, 1]
    assert numpy_terms(SSDLoss(neg_pos_ratio=2), y_true, y_pred)["kept_negative_mask"][0].tolist() == [0, 0, 0, 1, 1, 1, 0, 1]
    # More wanted than there are negatives: all 5 background anchors, never the neutral one.
    kept = numpy_terms(SSDLoss(neg_pos_ratio=10), y_true, y_pred)["kept_negative_mask"][0]
    assert kept.tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    # The neutral anchor's prediction does not matter at all.
    changed = y_pred.copy()
    changed[0, 2] = [-5, 7, 3, 3, 3, 3]
    assert float(loss(y_true, changed)) == pytest.approx(float(loss(y_true, y_pred)), rel=1e-6)
    # alpha weighs the localization term.
    np.testing.assert_allclose(float(SSDLoss(neg_pos_ratio=1, alpha=0.0)(y_true, y_pred)), (positives + negatives) / 2, rtol=1e-6)


def test_batch_mining_differs_from_per_image_mining():
    # Image 0 has 2 positives, image 1 none but harder negatives.
    y_true = np.zeros((2, 6, 5), np.float32)
    y_true[0, :2, 0] = 1
    y_pred = np.zeros((2, 6, 6), np.float32)
    y_pred[0, :, 1] = [1, 1, 0.1, 0.2, 0.3, 0.4]
    y_pred[1, :, 1] = [2, 2, 2, 2, 2, 2]  # equal and harder: ties between images and anchors
    per_image = numpy_terms(SSDLoss(neg_pos_ratio=1), y_true, y_pred)["kept_negative_mask"]
    assert per_image.tolist() == [[0, 0, 0, 0, 1, 1], [0] * 6]
    batch = numpy_terms(SSDLoss(neg_pos_ratio=1, mining="batch"), y_true, y_pred)["kept_negative_mask"]
    assert batch.tolist() == [[0] * 6, [1, 1, 0, 0, 0, 0]]
    for mining in ("per_image", "batch"):
        expected, kept = reference_loss(y_true, y_pred, neg_pos_ratio=1, mining=mining)
        assert float(SSDLoss(neg_pos_ratio=1, mining=mining)(y_true, y_pred)) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("positive_share", [0.01, 0.3])  # n_keep below / above PARTIAL_SORT_SIZE
def test_partial_sort_and_full_sort_paths_match_the_reference(positive_share, compiled):
    import tensorflow as tf

    from ssd_lib.losses import PARTIAL_SORT_SIZE

    rng = np.random.default_rng(5)
    y_true, y_pred = make_case(rng, batch=2, n_anchors=3 * PARTIAL_SORT_SIZE, positive_share=positive_share)
    y_pred = np.round(y_pred)  # few distinct logits: many ties at the cut-off
    loss = SSDLoss()
    n_keep = 3 * (y_true[..., 0] > 0).sum(axis=1)
    assert (n_keep <= PARTIAL_SORT_SIZE).all() if positive_share < 0.1 else (n_keep > PARTIAL_SORT_SIZE).any()
    terms = loss.terms
    if compiled:
        terms = tf.function(loss.terms, jit_compile=True)
    got = {key: keras.ops.convert_to_numpy(value) for key, value in terms(y_true, y_pred).items()}
    expected, expected_kept = reference_loss(y_true, y_pred)
    np.testing.assert_array_equal(got["kept_negative_mask"] > 0, expected_kept)
    np.testing.assert_allclose(float(got["total"]), expected, rtol=1e-5)


def test_no_positives_gives_finite_loss_and_gradients():
    import tensorflow as tf

    y_true = np.zeros((2, 10, 5), np.float32)
    y_true[1, 3, 0] = -1
    y_pred = tf.Variable(np.random.default_rng(0).normal(0, 1, (2, 10, 7)).astype(np.float32))
    for loss, expected_value in ((SSDLoss(), 0.0), (SSDLoss(n_neg_min=2), None), (SSDLoss(mining="batch", n_neg_min=3), None)):
        with tf.GradientTape() as tape:
            value = loss(y_true, y_pred)
        gradient = tape.gradient(value, y_pred).numpy()
        assert np.isfinite(float(value)) and np.isfinite(gradient).all()
        if expected_value is not None:
            assert float(value) == expected_value and (gradient == 0).all()
        else:
            assert float(value) > 0 and (gradient != 0).any()
    kept = numpy_terms(SSDLoss(n_neg_min=2), y_true, y_pred.numpy())["kept_negative_mask"]
    assert kept.sum(axis=1).tolist() == [2, 2]


def test_gradient_reaches_only_counted_anchors():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    y_true, y_pred = make_case(rng, batch=2, n_anchors=30)
    variable = tf.Variable(y_pred)
    loss = SSDLoss()
    with tf.GradientTape() as tape:
        value = loss(y_true, variable)
    gradient = tape.gradient(value, variable).numpy()
    terms = numpy_terms(loss, y_true, y_pred)
    counted = (terms["positive_mask"] + terms["kept_negative_mask"]) > 0
    assert (np.abs(gradient).sum(axis=-1)[~counted] == 0).all()
    assert (np.abs(gradient[..., :-4]).sum(axis=-1)[counted] > 0).all()
    assert (gradient[..., -4:][terms["positive_mask"] == 0] == 0).all()  # offsets: positives only


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"neg_pos_ratio": 0}, "neg_pos_ratio"),
        ({"n_neg_min": -1}, "n_neg_min"),
        ({"n_neg_min": 1.5}, "n_neg_min"),
        ({"alpha": -1.0}, "alpha"),
        ({"mining": "global"}, "mining"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SSDLoss(**kwargs)


def test_config_checks_prediction_width_and_must_be_a_keyword():
    config = SSDConfig(image_height=32, image_width=32, n_classes=2, feature_map_sizes=(2,),
                       aspect_ratios=((1.0,),), scales=(0.5, 0.9))  # fmt: skip
    with pytest.raises(TypeError, match="config=config"):
        SSDLoss(config)
    loss = SSDLoss(config=config)
    with pytest.raises(ValueError, match="expected n_classes \\+ 1 \\+ 4 = 7"):
        loss(np.zeros((1, 5, 5), np.float32), np.zeros((1, 5, 8), np.float32))


@pytest.mark.parametrize("label", [3, 7, -2, 1.5])
def test_labels_out_of_range_are_refused_when_called_eagerly(label):
    """3 classes: a label 7 would count as a positive with an empty one-hot (loss ~0)."""
    y_true, y_pred = make_case(np.random.default_rng(0), n_classes=2)
    y_true[1, 4, 0] = label
    if label == 3:
        y_true[1, 4, 0] = 2  # the largest valid class id passes
        assert np.isfinite(float(SSDLoss()(y_true, y_pred)))
        return
    with pytest.raises(ValueError, match=rf"y_true\[1, 4, 0\] = {label}: labels must be -1 \(neutral\), "
                       r"0 \(background\) or a class id 1..2 \(y_pred has n_classes \+ 5 = 7"):  # fmt: skip
        SSDLoss()(y_true, y_pred)


def test_compiled_loss_leaves_the_check_to_the_encoder():
    """Inside a compiled graph the values are not known: the loss traces and runs (no check);
    labels entering through SSDEncoder (and so DetectionDataset) are checked there."""
    import tensorflow as tf

    y_true, y_pred = make_case(np.random.default_rng(1), n_classes=2)
    compiled = tf.function(SSDLoss().call, jit_compile=True)
    assert np.isfinite(keras.ops.convert_to_numpy(compiled(y_true, y_pred))).all()
    config = SSDConfig(image_height=32, image_width=32, n_classes=2, feature_map_sizes=(2,),
                       aspect_ratios=((1.0,),), scales=(0.5, 0.9))  # fmt: skip
    with pytest.raises(ValueError, match=r"image 0, box 0 .* has a class id outside 1..2"):
        SSDEncoder(config)([np.array([[7, 1, 1, 20, 20]])])


def test_serialization_round_trip():
    loss = SSDLoss(neg_pos_ratio=2, n_neg_min=4, alpha=0.5, mining="batch")
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, SSDLoss)
    assert (restored.neg_pos_ratio, restored.n_neg_min, restored.alpha, restored.mining) == (2, 4, 0.5, "batch")


JAX_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import jax
    import keras
    from ssd_lib.losses import SSDLoss
    data = np.load(sys.argv[1])
    results = {}
    empty = np.zeros_like(data["y_true"])
    for mining in ("per_image", "batch"):
        loss = SSDLoss(mining=mining, n_neg_min=2)
        terms = loss.terms(data["y_true"], data["y_pred"])
        gradient = jax.grad(lambda p: loss(data["y_true"], p))(data["y_pred"])
        empty_value, empty_gradient = jax.value_and_grad(lambda p: loss(empty, p))(data["y_pred"])
        jitted = float(jax.jit(loss)(data["y_true"], data["y_pred"]))  # traced: no label check
        bad = data["y_true"].copy()
        bad[0, 0, 0] = 9
        try:
            loss(bad, data["y_pred"])
            refused = ""
        except ValueError as error:
            refused = str(error)
        results[mining] = {
            "backend": keras.backend.backend(), "value": float(terms["total"]),
            "kept": keras.ops.convert_to_numpy(terms["kept_negative_mask"]).tolist(),
            "gradient_finite": bool(np.isfinite(gradient).all()),
            "empty_value": float(empty_value),
            "empty_gradient_finite": bool(np.isfinite(empty_gradient).all()),
            "jitted": jitted, "refused": refused,
        }
    print(json.dumps(results))
    """
)


def test_same_results_under_jax_backend(tmp_path):
    import importlib.util
    import json

    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed (pip install jax): the JAX-backend test cannot run")
    rng = np.random.default_rng(11)
    y_true, y_pred = make_case(rng, n_anchors=1200, positive_share=0.02)  # per-image: the top_k path
    y_pred[:, :, :4] = np.round(y_pred[:, :, :4])  # coarse logits: many ties among negatives
    np.savez(tmp_path / "case.npz", y_true=y_true, y_pred=y_pred)
    script = tmp_path / "run_jax.py"
    script.write_text(JAX_SCRIPT)
    completed = subprocess.run([sys.executable, str(script), str(tmp_path / "case.npz")], env=jax_environment(),
                               capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    results = json.loads(completed.stdout.strip().splitlines()[-1])
    for mining in ("per_image", "batch"):
        result = results[mining]
        assert result["backend"] == "jax"
        expected, expected_kept = reference_loss(y_true, y_pred, n_neg_min=2, mining=mining)
        assert result["value"] == pytest.approx(expected, rel=1e-5)
        np.testing.assert_array_equal(np.array(result["kept"]) > 0, expected_kept)
        tf_value = float(SSDLoss(mining=mining, n_neg_min=2)(y_true, y_pred))
        assert result["value"] == pytest.approx(tf_value, rel=1e-6)
        assert result["gradient_finite"] and result["empty_gradient_finite"]
        assert np.isfinite(result["empty_value"]) and result["empty_value"] > 0  # n_neg_min = 2
        assert result["jitted"] == pytest.approx(expected, rel=1e-5)
        assert "y_true[0, 0, 0] = 9: labels must be -1 (neutral)" in result["refused"]


# ---------------------------------------------------------------------------------------------


def test_tiny_model_learns_two_synthetic_images():
    """A small convolutional SSD-like model fits two images with the loss: it falls by > half."""
    keras.utils.set_random_seed(0)
    config = SSDConfig(image_height=32, image_width=32, n_classes=2, feature_map_sizes=(4, 2),
                       aspect_ratios=((1.0, 2.0, 0.5),) * 2, scales=(0.3, 0.6, 0.9))  # fmt: skip
    boxes = [np.array([[1, 4, 4, 14, 14], [2, 16, 18, 30, 26]]), np.array([[2, 8, 10, 26, 20]])]
    images = np.zeros((2, 32, 32, 3), np.float32)
    for image, image_boxes in zip(images, boxes):
        for class_id, xmin, ymin, xmax, ymax in image_boxes.astype(int):
            image[ymin:ymax, xmin:xmax, class_id] = 255.0  # red-ish channel 1 or blue-ish channel 2
    y_true = SSDEncoder(config)(boxes)
    n_values = config.n_classes + 1 + 4

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inputs)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D(4)(x)  # 8x8
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    map_4 = keras.layers.MaxPooling2D(2)(x)  # 4x4
    map_2 = keras.layers.MaxPooling2D(2)(map_4)  # 2x2
    heads = [
        keras.layers.Reshape((-1, n_values))(keras.layers.Conv2D(config.boxes_per_cell(k) * n_values, 3, padding="same")(m))
        for k, m in enumerate((map_4, map_2))
    ]
    model = keras.Model(inputs, keras.layers.Concatenate(axis=1)(heads))
    assert model.output_shape == (None, config.n_anchors, n_values)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=SSDLoss(config=config))
    history = model.fit(images, y_true, batch_size=2, epochs=20, verbose=0)
    losses = history.history["loss"]
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses
