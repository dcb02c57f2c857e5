"""Inference: detections in images of any size, the trained models shipped with the package,
and the model of a run folder.

:func:`predict` takes arrays, ``PIL`` images or image files, resizes each image to the model
input, runs the model in batches and decodes the output with
:func:`ssd_lib.decoder.decode_detections`, scaling the boxes back to each image's own pixels.
Boxes are always corners ``[xmin, ymin, xmax, ymax]`` in pixels of the image they belong to,
``x`` to the right and ``y`` down. :func:`load_shipped_model` rebuilds a shipped model from its
preset and loads its weights; :func:`load_run` the model a training run folder describes
(``model.json``, written by :func:`write_model_file`).

Explained in notebooks/05_decoder.ipynb and notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from . import distribution
from .augment import resize
from .config import SSDConfig
from .datasets import load_image
from .decoder import decode_detections
from .small_ssd import build_small_ssd
from .vgg_ssd import build_ssd300, build_ssd512

__all__ = ["SHIPPED_MODELS_DIR", "MODEL_BUILDERS", "MODEL_FILE", "prepare_images", "predict_prepared", "predict",
           "as_dicts", "load_shipped_model", "model_name_of", "write_model_file", "load_run"]  # fmt: skip

#: Trained models shipped in the package (``<name>.weights.h5`` + ``<name>.json``).
SHIPPED_MODELS_DIR = Path(__file__).resolve().parent / "shipped_models"
#: The networks by name (``--model``): ``build(config, l2_regularization, [width_multiplier])``.
MODEL_BUILDERS = {"small": build_small_ssd, "ssd300": build_ssd300, "ssd512": build_ssd512}
#: The file of a run folder that says how to rebuild its model.
MODEL_FILE = "model.json"


def _as_pixels(image, index: int) -> np.ndarray:
    """One image as ``(H, W, 3)`` uint8 RGB: a file path, a ``PIL`` image or an array (uint8, or
    float in [0, 255]); anything else raises a ``ValueError`` that says what was given."""
    if isinstance(image, (str, Path)):
        return load_image(image)
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"predict: image {index} must be (height, width, 3) RGB, got shape {image.shape}")
    if 0 in image.shape[:2]:
        raise ValueError(f"predict: image {index} is empty ({image.shape[1]}x{image.shape[0]} pixels)")
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind not in "fiu" or image.dtype == bool:
        raise ValueError(f"predict: image {index} has dtype {image.dtype}; give uint8 or float in [0, 255]")
    top = float(image.max())
    if image.dtype.kind in "iu" and top > 255:
        raise ValueError(f"predict: image {index} is {image.dtype} with values up to {top:g}; give 8-bit "
                         "pixels, e.g. (image / 257).astype(np.uint8) for 16-bit ones")  # fmt: skip
    if image.dtype.kind == "f" and top <= 1.0 and top > 0:
        raise ValueError(f"predict: image {index} is float with values in [0, {top:g}]; predict expects "
                         "pixels in [0, 255]: multiply by 255")  # fmt: skip
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def prepare_images(images, config: SSDConfig) -> tuple[np.ndarray, np.ndarray]:
    """Images of any size resized to the model input (:func:`ssd_lib.augment.resize`).

    Args:
        images: a sequence of images: ``(H, W, 3)`` RGB arrays (uint8, or float in [0, 255]),
            ``PIL`` images or image file paths.
        config: the model's configuration (input size).

    Returns:
        ``(n, H, W, 3)`` uint8 model inputs and the ``(n, 2)`` original ``(width, height)``.

    Raises:
        ValueError: an image that is not ``(H, W, 3)``, empty, float in [0, 1] or with values
            beyond 255 (names its index), or a file that cannot be read (names it).
    """
    inputs = np.empty((len(images), config.image_height, config.image_width, 3), dtype=np.uint8)
    sizes = np.empty((len(images), 2), dtype=np.float64)
    for index, image in enumerate(images):
        image = _as_pixels(image, index)
        sizes[index] = image.shape[1], image.shape[0]
        if image.shape[:2] == config.image_size:
            inputs[index] = image
        else:
            inputs[index], _ = resize(image, np.zeros((0, 4)), config.image_height, config.image_width)
    return inputs, sizes


def _check_model_fits(model: keras.Model, config: SSDConfig) -> None:
    """A ``ValueError`` saying which configuration ``model`` was built for, if not ``config``."""
    input_shape, output_shape = tuple(model.input_shape[1:3]), tuple(model.output_shape[1:])
    expected = (config.n_anchors, config.n_classes + 1 + 4)
    if input_shape != config.image_size or output_shape != expected:
        raise ValueError(f"predict: the model takes {input_shape[0]}x{input_shape[1]} images and gives "
                         f"{output_shape[0]} anchors x {output_shape[1] - 5} classes, but the config says "
                         f"{config.image_height}x{config.image_width} images, {config.n_anchors} anchors, "
                         f"{config.n_classes} classes: give the config the model was built with")  # fmt: skip


def predict_prepared(model: keras.Model, inputs: np.ndarray, sizes: np.ndarray, config: SSDConfig,
                     batch_size: int = 8, progress: bool = False, **decode_kwargs) -> list[np.ndarray]:  # fmt: skip
    """Detections of :func:`prepare_images`' output (so repeated evaluations resize only once).

    Args:
        progress: show a progress bar over the batches.

    Returns:
        As :func:`predict`: one ``(k, 6)`` array per image, rows ``[class_id, score, xmin, ymin,
        xmax, ymax]``, boxes in that image's pixels.

    Raises:
        ValueError: ``batch_size`` < 1, or a model built for another configuration (says which).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"predict: batch_size must be a positive integer, got {batch_size!r}")
    _check_model_fits(model, config)
    detections = []
    devices = distribution.devices_in_use()  # a batch split over devices must divide among them
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, desc="predicting", unit="batch", disable=not progress):
        batch = inputs[start : start + batch_size].astype(np.float32)
        padding = np.zeros((-len(batch) % devices, *batch.shape[1:]), np.float32)
        y_pred = keras.ops.convert_to_numpy(model.predict_on_batch(np.concatenate([batch, padding])))[: len(batch)]
        detections += decode_detections(y_pred, config, original_sizes=sizes[start : start + batch_size],
                                        **decode_kwargs)  # fmt: skip
    return detections


