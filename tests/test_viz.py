"""ssd_lib.viz: the course's colours (one meaning each) and box labels a reader can read."""

from itertools import combinations

import matplotlib.colors
import numpy as np
import pytest

from ssd_lib import viz
from ssd_lib.viz import palette

SSD_RATIOS = (1 / 3, 1 / 2, 1.0, 2.0, 3.0)


def every_meaning() -> dict:
    """Name -> RGB of every colour the palette gives a meaning to."""
    colours = {
        "ground truth": palette.GT_COLOR,
        **{f"{state} anchor": colour for state, colour in palette.MATCH_COLORS.items()},
        "hard negative": palette.HARD_NEGATIVE_COLOR,
        "error": palette.ERROR_COLOR,
        "highlight": palette.HIGHLIGHT_COLOR,
        **{f"r = {viz.ratio_label(r)}": palette.aspect_ratio_color(r) for r in SSD_RATIOS},
        **{f"class {i}": palette.class_color(i) for i in range(1, len(palette.CLASS_COLORS) + 1)},
    }
    return {name: np.asarray(matplotlib.colors.to_rgb(colour)) for name, colour in colours.items()}


def test_no_two_meanings_share_a_colour():
    colours = every_meaning()
    for (name_a, a), (name_b, b) in combinations(colours.items(), 2):
        assert np.linalg.norm(a - b) > 0.15, f"{name_a} and {name_b} look alike: {a} vs {b}"


def test_evaluation_outcomes_reuse_the_matching_meanings():
    outcomes = palette.OUTCOME_COLORS
    assert outcomes["true positive"] == palette.MATCH_COLORS["positive"]  # matched to a ground-truth box
    assert outcomes["ignored"] == palette.MATCH_COLORS["neutral"]  # neither counted nor punished
    assert outcomes["false positive"] == palette.ERROR_COLOR


def test_aspect_ratio_colours_run_from_tall_to_wide():
    stops = palette.aspect_ratio_color(np.array(SSD_RATIOS))
    assert stops.shape == (5, 4)
    np.testing.assert_allclose(palette.aspect_ratio_color(0.1), stops[0])  # beyond 1/3: the end colour
    np.testing.assert_allclose(palette.aspect_ratio_color(10.0), stops[-1])
    np.testing.assert_allclose(stops[2], matplotlib.colors.to_rgba("#2450d8"), atol=0.01)  # square: blue


def test_class_colours_repeat_and_background_is_grey():
    ids = np.array([0, 1, 2, 1 + len(palette.CLASS_COLORS)])
    colours = palette.class_color(ids)
    assert colours.shape == (4, 4)
    np.testing.assert_allclose(colours[0], matplotlib.colors.to_rgba(palette.MATCH_COLORS["background"]))
    np.testing.assert_allclose(colours[3], colours[1])
    assert not np.allclose(colours[1], colours[2])


def label_extents(figure, artist):
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    return [text.get_window_extent(renderer) for text in artist.labels if text.get_visible()]


def test_box_labels_stay_inside_the_axes_and_never_overlap():
    figure, ax = viz.new_figure(figsize=(3.0, 3.0))
    viz.show_image(ax, np.zeros((100, 100, 3), np.uint8))
    boxes = [[0, 0, 50, 50], [2, 0, 60, 40], [70, 30, 100, 90], [3, 1, 40, 30]]  # three at the top edge
    labels = ["first", "second", "a long label on the right", "fourth"]
    extents = label_extents(figure, viz.draw_boxes(ax, boxes, labels=labels))
    assert len(extents) == 4
    frame = ax.bbox
    for extent in extents:
        assert frame.x0 - 1 <= extent.x0 and extent.x1 <= frame.x1 + 1 and extent.y1 <= frame.y1 + 1
    for a, b in combinations(extents, 2):
        assert not a.overlaps(b)


def test_box_label_sits_above_its_box_where_there_is_room():
    figure, ax = viz.new_figure(figsize=(3.0, 3.0))
    viz.show_image(ax, np.zeros((100, 100, 3), np.uint8))
    (extent,) = label_extents(figure, viz.draw_boxes(ax, [[20, 50, 80, 90]], labels=["cup"]))
    box_left, box_top = ax.transData.transform((20, 50))
    assert extent.x0 == pytest.approx(box_left, abs=1) and extent.y0 == pytest.approx(box_top, abs=1)


def test_box_labels_follow_set_boxes():
    figure, ax = viz.new_figure(figsize=(3.0, 3.0))
    viz.show_image(ax, np.zeros((100, 100, 3), np.uint8))
    artist = viz.BoxArtist(ax, max_labels=2).set_boxes([[10, 10, 20, 20], [30, 30, 60, 60]], labels=["a", "b"])
    assert [text.get_text() for text in artist.labels if text.get_visible()] == ["a", "b"]
    artist.set_boxes([[10, 10, 20, 20]], labels=["only"])
    assert [text.get_text() for text in artist.labels if text.get_visible()] == ["only"]
    assert len(label_extents(figure, artist)) == 1


def test_fade_blends_the_photo_towards_white():
    _, ax = viz.new_figure()
    photo = np.zeros((4, 6, 3), np.uint8)
    faded = viz.show_image(ax, photo, fade=0.45).get_array()
    assert faded.dtype == np.uint8 and faded.shape == (4, 6, 3)
    np.testing.assert_array_equal(faded, int(255 * 0.45))
    with pytest.raises(ValueError, match="fade must be in"):
        viz.show_image(ax, photo, fade=1.0)


def test_encode_canvas_formats():
    from io import BytesIO

    from PIL import Image

    figure, ax = viz.new_figure(figsize=(2.0, 1.5))
    viz.show_image(ax, np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8))
    viz.figure_to_png(figure)
    full = Image.open(BytesIO(viz.encode_canvas(figure)))
    small = Image.open(BytesIO(viz.encode_canvas(figure, compress_level=9, palette_colors=64)))
    assert full.mode == "RGB" and small.mode == "P" and full.size == small.size == (160, 120)
    assert len(small.getcolors()) <= 64
    assert viz.encode_canvas(figure, "jpeg")[:2] == b"\xff\xd8"
    with pytest.raises(ValueError, match="image_format"):
        viz.encode_canvas(figure, "gif")
