"""Build our SSD300 from a published weights file, save it, and load it back.

``convert_file`` reads a torchvision ``.pth`` or an ssd_keras ``.h5``, builds
:func:`ssd_lib.vgg_ssd.build_ssd300` with the origin's anchors and input normalisation, and fills
every layer; ``save_converted`` writes ``<name>.weights.h5`` (Keras) and ``<name>.json`` (where it
came from, its classes and its post-processing) into a models folder, from which
``load_pretrained`` rebuilds it in a second.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from ..config import SSDConfig
from ..datasets.download import file_hexdigest
from .models_dir import MODELS_DIR, shown_path
from .sources import SOURCES, PretrainedSource, source_for_file

__all__ = ["set_layer_weights", "convert_file", "save_converted", "load_pretrained", "load_if_present"]

logger = logging.getLogger(__name__)


def set_layer_weights(model, layer_weights: dict, source="weights") -> None:
    """Copy ``{layer name: [arrays]}`` into ``model``'s layers, checking every shape.

    Raises:
        ValueError: a layer the model lacks, a shape that differs, or a model layer with weights
            that ``layer_weights`` does not fill (names the layer and both shapes).
    """
    names = {layer.name for layer in model.layers}
    unknown = sorted(set(layer_weights) - names)
    unfilled = sorted(layer.name for layer in model.layers if layer.weights and layer.name not in layer_weights)
    if unknown or unfilled:
        raise ValueError(f"{source}: does not fit model {model.name!r}: layers unknown to the model "
                         f"{unknown}, model layers without weights {unfilled}")  # fmt: skip
    for name, values in layer_weights.items():
        layer = model.get_layer(name)
        expected = [tuple(weight.shape) for weight in layer.weights]
        given = [tuple(np.shape(value)) for value in values]
        if expected != given:
            raise ValueError(f"{source}: layer {name!r} has shapes {given}, the model expects {expected}")
        layer.set_weights(values)


def _n_classes(layer_weights: dict, config: SSDConfig, source) -> int:
    """Object classes of the first class head: its outputs are boxes per cell x (classes + 1)."""
    n_outputs = layer_weights["class_head_0"][0].shape[-1]
    n_boxes = config.boxes_per_cell(0)
    if n_outputs % n_boxes or n_outputs // n_boxes < 2:
        raise ValueError(f"{source}: the first class head has {n_outputs} outputs, not {n_boxes} boxes "
                         "x (classes + 1)")  # fmt: skip
    return n_outputs // n_boxes - 1


def _build(source: PretrainedSource, config: SSDConfig):
    from ..vgg_ssd import build_ssd300

    return build_ssd300(config, l2_regularization=0.0, preprocess=source.preprocess)


def convert_file(path, source: PretrainedSource | None = None):
    """Our SSD300 holding the weights of a torchvision ``.pth`` or an ssd_keras ``.h5`` file.

    Args:
        path: the weights file.
        source: its origin; None: found from the file's format (:func:`source_for_file`).

    Returns:
        ``(model, config)``: the Keras model (RGB [0, 255] input, the origin's normalisation
        inside) and its :class:`SSDConfig` (the origin's anchors and class names). Decode with
        ``decode_detections(..., **source.decoding)`` to reproduce the origin's detections.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a file this origin's reader refuses (see ``ssd_lib.pretrained.pth`` and the
            converters) or whose layers do not fit SSD300.
    """
    path = Path(path)
    source = source or source_for_file(path)
    layer_weights = source.read(path)
    config = source.config_for(_n_classes(layer_weights, source.config, path))
    model = _build(source, config)
    set_layer_weights(model, layer_weights, path)
    return model, config


def save_converted(model, config: SSDConfig, source: PretrainedSource, name: str, to=MODELS_DIR,
                   from_file=None, overwrite: bool = False) -> Path:  # fmt: skip
    """Write ``<to>/<name>.weights.h5`` and ``<to>/<name>.json``; returns the weights path.

    Raises:
        FileExistsError: either file exists and ``overwrite`` is False (names it).
    """
    to = Path(to)
    weights_file, info_file = to / f"{name}.weights.h5", to / f"{name}.json"
    for existing in (weights_file, info_file):
        if existing.exists() and not overwrite:
            raise FileExistsError(f"{existing} exists; choose another --name or pass --overwrite")
    to.mkdir(parents=True, exist_ok=True)
    model.save_weights(weights_file)
    info = {
        "name": name,
        "source": source.name,
        "title": source.title,
        "from_file": None if from_file is None else Path(from_file).name,
        "from_sha256": None if from_file is None else file_hexdigest(from_file, "sha256"),
        "n_classes": config.n_classes,
        "class_names": list(config.class_names) if config.class_names else None,
        "preprocess": source.preprocess,
        "decoding": source.decoding,
    }
    info_file.write_text(json.dumps(info, indent=1) + "\n")
    return weights_file


def _load_saved(name: str, models_dir: Path):
    info = json.loads((models_dir / f"{name}.json").read_text())
    source = SOURCES[info["source"]]
    config = source.config_for(info["n_classes"])
    if info.get("class_names"):
        config = dataclasses.replace(config, class_names=tuple(info["class_names"]))
    model = _build(source, config)
    model.load_weights(models_dir / f"{name}.weights.h5")
    return model, config


def load_pretrained(name_or_file, models_dir=MODELS_DIR):
    """A pretrained SSD300 by name (``torchvision-coco``, ``ssd-keras-voc``, or a name given to
    ``convert``) or from a weights file: ``(model, config)``.

    A name is looked up in ``models_dir``: its converted weights (``<name>.weights.h5`` +
    ``<name>.json``) if there, else the downloaded original file, which is converted and saved
    there for next time. Decode its output with the origin's settings,
    ``SOURCES[name].decoding`` (``predict(model, images, config, **SOURCES[name].decoding)``).

    Raises:
        FileNotFoundError: neither the converted nor the original file is in ``models_dir``; the
            message says how to get it.
        ValueError: a file that cannot be converted.
    """
    models_dir = Path(models_dir)
    name = str(name_or_file)
    if (models_dir / f"{name}.json").exists() and (models_dir / f"{name}.weights.h5").exists():
        return _load_saved(name, models_dir)
    if name in SOURCES:
        source = SOURCES[name]
        original = models_dir / source.filename
        if not original.exists():
            raise FileNotFoundError(f"no pretrained weights {name!r} in {shown_path(models_dir)}: "
                                    f"{source.how_to_get(models_dir)}")  # fmt: skip
        logger.info("converting %s (once; saved as %s.weights.h5)", shown_path(original),
                    shown_path(models_dir / name))
        model, config = convert_file(original, source)
        save_converted(model, config, source, name, models_dir, from_file=original)
        return model, config
    if Path(name).is_file():
        return convert_file(name)
    known = ", ".join(sorted(SOURCES))
    raise FileNotFoundError(f"no pretrained weights {name!r}: neither a known name ({known}), "
                            f"a converted model in {shown_path(models_dir)}, nor a file")  # fmt: skip


def load_if_present(name: str, models_dir=MODELS_DIR):
    """For the notebooks: :func:`load_pretrained` ``(model, config)`` when the weights are in
    ``models_dir``; otherwise print one line saying how to get them (into the notebook: its output,
    not a status line) and return None."""
    try:
        return load_pretrained(name, models_dir)
    except FileNotFoundError as error:
        print(error)
        return None