def as_dicts(detections) -> list[dict]:
    """:func:`predict`'s rows as torchvision/KerasHub-style dicts, one per image.

    Returns:
        ``[{"boxes": (k, 4) float32 [xmin, ymin, xmax, ymax] in the image's pixels, "labels":
        (k,) int32 class ids (1..n, 0 is background), "scores": (k,) float32}, ...]``.
    """
    return [{"boxes": rows[:, 2:6].astype(np.float32), "labels": rows[:, 0].astype(np.int32),
             "scores": rows[:, 1].astype(np.float32)} for rows in detections]  # fmt: skip


def predict(model: keras.Model, images, config: SSDConfig, batch_size: int = 8, output: str = "rows",
            progress: bool = False, **decode_kwargs) -> list:  # fmt: skip
    """Detect objects in images of any size; boxes in each image's own pixel coordinates.

    Each image is resized to the model input (the validation path,
    :func:`ssd_lib.augment.resize`), the model runs in batches, and
    :func:`ssd_lib.decoder.decode_detections` decodes the output and scales the boxes back to
    the image's width and height.

    Args:
        model: an SSD (output ``(batch, n_anchors, n_classes + 1 + 4)``).
        images: one image or a sequence of them (sizes may differ): ``(H, W, 3)`` RGB arrays,
            uint8 or float in [0, 255]; ``PIL`` images; image file paths.
        config: the model's configuration.
        batch_size: images per forward pass.
        output: ``"rows"``: one ``(k, 6)`` array per image; ``"dicts"``: :func:`as_dicts`.
        progress: show a progress bar over the batches.
        **decode_kwargs: ``confidence_threshold``, ``iou_threshold``, ``top_k``,
            ``nms_max_output_size`` of ``decode_detections``.

    Returns:
        ``"rows"``: one ``(k, 6)`` float32 array per image, rows ``[class_id, score, xmin, ymin,
        xmax, ymax]``, corners in pixels of that image, by score descending. ``"dicts"``: one
        ``{"boxes", "labels", "scores"}`` dict per image (:func:`as_dicts`).

    Raises:
        ValueError: an image that is not ``(H, W, 3)``, is empty, is float in [0, 1] or has
            values beyond 255, an unreadable file (named), ``batch_size`` < 1, an unknown
            ``output``, or a model built for another configuration.
    """
    if output not in ("rows", "dicts"):
        raise ValueError(f"predict: output must be 'rows' or 'dicts', got {output!r}")
    single = (isinstance(images, (str, Path, Image.Image))
              or (isinstance(images, np.ndarray) and images.ndim == 3))  # fmt: skip
    inputs, sizes = prepare_images([images] if single else list(images), config)
    detections = predict_prepared(model, inputs, sizes, config, batch_size, progress, **decode_kwargs)
    return as_dicts(detections) if output == "dicts" else detections


