"""Export: every format, loaded back, gives predict's detections; bad runs and options are one line.
(A run the training command wrote is exported in test_commands.py.)"""

import json
import shutil
import zipfile

import numpy as np
import pytest

from ssd_lib import export
from ssd_lib.datasets.shapes import generate_shapes_image
from ssd_lib.inference import MODEL_FILE, SHIPPED_MODELS_DIR, load_run, load_shipped_model, predict, prepare_images

TOP_K = 50
EXTRA = "ONNX export needs the export extra: pip install -e '.[export]'"


def two_images() -> list[np.ndarray]:
    """Two shapes images of different sizes (so the scaling back to each image's pixels is tested)."""
    return [generate_shapes_image(np.random.default_rng(seed), [1, 2, 3, 4], size)[0]
            for seed, size in ((1, 300), (2, 256))]  # fmt: skip


@pytest.fixture(scope="module")
def shipped():
    """The shipped small model, its config and recorded facts, two shapes images of different sizes."""
    model, config, info = load_shipped_model("small_ssd_shapes")
    return model, config, info, two_images()


def make_run(folder, config, info, weights=True):
    """A run folder as training leaves it: model.json naming the architecture, final weights."""
    folder.mkdir()
    description = {"model": "small", "width_multiplier": info["width_multiplier"], "config": config.to_dict()}
    (folder / MODEL_FILE).write_text(json.dumps(description))
    if weights:
        shutil.copy(SHIPPED_MODELS_DIR / "small_ssd_shapes.weights.h5", folder / "final.weights.h5")
    return folder


@pytest.fixture(scope="module")
def exported(shipped, tmp_path_factory):
    """``exported(format)``: the path written by ``python -m ssd_lib.export`` (once per format)."""
    _, config, info, _ = shipped
    run = make_run(tmp_path_factory.mktemp("export") / "run", config, info)

    def export_once(format):
        out = run / export.FORMATS[format]
        if not out.exists():
            assert export.main(["--run", str(run), "--format", format, "--top-k", str(TOP_K)]) == 0
        return out

    return export_once


@pytest.mark.parametrize("format", ["keras", "saved_model", "tflite", "onnx"])
def test_exported_model_gives_predicts_detections(format, shipped, exported):
    """Command line export -> load the file back -> the detections of ``predict`` on two images.

    Tolerance: the exported model decodes in float32 and its NMS compares IoUs of class-shifted
    boxes (another rounding than decode_detections' float64 IoU); with these images' distinct
    scores the same detections come out, scores equal to 1e-5 and boxes to 1e-2 pixels (after
    scaling to the original image, which multiplies float32 rounding by up to 300 / 192).
    """
    skip_onnx_without_the_extra(format)
    model, config, _, images = shipped
    expected = assert_same_detections(export.load_exported(exported(format), format), model, config, images)
    assert all(len(detections) >= 3 for detections in expected)  # the shapes are found


def skip_onnx_without_the_extra(format: str) -> None:
    if format == "onnx":
        pytest.importorskip("tf2onnx", reason=EXTRA)
        pytest.importorskip("onnxruntime", reason=EXTRA)


def assert_same_detections(exported_model, model, config, images) -> list[np.ndarray]:
    """``exported_model`` (:func:`ssd_lib.export.load_exported`) gives ``predict(model)``'s
    detections on ``images``, in the same order; returns ``predict``'s."""
    inputs, sizes = prepare_images(images, config)
    rows = exported_model(inputs)
    assert rows.shape == (len(images), TOP_K, 6) and rows.dtype == np.float32
    expected = predict(model, images, config, top_k=TOP_K, nms_max_output_size=TOP_K)
    scale = np.tile(sizes / [config.image_width, config.image_height], 2)  # (images, 4)
    for image, want in enumerate(expected):
        got = rows[image][rows[image, :, 0] > 0]
        assert np.all(rows[image, len(got) :] == 0)  # padding rows after the detections
        np.testing.assert_array_equal(got[:, 0], want[:, 0])
        np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=1e-5)
        np.testing.assert_allclose(got[:, 2:] * scale[image], want[:, 2:], atol=1e-2)
    return expected


def test_exported_keras_model_records_its_config(shipped, exported):
    """The .keras file holds the SSDConfig as JSON (class names included), not a repr."""
    saved = json.loads(zipfile.ZipFile(exported("keras")).read("config.json"))
    layers = {layer["class_name"]: layer for layer in saved["config"]["layers"]}
    decode = layers["DecodeDetections"]["config"]
    assert decode["config"]["class_names"] == list(shipped[1].class_names)
    assert decode["top_k"] == TOP_K


