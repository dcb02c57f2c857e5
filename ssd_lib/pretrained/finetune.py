"""Start training from pretrained SSD300 weights, also for other classes.

The base network and the box heads of a pretrained SSD300 know what objects look like and where
they are; only its class heads are tied to its classes. :func:`finetuning_builder` builds our
SSD300 for the user's classes with the weights' anchors and input normalisation and copies every
layer, except the class heads when the classes differ: those keep their fresh initialisation.
``python -m ssd_lib.train --weights`` uses it.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from ..anchors import generate_anchors
from ..config import SSDConfig
from .convert import load_pretrained
from .models_dir import MODELS_DIR

__all__ = ["copy_pretrained", "finetuning_config", "finetuning_builder"]

logger = logging.getLogger(__name__)


def _preprocess_settings(model) -> dict:
    """The ``mean``, ``scale`` and ``to_bgr`` of a model's ``preprocess`` layer."""
    layer = model.get_layer("preprocess")
    return {"mean": tuple(layer.mean), "scale": layer.scale, "to_bgr": layer.to_bgr}


def copy_pretrained(model, config: SSDConfig, pretrained, pretrained_config: SSDConfig, label="weights") -> str:
    """Copy ``pretrained``'s layers into ``model`` (same architecture, possibly other classes).

    Every layer with weights is copied by name; the class heads (``class_head_k``) only when both
    configs have the same classes, else ``model``'s own initialisation stays.

    Args:
        model, config: the model to fill (e.g. freshly built for the training data) and its config.
        pretrained, pretrained_config: the pretrained model and its config.
        label: what to call the weights in the message.

    Returns:
        One line saying what was copied and what re-initialised (and if the anchors differ).

    Raises:
        ValueError: the input normalisations differ (the model must be built with the weights'
            ``preprocess``), or a layer is missing or has another shape (names it).
    """
    ours, theirs = _preprocess_settings(model), _preprocess_settings(pretrained)
    if not (np.allclose(ours["mean"], theirs["mean"]) and ours["scale"] == theirs["scale"]
            and ours["to_bgr"] == theirs["to_bgr"]):  # fmt: skip
        raise ValueError(f"{label}: the model's input normalisation {ours} differs from the weights' {theirs}; "
                         "build it with the weights' preprocess= (finetuning_builder does)")  # fmt: skip
    classes = lambda c: (c.n_classes, c.class_names)  # noqa: E731
    same_classes = classes(config) == classes(pretrained_config)
    names = {layer.name for layer in pretrained.layers}
    copied = 0
    for layer in model.layers:
        if not layer.weights or (layer.name.startswith("class_head_") and not same_classes):
            continue
        if layer.name not in names:
            raise ValueError(f"{label}: have no layer {layer.name!r} for model {model.name!r}")
        values = pretrained.get_layer(layer.name).get_weights()
        expected = [tuple(weight.shape) for weight in layer.weights]
        if [value.shape for value in values] != expected:
            raise ValueError(f"{label}: layer {layer.name!r} has shapes {[value.shape for value in values]}, "
                             f"the model expects {expected}")  # fmt: skip
        layer.set_weights(values)
        copied += 1
    if same_classes:
        message = f"{label}: all {copied} layers copied (the same {config.n_classes} classes)"
    else:
        message = (f"{label}: base network and box heads copied ({copied} layers); class heads re-initialised "
                   f"for {config.n_classes} classes (the weights have {pretrained_config.n_classes})")  # fmt: skip
    if not np.allclose(generate_anchors(config), generate_anchors(pretrained_config)):
        message += "; note: the anchors differ from those the box heads were trained with"
    return message


def finetuning_config(pretrained_config: SSDConfig, config: SSDConfig) -> SSDConfig:
    """The config to fine-tune with: the weights' anchors (their box heads predict offsets from
    them) and ``config``'s classes."""
    return dataclasses.replace(pretrained_config, n_classes=config.n_classes, class_names=config.class_names)


def finetuning_builder(weights, config: SSDConfig, models_dir=MODELS_DIR):
    """Load pretrained ``weights`` once, for training ``config``'s classes from them.

    Args:
        weights: ``torchvision-coco``, ``ssd-keras-voc``, a name given to ``convert``, or a
            weights file (see :func:`ssd_lib.pretrained.load_pretrained`).
        config: the detector to train; only its classes are used (they may differ from the
            weights'): the anchors are the weights'.
        models_dir: where named weights are looked up.

    Returns:
        ``(config, build)``: the config to train with (:func:`finetuning_config`) and
        ``build(l2_regularization) -> keras.Model``, our SSD300 for it with the weights' input
        normalisation, started from the weights (a builder, so that training can build the model
        where its devices want it).

    Raises:
        FileNotFoundError: the weights are not there (the message says how to get them).
        ValueError: a file that cannot be converted.
    """
    from ..vgg_ssd import build_ssd300

    pretrained, pretrained_config = load_pretrained(weights, models_dir)
    config = finetuning_config(pretrained_config, config)
    preprocess = _preprocess_settings(pretrained)

    def build(l2_regularization: float = 5e-4):
        model = build_ssd300(config, l2_regularization, preprocess=preprocess)
        logger.info("%s", copy_pretrained(model, config, pretrained, pretrained_config, str(weights)))
        return model

    return config, build
