"""Training curves: losses, validation mAP and learning rate (notebook 08)."""

from __future__ import annotations

import numpy as np
from matplotlib.ticker import MaxNLocator


def smooth_curve(values, smoothing: float) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing slider).

    ``m_t = smoothing * m_{t-1} + (1 - smoothing) * x_t`` divided by ``1 - smoothing**t`` (so the
    first values are not pulled towards 0). NaN entries (epochs without that metric) stay NaN
    and do not enter the average. ``smoothing`` in [0, 1); 0 returns the values unchanged.
    """
    values = np.asarray(values, dtype=float)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smooth_curve: smoothing must be in [0, 1), got {smoothing}")
    smoothed = np.full_like(values, np.nan)
    average, weight = 0.0, 0.0
    for index, value in enumerate(values):
        if np.isnan(value):
            continue
        average = smoothing * average + (1.0 - smoothing) * value
        weight = smoothing * weight + (1.0 - smoothing)
        smoothed[index] = average / weight
    return smoothed


class TrainingCurvesArtist:
    """Loss curves on one axes, validation mAP and learning rate on another; updatable in place.

    Training and validation loss are drawn twice: faint (the logged values) and solid (smoothed
    with :func:`smooth_curve`). The learning rate shares the mAP axes as a fraction of its
    largest value (dashed), which shows the schedule's shape without a second axis.

    Args:
        loss_ax, metric_ax: the two axes.
    """

    def __init__(self, loss_ax, metric_ax):
        self.loss_ax, self.metric_ax = loss_ax, metric_ax
        (self.train_raw,) = loss_ax.plot([], [], color="tab:blue", alpha=0.3, linewidth=1)
        (self.train_line,) = loss_ax.plot([], [], color="tab:blue", linewidth=2, label="training loss")
        (self.val_raw,) = loss_ax.plot([], [], color="tab:orange", alpha=0.3, linewidth=1)
        (self.val_line,) = loss_ax.plot([], [], color="tab:orange", linewidth=2, label="validation loss")
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("loss")
        (self.map_line,) = metric_ax.plot([], [], "o-", color="tab:green", markersize=4, label="validation mAP@0.5")
        (self.rate_line,) = metric_ax.plot([], [], "--", color="tab:gray", linewidth=1,
                                           label="learning rate / its maximum")  # fmt: skip
        metric_ax.set_ylim(0.0, 1.05)
        metric_ax.set_xlabel("epoch")
        for ax in (loss_ax, metric_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # epochs are whole numbers
        metric_ax.legend(loc="lower right", fontsize=8)

    @staticmethod
    def _column(log, key) -> np.ndarray:
        return np.array([row.get(key, np.nan) for row in log], dtype=float)

    def set_log(self, log, smoothing: float = 0.0, epochs: tuple | None = None):
        """Show the rows of a training log (``ssd_lib.training.read_log``), optionally only the
        epochs ``first .. last`` (inclusive); returns ``self``."""
        log = list(log)
        if epochs is not None:
            log = [row for row in log if epochs[0] <= row["epoch"] <= epochs[1]]
        epoch = self._column(log, "epoch")
        for key, raw, line in (("loss", self.train_raw, self.train_line),
                               ("val_loss", self.val_raw, self.val_line)):  # fmt: skip
            values = self._column(log, key)
            raw.set_data(epoch, values)
            line.set_data(epoch, smooth_curve(values, smoothing))
        logged = [line for line in (self.train_line, self.val_line) if np.isfinite(line.get_ydata()).any()]
        if logged:
            self.loss_ax.legend(handles=logged, loc="upper right", fontsize=8)  # no entry for a loss never logged
        elif self.loss_ax.get_legend() is not None:
            self.loss_ax.get_legend().remove()
        mean_ap = self._column(log, "val_mAP")
        evaluated = ~np.isnan(mean_ap)
        self.map_line.set_data(epoch[evaluated], mean_ap[evaluated])
        rate = self._column(log, "learning_rate")
        known = ~np.isnan(rate)
        peak = np.max(rate[known]) if known.any() else 1.0
        self.rate_line.set_data(epoch[known], rate[known] / (peak if peak > 0 else 1.0))
        self.loss_ax.relim()
        self.loss_ax.autoscale_view()
        # x from epoch 1 (0.5 .. 1.5 before the first epoch: a run that has not logged yet)
        first, last = (epoch[0], epoch[-1]) if len(epoch) else (1, 1)
        self.loss_ax.set_xlim(first - 0.5, last + 0.5)
        self.metric_ax.set_xlim(first - 0.5, last + 0.5)
        if not logged:
            self.loss_ax.set_ylim(0.0, 1.0, auto=None)  # autoscaling stays on for the first losses
        self.loss_ax.tick_params(axis="y", labelleft=bool(logged))  # no loss scale without a loss
        losses = self._column(log, "loss")
        last_loss = f" · last {losses[-1]:.3f}" if len(losses) and np.isfinite(losses[-1]) else ""
        epochs_text = f"{len(log)} epochs" if len(log) else "no epoch logged yet"
        self.loss_ax.set_title(f"loss · {epochs_text}{last_loss}", fontsize=10)
        best = f" · best {np.nanmax(mean_ap):.3f}" if evaluated.any() else ""
        self.metric_ax.set_title(f"validation mAP · {int(evaluated.sum())} evaluations{best}", fontsize=10)
        return self
