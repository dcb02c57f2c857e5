"""Tests of ModelExplorer (notebook 06): every control moves, and what is drawn is checked."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from explorer_checks import assert_static_picture  # noqa: E402

from ssd_lib.prediction_heads import feature_maps, source_layer_names  # noqa: E402
from ssd_lib.receptive_fields import receptive_fields  # noqa: E402
from ssd_lib.small_ssd import build_small_ssd  # noqa: E402
from ssd_lib.explorers.model import ModelExplorer  # noqa: E402
from ssd_lib.anchors import layer_anchors  # noqa: E402
from ssd_lib.boxes import centroids_to_corners  # noqa: E402
from ssd_lib.config import SSDConfig  # noqa: E402

_RATIOS = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)
#: A fixed small layout (independent of the SSD_SMALL_SHAPES preset, which training may tune).
CONFIG = SSDConfig(image_height=192, image_width=192, n_classes=4, feature_map_sizes=(24, 12, 6, 3, 1),
                   aspect_ratios=(_RATIOS,) * 5, scales=(0.05, 0.14, 0.3, 0.5, 0.7, 0.9))  # fmt: skip


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_small_ssd(CONFIG)


@pytest.fixture(scope="module")
def photo():
    # A non-square photo with structure: a bright square on a gradient.
    image = np.zeros((150, 240, 3), np.uint8)
    image[..., 0] = np.linspace(0, 255, 240)[None, :]
    image[40:90, 100:170] = 255
    return image


@pytest.fixture
def explorer(model, photo):
    return ModelExplorer(model, CONFIG, photo)


def _check_drawn(explorer, model):
    layer, row, col = explorer.layer.value, explorer.row.value, explorer.col.value
    rows, cols = CONFIG.feature_map_sizes[layer]
    assert 0 <= row < rows and 0 <= col < cols
    assert (explorer.row.max, explorer.col.max) == (rows - 1, cols - 1)
    name = source_layer_names(model)[layer]
    field = receptive_fields(model, [name])[name]
    assert explorer.layer_name == name and explorer.field == field
    np.testing.assert_allclose(explorer.field_corners, field.corners(row, col))
    np.testing.assert_allclose(explorer.field_box.collection.get_paths()[0].vertices[0], field.corners(row, col)[:2])
    expected_anchors = centroids_to_corners(layer_anchors(CONFIG, layer)[row, col]) * 192
    np.testing.assert_allclose(explorer.cell_anchors, expected_anchors)
    assert len(explorer.anchor_boxes.collection.get_paths()) == CONFIG.boxes_per_cell(layer)
    shown = np.asarray(explorer.feature_map.image.get_array())
    np.testing.assert_array_equal(shown, explorer.feature_norms[layer])
    assert shown.shape == (rows, cols)
    cell_corner = explorer.feature_map.cell.collection.get_paths()[0].vertices[0]
    np.testing.assert_allclose(cell_corner, [col / cols, row / rows])
    assert f"cell ({row}, {col})" in explorer.photo_ax.get_title()
    assert f"({rows}×{cols})" in explorer.map_ax.get_title()


def test_initial_state_and_feature_norms(explorer, model, photo):
    assert explorer.photo.shape == (192, 192, 3)
    assert (explorer.layer.value, explorer.row.value, explorer.col.value) == (0, 12, 12)
    names = source_layer_names(model)
    maps = feature_maps(model, explorer.photo[None].astype("float32"), names)
    for norms, values in zip(explorer.feature_norms, maps):
        np.testing.assert_allclose(norms, np.linalg.norm(values[0], axis=-1), rtol=1e-6)
    _check_drawn(explorer, model)
    assert explorer.image.value[:2] == b"\xff\xd8"  # a JPEG was rendered


def test_every_control_moves_and_redraws(explorer, model):
    rendered = explorer.image.value
    explorer.row.value = 3
    _check_drawn(explorer, model)
    assert explorer.image.value != rendered
    rendered = explorer.image.value
    explorer.col.value = 20
    _check_drawn(explorer, model)
    assert explorer.image.value != rendered
    for layer in range(1, CONFIG.n_layers):
        explorer.layer.value = layer
        _check_drawn(explorer, model)
    explorer.layer.value = 0
    _check_drawn(explorer, model)


def test_layer_change_keeps_the_relative_cell_position(explorer):
    explorer.row.value, explorer.col.value = 23, 0  # bottom-left cell of the 24x24 map
    explorer.layer.value = 1  # 12x12
    assert (explorer.row.value, explorer.col.value) == (11, 0)
    explorer.layer.value = 4  # 1x1
    assert (explorer.row.value, explorer.col.value) == (0, 0)
    assert (explorer.row.max, explorer.col.max) == (0, 0)
    explorer.layer.value = 2  # 6x6: the centre of the 1x1 map maps to the middle
    assert (explorer.row.value, explorer.col.value) == (3, 3)


def test_receptive_field_is_centred_on_the_anchors(explorer):
    # The small model's 2x2 stride-2 stages keep each field centred on its cell's anchors.
    for layer in range(CONFIG.n_layers):
        explorer.layer.value = layer
        field_center = (explorer.field_corners[:2] + explorer.field_corners[2:]) / 2
        anchor_centers = (explorer.cell_anchors[:, :2] + explorer.cell_anchors[:, 2:]) / 2
        np.testing.assert_allclose(anchor_centers, np.broadcast_to(field_center, anchor_centers.shape))


def test_displayed_explorer_carries_a_static_picture(explorer):
    assert_static_picture(explorer)
