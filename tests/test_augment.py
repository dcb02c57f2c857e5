"""The SSD augmentation: boxes stay on their pixels in every transform, colour maths against a
colorsys oracle, crop constraints, determinism, empty box lists and bad inputs."""

import colorsys
import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ssd_lib import augment
from ssd_lib.augment import color
from ssd_lib.augment import (
    ColorParams,
    PhotometricDistort,
    RandomExpand,
    RandomSampleCrop,
    SSDAugmentation,
    adjust_brightness,
    adjust_contrast,
    adjust_hue,
    adjust_saturation,
    crop,
    expand,
    horizontal_flip,
    render,
    resize,
    resize_plan,
    swap_channels,
)
from ssd_lib.boxes import iou
from ssd_lib.jpeg import read_jpeg

# Saturated colours far from each other, from black (background) and from the mean fill.
PALETTE = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]], np.uint8
)
GEOMETRY_ONLY = dict(photometric=None)


def painted(width=200, height=150, boxes=None):
    """A black image with filled, non-overlapping boxes in PALETTE colours; label k+1 = colour k."""
    if boxes is None:
        boxes = np.array([[10, 12, 60, 50], [100, 20, 190, 70], [30, 80, 90, 140], [120, 95, 150, 145]],
                         np.float32)  # fmt: skip
    image = np.zeros((height, width, 3), np.uint8)
    for k, (x0, y0, x1, y1) in enumerate(boxes.astype(int)):
        image[y0:y1, x0:x1] = PALETTE[k]
    return image, boxes, np.arange(1, len(boxes) + 1)


def assert_pixels_inside_boxes(image, boxes, labels, tolerance=1.5):
    """Every pixel of colour ``label - 1`` lies inside that label's box (grown by ``tolerance``)
    and the box interior is mostly that colour: the boxes follow the pixels."""
    image = image.astype(int)
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    for box, label in zip(boxes, labels):
        color = PALETTE[label - 1].astype(int)
        of_color = np.abs(image - color).sum(axis=-1) < 60
        x0, y0, x1, y1 = box
        centres_x, centres_y = cols[of_color] + 0.5, rows[of_color] + 0.5
        assert np.all(centres_x > x0 - tolerance) and np.all(centres_x < x1 + tolerance), (label, box)
        assert np.all(centres_y > y0 - tolerance) and np.all(centres_y < y1 + tolerance), (label, box)
        inner = of_color[int(np.ceil(y0 + tolerance)) : int(y1 - tolerance),
                         int(np.ceil(x0 + tolerance)) : int(x1 - tolerance)]  # fmt: skip
        if inner.size:
            assert inner.mean() > 0.95, (label, box, inner.mean())


# --------------------------------------------------------------------- photometric


def test_brightness_and_contrast_golden_values():
    image = np.array([[[0, 100, 250]]], np.uint8)
    np.testing.assert_array_equal(adjust_brightness(image, 10), [[[10, 110, 255]]])
    np.testing.assert_array_equal(adjust_brightness(image, -20), [[[0, 80, 230]]])
    np.testing.assert_array_equal(adjust_contrast(image, 1.5), [[[0, 150, 255]]])
    np.testing.assert_array_equal(adjust_contrast(image, 0.5), [[[0, 50, 125]]])


def colorsys_reference(image, saturation_factor, hue_degrees):
    """Per-pixel oracle with the standard library's HSV conversion."""
    out = np.empty_like(image)
    for index in np.ndindex(image.shape[:2]):
        hue, saturation, value = colorsys.rgb_to_hsv(*(image[index] / 255.0))
        hue = (hue + hue_degrees / 360.0) % 1.0
        saturation = min(saturation * saturation_factor, 1.0)
        out[index] = np.rint(np.array(colorsys.hsv_to_rgb(hue, saturation, value)) * 255)
    return out


@pytest.mark.parametrize("saturation_factor, hue_degrees", [(1.0, 17.0), (1.0, -18.0), (0.6, 0.0),
                                                             (1.4, 0.0), (1.3, 250.0), (3.0, -5.0)])  # fmt: skip
