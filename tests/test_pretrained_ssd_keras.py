"""ssd_keras's SSD300 HDF5 weights -> our SSD300; ssd_keras's decoder; convert, save, load.

The fixture file is written here with h5py in the layout of ssd_keras's weight files (Keras 2:
``layer_names`` on the root, ``weight_names`` on each layer group, arrays at
``<layer>/<layer>/kernel:0``), with the layer names and shapes of ssd_keras's
``models/keras_ssd300.py`` (Caffe's names) and random values, so that every array can be found
again in the converted model.
"""

import dataclasses
import json
import logging

import h5py
import numpy as np
import pytest

from ssd_lib.boxes import iou
from ssd_lib.config import SSD300_COCO, SSD300_VOC
from ssd_lib.decoder import decode_all_boxes, class_probabilities, decode_detections
from ssd_lib.pretrained import SOURCES, convert_file, load_if_present, load_pretrained, source_for_file
from ssd_lib.pretrained.cli import main
from ssd_lib.pretrained.finetune import copy_pretrained, finetuning_builder
from ssd_lib.pretrained.from_ssd_keras import SSD_KERAS_DECODING, SSD_KERAS_PREPROCESS, ssd_keras_layer_weights

#: ssd_keras's SSD300 convolutions: (name, kernel size, input channels, filters).
BASE = [("conv1_1", 3, 3, 64), ("conv1_2", 3, 64, 64), ("conv2_1", 3, 64, 128), ("conv2_2", 3, 128, 128),
        ("conv3_1", 3, 128, 256), ("conv3_2", 3, 256, 256), ("conv3_3", 3, 256, 256),
        ("conv4_1", 3, 256, 512), ("conv4_2", 3, 512, 512), ("conv4_3", 3, 512, 512),
        ("conv5_1", 3, 512, 512), ("conv5_2", 3, 512, 512), ("conv5_3", 3, 512, 512),
        ("fc6", 3, 512, 1024), ("fc7", 1, 1024, 1024), ("conv6_1", 1, 1024, 256), ("conv6_2", 3, 256, 512),
        ("conv7_1", 1, 512, 128), ("conv7_2", 3, 128, 256), ("conv8_1", 1, 256, 128), ("conv8_2", 3, 128, 256),
        ("conv9_1", 1, 256, 128), ("conv9_2", 3, 128, 256)]  # fmt: skip
#: Its predictor sources: (name, channels, boxes per cell).
SOURCE_LAYERS = [("conv4_3_norm", 512, 4), ("fc7", 1024, 6), ("conv6_2", 512, 6), ("conv7_2", 256, 6),
                 ("conv8_2", 256, 4), ("conv9_2", 256, 4)]  # fmt: skip


def ssd_keras_arrays(seed=0, n_classes=20) -> dict[str, list[np.ndarray]]:
    """``{ssd_keras layer: [arrays]}`` with random values, in ssd_keras's shapes."""
    rng = np.random.default_rng(seed)
    random = lambda *shape: rng.standard_normal(shape, dtype=np.float32)  # noqa: E731
    layers = {name: [random(k, k, c_in, c_out), random(c_out)] for name, k, c_in, c_out in BASE}
    layers["conv4_3_norm"] = [20 + random(512)]
    for name, channels, boxes in SOURCE_LAYERS:
        layers[f"{name}_mbox_conf"] = [random(3, 3, channels, boxes * (n_classes + 1)), random(boxes * (n_classes + 1))]
        layers[f"{name}_mbox_loc"] = [random(3, 3, channels, boxes * 4), random(boxes * 4)]
    return layers


def write_weights_h5(path, layers, gamma_name="weights_0", full_model=False):
    """Write ``layers`` as Caffe-to-Keras converted weights (caffe_weight_converter's layout:
    ``kernel``/``bias``, and ``weights_0`` for the Normalize layer), or with ``gamma_name`` and
    ``full_model`` as Keras 2's ``model.save`` would (under ``model_weights``)."""
    with h5py.File(path, "w") as file:
        root = file.create_group("model_weights") if full_model else file
        names = ["input_1", *layers]  # a layer without weights, as Keras writes it
        root.attrs["layer_names"] = np.array([name.encode() for name in names])
        root.attrs["backend"], root.attrs["keras_version"] = b"tensorflow", b"2.0.8"
        root.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        for name, arrays in layers.items():
            kinds = [gamma_name] if name == "conv4_3_norm" else ["kernel", "bias"]
            group = root.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/{kind}:0".encode() for kind in kinds])
            for kind, values in zip(kinds, arrays):
                group.create_dataset(f"{name}/{kind}:0", data=values)
    return path


