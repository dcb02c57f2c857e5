"""Tests of the SSD networks (vgg_ssd, small_ssd, model_layers, prediction_heads, vgg16_imagenet,
receptive_fields): shapes, anchor order, L2 normalization, VGG16 conversion, receptive
fields, parameter counts, and a forward pass under JAX."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from ssd_lib.anchors import anchor_metadata, generate_anchors  # noqa: E402
from ssd_lib.config import IMAGENET_MEAN_RGB, SSD300_VOC, SSD512_VOC, SSD_SMALL_SHAPES, SSDConfig  # noqa: E402
from ssd_lib.model_layers import L2Normalization, Preprocess  # noqa: E402
from ssd_lib.prediction_heads import feature_maps, prediction_heads, source_layer_names  # noqa: E402
from ssd_lib.receptive_fields import ReceptiveField, _layer_geometry, receptive_fields  # noqa: E402
from ssd_lib.small_ssd import build_small_ssd  # noqa: E402
from ssd_lib.vgg16_imagenet import VGG16_WEIGHTS_FILE, load_vgg16_imagenet  # noqa: E402
from ssd_lib.vgg_ssd import build_ssd300, build_ssd512  # noqa: E402
from jax_subprocess import jax_environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ssd300():
    keras.utils.set_random_seed(0)
    return build_ssd300(SSD300_VOC)


@pytest.fixture(scope="module")
def small_ssd():
    keras.utils.set_random_seed(0)
    return build_small_ssd(SSD_SMALL_SHAPES)


# ----------------------------------------------------------------------------- shapes and order
def test_ssd300_output_shape_and_forward_pass(ssd300):
    assert ssd300.input_shape == (None, 300, 300, 3)
    assert ssd300.output_shape == (None, 8732, 20 + 1 + 4)
    images = np.random.default_rng(0).uniform(0, 255, (2, 300, 300, 3)).astype("float32")
    output = np.asarray(ssd300(images))
    assert output.shape == (2, 8732, 25)
    assert output.dtype == np.float32
    assert np.isfinite(output).all()


def test_ssd512_output_shape():
    model = build_ssd512(SSD512_VOC)
    assert model.output_shape == (None, 24564, 25)
    feature_maps = [model.get_layer(name).output.shape[1:3] for name in source_layer_names(model)]
    assert feature_maps == [(64, 64), (32, 32), (16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]


def test_small_ssd_shape_and_size(small_ssd):
    height, width = SSD_SMALL_SHAPES.image_size
    assert SSD_SMALL_SHAPES.class_names == ("circle", "square", "triangle", "bar")
    assert small_ssd.input_shape == (None, height, width, 3)
    assert small_ssd.output_shape == (None, SSD_SMALL_SHAPES.n_anchors, 4 + 1 + 4)
    assert 200_000 <= small_ssd.count_params() <= 2_000_000
    output = np.asarray(small_ssd(np.zeros((1, height, width, 3), "float32"), training=False))
    assert output.shape == (1, SSD_SMALL_SHAPES.n_anchors, 9)


def test_small_ssd_width_multiplier_and_other_layouts():
    narrow = build_small_ssd(SSD_SMALL_SHAPES, width_multiplier=0.5)
    wide = build_small_ssd(SSD_SMALL_SHAPES, width_multiplier=1.5)
    assert narrow.count_params() < build_small_ssd(SSD_SMALL_SHAPES).count_params() < wide.count_params()
    # Other layouts: the network follows the config.
    for size, maps in ((128, (16, 8, 4, 2)), (160, (20, 10, 5, 3, 1)), (96, ((12, 12), (6, 6), (4, 4)))):
        config = _small_layout(size, maps)
        model = build_small_ssd(config)
        assert model.output_shape == (None, config.n_anchors, 9)
        assert [tuple(model.get_layer(name).output.shape[1:3]) for name in source_layer_names(model)] == \
            list(config.feature_map_sizes)


def _small_layout(size, feature_map_sizes):
    """A square shapes layout with the given feature maps (independent of the tuned preset)."""
    n_layers = len(feature_map_sizes)
    return SSDConfig(image_height=size, image_width=size, n_classes=4, feature_map_sizes=feature_map_sizes,
                     aspect_ratios=((1.0, 2.0, 0.5),) * n_layers, min_scale=0.1, max_scale=0.9)  # fmt: skip


def _position_coding_sources(config):
    """Inputs whose 4 channels hold (row, col, layer, 1) at every cell of every source."""
    inputs, values = [], []
    for k, (rows, cols) in enumerate(config.feature_map_sizes):
        inputs.append(keras.Input(shape=(rows, cols, 4)))
        row, col = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        values.append(np.stack([row, col, np.full_like(row, k), np.ones_like(row)], -1)[None].astype("float32"))
    return inputs, values


def test_prediction_heads_output_order_equals_anchor_metadata():
    # Non-square maps and different numbers of boxes per layer, 3 classes (4 class channels).
    config = SSDConfig(
        image_height=64, image_width=96, n_classes=3,
        feature_map_sizes=((4, 3), (2, 5), (1, 1)),
        aspect_ratios=((1.0, 2.0), (1.0, 2.0, 0.5, 3.0), (1.0,)),
        scales=(0.2, 0.4, 0.6, 0.8),
    )  # fmt: skip
    inputs, values = _position_coding_sources(config)
    model = keras.Model(inputs, prediction_heads(inputs, config, l2_regularization=0))
    # Hand-set heads: output channel (box b, slot j) copies row / col / layer from the centre tap
    # for j = 0, 1, 2, and its bias is b for j = 3, in both the class (4 slots) and box head.
    for k in range(config.n_layers):
        n_boxes = config.boxes_per_cell(k)
        for head, n_slots in ((f"class_head_{k}", config.n_classes + 1), (f"box_head_{k}", 4)):
            kernel = np.zeros((3, 3, 4, n_boxes * n_slots), "float32")
            bias = np.zeros(n_boxes * n_slots, "float32")
            for box in range(n_boxes):
                for slot in range(3):
                    kernel[1, 1, slot, box * n_slots + slot] = 1.0
                bias[box * n_slots + 3] = box
            model.get_layer(head).set_weights([kernel, bias])
    output = np.asarray(model(values))[0]  # (n_anchors, 4 + 4)
    metadata = anchor_metadata(config)
    expected = np.stack([metadata["row"], metadata["col"], metadata["layer"], metadata["box"]], -1)
    assert output.shape == (config.n_anchors, config.n_classes + 1 + 4) == (len(generate_anchors(config)), 8)
    np.testing.assert_array_equal(output[:, :4], expected)  # class logits part
    np.testing.assert_array_equal(output[:, 4:], expected)  # box offsets part


def test_ssd300_layer_and_box_order_equals_anchor_metadata(ssd300):
    # Zero kernels, bias = 100 * layer + box: every output then names its layer and box.
    originals = {}
    try:
        for k in range(SSD300_VOC.n_layers):
            n_boxes = SSD300_VOC.boxes_per_cell(k)
            for head, n_slots in ((f"class_head_{k}", 21), (f"box_head_{k}", 4)):
                layer = ssd300.get_layer(head)
                originals[head] = layer.get_weights()
                kernel = np.zeros_like(originals[head][0])
                bias = np.repeat(100.0 * k + np.arange(n_boxes), n_slots).astype("float32")
                layer.set_weights([kernel, bias])
        output = np.asarray(ssd300(np.zeros((1, 300, 300, 3), "float32")))[0]
    finally:
        for head, weights in originals.items():
            ssd300.get_layer(head).set_weights(weights)
    metadata = anchor_metadata(SSD300_VOC)
    expected = 100.0 * metadata["layer"] + metadata["box"]
    np.testing.assert_array_equal(output, np.repeat(expected[:, None], 25, axis=1))


def test_source_feature_maps_equal_config(ssd300):
    names = source_layer_names(ssd300)
    assert names == ["conv4_3_norm", "fc7", "conv6_2", "conv7_2", "conv8_2", "conv9_2"]
    sizes = [tuple(ssd300.get_layer(name).output.shape[1:3]) for name in names]
    assert sizes == list(SSD300_VOC.feature_map_sizes)
    channels = [ssd300.get_layer(name).output.shape[3] for name in names]
    assert channels == [512, 1024, 512, 256, 256, 256]


def test_source_layers_before_normalization_and_feature_maps(small_ssd):
    assert source_layer_names(small_ssd) == source_layer_names(small_ssd, before_normalization=True)
    inputs = keras.Input((8, 8, 3))
    conv = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    heads = prediction_heads([L2Normalization(name="norm")(conv)], _one_layer_config(), 0)
    model = keras.Model(inputs, heads)
    assert source_layer_names(model) == ["norm"]
    assert source_layer_names(model, before_normalization=True) == ["conv"]
    images = np.random.default_rng(0).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    raw, normalized = feature_maps(model, images, ["conv", "norm"])
    assert raw.shape == normalized.shape == (2, 8, 8, 4)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=-1), 20.0, rtol=1e-4)
    np.testing.assert_allclose(normalized, 20 * raw / np.linalg.norm(raw, axis=-1, keepdims=True), rtol=1e-4)


def _one_layer_config():
    return SSDConfig(image_height=8, image_width=8, n_classes=2, feature_map_sizes=(8,),
                     aspect_ratios=((1.0,),), scales=(0.2, 0.4))  # fmt: skip


def test_config_that_does_not_fit_the_architecture_raises():
    wrong_maps = dataclasses.replace(SSD300_VOC, feature_map_sizes=(38, 19, 10, 5, 3, 2), steps=None)
    with pytest.raises(ValueError, match=r"feature_map_sizes\[5\] = \(2, 2\).*1x1"):
        build_ssd300(wrong_maps)
    with pytest.raises(ValueError, match="7 predictor layers"):
        build_ssd300(dataclasses.replace(SSD512_VOC, image_height=300, image_width=300, steps=None))
    with pytest.raises(ValueError, match=r"feature_map_sizes\[2\] = \(5, 5\) must be half"):
        build_small_ssd(_small_layout(192, (24, 12, 5, 3, 1)))
    with pytest.raises(ValueError, match="power of 2"):
        build_small_ssd(_small_layout(192, (20, 10, 5, 3, 1)))
    with pytest.raises(ValueError, match="power of 2"):
        build_small_ssd(_small_layout(192, (192, 96)))


# --------------------------------------------------------------------- preprocessing and L2 norm
def test_preprocess_caffe_convention_and_scaled_variant():
    pixel = np.array([[[[200.0, 100.0, 50.0]]]], "float32")  # one RGB pixel
    caffe = np.asarray(Preprocess()(pixel))[0, 0, 0]
    np.testing.assert_allclose(caffe, [50 - 103.94, 100 - 116.78, 200 - 123.68], rtol=1e-6)
    scaled = np.asarray(Preprocess(mean=(127.5,) * 3, scale=1 / 127.5, to_bgr=False)(pixel))[0, 0, 0]
    np.testing.assert_allclose(scaled, [(200 - 127.5) / 127.5, (100 - 127.5) / 127.5, (50 - 127.5) / 127.5], rtol=1e-6)
    layer = Preprocess.from_config(Preprocess(scale=2.0, name="p").get_config())
    assert (layer.mean, layer.scale, layer.to_bgr) == (IMAGENET_MEAN_RGB, 2.0, True)
    with pytest.raises(ValueError, match="Preprocess.mean"):
        Preprocess(mean=(1.0, 2.0))


def test_preprocess_is_the_first_layer_of_every_model(ssd300, small_ssd):
    assert isinstance(ssd300.layers[1], Preprocess) and ssd300.layers[1].to_bgr
    assert isinstance(small_ssd.layers[1], Preprocess) and not small_ssd.layers[1].to_bgr


def test_l2_normalization_scale_init_20_and_learnable(ssd300):
    norm = ssd300.get_layer("conv4_3_norm")
    assert isinstance(norm, L2Normalization)
    np.testing.assert_array_equal(np.asarray(norm.gamma), np.full(512, 20.0))
    assert any(weight is norm.gamma for weight in ssd300.trainable_weights)
    # The output's per-position norm equals gamma (20) for any input; the gradient reaches gamma.
    layer = L2Normalization()
    features = np.random.default_rng(0).normal(size=(2, 5, 4, 8)).astype("float32") * 300
    output = np.asarray(layer(features))
    np.testing.assert_allclose(np.linalg.norm(output, axis=-1), 20.0, rtol=1e-5)
    np.testing.assert_allclose(output / 20.0, features / np.linalg.norm(features, axis=-1, keepdims=True), rtol=1e-5)
    inputs = keras.Input((5, 4, 8))
    trainer = keras.Model(inputs, L2Normalization()(inputs))
    trainer.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    trainer.train_on_batch(features, np.zeros_like(features))
    assert not np.allclose(np.asarray(trainer.layers[1].gamma), 20.0)


def test_l2_normalization_does_not_overflow_in_float16():
    layer = L2Normalization(dtype="mixed_float16")
    features = np.full((1, 2, 2, 512), 300.0, "float16")  # sum of squares 4.6e7 > float16 max
    output = np.asarray(layer(features))
    assert output.dtype == np.float16
    np.testing.assert_allclose(output.astype("float32"), 20.0 / np.sqrt(512), rtol=1e-3)


def test_small_model_saves_and_loads_with_its_custom_layers(small_ssd, tmp_path):
    path = tmp_path / "small.keras"
    small_ssd.save(path)
    loaded = keras.saving.load_model(path)
    images = np.random.default_rng(0).uniform(0, 255, (1, *SSD_SMALL_SHAPES.image_size, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(loaded(images)), np.asarray(small_ssd(images)), rtol=1e-5, atol=1e-5)
    assert isinstance(loaded.get_layer("preprocess"), Preprocess)


def test_mixed_precision_model_outputs_float32():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_small_ssd(SSD_SMALL_SHAPES)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.get_layer("class_head_0").compute_dtype == "float16"
    assert model.output.dtype == "float32"


# ---------------------------------------------------------------------------- parameter counts
def _conv_parameters(kernel, in_channels, out_channels):
    return kernel * kernel * in_channels * out_channels + out_channels


def test_ssd300_parameter_count_by_hand(ssd300):
    vgg = sum(
        _conv_parameters(3, c_in, c_out)
        for c_in, c_out in [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
                            (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    )  # fmt: skip
    fc = _conv_parameters(3, 512, 1024) + _conv_parameters(1, 1024, 1024)
    extras = (_conv_parameters(1, 1024, 256) + _conv_parameters(3, 256, 512)
              + _conv_parameters(1, 512, 128) + _conv_parameters(3, 128, 256)
              + 2 * (_conv_parameters(1, 256, 128) + _conv_parameters(3, 128, 256)))  # fmt: skip
    heads = sum(
        _conv_parameters(3, channels, boxes * (21 + 4))
        for channels, boxes in zip([512, 1024, 512, 256, 256, 256], [4, 6, 6, 6, 4, 4])
    )
    l2_scale = 512
    assert vgg == 14_714_688  # VGG16 without its top, a well-known figure
    assert ssd300.count_params() == vgg + fc + extras + heads + l2_scale == 26_285_486


# --------------------------------------------------------------------------- VGG16 conversion
@pytest.fixture(scope="module")
def random_vgg16():
    keras.utils.set_random_seed(1)
    return keras.applications.VGG16(weights=None, include_top=True)


def test_load_vgg16_copies_conv_and_subsamples_fc(ssd300, random_vgg16):
    vgg = random_vgg16
    load_vgg16_imagenet(ssd300, vgg)
    for block, n_convs, _ in [(1, 2, 0), (2, 2, 0), (3, 3, 0), (4, 3, 0), (5, 3, 0)]:
        for index in range(1, n_convs + 1):
            for ours, theirs in zip(ssd300.get_layer(f"conv{block}_{index}").get_weights(),
                                    vgg.get_layer(f"block{block}_conv{index}").get_weights()):  # fmt: skip
                np.testing.assert_array_equal(ours, theirs)
    fc1_kernel, fc1_bias = vgg.get_layer("fc1").get_weights()
    fc2_kernel, fc2_bias = vgg.get_layer("fc2").get_weights()
    fc6_kernel, fc6_bias = ssd300.get_layer("fc6").get_weights()
    fc7_kernel, fc7_bias = ssd300.get_layer("fc7").get_weights()
    assert fc6_kernel.shape == (3, 3, 512, 1024) and fc7_kernel.shape == (1, 1, 1024, 1024)
    # Oracle: the flattened pool5 index of (row, col, channel) is (row * 7 + col) * 512 + channel.
    rng = np.random.default_rng(0)
    for i, j, channel, out in zip(*(rng.integers(0, n, 200) for n in (3, 3, 512, 1024))):
        assert fc6_kernel[i, j, channel, out] == fc1_kernel[(3 * i * 7 + 3 * j) * 512 + channel, 4 * out]
    for c_in, out in zip(rng.integers(0, 1024, 200), rng.integers(0, 1024, 200)):
        assert fc7_kernel[0, 0, c_in, out] == fc2_kernel[4 * c_in, 4 * out]
    np.testing.assert_array_equal(fc6_bias, fc1_bias[::4])
    np.testing.assert_array_equal(fc7_bias, fc2_bias[::4])


def test_keras_flatten_order_is_what_the_fc6_reshape_assumes():
    # The reshape (25088,) -> (7, 7, 512) is only right if Flatten is row-major over (row, col, c).
    pool5 = np.random.default_rng(0).normal(size=(1, 7, 7, 512)).astype("float32")
    flat = np.asarray(layers.Flatten()(pool5))[0]
    assert flat[(2 * 7 + 5) * 512 + 17] == pool5[0, 2, 5, 17]
    np.testing.assert_array_equal(flat, pool5.reshape(-1))


def test_load_vgg16_offline_message_names_the_file_and_folder(ssd300, monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.applications, "VGG16", offline)
    with pytest.raises(RuntimeError) as error:
        load_vgg16_imagenet(ssd300)
    message = str(error.value)
    assert VGG16_WEIGHTS_FILE in message and "vgg16_weights_tf_dim_ordering_tf_kernels.h5" in message
    assert os.path.join(".keras", "models") in message
    assert "URL fetch failure" in message


def test_load_vgg16_without_top_raises(ssd300):
    no_top = keras.applications.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="include_top=True"):
        load_vgg16_imagenet(ssd300, no_top)


# ----------------------------------------------------------------------------- receptive fields
def test_receptive_fields_of_ssd300(ssd300):
    fields = receptive_fields(ssd300)
    assert list(fields) == source_layer_names(ssd300)
    # conv4_3 of VGG16 sees 92 px; pool5 228, fc6 adds (13 - 1) * 16 = 192 -> 420.
    assert [f.size for f in fields.values()] == [92, 420, 452, 516, 644, 772]
    assert [f.jump for f in fields.values()] == [8, 16, 32, 64, 64, 64]
    # The first cells of conv4_3 and fc7 are centred where the anchors are (offset 0.5 * step).
    assert fields["conv4_3_norm"].start == 0.5 * SSD300_VOC.steps[0][1]
    assert fields["fc7"].start == 0.5 * SSD300_VOC.steps[1][1]


def _reference_receptive_field(model, name):
    """Readable oracle: track the input-pixel interval [lo, hi] of cell 0 and cell 1 of ``name``."""
    chain = []
    layer = model.get_layer(name)
    while not isinstance(layer, keras.layers.InputLayer):
        chain.append(layer)
        layer = layer.input._keras_history.operation
    # Walk down from cell 0 and cell 1 of the output to input pixel intervals.
    intervals = [(0.0, 0.0), (1.0, 1.0)]  # (first, last) index in the current layer's input grid
    for layer in chain:
        geometry = _layer_geometry(layer, layer.input.shape[2])
        if geometry is None:
            continue
        kernel, stride, left = geometry
        intervals = [(first * stride - left, last * stride - left + kernel - 1) for first, last in intervals]
    (first0, last0), (first1, _) = intervals
    return last0 - first0 + 1, first1 - first0, (first0 + last0 + 1) / 2


def test_receptive_fields_match_a_reference_on_a_hand_built_chain():
    inputs = keras.Input((40, 40, 3))
    x = layers.Conv2D(2, 3, padding="valid", name="a")(inputs)  # size 3, jump 1, start 1.5
    x = layers.MaxPooling2D(2, name="b")(x)  # size 4, jump 2, start 2.0
    x = layers.ZeroPadding2D(1, name="c")(x)  # start 0.0
    x = layers.Conv2D(2, 3, dilation_rate=2, padding="valid", name="d")(x)  # size 12, jump 2, start 4.0
    x = layers.BatchNormalization(name="e")(x)
    x = layers.Conv2D(2, 3, strides=2, padding="same", name="f")(x)
    model = keras.Model(inputs, x)
    fields = receptive_fields(model, ["a", "b", "c", "d", "e", "f"])
    assert fields["a"] == ReceptiveField(size=3, jump=1, start=1.5)
    assert fields["b"] == ReceptiveField(size=4, jump=2, start=2.0)
    assert fields["c"] == ReceptiveField(size=4, jump=2, start=0.0)
    assert fields["d"] == ReceptiveField(size=12, jump=2, start=4.0) == fields["e"]
    # f: 17 -> 9 cells with stride 2, "same" pads 2 in total, 1 on the left: centre stays.
    assert fields["f"] == ReceptiveField(size=16, jump=4, start=4.0)
    for name, field in fields.items():
        assert (field.size, field.jump, field.start) == _reference_receptive_field(model, name)


def test_receptive_fields_of_the_small_model_against_the_reference(small_ssd):
    for name, field in receptive_fields(small_ssd).items():
        assert (field.size, field.jump, field.start) == _reference_receptive_field(small_ssd, name)


def test_receptive_field_corners_and_non_square_fields():
    field = ReceptiveField(size=92, jump=8, start=4.0)
    np.testing.assert_array_equal(field.corners(0, 0), [-42.0, -42.0, 50.0, 50.0])
    np.testing.assert_array_equal(field.corners(row=2, col=1), [12 - 46, 20 - 46, 12 + 46, 20 + 46])
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, layers.Conv2D(2, (3, 5), name="wide")(inputs))
    with pytest.raises(ValueError, match="different fields along y"):
        receptive_fields(model, ["wide"])


def test_receptive_fields_reject_branches():
    inputs = keras.Input((8, 8, 3))
    merged = layers.Add(name="add")([layers.Conv2D(3, 3, padding="same")(inputs), inputs])
    model = keras.Model(inputs, layers.Conv2D(3, 3, name="after")(merged))
    with pytest.raises(ValueError, match="'add' has several inputs"):
        receptive_fields(model, ["after"])


# ------------------------------------------------------------------------------- other backends
def _backend_available(module):
    return subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0


@pytest.mark.parametrize("backend,module", [("jax", "jax"), ("torch", "torch")])
def test_ssd300_builds_and_runs_under_other_backends(backend, module):
    if not _backend_available(module):
        pytest.skip(f"{module} is not installed in this environment")
    script = (
        "import numpy as np, keras\n"
        "from ssd_lib.vgg_ssd import build_ssd300\n"
        "assert keras.backend.backend() == %r\n"
        "model = build_ssd300()\n"
        "output = keras.ops.convert_to_numpy(model(np.zeros((1, 300, 300, 3), 'float32')))\n"
        "assert output.shape == (1, 8732, 25) and np.isfinite(output).all()\n"
        "print('ok', model.count_params())\n"
    ) % backend
    environment = jax_environment() if backend == "jax" else {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment,
                            cwd=REPO, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok 26285486" in result.stdout