def test_saturation_and_hue_match_colorsys(saturation_factor, hue_degrees):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (12, 15, 3), dtype=np.uint8)
    image[0, :4] = [[0, 0, 0], [255, 255, 255], [90, 90, 90], [255, 0, 0]]  # greys and pure red
    expected = colorsys_reference(image, saturation_factor, hue_degrees)
    params = ColorParams(saturation_factor=saturation_factor, hue_shift=hue_degrees)
    result = PhotometricDistort.apply(image, params)
    assert np.abs(result.astype(int) - expected).max() <= 1


def test_large_images_do_not_keep_scratch_buffers():
    big = np.full((1100, 1000, 3), [200, 100, 50], np.uint8)  # above the scratch-buffer limit
    np.testing.assert_array_equal(adjust_saturation(big, 0.0)[::97, ::89], 200)
    buffers = color._scratch.__dict__.get("buffers", {})
    assert all(buffer.size <= color._MAX_SCRATCH_ELEMENTS for buffer in buffers.values())


def test_hue_and_saturation_golden_values():
    red = np.array([[[255, 0, 0]]], np.uint8)
    np.testing.assert_array_equal(adjust_hue(red, 120), [[[0, 255, 0]]])
    np.testing.assert_array_equal(adjust_hue(red, -120), [[[0, 0, 255]]])
    np.testing.assert_array_equal(adjust_hue(red, 360), red)
    # saturation 0 keeps the value (max channel): grey at V
    np.testing.assert_array_equal(adjust_saturation(np.array([[[200, 100, 50]]], np.uint8), 0.0),
                                  [[[200, 200, 200]]])  # fmt: skip


def test_swap_channels():
    image = np.array([[[1, 2, 3]]], np.uint8)
    np.testing.assert_array_equal(swap_channels(image, (2, 0, 1)), [[[3, 1, 2]]])
    with pytest.raises(ValueError, match="permutation"):
        swap_channels(image, (0, 0, 1))


def test_photometric_order_and_steps():
    image = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    params = ColorParams(brightness_delta=20, contrast_factor=1.4, contrast_first=True, saturation_factor=0.7,
                         hue_shift=10, channel_order=(2, 1, 0))  # fmt: skip
    step = adjust_contrast(adjust_brightness(image, 20), 1.4)
    step = adjust_hue(adjust_saturation(step, 0.7), 10)
    expected = swap_channels(step, (2, 1, 0))
    # The fused saturation+hue pass rounds once instead of twice.
    assert np.abs(PhotometricDistort.apply(image, params).astype(int) - expected).max() <= 2
    later = PhotometricDistort.apply(image, ColorParams(contrast_factor=1.4, contrast_first=False, hue_shift=10))
    np.testing.assert_array_equal(later, adjust_contrast(adjust_hue(image, 10), 1.4))
    np.testing.assert_array_equal(PhotometricDistort.apply(image, ColorParams()), image)


def test_photometric_sampling_ranges_and_determinism():
    distort = PhotometricDistort()
    draws = [distort.sample(np.random.default_rng(seed)) for seed in range(400)]
    brightness = np.array([d.brightness_delta for d in draws])
    contrast = np.array([d.contrast_factor for d in draws])
    hue = np.array([d.hue_shift for d in draws])
    assert np.all(np.abs(brightness) <= 32) and 0.4 < np.mean(brightness != 0) < 0.6
    assert np.all((contrast >= 0.5) & (contrast <= 1.5)) and 0.4 < np.mean(contrast != 1) < 0.6
    assert np.all(np.abs(hue) <= 18) and 0.4 < np.mean(hue != 0) < 0.6
    assert 0.4 < np.mean([d.contrast_first for d in draws]) < 0.6
    assert 0.3 < np.mean([d.channel_order != (0, 1, 2) for d in draws]) < 0.6
    assert distort.sample(np.random.default_rng(7)) == distort.sample(np.random.default_rng(7))


# --------------------------------------------------------------------- geometric, one at a time


