"""SSDConfig: the one object that describes an SSD detector's input, classes and anchors.

Every other part of ``ssd_lib`` (anchors, encoder, loss, decoder, model, widgets) reads its
numbers from an :class:`SSDConfig`; no constant is copied anywhere else.

The configuration is a frozen dataclass validated on construction, so
``dataclasses.replace(SSD300_VOC, min_scale=0.15, max_scale=0.9, scales=None)`` is validated too.
Invalid values raise ``ValueError`` naming the field and the problem.

Explained in notebooks/01_anchor_scales.ipynb and notebooks/02_anchor_grids.ipynb.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence

from .json_fields import JSONFields

__all__ = [
    "SSDConfig",
    "scale_schedule",
    "VOC_CLASSES",
    "COCO_N_CLASSES",
    "SHAPES_CLASSES",
    "IMAGENET_MEAN_RGB",
    "SSD300_VOC",
    "SSD300_COCO",
    "SSD512_VOC",
]

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip
COCO_N_CLASSES = 80
#: ImageNet mean pixel in RGB order, as subtracted by the Caffe VGG16 (and Keras' "caffe" mode);
#: also the fill colour of the augmentation's expand canvas (so it is ~0 after preprocessing).
IMAGENET_MEAN_RGB = (123.68, 116.78, 103.94)
#: Classes of the synthetic shapes dataset (``python -m ssd_lib.datasets shapes``); bars are
#: long thin rectangles (aspect ratio 1:4 to 1:2 or 2:1 to 4:1), so anchor aspect ratios matter.
SHAPES_CLASSES = ("circle", "square", "triangle", "bar")


def scale_schedule(min_scale: float, max_scale: float, n_layers: int) -> tuple[float, ...]:
    """The paper's linear scale schedule, plus one extrapolated scale for the last extra box.

    ``s_k = s_min + (s_max - s_min) * (k - 1) / (m - 1)`` for ``k = 1 .. m + 1``: the first ``m``
    values are the scales of the ``m`` predictor layers (``s_1 = s_min``, ``s_m = s_max``), and
    ``s_{m+1}`` continues the same step so the last layer also gets its second ar=1 box of scale
    ``sqrt(s_m * s_{m+1})`` (as the original Caffe implementation does).

    Args:
        min_scale: ``s_min``, the scale of the first layer, as a fraction of the image side.
        max_scale: ``s_max``, the scale of the last layer; must be > ``min_scale`` when m > 1.
        n_layers: ``m``, the number of predictor layers (>= 1).

    Returns:
        ``m + 1`` scales.

    Example:
        >>> [round(s, 2) for s in scale_schedule(0.2, 0.88, 5)]
        [0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
    """
    if n_layers < 1:
        raise ValueError(f"scale_schedule: n_layers must be >= 1, got {n_layers}")
    if n_layers == 1:
        return (float(min_scale), float(max_scale))
    step = (max_scale - min_scale) / (n_layers - 1)
    return tuple(float(min_scale + step * k) for k in range(n_layers + 1))


def _pair(value, field: str, layer: int) -> tuple[float, float]:
    """One per-layer value as a (y, x) pair: a number means the same in both directions."""
    if isinstance(value, numbers.Real):  # also numpy scalars
        return (float(value), float(value))
    if isinstance(value, Sequence) and len(value) == 2:
        return (float(value[0]), float(value[1]))
    raise ValueError(
        f"SSDConfig.{field}[{layer}]: expected a number or a (height, width) pair, got {value!r}"
    )


@dataclasses.dataclass(frozen=True)
class SSDConfig(JSONFields):
    """Image size, classes and anchor layout of an SSD detector.

    Per-layer fields have one entry per predictor layer (``n_layers`` = len(feature_map_sizes)).
    A per-layer size/step/offset is a number (same in y and x) or a ``(y, x)`` pair; they are
    stored normalized to ``(y, x)`` pairs.

    Attributes:
        image_height, image_width: model input size in pixels.
        n_classes: number of positive (object) classes; class 0 is background.
        feature_map_sizes: per layer, the feature map's (rows, cols).
        aspect_ratios: per layer, the aspect ratios r = w / h of the anchors in a cell.
        scales: ``n_layers + 1`` anchor scales as fractions of ``min(image_height, image_width)``,
            strictly increasing; the last one only sizes the last layer's extra ar=1 box.
            ``None`` means: computed from ``min_scale``/``max_scale`` with :func:`scale_schedule`.
        min_scale, max_scale: used only when ``scales`` is None.
        two_boxes_for_ar1: add a second ar=1 anchor of scale ``sqrt(s_k * s_{k+1})`` per cell.
        steps: per layer, the distance between cell centres in pixels (y, x); ``None`` means
            image size / feature map size.
        offsets: per layer, the first cell centre's distance from the top-left corner, in units
            of the step, in [0, 1).
        clip_boxes: clip anchors to the image (normalized corners in [0, 1]).
        clamp_anchor_sizes: clamp each anchor's normalized width and height to at most 1,
            keeping its centre (torchvision's ``DefaultBoxGenerator(clip=True)``); unlike
            ``clip_boxes``, the clamped box may still reach beyond the image.
        variances: the four encoding variances (cx, cy, w, h).
        class_names: optional names of classes 1..n_classes.

    ``to_json``/``from_json`` (and ``to_dict``/``from_dict``) round-trip it through JSON.
    """

    image_height: int
    image_width: int
    n_classes: int
    feature_map_sizes: tuple
    aspect_ratios: tuple
    scales: tuple | None = None
    min_scale: float | None = None
    max_scale: float | None = None
    two_boxes_for_ar1: bool = True
    steps: tuple | None = None
    offsets: tuple | float = 0.5
    clip_boxes: bool = False
    clamp_anchor_sizes: bool = False
    variances: tuple = (0.1, 0.1, 0.2, 0.2)
    class_names: tuple | None = None

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731

        for name in ("image_height", "image_width", "n_classes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"SSDConfig.{name}: must be a positive integer, got {value!r}")
            set_(name, int(value))  # numpy integers become Python ints

        # Feature maps: (rows, cols) of positive integers that fit the image.
        if not isinstance(self.feature_map_sizes, Sequence) or len(self.feature_map_sizes) == 0:
            raise ValueError(
                "SSDConfig.feature_map_sizes: need at least one predictor layer, "
                f"got {self.feature_map_sizes!r}"
            )
        fmaps = []
        for k, size in enumerate(self.feature_map_sizes):
            rows, cols = _pair(size, "feature_map_sizes", k)
            if rows != int(rows) or cols != int(cols) or rows < 1 or cols < 1:
                raise ValueError(
                    f"SSDConfig.feature_map_sizes[{k}]: must be positive integers, got {size!r}"
                )
            if rows > self.image_height or cols > self.image_width:
                raise ValueError(
                    f"SSDConfig.feature_map_sizes[{k}]: {int(rows)}x{int(cols)} does not fit the "
                    f"{self.image_height}x{self.image_width} image (more cells than pixels)"
                )
            fmaps.append((int(rows), int(cols)))
        set_("feature_map_sizes", tuple(fmaps))
        n_layers = len(fmaps)

        def per_layer(name, value):
            if not isinstance(value, Sequence) or isinstance(value, str):
                raise ValueError(f"SSDConfig.{name}: expected a list with one entry per layer")
            if len(value) != n_layers:
                raise ValueError(
                    f"SSDConfig.{name}: expected {n_layers} entries (one per predictor layer, "
                    f"as in feature_map_sizes), got {len(value)}"
                )
            return value

        # Aspect ratios.
        ratios = []
        for k, layer_ratios in enumerate(per_layer("aspect_ratios", self.aspect_ratios)):
            if not isinstance(layer_ratios, Sequence) or len(layer_ratios) == 0:
                raise ValueError(
                    f"SSDConfig.aspect_ratios[{k}]: need at least one aspect ratio, "
                    f"got {layer_ratios!r}"
                )
            for r in layer_ratios:
                if not isinstance(r, numbers.Real) or not math.isfinite(r) or r <= 0:
                    raise ValueError(
                        f"SSDConfig.aspect_ratios[{k}]: aspect ratios must be > 0, got {r!r}"
                    )
            as_floats = tuple(float(r) for r in layer_ratios)
            if len(set(as_floats)) != len(as_floats):
                raise ValueError(
                    f"SSDConfig.aspect_ratios[{k}]: duplicate aspect ratios in {layer_ratios!r}"
                )
            ratios.append(as_floats)
        set_("aspect_ratios", tuple(ratios))

        # Scales: explicit, or from min/max.
        if self.scales is None:
            if self.min_scale is None or self.max_scale is None:
                raise ValueError(
                    "SSDConfig.scales: give either scales (n_layers + 1 values) "
                    "or both min_scale and max_scale"
                )
            for name in ("min_scale", "max_scale"):
                value = getattr(self, name)
                if not math.isfinite(value) or value <= 0:
                    raise ValueError(f"SSDConfig.{name}: must be > 0, got {value!r}")
                set_(name, float(value))
            if n_layers > 1 and self.max_scale <= self.min_scale:
                raise ValueError(
                    f"SSDConfig.max_scale: must be greater than min_scale ({self.min_scale}), "
                    f"got {self.max_scale}"
                )
            scales = scale_schedule(self.min_scale, self.max_scale, n_layers)
        else:
            if not isinstance(self.scales, Sequence) or len(self.scales) != n_layers + 1:
                got = len(self.scales) if isinstance(self.scales, Sequence) else self.scales
                raise ValueError(
                    f"SSDConfig.scales: expected {n_layers + 1} values (one per predictor layer "
                    f"plus one for the last layer's extra box), got {got!r}"
                )
            scales = tuple(float(s) for s in self.scales)
            for k, s in enumerate(scales):
                if not math.isfinite(s) or s <= 0:
                    raise ValueError(f"SSDConfig.scales[{k}]: scales must be > 0, got {s!r}")
            for k in range(1, len(scales)):
                if scales[k] <= scales[k - 1]:
                    raise ValueError(
                        f"SSDConfig.scales: must be strictly increasing, but scales[{k}] = "
                        f"{scales[k]} <= scales[{k - 1}] = {scales[k - 1]}"
                    )
        set_("scales", scales)

        # Steps and offsets.
        if self.steps is None:
            steps = tuple(
                (self.image_height / rows, self.image_width / cols) for rows, cols in fmaps
            )
        else:
            steps = tuple(
                _pair(step, "steps", k) for k, step in enumerate(per_layer("steps", self.steps))
            )
        for k, (step_y, step_x) in enumerate(steps):
            if not (math.isfinite(step_y) and math.isfinite(step_x)) or step_y <= 0 or step_x <= 0:
                raise ValueError(f"SSDConfig.steps[{k}]: steps must be > 0, got {(step_y, step_x)}")
        set_("steps", steps)

        offsets = self.offsets
        if isinstance(offsets, numbers.Real):
            offsets = [offsets] * n_layers
        offsets = tuple(
            _pair(offset, "offsets", k) for k, offset in enumerate(per_layer("offsets", offsets))
        )
        for k, pair in enumerate(offsets):
            if not all(0.0 <= v < 1.0 for v in pair):
                raise ValueError(
                    f"SSDConfig.offsets[{k}]: offsets are fractions of a step in [0, 1), got {pair}"
                )
        set_("offsets", offsets)

        # Variances.
        if not isinstance(self.variances, Sequence) or len(self.variances) != 4:
            raise ValueError(
                f"SSDConfig.variances: expected 4 values (cx, cy, w, h), got {self.variances!r}"
            )
        variances = tuple(float(v) for v in self.variances)
        for k, v in enumerate(variances):
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"SSDConfig.variances[{k}]: variances must be > 0, got {v!r}")
        set_("variances", variances)

        if self.class_names is not None:
            if isinstance(self.class_names, str):
                raise ValueError(f"SSDConfig.class_names: expected a sequence of names, got the "
                                 f"string {self.class_names!r}; write ({self.class_names!r},)")  # fmt: skip
            names = tuple(str(name) for name in self.class_names)
            if len(names) != self.n_classes:
                raise ValueError(
                    f"SSDConfig.class_names: expected n_classes = {self.n_classes} names, "
                    f"got {len(names)}"
                )
            set_("class_names", names)

    # ------------------------------------------------------------------ derived quantities
    @property
    def n_layers(self) -> int:
        """Number of predictor layers."""
        return len(self.feature_map_sizes)

    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of the model input in pixels."""
        return (self.image_height, self.image_width)

    def boxes_per_cell(self, layer: int) -> int:
        """Number of anchors in each cell of ``layer`` (aspect ratios + the extra ar=1 box)."""
        ratios = self.aspect_ratios[layer]
        return len(ratios) + int(self.two_boxes_for_ar1 and 1.0 in ratios)

    def anchors_per_layer(self) -> tuple[int, ...]:
        """Number of anchors of each layer: rows * cols * boxes_per_cell."""
        return tuple(
            rows * cols * self.boxes_per_cell(k)
            for k, (rows, cols) in enumerate(self.feature_map_sizes)
        )

    @property
    def n_anchors(self) -> int:
        """Total number of anchors (8732 for SSD300)."""
        return sum(self.anchors_per_layer())

    def class_name(self, class_id: int) -> str:
        """Human-readable name of a class id (0 is ``"background"``)."""
        if class_id == 0:
            return "background"
        if self.class_names is not None and 1 <= class_id <= self.n_classes:
            return self.class_names[class_id - 1]
        return f"class {class_id}"


_AR_3 = (1.0, 2.0, 0.5)
_AR_5 = (1.0, 2.0, 0.5, 3.0, 1.0 / 3.0)

#: The original SSD300 for Pascal VOC (Liu et al. 2016, Caffe ``ssd_pascal.py``): 8732 anchors.
SSD300_VOC = SSDConfig(
    image_height=300,
    image_width=300,
    n_classes=20,
    feature_map_sizes=(38, 19, 10, 5, 3, 1),
    aspect_ratios=(_AR_3, _AR_5, _AR_5, _AR_5, _AR_3, _AR_3),
    scales=(0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05),
    steps=(8, 16, 32, 64, 100, 300),
    offsets=0.5,
    variances=(0.1, 0.1, 0.2, 0.2),
    class_names=VOC_CLASSES,
)

#: The original SSD300 for MS COCO: smaller scales (conv4_3 at 0.07).
SSD300_COCO = dataclasses.replace(
    SSD300_VOC,
    n_classes=COCO_N_CLASSES,
    scales=(0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05),
    class_names=None,
)

#: The original SSD512 for Pascal VOC: seven predictor layers, 24564 anchors. The Caffe model's
#: anchor sizes are 20.48, 76.8, 153.6, ... 460.8 px (scales 0.04, 0.15, ... 0.9) with extra-box
#: sizes 51.2, 153.6, ... 537.6 px; one chain of scales reproduces all of them except the first
#: layer's extra box (sqrt(0.04 * 0.15) = 0.077 here, sqrt(0.04 * 0.1) = 0.063 in Caffe).
SSD512_VOC = SSDConfig(
    image_height=512,
    image_width=512,
    n_classes=20,
    feature_map_sizes=(64, 32, 16, 8, 4, 2, 1),
    aspect_ratios=(_AR_3, _AR_5, _AR_5, _AR_5, _AR_5, _AR_3, _AR_3),
    scales=(0.04, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.05),
    steps=(8, 16, 32, 64, 128, 256, 512),
    offsets=0.5,
    variances=(0.1, 0.1, 0.2, 0.2),
    class_names=VOC_CLASSES,
)


# ---------------------------------------------------------------- small CPU model (issue 6)
#: The small SSD of ``ssd_lib.small_ssd.build_small_ssd`` for the synthetic shapes dataset: 192x192
#: inputs, five predictor layers (48, 24, 12, 6, 3 cells; steps 4 .. 64 px), scales doubling from
#: 4% to 32% of the image side, then 60% and 90% (objects of ~4% to ~90%), all five aspect
#: ratios on every layer (the bars are up to 4:1): 18414 anchors. The fine 48x48 layer is there
#: for the smallest shapes (8 px at this input size): on a 24x24 grid most of them had no anchor
#: with IoU >= 0.5 (see notebook 01's anchor coverage).
SSD_SMALL_SHAPES = SSDConfig(
    image_height=192,
    image_width=192,
    n_classes=len(SHAPES_CLASSES),
    feature_map_sizes=(48, 24, 12, 6, 3),
    aspect_ratios=(_AR_5, _AR_5, _AR_5, _AR_5, _AR_5),
    scales=(0.04, 0.08, 0.16, 0.32, 0.6, 0.9),
    offsets=0.5,
    variances=(0.1, 0.1, 0.2, 0.2),
    class_names=SHAPES_CLASSES,
)
__all__ += ["SSD_SMALL_SHAPES"]
