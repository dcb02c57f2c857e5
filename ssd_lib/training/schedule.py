"""The optimizer and its learning-rate schedule.

- :func:`learning_rate_schedule`: the paper's piecewise-constant schedule (1e-3, times 0.1 at
  given steps or epochs) or a linear warm-up followed by cosine decay;
- :func:`make_optimizer`: SGD with momentum 0.9 as in the paper, or Adam.

The usual SSD weight decay is not the optimizer's: it is the kernels' L2 penalty, set with the
model builders' ``l2_regularization`` argument (Caffe's ``weight_decay: 0.0005``).

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras

__all__ = ["OPTIMIZERS", "SCHEDULES", "check_schedule", "learning_rate_schedule", "make_optimizer",
           "current_learning_rate"]  # fmt: skip

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("piecewise", "cosine")


def check_schedule(learning_rate: float, schedule: str, decay_epochs: Sequence[float] = (),
                   decay_steps: Sequence[int] = (), warmup_epochs: float = 0.0,
                   owner: str = "learning_rate_schedule") -> None:  # fmt: skip
    """Refuse schedule settings that cannot be right, naming ``owner`` and the setting.

    Raises:
        ValueError: a non-positive learning rate, an unknown schedule, a warm-up with the
            piecewise schedule or a negative one, both kinds of boundaries, or boundaries that
            are not positive and increasing.
    """
    if not learning_rate > 0:
        raise ValueError(f"{owner}: learning_rate must be > 0, got {learning_rate}")
    if schedule not in SCHEDULES:
        raise ValueError(f"{owner}: schedule must be 'piecewise' or 'cosine', got {schedule!r}")
    if warmup_epochs < 0:
        raise ValueError(f"{owner}: warmup_epochs must be >= 0, got {warmup_epochs}")
    if schedule == "piecewise" and warmup_epochs:
        raise ValueError(f"{owner}: warmup_epochs needs schedule='cosine'")
    if len(decay_epochs) and len(decay_steps):
        raise ValueError(f"{owner}: give decay_epochs or decay_steps, not both")
    _check_boundaries(owner, list(decay_epochs) or list(decay_steps), "epochs" if len(decay_epochs) else "steps")


def _check_boundaries(owner: str, boundaries: list, unit: str) -> None:
    if any(b <= a for a, b in zip(boundaries, boundaries[1:])) or any(b <= 0 for b in boundaries):
        raise ValueError(f"{owner}: decay boundaries must be positive and increasing, got {boundaries} {unit}")


def learning_rate_schedule(learning_rate: float = 1e-3, steps_per_epoch: int = 1, epochs: int = 1,
                           schedule: str = "piecewise", decay_epochs: Sequence[float] = (),
                           decay_steps: Sequence[int] = (), decay_factor: float = 0.1,
                           warmup_epochs: float = 0.0):  # fmt: skip
    """The learning rate as a function of the optimizer step.

    Args:
        learning_rate: the initial (piecewise) or peak (cosine) learning rate.
        steps_per_epoch: optimizer steps per epoch (batches).
        epochs: length of the run in epochs (the cosine decays to 0 at its end).
        schedule: ``"piecewise"``: constant, multiplied by ``decay_factor`` at each boundary
            (the paper: 1e-3, then 1e-4 after 80k iterations, 1e-5 after 100k, batch 32).
            ``"cosine"``: linear warm-up from 0 over ``warmup_epochs``, then cosine decay to 0.
        decay_epochs, decay_steps: the piecewise boundaries, in epochs or in optimizer steps
            (give one of them; none means a constant learning rate).
        decay_factor: multiplier at each boundary.
        warmup_epochs: warm-up length of the cosine schedule.

    Returns:
        A ``keras.optimizers.schedules.LearningRateSchedule`` or a float (constant).

    Raises:
        ValueError: see :func:`check_schedule`; also boundaries in epochs that round to the
            same step.
    """
    check_schedule(learning_rate, schedule, decay_epochs, decay_steps, warmup_epochs)
    if schedule == "piecewise":
        boundaries = [int(round(e * steps_per_epoch)) for e in decay_epochs] or [int(s) for s in decay_steps]
        _check_boundaries("learning_rate_schedule", boundaries, "steps")
        if not boundaries:
            return float(learning_rate)
        values = [float(learning_rate * decay_factor**k) for k in range(len(boundaries) + 1)]
        # Keras switches after ``step > boundary``; the decay starts at step ``boundary`` exactly.
        return keras.optimizers.schedules.PiecewiseConstantDecay([b - 1 for b in boundaries], values)
    warmup_steps = int(round(warmup_epochs * steps_per_epoch))
    total_steps = max(int(epochs * steps_per_epoch), warmup_steps + 1)
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(learning_rate, total_steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - warmup_steps, warmup_target=learning_rate, warmup_steps=warmup_steps
    )


def make_optimizer(name: str = "sgd", learning_rate=1e-3, momentum: float = 0.9,
                   decoupled_weight_decay: float | None = None, clipnorm: float | None = None):  # fmt: skip
    """SGD with momentum (the paper) or Adam, with the given learning rate or schedule.

    ``decoupled_weight_decay`` is Keras' optimizer weight decay (``w -= lr * decay * w`` every
    step, on all variables); the usual SSD weight decay is not this but the kernels' L2 penalty
    set with the model builders' ``l2_regularization`` argument.
    """
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=decoupled_weight_decay,
                                    clipnorm=clipnorm)  # fmt: skip
    if name == "adam":
        return keras.optimizers.Adam(learning_rate, weight_decay=decoupled_weight_decay, clipnorm=clipnorm)
    raise ValueError(f"make_optimizer: name must be 'sgd' or 'adam', got {name!r}")


def current_learning_rate(optimizer) -> float:
    """The learning rate the optimizer uses at its current step."""
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