def test_expand_keeps_boxes_on_pixels():
    image, boxes, labels = painted()
    canvas, moved = expand(image, boxes, ratio=2.5, left=37, top=80)
    assert canvas.shape == (375, 500, 3)
    np.testing.assert_array_equal(canvas[0, 0], np.rint(augment.DEFAULT_MEAN))
    np.testing.assert_array_equal(canvas[80:230, 37:237], image)
    np.testing.assert_allclose(moved, boxes + [37, 80, 37, 80])
    assert_pixels_inside_boxes(canvas, moved, labels, tolerance=0)
    with pytest.raises(ValueError, match="outside"):
        expand(image, boxes, ratio=1.5, left=200, top=0)


def test_crop_keeps_centred_boxes_clipped():
    image, boxes, labels = painted()
    window = (40, 10, 170, 120)
    cropped, kept, kept_labels, difficult = crop(image, boxes, labels, window,
                                                 difficult=[False, True, False, True])  # fmt: skip
    assert cropped.shape == (110, 130, 3)
    # centres: (35, 31) outside; (145, 45) inside; (60, 110) inside; (135, 120) outside (y)
    np.testing.assert_array_equal(kept_labels, [2, 3])
    np.testing.assert_array_equal(difficult, [True, False])
    np.testing.assert_allclose(kept, [[60, 10, 130, 60], [0, 70, 50, 110]])
    assert_pixels_inside_boxes(cropped, kept, kept_labels, tolerance=0)


def test_crop_that_drops_every_box_returns_empty_arrays():
    image, boxes, labels = painted()
    cropped, kept, kept_labels, difficult = crop(image, boxes, labels, (150, 0, 200, 15))
    assert cropped.shape == (15, 50, 3)
    assert kept.shape == (0, 4) and kept_labels.shape == (0,) and difficult is None
    with pytest.raises(ValueError, match="not inside"):
        crop(image, boxes, labels, (150, 0, 201, 15))


def test_flip_keeps_boxes_on_pixels():
    image, boxes, labels = painted()
    flipped, flipped_boxes = horizontal_flip(image, boxes)
    np.testing.assert_allclose(flipped_boxes[0], [140, 12, 190, 50])
    assert_pixels_inside_boxes(flipped, flipped_boxes, labels, tolerance=0)
    np.testing.assert_allclose(horizontal_flip(flipped, flipped_boxes)[1], boxes)


@pytest.mark.parametrize("height, width", [(300, 300), (64, 97), (512, 512)])
def test_resize_keeps_boxes_on_pixels(height, width):
    image, boxes, labels = painted()
    resized, scaled = resize(image, boxes, height, width)
    assert resized.shape == (height, width, 3) and scaled.dtype == np.float32
    np.testing.assert_allclose(scaled[1], boxes[1] * np.array([width / 200, height / 150] * 2), rtol=1e-6)
    assert_pixels_inside_boxes(resized, scaled, labels)


def test_transforms_accept_empty_box_lists():
    image, _, _ = painted()
    empty = np.zeros((0, 4), np.float32)
    assert expand(image, empty, 2.0, 3, 4)[1].shape == (0, 4)
    assert crop(image, empty, np.zeros(0, int), (0, 0, 50, 50))[1].shape == (0, 4)
    assert horizontal_flip(image, [])[1].shape == (0, 4)
    assert resize(image, empty, 30, 30)[1].shape == (0, 4)


# --------------------------------------------------------------------- samplers


def test_random_expand_draws_valid_placements():
    sampler = RandomExpand()
    draws = [sampler.sample(np.random.default_rng(seed), 200, 150) for seed in range(300)]
    applied = [d for d in draws if d is not None]
    assert 0.4 < len(applied) / len(draws) < 0.6
    for ratio, left, top in applied:
        assert 1 <= ratio <= 4
        assert 0 <= left <= int(200 * ratio) - 200 and 0 <= top <= int(150 * ratio) - 150


