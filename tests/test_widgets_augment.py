"""AugmentationExplorer: every control redraws the grid with what SSDAugmentation produces."""

import numpy as np
import pytest
from explorer_checks import assert_static_picture

from ssd_lib.augment import PhotometricDistort, RandomExpand, RandomSampleCrop, SSDAugmentation, render, resize, resize_plan
from ssd_lib.explorers.augmentation import AugmentationExplorer

CLASS_NAMES = ("red", "green")


@pytest.fixture
def explorer():
    image = np.full((120, 160, 3), 40, np.uint8)
    image[10:60, 20:70] = [255, 0, 0]
    image[70:110, 90:150] = [0, 255, 0]
    boxes = np.array([[20, 10, 70, 60], [90, 70, 150, 110]], np.float32)
    return AugmentationExplorer(image, boxes, [1, 2], class_names=CLASS_NAMES, height=64, width=64,
                                rows=2, columns=2, seed=3, box_labels=True)  # fmt: skip


def drawn_boxes(sample):
    """The (n, 4) corners the panel's BoxArtist holds."""
    paths = sample.boxes.collection.get_paths()
    return np.array([[p.vertices[:, 0].min(), p.vertices[:, 1].min(), p.vertices[:, 0].max(),
                      p.vertices[:, 1].max()] for p in paths]).reshape(-1, 4)  # fmt: skip


def expected_samples(explorer, augmentation):
    height, width = explorer.photo.shape[:2]
    for index in range(explorer.n_samples):
        plan = augmentation.plan(width, height, explorer.gt_boxes, explorer.gt_labels,
                                 rng=np.random.default_rng([explorer.seed.value, index]))  # fmt: skip
        yield plan, render(explorer.photo, plan, augmentation.mean)


def assert_grid_shows(explorer, augmentation):
    for sample, (plan, pixels) in zip(explorer.samples, expected_samples(explorer, augmentation)):
        np.testing.assert_array_equal(sample.image.get_array(), pixels)
        np.testing.assert_allclose(drawn_boxes(sample), plan.boxes, atol=1e-4)
        shown_labels = [text.get_text() for text in sample.boxes.labels if text.get_visible()]
        assert shown_labels == [CLASS_NAMES[label - 1] for label in plan.labels]
        assert sample.title.get_text() == plan.describe()


def test_initial_grid_is_the_augmentation_of_the_seed(explorer):
    assert len(explorer.samples) == 4 and len(explorer.plans) == 4
    assert_grid_shows(explorer, SSDAugmentation(64, 64))
    assert explorer.image.value[:2] == b"\xff\xd8"  # a JPEG was rendered


def test_box_labels_are_optional():
    image = np.zeros((50, 50, 3), np.uint8)
    quiet = AugmentationExplorer(image, [[5, 5, 20, 20]], [1], rows=1, columns=2, height=32, width=32)
    assert all(sample.boxes.labels == [] for sample in quiet.samples)
    assert all(len(sample.boxes.collection.get_paths()) == len(plan.boxes)
               for sample, plan in zip(quiet.samples, quiet.plans))  # fmt: skip


def test_seed_slider_draws_new_samples(explorer):
    before = [sample.image.get_array().copy() for sample in explorer.samples]
    png_before = explorer.image.value
    explorer.seed.value = 4
    assert_grid_shows(explorer, SSDAugmentation(64, 64))
    assert any(not np.array_equal(a, s.image.get_array()) for a, s in zip(before, explorer.samples))
    assert explorer.image.value != png_before
    explorer.seed.value = 3
    for old, sample in zip(before, explorer.samples):
        np.testing.assert_array_equal(sample.image.get_array(), old)


def test_checkboxes_switch_steps_off(explorer):
    explorer.colour.value = False
    assert all(plan.color is None for plan in explorer.plans)
    assert_grid_shows(explorer, SSDAugmentation(64, 64, photometric=None))
    explorer.expand.value = False
    assert all(plan.expansion is None for plan in explorer.plans)
    explorer.crop.value = False
    assert all(plan.crop_window is None for plan in explorer.plans)
    explorer.flip.value = False
    # Nothing left: every panel is the resized photo with its boxes.
    resized, resized_boxes = resize(explorer.photo, explorer.gt_boxes, 64, 64)
    height, width = explorer.photo.shape[:2]
    rendered = render(explorer.photo, resize_plan(width, height, explorer.gt_boxes, output_height=64, output_width=64))
    assert np.abs(rendered.astype(int) - resized).mean() < 3  # OpenCV's area average vs Pillow's filter
    for sample in explorer.samples:
        np.testing.assert_array_equal(sample.image.get_array(), rendered)
        np.testing.assert_allclose(drawn_boxes(sample), resized_boxes, atol=1e-4)
        assert sample.title.get_text() == "2 boxes"
    explorer.crop.value = True
    assert_grid_shows(explorer, SSDAugmentation(64, 64, photometric=None, expansion=None,
                                                cropping=RandomSampleCrop(), flip_probability=0.0))  # fmt: skip
    explorer.colour.value = explorer.expand.value = explorer.flip.value = True
    assert_grid_shows(explorer, SSDAugmentation(64, 64, photometric=PhotometricDistort(), expansion=RandomExpand()))


def test_pixel_image_draws_upright_where_the_boxes_are():
    """SampleArtist's PixelImage: the photo lands on the axes the right way up, under its boxes."""
    from ssd_lib import viz

    image = np.zeros((60, 60, 3), np.uint8)
    image[:20, :30] = [255, 0, 0]  # top-left block
    figure, ax = viz.new_figure(figsize=(2, 2), dpi=100)
    sample = viz.SampleArtist(ax, (60, 60))
    sample.set_sample(image, [[0, 0, 30, 20]], [1])
    figure.canvas.draw()
    canvas = np.asarray(figure.canvas.buffer_rgba())[..., :3].astype(int)
    x0, y0, x1, y1 = ax.bbox.extents  # display pixels, origin bottom-left
    height = canvas.shape[0]
    top, bottom = int(height - y1), int(height - y0)  # rows of the axes in the canvas
    inside = canvas[top + 3 : bottom - 3, int(x0) + 3 : int(x1) - 3]
    rows, cols = np.nonzero((inside[..., 0] > 200) & (inside[..., 1] < 60) & (inside[..., 2] < 60))
    assert rows.size > 0
    # the red block covers the top third and the left half of the axes
    assert rows.max() < (bottom - top) / 3 and cols.max() < (x1 - x0) / 2
    np.testing.assert_array_equal(sample.image.get_array(), image)


def test_displayed_explorer_carries_a_static_picture(explorer):
    assert_static_picture(explorer)