OURS = {**{name: name for name, *_ in BASE}, "conv4_3_norm": "conv4_3_norm",
        **{f"{name}_mbox_conf": f"class_head_{k}" for k, (name, *_) in enumerate(SOURCE_LAYERS)},
        **{f"{name}_mbox_loc": f"box_head_{k}" for k, (name, *_) in enumerate(SOURCE_LAYERS)}}  # fmt: skip


@pytest.fixture(scope="module")
def arrays():
    return ssd_keras_arrays()


@pytest.fixture(scope="module")
def weights_file(arrays, tmp_path_factory):
    return write_weights_h5(tmp_path_factory.mktemp("ssd_keras") / "VGG_VOC0712_SSD_300x300_iter_120000.h5", arrays)


@pytest.fixture(scope="module")
def converted(weights_file):
    return convert_file(weights_file)


def test_every_array_lands_in_its_layer_unchanged(arrays, converted):
    model, config = converted
    assert config is SSD300_VOC and config.class_name(15) == "person"
    for theirs, ours in OURS.items():
        for given, held in zip(arrays[theirs], model.get_layer(ours).get_weights(), strict=True):
            np.testing.assert_array_equal(held, given, err_msg=f"{theirs} -> {ours}")


def test_the_input_is_bgr_minus_the_caffe_mean(arrays, converted):
    """conv1_1's output equals a numpy convolution of the BGR image minus (104, 117, 123)."""
    from ssd_lib.prediction_heads import feature_maps

    model, _ = converted
    image = np.random.default_rng(1).integers(0, 256, (1, 300, 300, 3)).astype(np.float32)
    (conv1_1,) = feature_maps(model, image, ["conv1_1"])
    kernel, bias = arrays["conv1_1"]
    caffe_input = np.pad(image[0, :, :, ::-1] - np.array([104.0, 117.0, 123.0]), ((1, 1), (1, 1), (0, 0)))
    for row, col in [(0, 0), (0, 299), (150, 77), (299, 3)]:
        window = caffe_input[row : row + 3, col : col + 3]  # (3, 3, 3) around the pixel
        expected = np.maximum(np.einsum("hwc,hwcf->f", window, kernel) + bias, 0)
        np.testing.assert_allclose(conv1_1[0, row, col], expected, rtol=1e-4, atol=1e-2)


def test_full_model_files_and_keras_gamma_names_convert_the_same(arrays, tmp_path):
    path = write_weights_h5(tmp_path / "model.h5", arrays, gamma_name="conv4_3_norm_gamma", full_model=True)
    weights = ssd_keras_layer_weights(path)
    np.testing.assert_array_equal(weights["conv4_3_norm"][0], arrays["conv4_3_norm"][0])
    np.testing.assert_array_equal(weights["class_head_5"][0], arrays["conv9_2_mbox_conf"][0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda layers: layers.pop("conv9_2_mbox_loc"), r"layers missing \['conv9_2_mbox_loc'\], unknown \[\]"),
        (lambda layers: layers.update(conv10_1=[np.zeros((1, 1, 256, 128), np.float32), np.zeros(128, np.float32)]),
         r"layers missing \[\], unknown \['conv10_1'\]"),  # an SSD512 file
        (lambda layers: layers["fc7"].__setitem__(1, np.zeros((2, 512), np.float32)),
         r"layer 'fc7' should hold a 4-D kernel and a bias, holds \[\(1, 1, 1024, 1024\), \(2, 512\)\]"),
    ],
    ids=["missing", "unknown", "not-a-bias"],
)
def test_files_that_are_not_ssd_keras_ssd300_are_named(tmp_path, change, message):
    layers = {name: list(values) for name, values in ssd_keras_arrays(n_classes=1).items()}
    change(layers)
    path = write_weights_h5(tmp_path / "other.h5", layers)
    with pytest.raises(ValueError, match=rf"{path}: (not ssd_keras's SSD300: )?{message}"):
        ssd_keras_layer_weights(path)


def test_non_hdf5_and_non_keras_files_are_named(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match=f"{text}: not an HDF5 file"):
        ssd_keras_layer_weights(text)
    bare = tmp_path / "bare.h5"
    h5py.File(bare, "w").close()
    with pytest.raises(ValueError, match=f"{bare}: no 'layer_names' attribute"):
        ssd_keras_layer_weights(bare)


def test_sources_are_found_from_the_file_format(weights_file, tmp_path):
    assert source_for_file(weights_file).name == "ssd-keras-voc"
    assert source_for_file("tests/fixtures/tiny_zip.pth").name == "torchvision-coco"
    assert source_for_file("tests/fixtures/tiny_legacy.pth").name == "torchvision-coco"
    other = tmp_path / "weights.bin"
    other.write_bytes(b"\x00" * 16)
    with pytest.raises(ValueError, match=f"{other}: neither a PyTorch checkpoint"):
        source_for_file(other)
    coco = SOURCES["ssd-keras-voc"].config_for(80)
    assert coco.class_name(1) == "person" and coco.class_name(80) == "toothbrush" and coco.scales[0] == 0.07


