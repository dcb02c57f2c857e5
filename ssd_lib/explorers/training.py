"""Notebook 08's explorer: loss, validation mAP and learning rate of a training run."""

from __future__ import annotations

from pathlib import Path

import ipywidgets as widgets

from .. import viz
from .base import BlitExplorer


class TrainingCurvesExplorer(BlitExplorer):
    """Loss, validation mAP and learning rate of a training run, read from its ``log.csv``.

    Controls: ``smoothing`` (exponential moving average of the losses, as TensorBoard's
    slider), ``epochs`` (the range shown) and ``log_scale`` (loss axis). :meth:`refresh` re-reads
    the log, so a Keras callback calling it at every epoch end turns it into a live plot.
    Moving ``smoothing`` redraws only the two smoothed lines (blitting); the other controls
    change axes limits and titles and redraw the whole figure.

    Args:
        log: a ``log.csv`` path (:func:`ssd_lib.training.read_log` reads it) or a list of rows.
        title: optional figure title.
        live: ``log`` belongs to a run that may not have written it yet: an empty plot until
            :meth:`refresh` finds epochs. Otherwise a missing file is an error.

    Raises:
        FileNotFoundError: ``log`` does not exist and ``live`` is False (names the file).
        ValueError: ``live`` with a list of rows (nothing to re-read).

    Attributes:
        rows: the log rows shown (dicts, as ``read_log`` returns them).
    """

    def __init__(self, log, title: str | None = None, live: bool = False):
        if live and isinstance(log, (list, tuple)):
            raise ValueError("TrainingCurvesExplorer: live=True needs a log file to watch, not a list of rows")
        if not live and not isinstance(log, (list, tuple)) and not Path(log).is_file():
            raise FileNotFoundError(f"no training log {log}; for a run that has not written it yet, pass live=True")
        self.source = log
        self.rows = self._read()
        last = self._last_epoch()
        self.smoothing = widgets.FloatSlider(value=0.0, min=0.0, max=0.95, step=0.05, description="smoothing",
                                             continuous_update=False)  # fmt: skip
        self.epochs = widgets.IntRangeSlider(value=(1, last), min=1, max=last, description="epochs",
                                             continuous_update=False)  # fmt: skip
        self.log_scale = widgets.Checkbox(value=False, description="log loss axis")
        figure, (loss_ax, metric_ax) = viz.new_figure(figsize=(9.0, 3.4), ncols=2)
        if title:
            figure.suptitle(title, fontsize=11)
        self.artist = viz.TrainingCurvesArtist(loss_ax, metric_ax)
        super().__init__([self.smoothing, self.epochs, self.log_scale], figure)

    def _read(self) -> list:
        if isinstance(self.source, (list, tuple)):
            return list(self.source)
        from ..training.run_folder import read_log  # imports Keras: only when reading a file

        return read_log(self.source)

    def _last_epoch(self) -> int:
        return max([int(row["epoch"]) for row in self.rows] + [1])

    def refresh(self) -> None:
        """Re-read the log (new epochs) and redraw; a range that ended at the last epoch grows.

        The figure is laid out anew (the layout is otherwise frozen after the first render): the
        new losses may need wider tick labels, and the first ones bring a scale an empty plot
        did not show.
        """
        was_at_end = self.epochs.value[1] == self.epochs.max
        self.rows = self._read()
        last = self._last_epoch()
        self.figure.set_layout_engine("constrained")
        with self.hold_trait_notifications():
            self.epochs.max = max(last, self.epochs.min)
            if was_at_end:
                self.epochs.value = (self.epochs.value[0], last)
        self.update()

    def animated_artists(self) -> list:
        return [self.artist.train_line, self.artist.val_line]

    def update(self) -> None:
        layout = (self.epochs.value, self.log_scale.value, len(self.rows), id(self.rows))
        if layout != getattr(self, "_layout", None):  # limits or titles change: draw everything
            self._layout, self._renderer = layout, None
        super().update()

    def draw(self) -> None:
        self.artist.loss_ax.set_yscale("log" if self.log_scale.value else "linear")
        self.artist.set_log(self.rows, self.smoothing.value, self.epochs.value)
