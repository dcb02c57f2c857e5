"""The anchor explorers of notebooks 01-02 (ssd_lib.explorers), driven headless: every control is
moved and what was drawn (artist data, titles, state) is checked against the library."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from explorer_checks import assert_static_picture

from ssd_lib import viz
from ssd_lib.anchors import (
    best_anchor_iou,
    cell_box_shapes,
    cell_centers,
    generate_anchors,
    layer_anchors,
    records_to_normalized_corners,
)
from ssd_lib.boxes import centroids_to_corners
from ssd_lib.config import SSD300_COCO, SSD300_VOC, SSD512_VOC, scale_schedule
from ssd_lib.datasets import parse_voc
from ssd_lib.explorers.anchor_grids import AnchorGridExplorer
from ssd_lib.explorers.anchor_scales import AnchorScaleExplorer

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def sample_records():
    return parse_voc(SAMPLES, image_set="samples", classes=None)


@pytest.fixture(scope="module")
def gt_corners(sample_records):
    return records_to_normalized_corners(sample_records)


def reset(explorer, defaults):
    """Put every control back to its starting value (cheaper than building a new explorer)."""
    for control, value in defaults.items():
        control.value = value
    return explorer


@pytest.fixture(scope="module")
def shared_scale_explorer(gt_corners):
    explorer = AnchorScaleExplorer(gt_corners)
    return explorer, {control: control.value for control in explorer.controls}


@pytest.fixture(scope="module")
def shared_grid_explorer():
    # A small synthetic photo keeps the test fast; the explorer only needs its size.
    explorer = AnchorGridExplorer(np.full((120, 150, 3), 90, dtype=np.uint8))
    return explorer, {control: control.value for control in explorer.controls}


@pytest.fixture()
def scale_explorer(shared_scale_explorer):
    return reset(*shared_scale_explorer)


@pytest.fixture()
def grid_explorer(shared_grid_explorer):
    return reset(*shared_grid_explorer)


def polygon_corners(collection):
    """(n, 4) corners of the rectangles of a PolyCollection."""
    return np.array([[*path.vertices[:4].min(axis=0), *path.vertices[:4].max(axis=0)]
                     for path in collection.get_paths()]).reshape(-1, 4)  # fmt: skip


def panel_sizes(panel):
    """(n, 2) normalized (w, h) of the boxes drawn in a cell-shapes panel."""
    corners = polygon_corners(panel.boxes.collection)
    return corners[:, 2:] - corners[:, :2]


# ------------------------------------------------------------------------ AnchorScaleExplorer
def check_scale_drawing(explorer, config, gt_corners):
    """Everything drawn by the scale explorer agrees with ``config``."""
    assert explorer.error is None and not explorer.message.get_visible()
    assert explorer.config.scales == pytest.approx(config.scales)
    for layer, panel in enumerate(explorer.shape_panels):
        sizes, _, _ = cell_box_shapes(config, layer)
        np.testing.assert_allclose(panel_sizes(panel), sizes, atol=1e-9)
        assert panel.caption.get_text() == f"s = {config.scales[layer]:.2f} · {config.boxes_per_cell(layer)} boxes"
    expected_iou = best_anchor_iou(gt_corners, generate_anchors(config))
    np.testing.assert_allclose(explorer.best_iou, expected_iou)
    offsets = explorer.coverage.points.get_offsets()
    np.testing.assert_allclose(offsets[:, 1], expected_iou)
    widths, heights = (gt_corners[:, 2:] - gt_corners[:, :2]).T
    np.testing.assert_allclose(offsets[:, 0], np.sqrt(widths * heights))
    covered = int((expected_iou >= 0.5).sum())
    assert explorer.covered_share == pytest.approx(covered / len(gt_corners))
    assert f"{covered} of {len(gt_corners)} boxes" in explorer.coverage.ax.get_title()
    lines = [segment[0, 0] for segment in explorer.coverage.scale_lines.get_segments()]
    np.testing.assert_allclose(lines, config.scales[:-1])
    assert explorer.coverage.ax.get_title().startswith(f"{config.n_anchors} anchors · ")


def test_scale_explorer_starts_at_the_ssd300_preset(scale_explorer, gt_corners):
    assert scale_explorer.min_scale.value == pytest.approx(0.2)
    assert scale_explorer.max_scale.value == pytest.approx(0.88)
    assert scale_explorer.config.n_anchors == 8732
    check_scale_drawing(scale_explorer, SSD300_VOC, gt_corners)
    assert bytes(scale_explorer.image.value).startswith(b"\x89PNG")


def test_scale_sliders_follow_the_schedule(scale_explorer, gt_corners):
    before = bytes(scale_explorer.image.value)
    scale_explorer.min_scale.value = 0.3
    expected = dataclasses.replace(SSD300_VOC, scales=(0.1,) + scale_schedule(0.3, 0.88, 5))
    check_scale_drawing(scale_explorer, expected, gt_corners)
    assert bytes(scale_explorer.image.value) != before
    scale_explorer.max_scale.value = 1.0
    expected = dataclasses.replace(SSD300_VOC, scales=(0.1,) + scale_schedule(0.3, 1.0, 5))
    check_scale_drawing(scale_explorer, expected, gt_corners)
    scale_explorer.first_layer_fixed.value = False  # the formula over all six layers
    expected = dataclasses.replace(SSD300_VOC, scales=scale_schedule(0.3, 1.0, 6))
    check_scale_drawing(scale_explorer, expected, gt_corners)
    assert scale_explorer.shape_panels[0].caption.get_text().startswith("s = 0.30")


@pytest.mark.parametrize("name, ratios", [("1", (1.0,)), ("1, 2, 1/2", (1.0, 2.0, 0.5)),
                                          ("1, 2, 1/2, 3, 1/3", (1.0, 2.0, 0.5, 3.0, 1 / 3))])  # fmt: skip
def test_aspect_ratio_sets_and_the_extra_box(scale_explorer, gt_corners, name, ratios):
    scale_explorer.aspect_ratio_set.value = name
    expected = dataclasses.replace(SSD300_VOC, aspect_ratios=(ratios,) * 6)
    check_scale_drawing(scale_explorer, expected, gt_corners)
    assert all(len(panel_sizes(panel)) == len(ratios) + 1 for panel in scale_explorer.shape_panels)
    scale_explorer.two_boxes_for_ar1.value = False
    expected = dataclasses.replace(expected, two_boxes_for_ar1=False)
    check_scale_drawing(scale_explorer, expected, gt_corners)
    assert all(len(panel_sizes(panel)) == len(ratios) for panel in scale_explorer.shape_panels)
    scale_explorer.aspect_ratio_set.value = "as preset"
    check_scale_drawing(scale_explorer, dataclasses.replace(SSD300_VOC, two_boxes_for_ar1=False), gt_corners)
    assert scale_explorer.coverage.ax.get_title().startswith("6792 anchors")  # one box per cell fewer


def test_fewer_aspect_ratios_cover_fewer_boxes(scale_explorer):
    full = scale_explorer.covered_share
    scale_explorer.aspect_ratio_set.value = "1"
    assert scale_explorer.covered_share < full


@pytest.mark.parametrize("moves, expected_text", [
    ({"max_scale": 0.3, "min_scale": 0.4}, "s_max = 0.30 must be greater than s_min = 0.40"),
    ({"min_scale": 0.05}, "first-layer scale 0.10"),
])  # fmt: skip
def test_invalid_combinations_show_a_message_then_recover(scale_explorer, gt_corners, moves, expected_text):
    for control, value in moves.items():
        getattr(scale_explorer, control).value = value
    assert scale_explorer.config is None
    assert expected_text in scale_explorer.error
    assert scale_explorer.message.get_visible()
    assert expected_text in scale_explorer.message.get_text()
    assert scale_explorer.coverage.ax.get_title() == "invalid configuration"
    assert all(len(panel_sizes(panel)) == 0 for panel in scale_explorer.shape_panels)
    assert len(scale_explorer.coverage.points.get_offsets()) == 0
    scale_explorer.min_scale.value = 0.2
    scale_explorer.max_scale.value = 0.88
    check_scale_drawing(scale_explorer, SSD300_VOC, gt_corners)


def test_scale_explorer_without_boxes_still_draws_the_shapes():
    explorer = AnchorScaleExplorer(np.zeros((0, 4)))
    assert explorer.best_iou.shape == (0,) and explorer.covered_share == 0.0
    assert "0 of 0 boxes" in explorer.coverage.ax.get_title()
    assert [len(panel_sizes(panel)) for panel in explorer.shape_panels] == [4, 6, 6, 6, 4, 4]


def test_scale_explorer_on_another_preset_reproduces_it(gt_corners):
    explorer = AnchorScaleExplorer(gt_corners, base_config=SSD300_COCO)
    check_scale_drawing(explorer, SSD300_COCO, gt_corners)
    assert explorer.first_layer_fixed.description.endswith("0.07")


# ------------------------------------------------------------------------- AnchorGridExplorer
def check_grid_drawing(explorer, config, layer, row, col, kinds=None, clip=False):
    """The grid explorer shows cell (row, col) of ``layer`` of ``config``."""
    height, width = explorer.photo.shape[:2]
    assert explorer.config is config
    assert (explorer.layer.value, explorer.row.value, explorer.col.value) == (layer, row, col)
    rows, cols = config.feature_map_sizes[layer]
    assert (explorer.row.max, explorer.col.max, explorer.layer.max) == (rows - 1, cols - 1, config.n_layers - 1)
    anchors = layer_anchors(config, layer)[row, col]  # (n_boxes, 4)
    all_kinds = explorer.cell_kinds if kinds is None else kinds
    if kinds is not None:
        assert explorer.cell_kinds == kinds
    corners = centroids_to_corners(anchors)
    keep = [k for k in range(len(anchors))]
    if kinds is not None:
        keep = [k for k, label in enumerate(viz.cell_box_labels(config, layer)) if label in kinds]
    corners = corners[keep]
    if clip:
        corners = np.clip(corners, 0, 1)
    size = np.array([width, height] * 2)
    np.testing.assert_allclose(polygon_corners(explorer.anchor_boxes.collection), corners * size, atol=1e-9)
    np.testing.assert_allclose(centroids_to_corners(explorer.cell_anchors), corners, atol=1e-12)
    shown_labels = [label.get_text() for label in explorer.anchor_boxes.labels if label.get_visible()]
    assert shown_labels == list(all_kinds)
    centers = explorer.centers.points.get_offsets()
    assert len(centers) == rows * cols
    np.testing.assert_allclose(centers, cell_centers(config, layer).reshape(-1, 2) * [width, height])
    step_y, step_x = config.steps[layer]
    cell = polygon_corners(explorer.cell_box.collection)[0]
    assert cell[2] - cell[0] == pytest.approx(step_x / config.image_width * width)
    assert cell[3] - cell[1] == pytest.approx(step_y / config.image_height * height)
    title = explorer.ax.get_title()
    assert f"layer {layer}: {rows}×{cols} map" in title and f"cell (row {row}, col {col})" in title


def test_grid_explorer_starts_at_the_centre_cell_of_layer_0(grid_explorer):
    check_grid_drawing(grid_explorer, SSD300_VOC, 0, 19, 19, kinds=["1", "1'", "2", "1/2"])
    assert "4 of 4 boxes" in grid_explorer.ax.get_title()
    assert grid_explorer.kind_toggles["3"].disabled and grid_explorer.kind_toggles["1/3"].disabled


def test_row_and_column_move_the_cell(grid_explorer):
    before = bytes(grid_explorer.image.value)
    grid_explorer.row.value = 3
    check_grid_drawing(grid_explorer, SSD300_VOC, 0, 3, 19)
    grid_explorer.col.value = 37
    check_grid_drawing(grid_explorer, SSD300_VOC, 0, 3, 37)
    assert bytes(grid_explorer.image.value) != before


def test_layer_change_keeps_the_relative_position_and_fits_the_sliders(grid_explorer):
    grid_explorer.row.value, grid_explorer.col.value = 0, 37  # top right
    grid_explorer.layer.value = 1  # 19x19, five aspect ratios
    check_grid_drawing(grid_explorer, SSD300_VOC, 1, 0, 18, kinds=["1", "1'", "2", "1/2", "3", "1/3"])
    assert not grid_explorer.kind_toggles["3"].disabled
    grid_explorer.layer.value = 5  # 1x1
    check_grid_drawing(grid_explorer, SSD300_VOC, 5, 0, 0)
    grid_explorer.layer.value = 2
    check_grid_drawing(grid_explorer, SSD300_VOC, 2, 0, 0)


def test_aspect_ratio_toggles_hide_boxes(grid_explorer):
    grid_explorer.layer.value = 1
    grid_explorer.kind_toggles["2"].value = False
    check_grid_drawing(grid_explorer, SSD300_VOC, 1, 9, 9, kinds=["1", "1'", "1/2", "3", "1/3"])
    grid_explorer.kind_toggles["1'"].value = False
    grid_explorer.kind_toggles["1/3"].value = False
    check_grid_drawing(grid_explorer, SSD300_VOC, 1, 9, 9, kinds=["1", "1/2", "3"])
    assert "3 of 6 boxes" in grid_explorer.ax.get_title()
    for toggle in grid_explorer.kind_toggles.values():
        toggle.value = False
    check_grid_drawing(grid_explorer, SSD300_VOC, 1, 9, 9, kinds=[])
    grid_explorer.kind_toggles["1"].value = True
    check_grid_drawing(grid_explorer, SSD300_VOC, 1, 9, 9, kinds=["1"])


def test_clip_keeps_the_boxes_of_a_corner_cell_inside_the_image(grid_explorer):
    grid_explorer.layer.value = 3
    grid_explorer.row.value, grid_explorer.col.value = 0, 0
    unclipped = centroids_to_corners(grid_explorer.cell_anchors)
    assert unclipped.min() < 0  # the big boxes of a corner cell stick out
    grid_explorer.clip.value = True
    check_grid_drawing(grid_explorer, SSD300_VOC, 3, 0, 0, clip=True)
    clipped = centroids_to_corners(grid_explorer.cell_anchors)
    assert clipped.min() >= 0 and clipped.max() <= 1
    assert "clipped" in grid_explorer.ax.get_title()


def test_preset_choice_switches_config_and_grid(grid_explorer):
    grid_explorer.layer.value = 4
    grid_explorer.preset.value = "SSD512 VOC"  # layer 4 is 4x4 in SSD512, 3x3 in SSD300
    check_grid_drawing(grid_explorer, SSD512_VOC, 4, 2, 2)
    grid_explorer.layer.value = 6
    check_grid_drawing(grid_explorer, SSD512_VOC, 6, 0, 0)
    grid_explorer.preset.value = "SSD300 COCO"  # only six layers: the layer slider shrinks
    check_grid_drawing(grid_explorer, SSD300_COCO, 5, 0, 0)
    grid_explorer.layer.value = 0
    check_grid_drawing(grid_explorer, SSD300_COCO, 0, 0, 0)
    widths = centroids_to_corners(grid_explorer.cell_anchors)
    assert widths[0, 2] - widths[0, 0] == pytest.approx(0.07)  # COCO's conv4_3 scale


# ------------------------------------------------------------- drawing helpers behind them
def decode(image_bytes):
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(bytes(image_bytes))).convert("RGB")).astype(int)


def test_blit_render_shows_the_same_figure_as_a_full_render(scale_explorer):
    scale_explorer.min_scale.value = 0.25
    scale_explorer.aspect_ratio_set.value = "1, 2, 1/2"
    blitted = decode(scale_explorer.image.value)
    for artist in scale_explorer._renderer.animated_artists:
        artist.set_animated(False)
    try:
        full = decode(viz.figure_to_png(scale_explorer.figure))
    finally:
        for artist in scale_explorer._renderer.animated_artists:
            artist.set_animated(True)
    assert blitted.shape == full.shape
    assert np.abs(blitted - full).mean() < 0.5  # identical but for antialiasing where artists overlap


def test_ratio_and_box_labels():
    assert [viz.ratio_label(r) for r in (1, 2, 0.5, 3, 1 / 3, 1.5)] == ["1", "2", "1/2", "3", "1/3", "1.5"]
    assert viz.cell_box_labels(SSD300_VOC, 0) == ["1", viz.EXTRA_BOX_LABEL, "2", "1/2"]
    no_extra = dataclasses.replace(SSD300_VOC, two_boxes_for_ar1=False)
    assert viz.cell_box_labels(no_extra, 1) == ["1", "2", "1/2", "3", "1/3"]


def test_coverage_artist_colours_and_title():
    import matplotlib.colors

    _, ax = viz.new_figure()
    coverage = viz.CoverageArtist(ax, threshold=0.5)
    gt = np.array([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.1, 0.4]])
    share = coverage.set_coverage(gt, [0.5, 0.49], scales=(0.1, 0.3), title_prefix="test · ")
    assert share == 0.5
    assert ax.get_title() == "test · best IoU ≥ 0.5: 1 of 2 boxes (50%)"
    np.testing.assert_allclose(coverage.points.get_offsets(), [[0.5, 0.5], [0.2, 0.49]])
    colors = coverage.points.get_facecolors()
    assert np.allclose(colors[0], matplotlib.colors.to_rgba(viz.CoverageArtist.COVERED_COLOR))
    assert np.allclose(colors[1], matplotlib.colors.to_rgba(viz.CoverageArtist.MISSED_COLOR))
    assert [segment[0, 0] for segment in coverage.scale_lines.get_segments()] == [0.1, 0.3]
    assert coverage.set_coverage(np.zeros((0, 4)), np.zeros(0)) == 0.0


def test_blit_renderer_rejects_unknown_formats():
    figure, _ = viz.new_figure()
    with pytest.raises(ValueError, match="image_format"):
        viz.BlitRenderer(figure, [], image_format="gif")


def test_displayed_explorers_carry_a_static_picture(scale_explorer, grid_explorer):
    first = assert_static_picture(scale_explorer)
    assert_static_picture(grid_explorer)
    scale_explorer.aspect_ratio_set.value = "1"
    moved = assert_static_picture(scale_explorer)  # the picture shows the state when displayed
    assert np.abs(moved.astype(int) - first.astype(int)).mean() > 0.1


def test_the_static_picture_can_be_excluded(scale_explorer):
    bundle = scale_explorer._repr_mimebundle_(exclude=["image/png"])
    assert "image/png" not in bundle and "application/vnd.jupyter.widget-view+json" in bundle


def random_boxes(count, seed=0):
    """``(count, 4)`` valid normalized corners."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 0.7, size=(count, 2))
    return np.concatenate([xy, xy + rng.uniform(0.02, 0.3, size=(count, 2))], axis=1)


