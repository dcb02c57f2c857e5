"""SSDConfig: presets hold the paper's values; every invalid configuration names its field."""

import dataclasses

import numpy as np
import pytest

from ssd_lib.config import (
    SSD300_COCO,
    SSD300_VOC,
    SSD512_VOC,
    VOC_CLASSES,
    SSDConfig,
    scale_schedule,
)


def test_ssd300_voc_preset_matches_the_paper():
    c = SSD300_VOC
    assert c.image_size == (300, 300)
    assert c.n_classes == 20 and c.class_names == VOC_CLASSES
    assert c.feature_map_sizes == ((38, 38), (19, 19), (10, 10), (5, 5), (3, 3), (1, 1))
    assert c.scales == (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)
    assert c.steps == tuple((s, s) for s in (8.0, 16.0, 32.0, 64.0, 100.0, 300.0))
    assert c.offsets == ((0.5, 0.5),) * 6
    assert c.variances == (0.1, 0.1, 0.2, 0.2)
    assert [c.boxes_per_cell(k) for k in range(6)] == [4, 6, 6, 6, 4, 4]
    assert c.anchors_per_layer() == (5776, 2166, 600, 150, 36, 4)
    assert c.n_anchors == 8732
    assert not c.clip_boxes


def test_coco_and_ssd512_presets():
    assert SSD300_COCO.scales == (0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05)
    assert SSD300_COCO.n_classes == 80 and SSD300_COCO.n_anchors == 8732
    assert SSD512_VOC.feature_map_sizes[0] == (64, 64) and SSD512_VOC.n_layers == 7
    assert SSD512_VOC.n_anchors == 24564


def test_scale_schedule_reproduces_ssd300_after_conv4_3():
    # conv4_3 gets 0.1 by hand; the other five layers follow the paper's formula.
    schedule = scale_schedule(0.2, 0.88, 5)
    assert schedule == pytest.approx((0.2, 0.37, 0.54, 0.71, 0.88, 1.05))
    assert SSD300_VOC.scales[1:] == pytest.approx(schedule)
    assert scale_schedule(0.3, 0.6, 1) == (0.3, 0.6)


def test_scales_from_min_and_max():
    config = dataclasses.replace(SSD300_VOC, scales=None, min_scale=0.2, max_scale=0.9)
    assert len(config.scales) == 7
    assert config.scales[0] == pytest.approx(0.2) and config.scales[5] == pytest.approx(0.9)


def test_non_square_steps_default_to_image_over_feature_map():
    config = SSDConfig(
        image_height=200, image_width=400, n_classes=3,
        feature_map_sizes=[(10, 20), (5, 10)], aspect_ratios=[[1.0], [1.0, 2.0]],
        min_scale=0.2, max_scale=0.6,
    )  # fmt: skip
    assert config.steps == ((20.0, 20.0), (40.0, 40.0))
    assert config.boxes_per_cell(0) == 2 and config.boxes_per_cell(1) == 3
    assert config.class_name(0) == "background" and config.class_name(2) == "class 2"


def test_two_boxes_for_ar1_off_and_missing_ar1():
    config = dataclasses.replace(SSD300_VOC, two_boxes_for_ar1=False)
    assert config.anchors_per_layer() == (38 * 38 * 3, 19 * 19 * 5, 500, 125, 27, 3)
    no_ar1 = dataclasses.replace(SSD300_VOC, aspect_ratios=[(2.0, 0.5)] * 6)
    assert no_ar1.boxes_per_cell(0) == 2