def test_random_crop_windows_satisfy_the_constraints():
    _, boxes, _ = painted()
    sampler = RandomSampleCrop()
    windows = {}
    for seed in range(300):
        rng = np.random.default_rng(seed)
        option = sampler.min_ious[int(np.random.default_rng(seed).integers(len(sampler.min_ious)))]
        window = sampler.sample(rng, boxes, 200, 150)
        if window is None:
            continue
        windows[seed] = window
        x0, y0, x1, y1 = window
        width, height = x1 - x0, y1 - y0
        assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 150
        assert width >= 0.3 * 200 - 1 and height >= 0.3 * 150 - 1
        assert 0.5 - 0.05 <= height / width <= 2 + 0.05
        assert iou(np.array([window], float), boxes).max() >= option
        centres = (boxes[:, :2] + boxes[:, 2:]) / 2
        inside = (centres[:, 0] > x0) & (centres[:, 0] < x1) & (centres[:, 1] > y0) & (centres[:, 1] < y1)
        assert inside.any()  # a crop never drops every box
    assert len(windows) > 150  # most options find a window
    assert sampler.sample(np.random.default_rng(5), boxes, 200, 150) == windows.get(5)


def test_random_crop_without_boxes_only_takes_unconstrained_patches():
    sampler = RandomSampleCrop()
    results = [sampler.sample(np.random.default_rng(seed), np.zeros((0, 4)), 200, 150) for seed in range(100)]
    taken = [w for w in results if w is not None]
    assert 0 < len(taken) < 40  # only the 0.0 option (1 in 7) can apply
    only_whole = RandomSampleCrop(min_ious=(None,))
    assert only_whole.sample(np.random.default_rng(0), np.zeros((0, 4)), 200, 150) is None


def test_random_crop_keeps_the_image_when_no_trial_succeeds():
    # One tiny box: no patch of side >= 0.3 reaches IoU 0.9 with it.
    sampler = RandomSampleCrop(min_ious=(0.9,))
    assert sampler.sample(np.random.default_rng(0), [[10, 10, 12, 12]], 200, 150) is None


# --------------------------------------------------------------------- the whole chain


def test_augmentation_keeps_boxes_on_pixels_for_many_seeds():
    image, boxes, labels = painted()
    augmentation = SSDAugmentation(96, 128, **GEOMETRY_ONLY)
    n_boxes, n_flips, n_expands, n_crops = [], 0, 0, 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        plan = augmentation.plan(200, 150, boxes, labels, rng=np.random.default_rng(seed))
        out, out_boxes, out_labels, _ = augmentation(image, boxes, labels, rng=rng)
        assert out.shape == (96, 128, 3) and out.dtype == np.uint8
        assert out_boxes.dtype == np.float32 and len(out_boxes) == len(out_labels) >= 1
        assert np.all(out_boxes >= 0) and np.all(out_boxes[:, [0, 2]] <= 128) and np.all(out_boxes[:, [1, 3]] <= 96)
        assert_pixels_inside_boxes(out, out_boxes, out_labels, tolerance=2.0)
        n_boxes.append(len(out_boxes))
        n_flips += plan.flip
        n_expands += plan.expansion is not None
        n_crops += plan.crop_window is not None
    assert min(n_boxes) < 4  # some crops drop boxes
    assert 0 < n_flips < 60 and 0 < n_expands < 60 and 0 < n_crops < 60


def test_fused_path_equals_the_steps_in_order():
    """render() of a plan equals expand -> crop -> flip -> resize done one after the other."""
    image, boxes, labels = painted()
    augmentation = SSDAugmentation(120, 120, **GEOMETRY_ONLY)
    checked = 0
    for seed in range(80):
        plan = augmentation.plan(200, 150, boxes, labels, rng=np.random.default_rng(seed))
        if plan.expansion is None or plan.crop_window is None:
            continue
        ratio, left, top = plan.expansion
        step, step_boxes = expand(image, boxes, ratio, left, top)
        step, step_boxes, step_labels, _ = crop(step, step_boxes, labels, plan.crop_window)
        if plan.flip:
            step, step_boxes = horizontal_flip(step, step_boxes)
        step, step_boxes = resize(step, step_boxes, 120, 120)
        np.testing.assert_allclose(plan.boxes, step_boxes, atol=1e-3)
        np.testing.assert_array_equal(plan.labels, step_labels)
        fused = render(image, plan, augmentation.mean)
        difference = np.abs(fused.astype(int) - step.astype(int))
        assert difference.mean() < 3, seed  # only resampling differs (edges of the shapes)
        checked += 1
    assert checked >= 5


