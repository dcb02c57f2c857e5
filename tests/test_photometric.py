"""The colour distortion on the accelerator equals the host's (ssd_lib.augment), image by image."""

import dataclasses
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ssd_lib.augment import ColorParams, PhotometricDistort, SSDAugmentation  # noqa: E402
from ssd_lib.config import SSDConfig  # noqa: E402
from ssd_lib.photometric import (  # noqa: E402
    PHOTOMETRIC_PARAMETERS,
    PhotometricDistortion,
    photometric_parameters,
    with_photometric_distortion,
)
from ssd_lib.pipeline import DetectionDataset  # noqa: E402

CONFIG = SSDConfig(image_height=48, image_width=64, n_classes=2, feature_map_sizes=(6, 3),
                   aspect_ratios=((1.0, 2.0),) * 2, scales=(0.2, 0.5, 0.9))  # fmt: skip


def photo(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Random colours with grey pixels, saturated ones and ties between channels."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    image[:8] = rng.integers(0, 256, (8, width, 1))  # grey
    image[8:12, :, 1] = image[8:12, :, 0]  # red == green (ties for the max)
    image[12:16] = [[255, 0, 0]]
    return image


def device_distort(images, rows) -> np.ndarray:
    return keras.ops.convert_to_numpy(PhotometricDistortion()(images, np.stack(rows)))


def test_equals_the_host_distortion_for_many_draws():
    sampler = PhotometricDistort(probability=0.8, channel_swap_probability=0.5)
    images, expected, rows = [], [], []
    for seed in range(24):
        image = photo(seed)
        plan = SSDAugmentation(48, 64, expansion=None, cropping=None).plan(64, 48, np.zeros((0, 4)))
        color = sampler.sample(np.random.default_rng(seed))
        if seed == 0:
            color = ColorParams(brightness_delta=-20.5, contrast_factor=1.3, contrast_first=False,
                                saturation_factor=1.4, hue_shift=-17.0, channel_order=(2, 0, 1))  # fmt: skip
        plan = dataclasses.replace(plan, color=color, flip=False)
        images.append(image)
        expected.append(PhotometricDistort.apply(image, color))
        rows.append(photometric_parameters(plan))
    result = device_distort(np.stack(images), rows)
    difference = np.abs(result - np.stack(expected).astype(np.float32))
    assert difference.max() <= 1  # a float rounding that lands on a half
    assert (difference == 0).mean() > 0.999
    assert result.dtype == np.float32


def test_neutral_parameters_and_the_canvas_are_left_alone():
    images = np.stack([photo(1), photo(2)])
    neutral = photometric_parameters(SSDAugmentation(48, 64, photometric=None).plan(64, 48, np.zeros((0, 4))))
    assert neutral.shape == (PHOTOMETRIC_PARAMETERS,)
    np.testing.assert_array_equal(device_distort(images, [neutral, neutral]), images)
    # A photo covering rows 10..30 and columns 20..50 only: the rest (the canvas) is unchanged.
    plan = SSDAugmentation(48, 64).plan(64, 48, np.zeros((0, 4)), rng=np.random.default_rng(0))
    plan = dataclasses.replace(plan, window=(-20.0, -10.0, 44.0, 38.0), source_size=(30, 20), flip=False,
                               color=ColorParams(brightness_delta=40.0))  # fmt: skip
    row = photometric_parameters(plan)
    np.testing.assert_array_equal(row[9:], [10, 30, 20, 50])
    result = device_distort(images[:1], [row])[0]
    inside = np.zeros((48, 64), bool)
    inside[10:30, 20:50] = True
    np.testing.assert_array_equal(result[~inside], images[0][~inside])
    np.testing.assert_array_equal(result[inside], np.minimum(images[0][inside].astype(int) + 40, 255))


def test_pipeline_on_device_equals_the_host_pipeline(tmp_path):
    """Same seed, same draws: the uint8 batch distorted by the layer is the host's batch."""
    records = []
    for index in range(6):
        path = tmp_path / f"photo_{index}.jpg"
        Image.fromarray(photo(index, 90 + 10 * index, 120)).save(path, quality=95)
        records.append({"image_path": str(path), "size": (120, 90 + 10 * index), "labels": np.array([1]),
                        "boxes": np.array([[10.0, 12.0, 70.0, 60.0]], np.float32)})  # fmt: skip
    augmentation = SSDAugmentation(48, 64, photometric=PhotometricDistort(probability=0.9))
    host = DetectionDataset(records, CONFIG, batch_size=6, seed=3, augmentation=augmentation, workers=1)
    device = DetectionDataset(records, CONFIG, batch_size=6, seed=3, augmentation=augmentation, workers=1,
                              photometric_on_device=True)  # fmt: skip
    (host_images, host_y), (inputs, device_y) = host[0], device[0]
    assert host_images.dtype == np.uint8 and inputs["images"].dtype == np.uint8
    assert inputs["photometric"].shape == (6, PHOTOMETRIC_PARAMETERS)
    np.testing.assert_array_equal(host_y, device_y)
    difference = np.abs(device_distort(inputs["images"], list(inputs["photometric"])) - host_images)
    assert difference.max() <= 1 and (difference == 0).mean() > 0.999
    assert np.abs(host_images.astype(int) - inputs["images"]).mean() > 5  # the colours did change


def test_training_model_shares_the_detector_and_takes_uint8_batches():
    inputs = keras.Input((48, 64, 3))
    detector = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(inputs)))
    trainer = with_photometric_distortion(detector)
    assert trainer.trainable_weights == detector.trainable_weights
    images = np.stack([photo(5), photo(6)])
    neutral = photometric_parameters(SSDAugmentation(48, 64, photometric=None).plan(64, 48, np.zeros((0, 4))))
    outputs = trainer.predict_on_batch({"images": images, "photometric": np.stack([neutral, neutral])})
    np.testing.assert_allclose(outputs, detector.predict_on_batch(images.astype(np.float32)), rtol=1e-5)


@pytest.mark.parametrize("policy", ["mixed_bfloat16"])
def test_the_layer_stays_float32_under_mixed_precision(policy):
    keras.mixed_precision.set_global_policy(policy)
    try:
        layer = PhotometricDistortion()
        assert layer.compute_dtype == "float32"
    finally:
        keras.mixed_precision.set_global_policy("float32")
