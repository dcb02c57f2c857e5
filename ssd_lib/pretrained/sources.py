"""Where pretrained SSD300 weights come from: names, files, URLs, checksums, conventions.

Each :class:`PretrainedSource` says how to get one published weights file and how to run it in
our SSD300 exactly as its origin does: the anchors (:class:`ssd_lib.config.SSDConfig`), the input
normalisation (:class:`ssd_lib.model_layers.Preprocess` arguments) and the post-processing
(:func:`ssd_lib.decoder.decode_detections` arguments).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from ..config import SSD300_COCO, SSD300_VOC, SSDConfig
from ..datasets.download import DownloadError, download_file
from .from_ssd_keras import SSD_KERAS_DECODING, SSD_KERAS_PREPROCESS, ssd_keras_layer_weights
from .from_torchvision import (
    COCO_CATEGORIES,
    TORCHVISION_DECODING,
    TORCHVISION_PREPROCESS,
    TORCHVISION_SSD300_COCO,
    torchvision_layer_weights,
)
from .models_dir import MODELS_DIR, shown_path
from .pth import find_state_dict, read_pth

__all__ = ["PretrainedSource", "SOURCES", "source_named", "source_for_file", "download"]


@dataclasses.dataclass(frozen=True)
class PretrainedSource:
    """One published SSD300 weights file and the conventions it was trained with.

    Attributes:
        name: our name for it (``torchvision-coco``).
        title: what it is, in one line.
        filename: the published file name.
        url: where to download it (for a manual download: the page to open).
        sha256: its SHA-256 or a prefix of it (None: unknown, not checked).
        manual: True when ``url`` is a web page to download from by hand (Google Drive).
        read: ``read(path) -> {layer name: weights}`` for :func:`ssd_lib.vgg_ssd.build_ssd300`.
        config: anchors and classes of the model it was trained as.
        preprocess: its input normalisation (:class:`ssd_lib.model_layers.Preprocess` arguments).
        decoding: its post-processing (:func:`ssd_lib.decoder.decode_detections` arguments).
        configs_by_classes: other class counts its format may hold -> their config (a file of
            the same origin trained on another dataset).
    """

    name: str
    title: str
    filename: str
    url: str
    sha256: str | None
    manual: bool
    read: Callable
    config: SSDConfig
    preprocess: dict
    decoding: dict
    configs_by_classes: dict = dataclasses.field(default_factory=dict)

    def config_for(self, n_classes: int) -> SSDConfig:
        """The config for a file of this origin with ``n_classes`` object classes (named when
        known, else ``class k``)."""
        known = {self.config.n_classes: self.config, **self.configs_by_classes}
        if n_classes in known:
            return known[n_classes]
        return dataclasses.replace(self.config, n_classes=n_classes, class_names=None)

    def how_to_get(self, models_dir=MODELS_DIR) -> str:
        """One line: the command (or the manual download) that puts the file in ``models_dir``
        (the command names the folder only when it is not the default, so it works from any
        working directory)."""
        target = shown_path(Path(models_dir) / self.filename)
        if self.manual:
            return (f"download {self.filename} by hand from {self.url} (ssd_keras's README, "
                    f"'Download the original trained model weights') and put it at {target}")  # fmt: skip
        to = "" if Path(models_dir) == MODELS_DIR else f" --to {shown_path(models_dir)}"
        return (f"run `python -m ssd_lib.pretrained download {self.name}{to}` "
                f"(or download {self.url} by hand and put it at {target})")  # fmt: skip


def _read_torchvision(path):
    return torchvision_layer_weights(find_state_dict(read_pth(path), path), path)


_COCO_80 = tuple(name for name in COCO_CATEGORIES if name != "N/A")

#: The pretrained weights we know, by name.
SOURCES = {
    "torchvision-coco": PretrainedSource(
        name="torchvision-coco",
        title="torchvision's ssd300_vgg16, COCO train2017 (SSD300_VGG16_Weights.COCO_V1: box mAP 25.1 on val2017)",
        filename="ssd300_vgg16_coco-b556d3b4.pth",
        url="https://download.pytorch.org/models/ssd300_vgg16_coco-b556d3b4.pth",
        sha256="b556d3b4",  # the prefix in its name, which torch.hub checks
        manual=False,
        read=_read_torchvision,
        config=TORCHVISION_SSD300_COCO,
        preprocess=TORCHVISION_PREPROCESS,
        decoding=TORCHVISION_DECODING,
    ),
    "ssd-keras-voc": PretrainedSource(
        name="ssd-keras-voc",
        title="the original Caffe SSD300, Pascal VOC 07+12 (about 77 mAP on VOC2007 test), as ported by ssd_keras",
        filename="VGG_VOC0712_SSD_300x300_iter_120000.h5",
        url="https://drive.google.com/open?id=121-kCXaOHOkJE_Kf5lKcJvC_5q1fYb_q",
        sha256=None,
        manual=True,
        read=ssd_keras_layer_weights,
        config=SSD300_VOC,
        preprocess=SSD_KERAS_PREPROCESS,
        decoding=SSD_KERAS_DECODING,
        configs_by_classes={len(_COCO_80): dataclasses.replace(SSD300_COCO, class_names=_COCO_80)},
    ),
}  # fmt: skip


def source_named(name: str) -> PretrainedSource:
    """The source called ``name``; ValueError listing the known names otherwise."""
    if name not in SOURCES:
        raise ValueError(f"unknown pretrained weights {name!r}; known: {', '.join(sorted(SOURCES))}")
    return SOURCES[name]


def source_for_file(path) -> PretrainedSource:
    """The origin of a weights file, from its format: a PyTorch checkpoint (zip or pickle) is
    torchvision's, an HDF5 file ssd_keras's.

    Raises:
        FileNotFoundError: no such file.
        ValueError: neither format (names the file).
    """
    path = Path(path)
    with open(path, "rb") as file:
        head = file.read(8)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return SOURCES["ssd-keras-voc"]
    if head.startswith(b"PK\x03\x04") or head.startswith(b"\x80"):  # zip, or a pickle
        return SOURCES["torchvision-coco"]
    raise ValueError(f"{path}: neither a PyTorch checkpoint (.pth) nor an HDF5 weights file (.h5)")


def download(name: str, to=MODELS_DIR, progress: bool = True, accept_checksum_mismatch: bool = False) -> Path:
    """Download the weights file of source ``name`` into folder ``to`` (resumable, checked).

    A file already there (e.g. downloaded by hand) is verified and never deleted; with another
    checksum it is used only with ``accept_checksum_mismatch``.

    Returns:
        The file's path.

    Raises:
        ValueError: unknown name.
        DownloadError: a manual-only file (the message says where to get it), the host cannot be
            reached (says where to put the file by hand) or the checksum differs.
    """
    source = source_named(name)
    if source.manual:
        raise DownloadError(f"{name} cannot be downloaded automatically: {source.how_to_get(to)}")
    return download_file(source.url, Path(to) / source.filename, sha256=source.sha256, progress=progress,
                         accept_checksum_mismatch=accept_checksum_mismatch)  # fmt: skip