def test_scale_explorer_offers_a_choice_of_box_sets(gt_corners):
    many = random_boxes(1200)
    explorer = AnchorScaleExplorer({"samples": gt_corners, "many": many}, max_boxes=300)
    sampled = "many: a random 300 of 1200"
    assert explorer.box_set in explorer.controls and list(explorer.box_set.options) == ["samples", sampled]
    anchors = generate_anchors(SSD300_VOC)
    np.testing.assert_allclose(explorer.best_iou, best_anchor_iou(gt_corners, anchors))
    assert explorer.coverage.ax.get_title().startswith("samples · 8732 anchors · ")
    explorer.box_set.value = sampled
    assert explorer.gt_corners.shape == (300, 4)
    assert all((many == row).all(axis=1).any() for row in explorer.gt_corners)  # a subset of the set
    np.testing.assert_allclose(explorer.best_iou, best_anchor_iou(explorer.gt_corners, anchors))
    assert explorer.coverage.ax.get_title().startswith(f"{sampled} · 8732 anchors · best IoU ≥ 0.5: ")
    assert len(explorer.coverage.points.get_offsets()) == 300
    again = AnchorScaleExplorer({"many": many}, max_boxes=300)  # the sample is fixed
    np.testing.assert_array_equal(again.gt_corners, explorer.gt_corners)


def test_one_box_set_needs_no_menu(scale_explorer):
    assert scale_explorer.box_set not in scale_explorer.controls
    assert scale_explorer.coverage.ax.get_title().startswith("8732 anchors · ")


@pytest.mark.parametrize("boxes, max_boxes, message", [
    ({}, 500, "empty dict"),
    ({"good": random_boxes(3), "bad": np.zeros((3, 3))}, 500, r"boxes\['bad'\]: expected shape"),
    (random_boxes(3), 0, "max_boxes must be at least 1"),
])  # fmt: skip
def test_scale_explorer_rejects_bad_box_sets(boxes, max_boxes, message):
    with pytest.raises(ValueError, match=message):
        AnchorScaleExplorer(boxes, max_boxes=max_boxes)