# ----------------------------------------------------------------------------- ssd_keras decoding
def ssd_keras_decode(y_pred, config, confidence_threshold=0.01, iou_threshold=0.45, top_k=200):
    """ssd_keras's ``decode_detections`` (ssd_encoder_decoder/ssd_output_decoder.py), as a loop:
    per class, the boxes above the threshold; greedy NMS that takes the best remaining box
    (first on ties) and drops every box with IoU > threshold; then the ``top_k`` best. Boxes are
    decoded from the anchors with the variances and not clipped. Returned in ssd_keras's order:
    class by class, or by score when more than ``top_k``; compare as sets."""
    probabilities = class_probabilities(y_pred, config)  # ssd_keras's model ends with a softmax
    boxes, _ = decode_all_boxes(y_pred, config, clip_boxes=False)
    results = []
    for image in range(len(y_pred)):
        rows = []
        for class_id in range(1, config.n_classes + 1):
            left = np.flatnonzero(probabilities[image, :, class_id] > confidence_threshold)  # anchors
            while len(left):
                best = left[np.argmax(probabilities[image, left, class_id])]  # first maximum
                rows.append([class_id, probabilities[image, best, class_id], *boxes[image, best]])
                left = left[left != best]
                left = left[iou(boxes[image, left], boxes[image, best][None])[:, 0] <= iou_threshold]
        rows = np.array(rows, dtype=np.float32).reshape(-1, 6)
        if len(rows) > top_k:
            rows = rows[np.argsort(-rows[:, 1], kind="stable")[:top_k]]
        results.append(rows)
    return results


@pytest.mark.parametrize("seed", range(3))
def test_decoder_without_clipping_equals_ssd_keras_decode_detections(seed):
    rng = np.random.default_rng(seed)
    y_pred = rng.normal(0, 2.0, (2, SSD300_VOC.n_anchors, 25)).astype(np.float32)
    y_pred[..., 0] += 13.0  # background almost everywhere: a few hundred candidates per image
    y_pred[..., -2:] *= 2.0  # some boxes reach beyond the image
    ours = decode_detections(y_pred, SSD300_VOC, **SSD_KERAS_DECODING)
    theirs = ssd_keras_decode(y_pred, SSD300_VOC)
    assert max(len(rows) for rows in ssd_keras_decode(y_pred, SSD300_VOC, top_k=10**6)) > 200  # top_k cuts
    outside = False
    for image_ours, image_theirs in zip(ours, theirs, strict=True):
        assert len(image_ours) == len(image_theirs)
        image_ours = image_ours[np.lexsort(image_ours[:, [5, 4, 3, 2, 0]].T)]
        image_theirs = image_theirs[np.lexsort(image_theirs[:, [5, 4, 3, 2, 0]].T)]
        np.testing.assert_array_equal(image_ours[:, 0], image_theirs[:, 0])
        np.testing.assert_allclose(image_ours[:, 1:], image_theirs[:, 1:], rtol=1e-6, atol=1e-4)
        outside |= bool((image_ours[:, 2:] < 0).any() or (image_ours[:, 2:] > 300).any())
    assert outside  # the case clipping would have changed is covered


# ------------------------------------------------------------------------- convert, save, load
def test_convert_command_saves_a_model_that_loads_back(weights_file, converted, tmp_path, capsys):
    models = tmp_path / "models"
    assert main(["convert", str(weights_file), "--to", str(models)]) == 0
    assert "ssd-keras-voc.weights.h5 (20 classes)" in capsys.readouterr().out
    info = json.loads((models / "ssd-keras-voc.json").read_text())
    assert info["source"] == "ssd-keras-voc" and info["decoding"]["clip_boxes"] is False
    assert len(info["from_sha256"]) == 64
    model, config = load_pretrained("ssd-keras-voc", models)
    assert config == SSD300_VOC
    for ours in ("conv1_1", "conv4_3_norm", "class_head_3", "box_head_5"):
        for held, expected in zip(model.get_layer(ours).get_weights(), converted[0].get_layer(ours).get_weights()):
            np.testing.assert_array_equal(held, expected)
    # nothing the user made is overwritten without asking
    assert main(["convert", str(weights_file), "--to", str(models)]) == 1
    assert "ssd-keras-voc.weights.h5 exists; choose another --name or pass --overwrite" in capsys.readouterr().err


def test_load_if_present_says_how_to_get_missing_weights(tmp_path, capsys):
    assert load_if_present("ssd-keras-voc", tmp_path) is None
    message = capsys.readouterr().out
    assert "drive.google.com" in message and f"put it at {tmp_path / 'VGG_VOC0712_SSD_300x300_iter_120000.h5'}" in message
    assert load_if_present("torchvision-coco", tmp_path) is None
    assert f"python -m ssd_lib.pretrained download torchvision-coco --to {tmp_path}" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="no pretrained weights 'nonsense'"):
        load_pretrained("nonsense", tmp_path)


