"""viz.show_detections: one image, the detections above a score, and its ground truth;
viz.show_detection_row: a row of photos with their detections."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from matplotlib.figure import Figure  # noqa: E402

from ssd_lib import viz  # noqa: E402

DETECTIONS = np.array([[2, 0.9, 10, 10, 40, 40],
                       [1, 0.5, 50, 50, 90, 70],
                       [1, 0.49, 0, 0, 20, 20]], np.float32)  # fmt: skip


def test_draws_the_detections_at_or_above_the_score_each_labelled_over_the_ground_truth():
    figure, ax = viz.new_figure((4, 4))
    image = np.zeros((100, 120, 3), np.uint8)
    shown = viz.show_detections(ax, image, DETECTIONS, ("cat", "dog"), min_score=0.5,
                                ground_truth=np.array([[12, 8, 41, 42]]))  # fmt: skip
    figure.canvas.draw()
    assert np.array_equal(shown, DETECTIONS[:2])  # 0.49 < 0.5 is left out, 0.5 is kept
    collections = ax.collections
    assert [len(collection.get_paths()) for collection in collections] == [1, 2]  # ground truth, detections
    labels = [text.get_text() for artist in ax.artists for text in getattr(artist, "texts", []) if text.get_visible()]
    assert sorted(labels) == ["cat 0.50", "dog 0.90"]
    assert ax.get_xlim() == (-0.5, 119.5)


def test_no_detections_and_no_ground_truth():
    figure, ax = viz.new_figure((4, 4))
    shown = viz.show_detections(ax, np.zeros((10, 10, 3), np.uint8), np.zeros((0, 6)))
    figure.canvas.draw()
    assert shown.shape == (0, 6)


def test_a_row_draws_one_axes_per_photo_titled_with_the_count_kept_at_the_score():
    figure = Figure(figsize=(9, 3))
    photos = [np.zeros((100, 120, 3), np.uint8), np.zeros((60, 80, 3), np.uint8), np.zeros((50, 50, 3), np.uint8)]
    shown = viz.show_detection_row(figure, photos, [DETECTIONS, DETECTIONS[2:], np.zeros((0, 6))],
                                   ("cat", "dog"), min_score=0.5, title="a detector")  # fmt: skip
    assert len(figure.axes) == 3
    assert [ax.get_title() for ax in figure.axes] == ["2 detections with score ≥ 0.5",
                                                      "0 detections with score ≥ 0.5",
                                                      "0 detections with score ≥ 0.5"]  # fmt: skip
    assert [len(found) for found in shown] == [2, 0, 0]
    assert figure.axes[1].get_xlim() == (-0.5, 79.5)  # each photo on its own axes
    assert figure.get_suptitle() == "a detector"


def test_a_row_with_top_k_keeps_the_best_detections_and_says_so():
    figure = Figure()
    shown = viz.show_detection_row(figure, [np.zeros((100, 120, 3), np.uint8)], [DETECTIONS], min_score=0.3, top_k=1)
    assert np.array_equal(shown[0], DETECTIONS[:1])
    assert figure.axes[0].get_title() == "1 detections with score ≥ 0.3 (at most 1)"
    assert figure.get_suptitle() == ""


@pytest.mark.parametrize("n_detections", [1, 3])
def test_a_row_rejects_a_detection_array_count_unlike_the_photo_count(n_detections):
    photos = [np.zeros((10, 10, 3), np.uint8)] * 2
    with pytest.raises(ValueError, match=f"^show_detection_row: 2 photos but {n_detections} detection arrays"):
        viz.show_detection_row(Figure(), photos, [np.zeros((0, 6))] * n_detections)


def test_a_row_rejects_no_photos():
    with pytest.raises(ValueError, match="^show_detection_row: no photos"):
        viz.show_detection_row(Figure(), [], [])


@pytest.mark.parametrize("top_k", [0, -1])
def test_a_row_rejects_a_top_k_below_one(top_k):
    with pytest.raises(ValueError, match=f"^show_detection_row: top_k must be at least 1, got {top_k}$"):
        viz.show_detection_row(Figure(), [np.zeros((10, 10, 3), np.uint8)], [DETECTIONS], top_k=top_k)
