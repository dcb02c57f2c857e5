"""Export a trained run as a deployable model, decoding and NMS inside.

``python -m ssd_lib.export --run RUN --format {keras,saved_model,tflite,onnx} [--out PATH]``
(console script ``ssd-export``).

The exported model (:func:`deployable_model`):

- **input** ``images``: ``(batch, H, W, 3)`` **uint8** RGB at the model's input size
  (``config.image_height`` x ``config.image_width``); the caller resizes (as
  :func:`ssd_lib.inference.prepare_images` does: a plain resize, no letterbox). Any batch size.
- **output**: ``(batch, top_k, 6)`` float32 rows ``[class_id, score, xmin, ymin, xmax, ymax]``,
  boxes as pixel corners **of the model input** (multiply x by ``original_width / W`` and y by
  ``original_height / H`` for the original image), by score descending; ``class_id`` 1..n_classes
  (the names are ``config.class_names``, stored with the ``.keras`` model and in the run's
  ``model.json``); rows past an image's detections are zeros, so its count is
  ``(rows[:, 0] > 0).sum()``.
- decoding as :func:`ssd_lib.decoder.decode_detections` with the evaluation's defaults
  (confidence 0.01, IoU 0.45, top-k 200; ``--confidence``, ``--iou``, ``--top-k`` change them):
  an application filters by score for display.

Formats: ``keras`` (a ``.keras`` file, :func:`keras.saving.load_model` after ``import
ssd_lib.export``, which registers ssd_lib's layers with Keras), ``saved_model`` (a TensorFlow
SavedModel folder, signature ``serve``), ``tflite`` (TFLite builtin ops only, no Flex delegate
needed), ``onnx`` (with the ``export`` extra: ``pip install ssd-tutorial[export]``; run with
onnxruntime).
:func:`load_exported` loads any of them back as a function of a uint8 batch.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import keras
import numpy as np

from .config import SSDConfig
from .detection_layer import detection_layer
from .inference import load_run
from .status import show_status

__all__ = ["FORMATS", "ExportError", "deployable_model", "export_model", "load_exported", "main"]

#: Export formats and the default file name of each (in the run folder).
FORMATS = {"keras": "model.keras", "saved_model": "saved_model", "tflite": "model.tflite", "onnx": "model.onnx"}
class ExportError(ValueError):
    """A run folder or an export target that cannot be used (the message names it)."""


def deployable_model(model: keras.Model, config: SSDConfig, confidence_threshold: float = 0.01,
                     iou_threshold: float = 0.45, top_k: int = 200) -> keras.Model:  # fmt: skip
    """``model`` with a uint8 image input and :class:`~ssd_lib.detection_layer.DecodeDetections`
    on its output: ``(batch, H, W, 3)`` uint8 -> ``(batch, top_k, 6)`` detections (module doc)."""
    images = keras.Input((config.image_height, config.image_width, 3), dtype="uint8", name="images")
    decode = detection_layer(config, confidence_threshold, iou_threshold, top_k)
    return keras.Model(images, decode(model(keras.ops.cast(images, "float32"))), name="ssd_deployable")


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ExportError(f"--format {format!r}: unknown, choose one of {', '.join(FORMATS)}")


def export_model(deployable: keras.Model, path, format: str) -> Path:
    """Write a :func:`deployable_model` in ``format`` (a :data:`FORMATS` key) to ``path``.

    Raises:
        ExportError: an unknown format, or ``path`` exists (nothing is overwritten).
        ImportError: ``onnx`` without the ``export`` extra (tf2onnx).
    """
    _check_format(format)
    path = Path(path)
    if path.exists():
        raise ExportError(f"--out {path}: exists already; remove it or choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    if format == "keras":
        deployable.save(path)
    elif format == "saved_model":
        deployable.export(path, format="tf_saved_model", verbose=False)
    elif format == "onnx":
        _require("tf2onnx", "onnx")
        deployable(np.zeros((1, *deployable.input_shape[1:]), np.uint8))  # Keras exports only a called model
        with warnings.catch_warnings():  # Keras's numpy 2 patch of tf2onnx probes np.object
            warnings.simplefilter("ignore", FutureWarning)
            deployable.export(path, format="onnx", verbose=False)
    else:
        path.write_bytes(_tflite_builtins_only(deployable))
    return path


def _tflite_builtins_only(deployable: keras.Model) -> bytes:
    """The TFLite flat buffer of ``deployable``, converted with builtin ops only (no Flex)."""
    import tempfile

    import tensorflow as tf

    with tempfile.TemporaryDirectory() as folder:
        deployable.export(folder, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(folder)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        return converter.convert()


def _require(module: str, format: str) -> None:
    try:
        __import__(module)
    except ImportError:
        raise ImportError(f"--format {format} needs the export extra: pip install 'ssd-tutorial[export]' "
                          f"(no module {module!r})") from None  # fmt: skip


def load_exported(path, format: str):
    """An exported model loaded back: a function ``(batch, H, W, 3)`` uint8 -> ``(batch, top_k, 6)``
    float32 numpy detections (module doc). ``onnx`` needs onnxruntime (the ``export`` extra)."""
    path = str(path)
    if format == "keras":  # this module imported ssd_lib's layers, registering them with Keras
        model = keras.saving.load_model(path)
        return lambda images: keras.ops.convert_to_numpy(model.predict_on_batch(np.asarray(images, np.uint8)))
    if format == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # keep it referenced: its serve function needs its variables
        return lambda images: loaded.serve(np.asarray(images, np.uint8)).numpy()
    if format == "tflite":
        return _tflite_runner(path)
    if format == "onnx":
        _require("onnxruntime", "onnx")
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda images: session.run(None, {name: np.asarray(images, np.uint8)})[0]
    _check_format(format)


def _tflite_runner(path: str):
    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter: "moving to the ai_edge_litert package"
        warnings.simplefilter("ignore", UserWarning)
        interpreter = tf.lite.Interpreter(model_path=path)
    (image_input,), (output,) = interpreter.get_input_details(), interpreter.get_output_details()

    def run(images):
        images = np.asarray(images, np.uint8)
        interpreter.resize_tensor_input(image_input["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(image_input["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(output["index"]).copy()

    return run


def parse_arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ssd_lib.export",
        description="Export a trained run as a deployable model with decoding and NMS inside: uint8 images "
        "(batch, H, W, 3) at the model's size in, (batch, top_k, 6) rows [class_id, score, xmin, ymin, xmax, "
        "ymax] in pixels of the model input out (zero rows = no detection).",
    )  # fmt: skip
    parser.add_argument("--run", required=True, help="run folder of python -m ssd_lib.train")
    parser.add_argument("--format", required=True, help="one of " + ", ".join(FORMATS))
    parser.add_argument("--out", help="file (a folder for saved_model); default: RUN/model.keras, RUN/saved_model, "
                        "RUN/model.tflite or RUN/model.onnx")  # fmt: skip
    parser.add_argument("--confidence", type=float, default=0.01, help="score threshold inside the model")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold inside the model")
    parser.add_argument("--top-k", type=int, default=200, help="detections per image (rows of the output)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.export``; returns the exit status (1 with one ``error:``
    line for a bad run folder, target or option)."""
    show_status()
    arguments = parse_arguments(argv)
    try:
        if keras.backend.backend() != "tensorflow":
            raise ExportError(f"export needs the TensorFlow backend of Keras, not {keras.backend.backend()!r} "
                              f"(unset KERAS_BACKEND)")  # fmt: skip
        _check_format(arguments.format)
        out = Path(arguments.out) if arguments.out else Path(arguments.run) / FORMATS[arguments.format]
        if out.exists():
            raise ExportError(f"--out {out}: exists already; remove it or choose another path")
        if not Path(arguments.run).is_dir():
            raise ExportError(f"--run {arguments.run}: no such run folder")
        model, config, _ = load_run(arguments.run)
        deployable = deployable_model(model, config, arguments.confidence, arguments.iou, arguments.top_k)
        export_model(deployable, out, arguments.format)
    except (ValueError, ImportError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{arguments.format}: {out}\n"
          f"  input  images (batch, {config.image_height}, {config.image_width}, 3) uint8 RGB, resized to the "
          f"model's size\n"
          f"  output (batch, {arguments.top_k}, 6) float32 [class_id, score, xmin, ymin, xmax, ymax], pixels of "
          f"the model input; class 0 rows = none; classes {config.class_names}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
