"""Inference: detections in images of any size, and the trained models shipped in ``data/models``.

:func:`predict` resizes each image to the model input, runs the model in batches and decodes
the output with :func:`ssd_lib.decoder.decode_detections`, scaling the boxes back to each
image's own pixels. :func:`load_shipped_model` rebuilds a shipped model from its preset and
loads its weights.

Explained in notebooks/05_decoder.ipynb and notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np

from .augment import resize
from .config import SSDConfig
from .decoder import decode_detections

__all__ = ["MODELS_DIR", "prepare_images", "predict_prepared", "predict", "load_shipped_model"]

#: Trained models shipped with the repository (``<name>.weights.h5`` + ``<name>.json``).
MODELS_DIR = Path(__file__).resolve().parents[1] / "data" / "models"


def prepare_images(images, config: SSDConfig) -> tuple[np.ndarray, np.ndarray]:
    """Images of any size resized to the model input (:func:`ssd_lib.augment.resize`).

    Args:
        images: a sequence of ``(H, W, 3)`` RGB images, uint8 or float in [0, 255].
        config: the model's configuration (input size).

    Returns:
        ``(n, H, W, 3)`` uint8 model inputs and the ``(n, 2)`` original ``(width, height)``.

    Raises:
        ValueError: an image that is not ``(H, W, 3)`` (names its index).
    """
    inputs = np.empty((len(images), config.image_height, config.image_width, 3), dtype=np.uint8)
    sizes = np.empty((len(images), 2), dtype=np.float64)
    for index, image in enumerate(images):
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"predict: image {index} must be (height, width, 3) RGB, got shape {image.shape}")
        if image.dtype != np.uint8:
            image = np.clip(np.rint(image), 0, 255).astype(np.uint8)
        sizes[index] = image.shape[1], image.shape[0]
        if image.shape[:2] == config.image_size:
            inputs[index] = image
        else:
            inputs[index], _ = resize(image, np.zeros((0, 4)), config.image_height, config.image_width)
    return inputs, sizes


def predict_prepared(model: keras.Model, inputs: np.ndarray, sizes: np.ndarray, config: SSDConfig,
                     batch_size: int = 8, **decode_kwargs) -> list[np.ndarray]:  # fmt: skip
    """Detections of :func:`prepare_images`' output (so repeated evaluations resize only once).

    Returns:
        As :func:`predict`: one ``(k, 6)`` array per image, boxes in that image's pixels.
    """
    detections = []
    for start in range(0, len(inputs), batch_size):
        batch = inputs[start : start + batch_size].astype(np.float32)
        y_pred = keras.ops.convert_to_numpy(model.predict_on_batch(batch))
        detections += decode_detections(y_pred, config, original_sizes=sizes[start : start + batch_size],
                                        **decode_kwargs)  # fmt: skip
    return detections


def predict(model: keras.Model, images, config: SSDConfig, batch_size: int = 8,
            **decode_kwargs) -> list[np.ndarray]:  # fmt: skip
    """Detect objects in images of any size; boxes in each image's own pixel coordinates.

    Each image is resized to the model input (the validation path,
    :func:`ssd_lib.augment.resize`), the model runs in batches, and
    :func:`ssd_lib.decoder.decode_detections` decodes the output and scales the boxes back to
    the image's width and height.

    Args:
        model: an SSD (output ``(batch, n_anchors, n_classes + 1 + 4)``).
        images: one ``(H, W, 3)`` RGB image or a sequence of them (sizes may differ), uint8 or
            float in [0, 255].
        config: the model's configuration.
        batch_size: images per forward pass.
        **decode_kwargs: ``confidence_threshold``, ``iou_threshold``, ``top_k``,
            ``nms_max_output_size`` of ``decode_detections``.

    Returns:
        One ``(k, 6)`` float32 array per image, rows ``[class_id, score, xmin, ymin, xmax,
        ymax]`` in pixels of that image, by score descending.

    Raises:
        ValueError: an image that is not ``(H, W, 3)``.
    """
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    inputs, sizes = prepare_images(list(images), config)
    return predict_prepared(model, inputs, sizes, config, batch_size, **decode_kwargs)


def load_shipped_model(name: str = "small_ssd_shapes", models_dir=MODELS_DIR):
    """A trained model from ``data/models``: ``(model, config, info)``.

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
    model.load_weights(models_dir / f"{name}.weights.h5")
    return model, preset.config, info