def test_tflite_export_has_builtin_ops_only(exported, capsys):
    """Converted with ``supported_ops = [TFLITE_BUILTINS]`` (a Flex op fails that conversion), and
    the file's ops are builtins: NMS is NON_MAX_SUPPRESSION_V4, no Flex or custom op."""
    import tensorflow as tf

    path = exported("tflite")
    capsys.readouterr()
    tf.lite.experimental.Analyzer.analyze(model_path=str(path))
    report = capsys.readouterr().out
    assert "NON_MAX_SUPPRESSION_V4" in report
    assert "Flex" not in report and "CUSTOM" not in report


def test_load_run_falls_back_to_the_last_checkpoint(shipped, tmp_path):
    """A run stopped before its final evaluation has only checkpoint/model.weights.h5."""
    model, config, info, images = shipped
    run = make_run(tmp_path / "run", config, info, weights=False)
    (run / "checkpoint").mkdir()
    shutil.copy(SHIPPED_MODELS_DIR / "small_ssd_shapes.weights.h5", run / "checkpoint" / "model.weights.h5")
    loaded, loaded_config, _ = load_run(run)
    assert loaded_config == config
    for mine, theirs in zip(loaded.weights, model.weights):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


# ------------------------------------------------------------------------------------ bad inputs
def run_command(argv, capsys):
    status = export.main(argv)
    return status, capsys.readouterr().err.strip()


def test_unknown_format_is_one_line(shipped, tmp_path, capsys):
    status, message = run_command(["--run", str(tmp_path), "--format", "pt"], capsys)
    assert status == 1 and message.count("\n") == 0
    assert "--format 'pt': unknown, choose one of keras, saved_model, tflite, onnx" in message


def test_missing_run_folder_is_one_line(tmp_path, capsys):
    status, message = run_command(["--run", str(tmp_path / "nope"), "--format", "keras"], capsys)
    assert status == 1 and message == f"error: --run {tmp_path / 'nope'}: no such run folder"


def test_folder_without_model_file_is_one_line(tmp_path, capsys):
    status, message = run_command(["--run", str(tmp_path), "--format", "keras"], capsys)
    assert status == 1 and message.count("\n") == 0
    assert message.startswith(f"error: {tmp_path} is not a training run folder (no model.json")


def test_run_without_weights_is_one_line(shipped, tmp_path, capsys):
    run = make_run(tmp_path / "run", shipped[1], shipped[2], weights=False)
    status, message = run_command(["--run", str(run), "--format", "keras"], capsys)
    assert status == 1 and message.count("\n") == 0
    assert f"{run} has no trained weights yet (final.weights.h5 or checkpoint/)" in message
    assert not (run / "model.keras").exists()


@pytest.mark.parametrize("change", ["drop model", "unknown model", "not json"])
def test_bad_model_file_is_one_line(change, shipped, tmp_path, capsys):
    run = make_run(tmp_path / "run", shipped[1], shipped[2])
    path = run / MODEL_FILE
    description = json.loads(path.read_text())
    if change == "drop model":
        del description["model"]
    elif change == "unknown model":
        description["model"] = "yolo"
    path.write_text("{" if change == "not json" else json.dumps(description))
    status, message = run_command(["--run", str(run), "--format", "keras"], capsys)
    assert status == 1 and message.count("\n") == 0
    assert message.startswith(f"error: {path} is not a run's model description")


def test_existing_output_is_not_overwritten(shipped, tmp_path, capsys):
    run = make_run(tmp_path / "run", shipped[1], shipped[2])
    mine = run / "model.tflite"
    mine.write_bytes(b"a user's file")
    status, message = run_command(["--run", str(run), "--format", "tflite"], capsys)
    assert status == 1 and message == f"error: --out {mine}: exists already; remove it or choose another path"
    assert mine.read_bytes() == b"a user's file"


def test_bad_decoding_option_is_one_line(shipped, tmp_path, capsys):
    run = make_run(tmp_path / "run", shipped[1], shipped[2])
    status, message = run_command(["--run", str(run), "--format", "keras", "--iou", "2"], capsys)
    assert status == 1 and message.count("\n") == 0 and "iou_threshold" in message


def test_other_backend_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export.keras.backend, "backend", lambda: "jax")
    status, message = run_command(["--run", str(tmp_path), "--format", "keras"], capsys)
    assert status == 1
    assert message == "error: export needs the TensorFlow backend of Keras, not 'jax' (unset KERAS_BACKEND)"