def test_colour_distortion_leaves_the_canvas_at_the_mean():
    image, boxes, labels = painted()
    augmentation = SSDAugmentation(100, 100)
    plan = augmentation.plan(200, 150, boxes, labels, rng=np.random.default_rng(0))
    plan = dataclasses.replace(plan, color=ColorParams(brightness_delta=30, hue_shift=15))
    plan = dataclasses.replace(plan, window=(-200.0, -150.0, 200.0, 150.0), flip=False)  # photo bottom-right
    out = render(image, plan, augment.DEFAULT_MEAN)
    np.testing.assert_array_equal(out[:45, :45], np.broadcast_to(np.rint(augment.DEFAULT_MEAN), (45, 45, 3)))
    assert out[60:, 60:].min() >= 30  # black photo pixels brightened by 30
    assert np.abs(out[95, 95].astype(int) - [30, 30, 30]).max() <= 1


def test_render_writes_into_a_view_and_fills_what_the_photo_does_not_cover():
    image, boxes, labels = painted()
    plan = SSDAugmentation(100, 100).plan(200, 150, boxes, labels, rng=np.random.default_rng(1))
    plan = dataclasses.replace(plan, window=(-200.0, -150.0, 200.0, 150.0))  # canvas, photo bottom-right
    alone = render(image, plan)
    wide = np.zeros((100, 140, 3), np.uint8)
    assert render(image, plan, out=wide[:, 20:120]).base is wide  # a view, not contiguous
    np.testing.assert_array_equal(wide[:, 20:120], alone)
    assert not wide[:, :20].any() and not wide[:, 120:].any()  # nothing written beside it
    mean = np.rint(augment.DEFAULT_MEAN).astype(np.uint8)
    np.testing.assert_array_equal(alone[:45, :45], np.broadcast_to(mean, (45, 45, 3)))
    outside = dataclasses.replace(plan, window=(-400.0, -300.0, -250.0, -200.0))  # the photo is out of view
    np.testing.assert_array_equal(render(image, outside), np.broadcast_to(mean, (100, 100, 3)))


def test_augmentation_is_deterministic_for_a_seed():
    image, boxes, labels = painted()
    first = SSDAugmentation(300, 300, seed=11)
    second = SSDAugmentation(300, 300, seed=11)
    for _ in range(5):
        a, b = first(image, boxes, labels), second(image, boxes, labels)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        np.testing.assert_array_equal(a[2], b[2])
    other = SSDAugmentation(300, 300, seed=12)(image, boxes, labels)
    assert not np.array_equal(other[0], a[0])
    fixed = [SSDAugmentation(300, 300)(image, boxes, labels, rng=np.random.default_rng(3))[0] for _ in range(2)]
    np.testing.assert_array_equal(*fixed)


def test_augmentation_of_an_image_without_boxes():
    image, _, _ = painted()
    augmentation = SSDAugmentation(64, 64, seed=0)
    for _ in range(20):
        out, out_boxes, out_labels, difficult = augmentation(image, np.zeros((0, 4)), np.zeros(0, int), [])
        assert out.shape == (64, 64, 3)
        assert out_boxes.shape == (0, 4) and out_labels.shape == (0,) and difficult.shape == (0,)


def test_difficult_flags_follow_their_boxes():
    image, boxes, labels = painted()
    difficult = labels % 2 == 0
    augmentation = SSDAugmentation(64, 64, seed=1)
    for _ in range(20):
        _, _, out_labels, out_difficult = augmentation(image, boxes, labels, difficult)
        np.testing.assert_array_equal(out_difficult, out_labels % 2 == 0)


