"""Named starting points of the command line: a model builder, its configuration and a recipe.

``presets()`` returns ``{name: Preset}``:

- ``ssd300_voc``, ``ssd512_voc``: the paper's networks and recipe on Pascal VOC;
- ``ssd300_shapes``: SSD300 with the paper's recipe shortened to the synthetic shapes data;
- ``small_shapes``: the small CPU model and the recipe of the model shipped in ``ssd_lib/shipped_models``;
- ``tiny_shapes``: a very small model on 32x32 shapes images that trains in seconds: checks that a
  setup works end to end (several processes or devices, resume), not a detector to use.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import keras

from ..config import SHAPES_CLASSES, SSD300_VOC, SSD512_VOC, SSD_SMALL_SHAPES, SSDConfig
from ..small_ssd import build_small_ssd
from ..vgg_ssd import build_ssd300, build_ssd512
from .recipe import Recipe

__all__ = ["Preset", "presets", "TINY_SHAPES"]

#: The anchor layout of the ``tiny_shapes`` preset: 32x32 input, 4x4 and 2x2 maps.
TINY_SHAPES = SSDConfig(image_height=32, image_width=32, n_classes=len(SHAPES_CLASSES), feature_map_sizes=(4, 2),
                        aspect_ratios=((1.0, 2.0, 0.5),) * 2, scales=(0.3, 0.6, 0.9), class_names=SHAPES_CLASSES)


@dataclasses.dataclass(frozen=True)
class Preset:
    """A model, its configuration and the training recipe the command line starts from.

    Attributes:
        config: the detector's configuration.
        build: ``build(config, l2_regularization, [width_multiplier]) -> keras.Model``.
        recipe: the :class:`~ssd_lib.training.recipe.Recipe` (command-line flags override it).
        width_multiplier: the channel factor for builders that take one (the small model);
            ``None``: the builder's default.
    """

    config: SSDConfig
    build: Callable
    recipe: Recipe
    width_multiplier: float | None = None

    @property
    def has_width_multiplier(self) -> bool:
        """Whether the builder takes a ``width_multiplier`` (the small model does, VGG16 not)."""
        return "width_multiplier" in inspect.signature(self.build).parameters

    def build_model(self, l2_regularization: float | None = None,
                    width_multiplier: float | None = None) -> keras.Model:  # fmt: skip
        """The preset's model, untrained.

        Args:
            l2_regularization: L2 weight decay of the kernels; default: the recipe's
                ``weight_decay``.
            width_multiplier: channel factor; default: the preset's.

        Raises:
            ValueError: a ``width_multiplier`` for a builder that has none.
        """
        if l2_regularization is None:
            l2_regularization = self.recipe.weight_decay
        options = {}
        width_multiplier = self.width_multiplier if width_multiplier is None else width_multiplier
        if width_multiplier is not None:
            if not self.has_width_multiplier:
                raise ValueError(f"Preset: {self.build.__name__} has no width multiplier (the small model has)")
            options["width_multiplier"] = width_multiplier
        return self.build(self.config, l2_regularization=l2_regularization, **options)


def presets() -> dict[str, Preset]:
    """The command line's presets by name: ``{name: Preset}`` (``ssd300_voc``, ``ssd512_voc``,
    ``ssd300_shapes``, ``small_shapes``, ``tiny_shapes``)."""
    # The paper's recipe (Caffe ssd_pascal.py): batch 32, SGD momentum 0.9, weight decay 5e-4,
    # learning rate 1e-3 for 80k iterations, 1e-4 until 100k, 1e-5 until 120k.
    original = Recipe(batch_size=32, optimizer="sgd", learning_rate=1e-3, schedule="piecewise",
                      decay_steps=(80_000, 100_000), total_steps=120_000, steps_batch_size=32,
                      weight_decay=5e-4, map_every=10)  # fmt: skip
    ssd300_shapes = dataclasses.replace(SSD300_VOC, n_classes=len(SHAPES_CLASSES), class_names=SHAPES_CLASSES)
    return {
        "ssd300_voc": Preset(SSD300_VOC, build_ssd300, original),
        "ssd512_voc": Preset(SSD512_VOC, build_ssd512, original),
        # SSD300 on the shapes data: the same recipe shortened to the small dataset.
        "ssd300_shapes": Preset(ssd300_shapes, build_ssd300,
                                original.replace(decay_steps=(4_000, 5_000), total_steps=6_000,
                                                 map_every=5)),  # fmt: skip
        # The small CPU model, trained from scratch: Adam at 1e-2 (BatchNorm makes the high rate
        # safe; 3e-3 was far from converged in 24 epochs) with warm-up and cosine decay, XLA, no
        # zoom augmentation (the validation shapes have the training size distribution), matching
        # at IoU 0.4 (small and thin boxes rarely reach 0.5 with any anchor); the recipe of the
        # model shipped in ssd_lib/shipped_models (see small_ssd_shapes.json there).
        "small_shapes": Preset(SSD_SMALL_SHAPES, build_small_ssd,
                               Recipe(batch_size=32, optimizer="adam", learning_rate=1e-2, schedule="cosine",
                                      warmup_epochs=1.0, epochs=24, weight_decay=5e-4, map_every=8,
                                      expand_max_ratio=1.0, crop=False, jit="on", pos_iou_threshold=0.4,
                                      neg_iou_limit=0.4),
                               width_multiplier=0.5),  # fmt: skip
        # A smoke test of a setup (python -m ssd_lib.datasets shapes ... --image-size 32): two
        # stride-2 stages to a 4x4 map, then 2x2.
        "tiny_shapes": Preset(TINY_SHAPES, build_small_ssd,
                              Recipe(epochs=2, batch_size=4, optimizer="sgd", learning_rate=0.05, momentum=0.9,
                                     weight_decay=0.0, expand_max_ratio=1.0, crop=False, jit="on", map_every=1),
                              width_multiplier=0.5),  # fmt: skip
    }
