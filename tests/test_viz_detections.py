"""viz.show_detections: one image, the detections above a score, and its ground truth."""

import matplotlib
import numpy as np

matplotlib.use("Agg")

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