def test_jpeg_draft_decoding_matches_the_decoded_array(tmp_path):
    image, boxes, labels = painted(800, 600, boxes=np.array([[100, 120, 400, 360], [500, 50, 760, 500]], np.float32))
    path = tmp_path / "big.jpg"
    Image.fromarray(image).save(path, quality=95)
    decoded = np.asarray(Image.open(path).convert("RGB"))
    plan = resize_plan(800, 600, boxes, labels, output_height=150, output_width=200)  # 4x smaller
    encoded = read_jpeg(path)
    drafted = render(encoded, plan)  # decoded at 1/4 scale by libjpeg
    full = render(decoded, plan)
    assert np.abs(drafted.astype(int) - full.astype(int)).mean() < 3
    assert_pixels_inside_boxes(drafted, plan.boxes, plan.labels, tolerance=2.0)


def test_validation_path_is_resize_only():
    image, boxes, labels = painted()
    plan = resize_plan(200, 150, boxes, labels, output_height=300, output_width=300)
    assert plan.color is None and not plan.flip and plan.window == (0, 0, 200, 150)
    resized, resized_boxes = resize(image, boxes, 300, 300)
    rendered = render(image, plan)  # OpenCV bilinear; resize() (inference) is Pillow's
    assert np.abs(rendered.astype(int) - resized.astype(int)).mean() < 1
    np.testing.assert_allclose(plan.boxes, resized_boxes)


def test_default_mean_is_the_models_mean():
    from ssd_lib.model_layers import Preprocess

    assert augment.DEFAULT_MEAN == Preprocess().mean


@pytest.mark.parametrize(
    "image, boxes, labels, message",
    [
        (np.zeros((10, 10, 3), np.float32), np.zeros((0, 4)), np.zeros(0), "uint8"),
        (np.zeros((10, 10), np.uint8), np.zeros((0, 4)), np.zeros(0), "uint8"),
        (np.zeros((10, 10, 3), np.uint8), np.zeros((2, 5)), np.zeros(2), "shape"),
        (np.zeros((10, 10, 3), np.uint8), [[5, 1, 2, 4]], [1], r"boxes\[0\]"),
        (np.zeros((10, 10, 3), np.uint8), [[1, 1, 2, 4], [1, np.nan, 2, 4]], [1, 1], r"boxes\[1\]"),
        (np.zeros((10, 10, 3), np.uint8), [[1, 1, 2, 4]], [1, 2], "2 labels for 1 boxes"),
    ],
)
def test_bad_inputs_name_the_culprit(image, boxes, labels, message):
    with pytest.raises(ValueError, match=message):
        SSDAugmentation(32, 32, seed=0)(image, boxes, labels)


def test_png_and_grey_images_are_converted():
    grey = Image.fromarray(np.full((40, 50), 77, np.uint8))
    buffer = io.BytesIO()
    grey.save(buffer, format="png")
    buffer.seek(0)
    with Image.open(buffer) as lazy:
        out, _, _, _ = SSDAugmentation(20, 20, seed=0, photometric=None)(lazy, np.zeros((0, 4)), [])
    assert out.shape == (20, 20, 3)
    assert set(np.unique(out)) <= {77, 124, 117, 104}  # grey photo or mean canvas


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: PhotometricDistort(probability=1.5), "PhotometricDistort.probability"),
        (lambda: PhotometricDistort(contrast_range=(1.5, 0.5)), "contrast_range"),
        (lambda: PhotometricDistort(hue_delta=-3), "hue_delta"),
        (lambda: RandomExpand(max_ratio=0.5), "RandomExpand.max_ratio"),
        (lambda: RandomExpand(probability=-0.1), "RandomExpand.probability"),
        (lambda: RandomSampleCrop(min_scale=0.0), "min_scale"),
        (lambda: RandomSampleCrop(min_aspect=2.0, max_aspect=0.5), "aspect"),
        (lambda: RandomSampleCrop(min_ious=(0.1, 1.5)), "min_ious"),
        (lambda: RandomSampleCrop(max_trials=0), "max_trials"),
        (lambda: SSDAugmentation(0, 300), "output size"),
        (lambda: SSDAugmentation(300, 300, mean=(1, 2)), "mean"),
        (lambda: SSDAugmentation(300, 300, flip_probability=2), "flip_probability"),
    ],
)
def test_bad_settings_name_the_field(make, message):
    with pytest.raises(ValueError, match=message):
        make()
