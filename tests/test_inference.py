"""ssd_lib.inference.predict at its boundary: what users bring (paths, PIL images, float or 16-bit
arrays, empty images), batch sizes, the dict output, and a model built for another config."""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ssd_lib.config import SSDConfig  # noqa: E402
from ssd_lib.inference import as_dicts, predict  # noqa: E402
from ssd_lib.small_ssd import build_small_ssd  # noqa: E402

TINY = SSDConfig(
    image_height=32, image_width=32, n_classes=2, feature_map_sizes=(4, 2, 1),
    aspect_ratios=((1.0, 2.0, 0.5),) * 3, scales=(0.25, 0.45, 0.7, 0.95), class_names=("square", "bar"),
)  # fmt: skip
KWARGS = {"confidence_threshold": 0.0, "top_k": 5}


@pytest.fixture(scope="module")
def model():
    return build_small_ssd(TINY, width_multiplier=0.25, l2_regularization=0.0)


@pytest.fixture(scope="module")
def photo():
    return np.random.default_rng(0).integers(0, 256, size=(40, 60, 3), dtype=np.uint8)


def test_paths_pil_images_and_arrays_give_the_same_detections(model, photo, tmp_path):
    path = tmp_path / "photo.png"
    Image.fromarray(photo).save(path)
    expected = predict(model, photo, TINY, **KWARGS)
    for given in (path, str(path), Image.fromarray(photo), [path], [Image.fromarray(photo)]):
        got = predict(model, given, TINY, **KWARGS)
        assert len(got) == 1
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-4)
    gray = Image.fromarray(photo).convert("L")  # a PIL image of another mode: converted to RGB
    assert predict(model, gray, TINY, **KWARGS)[0].shape[1] == 6


def test_float_pixels_in_0_255_work_and_batches_do_not_change_results(model, photo):
    expected = predict(model, [photo, photo[:20]], TINY, batch_size=2, **KWARGS)
    got = predict(model, [photo.astype(np.float32), photo[:20]], TINY, batch_size=1, **KWARGS)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)


def test_dicts_hold_the_same_detections(model, photo):
    rows = predict(model, photo, TINY, **KWARGS)
    (found,) = predict(model, photo, TINY, output="dicts", **KWARGS)
    assert set(found) == {"boxes", "labels", "scores"}
    np.testing.assert_array_equal(found["boxes"], rows[0][:, 2:6])
    np.testing.assert_array_equal(found["labels"], rows[0][:, 0].astype(np.int32))
    np.testing.assert_array_equal(found["scores"], rows[0][:, 1])
    assert found["labels"].dtype == np.int32 and found["boxes"].shape == (len(rows[0]), 4)
    assert as_dicts([np.zeros((0, 6), np.float32)])[0]["boxes"].shape == (0, 4)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.full((40, 60, 3), 0.5, np.float32), r"image 0 is float with values in \[0, 0.5\].*multiply by 255"),
        (np.full((40, 60, 3), 4000, np.uint16), "image 0 is uint16 with values up to 4000.*257"),
        (np.zeros((0, 0, 3), np.uint8), "image 0 is empty"),
        (np.zeros((40, 60), np.uint8), r"must be \(height, width, 3\)"),
        (np.zeros((40, 60, 3), bool), "dtype bool"),
    ],
)
def test_wrong_conventions_are_told(model, image, message):
    with pytest.raises(ValueError, match=message):
        predict(model, image, TINY)


def test_unreadable_file_is_named(model, tmp_path):
    with pytest.raises(ValueError, match="missing.jpg"):
        predict(model, tmp_path / "missing.jpg", TINY)


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_batch_size_must_be_positive(model, photo, batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        predict(model, photo, TINY, batch_size=batch_size)


def test_unknown_output_is_refused(model, photo):
    with pytest.raises(ValueError, match="output must be 'rows' or 'dicts'"):
        predict(model, photo, TINY, output="boxes")


def test_a_config_the_model_was_not_built_for_says_which_it_was(model, photo):
    three_classes = dataclasses.replace(TINY, n_classes=3, class_names=None)
    with pytest.raises(ValueError, match=r"32x32 images.*2 classes.*3 classes"):
        predict(model, photo, three_classes)
    bigger = dataclasses.replace(TINY, image_height=64, image_width=64)
    with pytest.raises(ValueError, match="the model takes 32x32 images"):
        predict(model, photo, bigger)