def _load_weights(model: keras.Model, weights: Path, described_by: Path) -> None:
    try:
        model.load_weights(weights)
    except (OSError, ValueError) as error:
        raise ValueError(f"{weights} does not fit the model {described_by} describes ({error})") from None


def load_shipped_model(name: str = "small_ssd_shapes", models_dir=SHIPPED_MODELS_DIR):
    """A trained model shipped in ``ssd_lib/shipped_models``: ``(model, config, info)``.

    ``<name>.json`` records the preset, the width multiplier, the command that trained the model
    and its validation mAP; the architecture is rebuilt from the preset and
    ``<name>.weights.h5`` loaded into it.

    Raises:
        FileNotFoundError: no such model (names the folder and the models that are there).
    """
    from .training.presets import presets

    models_dir = Path(models_dir)
    info_file = models_dir / f"{name}.json"
    if not info_file.exists():
        available = sorted(path.stem for path in models_dir.glob("*.json"))
        raise FileNotFoundError(f"load_shipped_model: no {info_file}; models in {models_dir}: {available}")
    info = json.loads(info_file.read_text())
    preset = presets()[info["preset"]]
    model = preset.build_model(l2_regularization=0.0, width_multiplier=info.get("width_multiplier"))
    _load_weights(model, models_dir / f"{name}.weights.h5", info_file)
    return model, preset.config, info


def model_name_of(build) -> str:
    """The :data:`MODEL_BUILDERS` name of a builder function."""
    return next(name for name, builder in MODEL_BUILDERS.items() if builder is build)


def write_model_file(run_dir, model_name: str, config: SSDConfig, options: dict | None = None) -> Path:
    """Write ``<run_dir>/model.json``: ``{"model": a MODEL_BUILDERS name, the builder's other
    arguments (``width_multiplier``, ``preprocess``), "config": the SSDConfig as JSON}`` (classes
    included), all :func:`load_run` (and :mod:`ssd_lib.export`) need to rebuild the model.

    Raises:
        ValueError: the folder already holds a run of another model or configuration (its
            checkpoint would not fit).
    """
    path = Path(run_dir) / MODEL_FILE
    description = {"model": model_name, **(options or {}), "config": config.to_dict()}
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} is not readable JSON ({error}); choose another --out") from None
        if previous != json.loads(json.dumps(description)):
            raise ValueError(f"{run_dir} holds a run of another model, classes or anchors ({path}); choose "
                             "another --out")  # fmt: skip
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(description, indent=1))
    return path


def load_run(run_dir) -> tuple[keras.Model, SSDConfig, dict]:
    """The trained model of a run folder: ``(model, config, description)``.

    The network is rebuilt from ``model.json`` and loads ``final.weights.h5``, or the last
    checkpoint's weights while the run is unfinished.

    Raises:
        ValueError: not a run folder, an unreadable ``model.json``, no weights yet, or weights
            that do not fit (each names the file).
    """
    from .training.run_folder import CHECKPOINT_DIR, FINAL_WEIGHTS

    run_dir = Path(run_dir)
    path = run_dir / MODEL_FILE
    if not path.is_file():
        raise ValueError(f"{run_dir} is not a training run folder (no {MODEL_FILE}; python -m ssd_lib.train "
                         "writes it)")  # fmt: skip
    try:
        description = json.loads(path.read_text())
        config = SSDConfig.from_dict(description["config"])
        build = MODEL_BUILDERS[description["model"]]
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path} is not a run's model description ({error})") from None
    weights = run_dir / FINAL_WEIGHTS
    if not weights.is_file():
        weights = run_dir / CHECKPOINT_DIR / "model.weights.h5"
    if not weights.is_file():
        raise ValueError(f"{run_dir} has no trained weights yet ({FINAL_WEIGHTS} or {CHECKPOINT_DIR}/)")
    try:
        options = {name: description[name] for name in ("width_multiplier", "preprocess")
                   if description.get(name) is not None}  # fmt: skip
        model = build(config, l2_regularization=0.0, **options)
    except TypeError as error:
        raise ValueError(f"{path}: options that {description['model']} does not take ({error})") from None
    _load_weights(model, weights, path)
    return model, config, description
