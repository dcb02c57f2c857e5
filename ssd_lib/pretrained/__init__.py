"""Pretrained SSD300s: other projects' published weights, converted into our own model.

- ``torchvision-coco``: torchvision's ``ssd300_vgg16`` trained on COCO (``COCO_V1``);
- ``ssd-keras-voc``: the original Caffe SSD300 trained on Pascal VOC 07+12, as ported by ssd_keras.

Each runs in :func:`ssd_lib.vgg_ssd.build_ssd300` with its origin's anchors (an
:class:`~ssd_lib.config.SSDConfig`), input normalisation and post-processing, and gives the
origin's outputs (``tests/test_pretrained_torchvision.py`` compares with torchvision itself).
No code of those projects runs here: a ``.pth`` is read by a restricted unpickler
(:mod:`ssd_lib.pretrained.pth`), an ``.h5`` with h5py.

Command line (``python -m ssd_lib.pretrained --help``)::

    python -m ssd_lib.pretrained download torchvision-coco
    python -m ssd_lib.pretrained convert data/models/ssd300_vgg16_coco-b556d3b4.pth

Both use the repository's ``data/models`` from any working directory (``MODELS_DIR``; the
environment variable ``SSD_MODELS_DIR`` names another folder; ``--to`` another for one command).

Library::

    from ssd_lib.pretrained import SOURCES, load_pretrained
    from ssd_lib.inference import predict
    model, config = load_pretrained("torchvision-coco")   # from MODELS_DIR
    detections = predict(model, images, config, **SOURCES["torchvision-coco"].decoding)

Modules: ``pth`` (the ``.pth`` reader), ``from_torchvision`` and ``from_ssd_keras`` (layer
mappings and conventions), ``sources`` (names, URLs, checksums, download), ``models_dir`` (where
the files live), ``convert`` (build, save, load), ``finetune`` (start training from them, also
for other classes), ``cli``.
"""

from ssd_lib.pretrained.convert import (
    convert_file,
    load_if_present,
    load_pretrained,
    save_converted,
    set_layer_weights,
)
from ssd_lib.pretrained.finetune import copy_pretrained, finetuning_builder, finetuning_config
from ssd_lib.pretrained.models_dir import MODELS_DIR, MODELS_DIR_VARIABLE, default_models_dir
from ssd_lib.pretrained.pth import PthError, UnsafePickleError, read_pth
from ssd_lib.pretrained.sources import SOURCES, PretrainedSource, download, source_for_file

__all__ = [
    "SOURCES",
    "PretrainedSource",
    "MODELS_DIR",
    "MODELS_DIR_VARIABLE",
    "default_models_dir",
    "download",
    "source_for_file",
    "convert_file",
    "save_converted",
    "load_pretrained",
    "load_if_present",
    "set_layer_weights",
    "finetuning_builder",
    "finetuning_config",
    "copy_pretrained",
    "read_pth",
    "PthError",
    "UnsafePickleError",
]