BAD = [
    ({"feature_map_sizes": (38, 19, 10, 5, 3)}, "aspect_ratios"),
    ({"scales": (0.1, 0.2, 0.37)}, "scales"),
    ({"scales": (0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 0.0)}, "scales"),
    ({"scales": (-0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05)}, "scales"),
    ({"scales": (0.1, 0.2, 0.2, 0.54, 0.71, 0.88, 1.05)}, "increasing"),
    ({"scales": (0.1, 0.3, 0.2, 0.54, 0.71, 0.88, 1.05)}, "increasing"),
    ({"scales": None}, "min_scale"),
    ({"scales": None, "min_scale": 0.5, "max_scale": 0.4}, "max_scale"),
    ({"scales": None, "min_scale": -0.1, "max_scale": 0.4}, "min_scale"),
    ({"aspect_ratios": [(1.0, 0.0)] + [(1.0,)] * 5}, "aspect_ratios[0]"),
    ({"aspect_ratios": [(1.0,)] * 5 + [(1.0, -2.0)]}, "aspect_ratios[5]"),
    ({"aspect_ratios": [()] + [(1.0,)] * 5}, "aspect_ratios[0]"),
    ({"aspect_ratios": [(1.0,)] * 5}, "aspect_ratios"),
    ({"offsets": 1.0}, "offsets"),
    ({"offsets": -0.5}, "offsets"),
    ({"offsets": [0.5] * 5}, "offsets"),
    ({"steps": (8, 16, 32, 64, 100, 0)}, "steps[5]"),
    ({"steps": (8, 16, 32, 64, 100)}, "steps"),
    ({"steps": (8, -16, 32, 64, 100, 300)}, "steps[1]"),
    ({"variances": (0.1, 0.1, 0.2)}, "variances"),
    ({"variances": (0.1, 0.1, 0.2, 0.0)}, "variances[3]"),
    ({"variances": (0.1, -0.1, 0.2, 0.2)}, "variances[1]"),
    ({"feature_map_sizes": (38, 19, 10, 5, 3, 301)}, "feature_map_sizes[5]"),
    ({"feature_map_sizes": (38, 19, 10, 5, 3, 0)}, "feature_map_sizes[5]"),
    ({"feature_map_sizes": ()}, "feature_map_sizes"),
    ({"n_classes": 0}, "n_classes"),
    ({"image_height": -300}, "image_height"),
    ({"class_names": ("cat",)}, "class_names"),
    ({"n_classes": 1, "class_names": "dog"}, "class_names: expected a sequence of names, got the string 'dog'"),
    ({"n_classes": np.float64(20.0)}, "n_classes"),
]


@pytest.mark.parametrize("changes, field", BAD, ids=[f for _, f in BAD])
def test_invalid_configurations_name_the_field(changes, field):
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")):
        dataclasses.replace(SSD300_VOC, **changes)


def test_presets_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SSD300_VOC.n_classes = 3


def test_numpy_scalars_are_accepted_as_numbers():
    """Values computed with numpy (np.int64, np.float32) give the same config as Python numbers."""
    from_numpy = SSDConfig(
        image_height=np.int64(300), image_width=np.int32(300), n_classes=np.int64(20),
        feature_map_sizes=tuple(np.array([38, 19, 10, 5, 3, 1])),
        aspect_ratios=[tuple(np.float32(r) for r in layer) for layer in SSD300_VOC.aspect_ratios],
        scales=tuple(np.float64(s) for s in SSD300_VOC.scales), steps=tuple(np.array([8, 16, 32, 64, 100, 300])),
        offsets=np.float32(0.5), variances=tuple(np.float64(v) for v in (0.1, 0.1, 0.2, 0.2)),
        class_names=VOC_CLASSES,
    )  # fmt: skip
    assert from_numpy.anchors_per_layer() == SSD300_VOC.anchors_per_layer()
    assert type(from_numpy.n_classes) is int and type(from_numpy.image_height) is int
    assert from_numpy.scales == SSD300_VOC.scales and from_numpy.steps == SSD300_VOC.steps
    from_range = dataclasses.replace(SSD300_VOC, scales=None, min_scale=np.float32(0.2), max_scale=np.float32(0.9))
    assert type(from_range.min_scale) is float


@pytest.mark.parametrize("name", ["SSD300_VOC", "SSD300_COCO", "SSD512_VOC", "SSD_SMALL_SHAPES"])
def test_presets_round_trip_through_json(name):
    import json

    from ssd_lib import config as configs

    config = getattr(configs, name)
    text = config.to_json()
    assert json.loads(text)["n_classes"] == config.n_classes
    again = SSDConfig.from_json(text)
    assert again == config and again.to_json() == text
    assert SSDConfig.from_dict(config.to_dict()) == config


def test_config_json_keeps_a_non_square_layout_and_min_max_scales():
    config = SSDConfig(image_height=200, image_width=400, n_classes=2, feature_map_sizes=[(10, 20), (5, 10)],
                       aspect_ratios=[[1.0], [1.0, 2.0]], min_scale=0.2, max_scale=0.6, offsets=[(0.5, 0.25), 0.5],
                       class_names=["a", "b"])  # fmt: skip
    again = SSDConfig.from_json(config.to_json())
    assert again == config and again.steps == ((20.0, 20.0), (40.0, 40.0)) and again.class_names == ("a", "b")


def test_config_from_json_names_what_is_wrong():
    with pytest.raises(ValueError, match="SSDConfig: not valid JSON"):
        SSDConfig.from_json("{")
    with pytest.raises(ValueError, match="SSDConfig: expected a JSON object, got list"):
        SSDConfig.from_json("[]")
    with pytest.raises(ValueError, match=r"SSDConfig: unknown field\(s\) \['n_class'\]"):
        SSDConfig.from_dict({**SSD300_VOC.to_dict(), "n_class": 3})
    with pytest.raises(ValueError, match="SSDConfig.n_classes: must be a positive integer"):
        SSDConfig.from_dict({**SSD300_VOC.to_dict(), "n_classes": 0})