def test_load_pretrained_converts_a_downloaded_original_once(weights_file, tmp_path, caplog):
    (tmp_path / weights_file.name).symlink_to(weights_file)
    caplog.set_level(logging.INFO, logger="ssd_lib")
    model, config = load_pretrained("ssd-keras-voc", tmp_path)
    assert "converting" in caplog.text
    assert (tmp_path / "ssd-keras-voc.weights.h5").exists() and (tmp_path / "ssd-keras-voc.json").exists()
    assert model.get_layer("preprocess").to_bgr and model.get_layer("preprocess").mean == (123.0, 117.0, 104.0)


# ------------------------------------------------------------------------------- fine-tuning
def test_finetuning_for_other_classes_keeps_base_and_box_heads(weights_file, arrays, caplog):
    wanted = dataclasses.replace(SSD300_COCO, n_classes=3, class_names=("cat", "dog", "cup"))
    caplog.set_level(logging.INFO, logger="ssd_lib")
    config, build = finetuning_builder(weights_file, wanted)
    assert config == dataclasses.replace(SSD300_VOC, n_classes=3, class_names=("cat", "dog", "cup"))  # its anchors
    model = build(0.0)
    assert [record.getMessage() for record in caplog.records] == [f"{weights_file}: base network and box heads copied (30 layers); class heads "
                        "re-initialised for 3 classes (the weights have 20)"]  # fmt: skip
    for theirs, ours in OURS.items():
        held = model.get_layer(ours).get_weights()
        if ours.startswith("class_head_"):  # (3, 3, channels, boxes * 4 outputs): freshly initialised
            assert held[0].shape[-1] == arrays[theirs][0].shape[-1] // 21 * 4
        else:
            for given, value in zip(arrays[theirs], held, strict=True):
                np.testing.assert_array_equal(value, given, err_msg=ours)
    assert model.get_layer("preprocess").to_bgr  # the weights' input convention


def test_train_command_starts_from_the_weights(weights_file, tmp_path, monkeypatch, capsys, caplog):
    from ssd_lib import train as command
    from ssd_lib.config import SHAPES_CLASSES
    from ssd_lib.datasets import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", 2, 1, 0, image_size=96)
    runs = []
    monkeypatch.setattr(command, "train_and_evaluate", lambda build, config, *args, **kwargs: runs.append(
        (build(), config)))  # fmt: skip
    base = ["--preset", "ssd300_shapes", "--data", str(data), "--out", str(tmp_path / "run")]
    assert command.main([*base, "--weights", str(weights_file)]) == 0
    model, config = runs[0]
    assert config == dataclasses.replace(SSD300_VOC, n_classes=4, class_names=SHAPES_CLASSES)
    assert "class heads re-initialised for 4 classes (the weights have 20)" in caplog.text
    assert model.get_layer("class_head_0").get_weights()[0].shape[-1] == 4 * 5
    # one clear line for what cannot work
    for extra, message in ((["--vgg16-imagenet"], "choose one starting point"),
                           ([], "no pretrained weights 'nowhere'")):  # fmt: skip
        weights = str(weights_file) if extra else "nowhere"
        assert command.main([*base, "--weights", weights, *extra]) == 1
        assert message in capsys.readouterr().err
    assert command.main([*base[:1], "small_shapes", *base[2:], "--weights", str(weights_file)]) == 1
    assert "the pretrained weights are SSD300s; preset 'small_shapes' is not" in capsys.readouterr().err


def tiny_model(preprocess, kernel_shape):
    import keras

    from ssd_lib.model_layers import Preprocess

    images = keras.Input((8, 8, 3))
    x = Preprocess(name="preprocess", **preprocess)(images)
    return keras.Model(images, keras.layers.Conv2D(kernel_shape[-1], kernel_shape[0], name="conv1_1")(x))


def test_finetuning_refuses_another_input_convention_or_architecture(converted):
    pretrained, pretrained_config = converted
    with pytest.raises(ValueError, match=r"w.h5: the model's input normalisation .* differs from the weights'"):
        copy_pretrained(tiny_model({}, (3, 3, 3, 64)), SSD300_VOC, pretrained, pretrained_config, "w.h5")
    wrong = tiny_model(SSD_KERAS_PREPROCESS, (1, 1, 3, 64))
    with pytest.raises(ValueError, match=r"w.h5: layer 'conv1_1' has shapes \[\(3, 3, 3, 64\), \(64,\)\], "
                                         r"the model expects \[\(1, 1, 3, 64\), \(64,\)\]"):
        copy_pretrained(wrong, SSD300_VOC, pretrained, pretrained_config, "w.h5")
