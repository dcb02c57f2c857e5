"""Tests of the training-curves explorer (notebook 08) and its drawing helpers in viz."""

import csv
import math

import numpy as np
import pytest
from explorer_checks import assert_static_picture

from ssd_lib import viz
from ssd_lib.explorers.training import TrainingCurvesExplorer


def make_log(n_epochs=12, map_every=3):
    return [
        {"epoch": epoch, "loss": 10.0 / epoch + (0.5 if epoch % 2 else 0.0), "val_loss": 12.0 / epoch,
         "val_mAP": 1.0 - 1.0 / epoch if epoch % map_every == 0 else math.nan,
         "learning_rate": 1e-3 if epoch <= 8 else 1e-4, "seconds": 1.0}
        for epoch in range(1, n_epochs + 1)
    ]  # fmt: skip


def write_log(path, rows):
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({key: ("" if isinstance(value, float) and math.isnan(value) else value)
                             for key, value in row.items()})  # fmt: skip


def test_smooth_curve_golden_values_and_nan_gaps():
    np.testing.assert_allclose(viz.smooth_curve([1.0, 2.0, 3.0], 0.0), [1.0, 2.0, 3.0])
    # smoothing 0.5: m1 = 1; m2 = (0.25 + 1) / 0.75 = 5/3 (bias-corrected average of 1 and 2)
    np.testing.assert_allclose(viz.smooth_curve([1.0, 2.0], 0.5), [1.0, 5.0 / 3.0])
    smoothed = viz.smooth_curve([4.0, math.nan, 4.0], 0.9)
    assert math.isnan(smoothed[1]) and smoothed[0] == pytest.approx(4.0) and smoothed[2] == pytest.approx(4.0)
    with pytest.raises(ValueError, match="smoothing must be in"):
        viz.smooth_curve([1.0], 1.0)


def test_explorer_draws_the_log_and_every_control_changes_the_figure(tmp_path):
    rows = make_log()
    write_log(tmp_path / "log.csv", rows)
    explorer = TrainingCurvesExplorer(tmp_path / "log.csv", title="test run")
    artist = explorer.artist
    assert explorer.epochs.value == (1, 12) and explorer.epochs.max == 12
    np.testing.assert_allclose(artist.train_raw.get_xdata(), np.arange(1, 13))
    np.testing.assert_allclose(artist.train_line.get_ydata(), [row["loss"] for row in rows])  # no smoothing
    np.testing.assert_allclose(artist.map_line.get_xdata(), [3, 6, 9, 12])  # only evaluated epochs
    np.testing.assert_allclose(artist.rate_line.get_ydata(), [1.0] * 8 + [0.1] * 4)  # rate / its maximum
    assert artist.metric_ax.get_title() == "validation mAP · 4 evaluations · best 0.917"
    assert artist.loss_ax.get_title().startswith("loss · 12 epochs · last ")

    first_image = explorer.image.value
    explorer.smoothing.value = 0.6
    expected = viz.smooth_curve([row["loss"] for row in rows], 0.6)
    np.testing.assert_allclose(artist.train_line.get_ydata(), expected)
    np.testing.assert_allclose(artist.train_raw.get_ydata(), [row["loss"] for row in rows])  # raw kept
    assert explorer.image.value != first_image

    explorer.epochs.value = (4, 9)
    np.testing.assert_allclose(artist.train_raw.get_xdata(), np.arange(4, 10))
    np.testing.assert_allclose(artist.map_line.get_xdata(), [6, 9])
    assert artist.loss_ax.get_xlim() == pytest.approx((3.5, 9.5))
    assert artist.loss_ax.get_title().startswith("loss · 6 epochs")

    explorer.log_scale.value = True
    assert artist.loss_ax.get_yscale() == "log"
    explorer.log_scale.value = False
    assert artist.loss_ax.get_yscale() == "linear"


def test_refresh_reads_new_epochs_like_a_live_plot(tmp_path):
    path = tmp_path / "log.csv"
    rows = make_log(12)
    write_log(path, rows[:3])
    explorer = TrainingCurvesExplorer(path)
    assert explorer.epochs.value == (1, 3)
    write_log(path, rows[:7])
    explorer.refresh()
    assert explorer.epochs.max == 7 and explorer.epochs.value == (1, 7)  # the range followed the new end
    np.testing.assert_allclose(explorer.artist.train_raw.get_xdata(), np.arange(1, 8))
    explorer.epochs.value = (2, 5)
    write_log(path, rows)
    explorer.refresh()
    assert explorer.epochs.max == 12 and explorer.epochs.value == (2, 5)  # a chosen range stays


def test_explorer_accepts_rows_and_an_empty_log(tmp_path):
    explorer = TrainingCurvesExplorer(make_log(4))
    assert len(explorer.artist.train_raw.get_xdata()) == 4
    empty = TrainingCurvesExplorer(tmp_path / "missing.csv", live=True)  # a run that has not logged yet
    assert len(empty.artist.train_raw.get_xdata()) == 0
    assert empty.artist.metric_ax.get_title() == "validation mAP · 0 evaluations"
    # its picture says so, with no empty legend box and no loss scale made up from nothing
    assert empty.artist.loss_ax.get_title() == "loss · no epoch logged yet"
    assert empty.artist.loss_ax.get_legend() is None
    assert empty.artist.loss_ax.get_xlim() == (0.5, 1.5)
    assert not empty.artist.loss_ax.yaxis.get_tick_params()["labelleft"]
    assert_static_picture(empty)
    write_log(tmp_path / "missing.csv", make_log(3))  # the first epochs arrive: scale and legend come back
    empty.refresh()
    loss_ax = empty.artist.loss_ax
    assert loss_ax.get_legend() is not None
    assert loss_ax.yaxis.get_tick_params()["labelleft"]
    assert loss_ax.get_title().startswith("loss · 3 epochs")
    # the loss axis follows the losses (3.83 .. 12), not the 0 .. 1 of the empty plot
    low, high = loss_ax.get_ylim()
    assert 3 < low < 10.0 / 3 + 0.5 and 12 <= high < 13
    # and the layout made room for the tick labels that the empty plot did not have
    renderer = empty.figure.canvas.get_renderer()
    labels = [label for label in loss_ax.get_yticklabels() if label.get_text() and label.get_visible()]
    assert labels and min(label.get_window_extent(renderer).x0 for label in labels) >= 0
    assert loss_ax.yaxis.label.get_window_extent(renderer).x0 >= 0


def test_a_missing_log_of_a_finished_run_is_an_error_not_an_empty_plot(tmp_path):
    # notebook 08 once showed the shipped model's curves as an empty plot after the log moved
    with pytest.raises(FileNotFoundError, match=f"no training log {tmp_path / 'moved.csv'}.*live=True"):
        TrainingCurvesExplorer(tmp_path / "moved.csv")
    with pytest.raises(ValueError, match="live=True needs a log file to watch"):
        TrainingCurvesExplorer(make_log(2), live=True)


def test_displayed_explorer_carries_a_static_picture():
    assert_static_picture(TrainingCurvesExplorer(make_log()))
