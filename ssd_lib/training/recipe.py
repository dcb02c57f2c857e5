"""The recipe of a training run: one frozen, validated, JSON-serialisable settings object.

A :class:`Recipe` holds what makes a run: the optimizer, the learning rate and its schedule,
the run length, the batch size, the augmentation switches, the matching thresholds, the
precision, XLA compilation and the seed. :func:`ssd_lib.training.train` takes one, the presets
(:mod:`ssd_lib.training.presets`) are named recipes, and the run folder stores it
(``settings.json``).

Each field carries metadata, written once and read by the command line and by resume:

- ``help``: the sentence ``python -m ssd_lib.train --help`` shows for the field's flag;
- ``resumable``: whether the field may change when a run is resumed (more epochs, a new learning
  rate) or would make it another run (another batch size, schedule or augmentation);
- ``type``, ``many``, ``choices``: the value type, whether it is a sequence of them, and the
  allowed values, for validation and argument parsing.

Invalid values raise ``ValueError`` naming the field: ``Recipe: batch_size must be a positive
integer, got 0``.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
from numbers import Real

from ..json_fields import JSONFields
from .devices import PRECISIONS
from .schedule import OPTIMIZERS, SCHEDULES, check_schedule

__all__ = ["Recipe", "JIT_MODES"]

#: XLA compilation: "auto" (on with a GPU), "on", "off".
JIT_MODES = ("auto", "on", "off")


def _setting(default, help, *, type, resumable=False, many=False, choices=None):  # noqa: A002
    metadata = {"help": help, "type": type, "many": many, "choices": choices, "resumable": resumable}
    return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Recipe(JSONFields):
    """What makes a training run (see the module docstring; each field's ``help`` says more).

    Example:
        >>> recipe = Recipe(epochs=24, batch_size=32, optimizer="adam", learning_rate=1e-2,
        ...                 schedule="cosine", warmup_epochs=1.0)
        >>> Recipe.from_json(recipe.to_json()) == recipe
        True
    """

    # Run length and batches.
    epochs: int | None = _setting(None, "epochs of the run (default: total_steps turned into epochs)",
                                  type=int, resumable=True)  # fmt: skip
    total_steps: int | None = _setting(None, "run length in optimizer steps, used when epochs is not given "
                                       "(the paper: 120000 at batch 32)", type=int)  # fmt: skip
    batch_size: int = _setting(32, "images per batch", type=int)
    steps_per_epoch: int | None = _setting(None, "batches per epoch (default: the whole training set)", type=int)
    steps_batch_size: int | None = _setting(None, "the batch size total_steps and decay_steps are counted for (the "
                                            "paper: 32); with another batch_size they scale by steps_batch_size / "
                                            "batch_size, so the run sees the same images and decays at the same "
                                            "epochs (the learning rate does not scale)", type=int)  # fmt: skip
    # Optimizer and learning-rate schedule.
    optimizer: str = _setting("sgd", "sgd (momentum, the paper) or adam", type=str, choices=OPTIMIZERS)
    learning_rate: float = _setting(1e-3, "initial (piecewise) or peak (cosine) learning rate", type=float,
                                    resumable=True)  # fmt: skip
    momentum: float = _setting(0.9, "SGD momentum", type=float)
    schedule: str = _setting("piecewise", "piecewise: times decay_factor at each boundary; cosine: warm-up, "
                             "then cosine decay to 0", type=str, choices=SCHEDULES)  # fmt: skip
    decay_epochs: tuple = _setting((), "piecewise boundaries in epochs", type=float, many=True)
    decay_steps: tuple = _setting((), "piecewise boundaries in optimizer steps", type=int, many=True)
    decay_factor: float = _setting(0.1, "piecewise: learning-rate factor at each boundary", type=float)
    warmup_epochs: float = _setting(0.0, "cosine: linear warm-up from 0, in epochs", type=float)
    weight_decay: float = _setting(5e-4, "L2 weight decay of the kernels (Caffe convention), set when the "
                                   "model is built", type=float)  # fmt: skip
    decoupled_weight_decay: float | None = _setting(None, "the optimizer's decoupled weight decay on every "
                                                    "variable (off by default)", type=float)  # fmt: skip
    clipnorm: float | None = _setting(None, "clip each gradient to this norm", type=float, resumable=True)
    # Data: augmentation and matching.
    expand_max_ratio: float = _setting(4.0, "zoom-out augmentation: largest canvas / image ratio; 1 disables",
                                       type=float)  # fmt: skip
    crop: bool = _setting(True, "the random-crop augmentation", type=bool)
    pos_iou_threshold: float | None = _setting(None, "matching: anchors with at least this IoU with a box are "
                                               "positives (default: SSDEncoder's)", type=float)  # fmt: skip
    neg_iou_limit: float | None = _setting(None, "matching: anchors below this IoU with every box are "
                                           "background (default: SSDEncoder's)", type=float)  # fmt: skip
    # Evaluation, devices, randomness.
    map_every: int = _setting(1, "validation mAP every N epochs (and after the last)", type=int, resumable=True)
    precision: str = _setting("auto", "Keras dtype policy (auto: mixed_bfloat16 on a GPU, else float32)",
                              type=str, choices=PRECISIONS)  # fmt: skip
    jit: str = _setting("auto", "XLA compilation (auto: on with a GPU)", type=str, choices=JIT_MODES,
                        resumable=True)  # fmt: skip
    seed: int = _setting(0, "seed of the weights' initialisation, the data order and the augmentation", type=int)

    def __post_init__(self):
        for field in dataclasses.fields(self):
            object.__setattr__(self, field.name, _checked(field, getattr(self, field.name)))
        if self.epochs is None and self.total_steps is None:
            raise ValueError("Recipe: give epochs or total_steps (the run length)")
        check_schedule(self.learning_rate, self.schedule, self.decay_epochs, self.decay_steps, self.warmup_epochs,
                       owner="Recipe")  # fmt: skip
        for name in ("momentum", "pos_iou_threshold", "neg_iou_limit"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"Recipe: {name} must be in [0, 1], got {value!r}")
        for name in ("decay_factor", "clipnorm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"Recipe: {name} must be > 0, got {value!r}")
        for name in ("weight_decay", "decoupled_weight_decay"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"Recipe: {name} must be >= 0, got {value!r}")
        if self.expand_max_ratio < 1:
            raise ValueError(f"Recipe: expand_max_ratio must be >= 1 (1 disables the zoom-out), got "
                             f"{self.expand_max_ratio!r}")  # fmt: skip

    # ----------------------------------------------------------------------------- derived
    def epochs_for(self, steps_per_epoch: int) -> int:
        """The run length in epochs: ``epochs``, else ``total_steps`` (scaled to this batch size,
        :meth:`scaled_steps`) over ``steps_per_epoch`` rounded up."""
        if self.epochs is not None:
            return self.epochs
        return math.ceil(self.scaled_steps(self.total_steps) / steps_per_epoch)

    def scaled_steps(self, steps: int) -> int:
        """A step count of the recipe (``total_steps``, a ``decay_steps`` boundary) at this
        ``batch_size``: times ``steps_batch_size / batch_size`` (e.g. the paper's 120 000 steps at
        batch 32 are 15 000 at batch 256), unchanged without ``steps_batch_size``."""
        if self.steps_batch_size is None:
            return steps
        return max(1, round(steps * self.steps_batch_size / self.batch_size))

    def replace(self, **overrides) -> Recipe:
        """A copy with ``overrides`` (validated), keeping coupled fields consistent.

        Two fields belong to others: a new ``schedule`` drops this recipe's warm-up unless
        ``warmup_epochs`` is given too, and giving ``decay_epochs`` or ``decay_steps`` clears the
        other kind of boundaries.

        Raises:
            ValueError: an unknown field or an invalid value (names the field).
        """
        self.check_field_names(overrides)
        if overrides.get("schedule", self.schedule) != self.schedule:
            overrides.setdefault("warmup_epochs", 0.0)
        for given, other in (("decay_epochs", "decay_steps"), ("decay_steps", "decay_epochs")):
            if given in overrides and other not in overrides:
                overrides[other] = ()
        return dataclasses.replace(self, **overrides)


def _checked(field: dataclasses.Field, value):
    """``value`` converted to the field's type (sequences to tuples, ints to floats), or a
    ``ValueError`` naming the field."""
    kind, choices = field.metadata["type"], field.metadata["choices"]
    if value is None and field.default is None:
        return None
    if field.metadata["many"]:
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            raise ValueError(f"Recipe: {field.name} must be a sequence of {kind.__name__}s, got {value!r}")
        return tuple(_scalar(field.name, kind, item) for item in value)
    value = _scalar(field.name, kind, value)
    if choices is not None and value not in choices:
        raise ValueError(f"Recipe: {field.name} must be one of {choices}, got {value!r}")
    if kind is int and value < (0 if field.name == "seed" else 1):
        bound = "a non-negative" if field.name == "seed" else "a positive"
        raise ValueError(f"Recipe: {field.name} must be {bound} integer, got {value!r}")
    return value


def _scalar(name: str, kind: type, value):
    if kind is bool:
        if not isinstance(value, bool):
            raise ValueError(f"Recipe: {name} must be True or False, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ValueError(f"Recipe: {name} must be a string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"Recipe: {name} must be a finite number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise ValueError(f"Recipe: {name} must be an integer, got {value!r}")
        return int(value)
    return float(value)
