"""Batches for training and evaluation: records -> (images, y_true), a ``keras.utils.PyDataset``.

:class:`DetectionDataset` opens each image, augments it with
:class:`ssd_lib.augment.SSDAugmentation` (training; decoded and resampled by OpenCV) or only
resizes it (validation, as inference does), stacks a batch of uint8 RGB images and encodes the
boxes with :class:`ssd_lib.encoder.SSDEncoder`. It is plain numpy + OpenCV + Pillow, so it feeds
``model.fit`` with every Keras backend (TensorFlow, JAX, PyTorch); by default with one loader
thread per CPU. The colour distortion can run on the accelerator instead
(``photometric_on_device``, :mod:`ssd_lib.photometric`).

Reproducibility: the sample order of epoch ``e`` is a permutation drawn from ``(seed, e)``, and
the augmentation of record ``r`` in epoch ``e`` draws from a generator seeded with
``(seed, e, r)``. A batch is therefore a pure function of ``(seed, epoch, index)``: worker
threads or processes, in any order, produce the same batches as a single loop.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os

import keras
import numpy as np

from .augment import SSDAugmentation, render, resize, resize_plan
from .config import SSDConfig
from .datasets import ImageReadError, load_image
from .encoder import SSDEncoder
from .jpeg import EncodedJpeg, read_jpeg
from .matching import NEUTRAL
from .photometric import PHOTOMETRIC_PARAMETERS, photometric_parameters

__all__ = ["DetectionDataset", "Shard", "default_workers", "open_image"]

logger = logging.getLogger(__name__)

def default_workers() -> int:
    """Loader threads by default: one per CPU this process may run on. Threads, not processes:
    decoding and resampling run in OpenCV and Pillow without the GIL, and nothing forks (a fork
    of a process that runs JAX or TensorFlow can deadlock)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def open_image(path):
    """Read an image for :func:`ssd_lib.augment.render`, decoding it later if possible.

    An upright colour JPEG is returned as an :class:`ssd_lib.jpeg.EncodedJpeg` (``render``
    decodes it at reduced size when it can); anything else (other formats, greyscale or CMYK,
    photos with an EXIF rotation) is decoded by :func:`ssd_lib.datasets.load_image` into an
    upright uint8 RGB array.

    Raises:
        ImageReadError: the file is missing or unreadable (names the file).
    """
    try:
        jpeg = read_jpeg(path)
    except OSError:
        jpeg = None
    return jpeg if jpeg is not None else load_image(path)  # load_image names a bad file


@dataclasses.dataclass(frozen=True)
class Shard:
    """Which part of every batch this process loads, for data parallelism over processes.

    Every process walks the same sample order; global batch ``i`` (``batch_size`` records) is
    cut into ``count`` equal parts and process ``index`` loads part ``index``. All processes thus
    have the same number of batches per epoch.

    Attributes:
        index, count: this process and the number of processes (``jax.process_index()``,
            ``jax.process_count()``).
        pad_last_batch: fill the epoch's last, short batch up to full size with records from the
            epoch's start whose anchors are all neutral (:data:`ssd_lib.encoder.NEUTRAL`): they
            count neither in the loss nor as positives. Needed when the batch is split over
            devices.
    """

    index: int = 0
    count: int = 1
    pad_last_batch: bool = False

    def __post_init__(self):
        if not 0 <= self.index < self.count:
            raise ValueError(f"Shard: index must be in 0..count-1, got index {self.index} of count {self.count}")


class DetectionDataset(keras.utils.PyDataset):
    """Batches of augmented, encoded detection samples for ``model.fit`` / ``evaluate``.

    Args:
        records: dataset records (``ssd_lib.datasets``): dicts with ``image_path``, ``boxes``
            ``(k, 4)`` pixel corners, ``labels`` ``(k,)`` in 1..n_classes and optionally
            ``difficult`` ``(k,)``.
        config: the :class:`~ssd_lib.config.SSDConfig` (input size, classes, anchors).
        batch_size: images per batch (over all processes); the last batch of an epoch may be
            smaller, unless ``shard.pad_last_batch``.
        augment: apply the SSD training augmentation; ``False`` only resizes (validation).
        shuffle: draw a new sample order every epoch (from ``seed`` and the epoch number).
        seed: seed of the order and of the augmentation.
        encoder: the box encoder; default ``SSDEncoder(config)``.
        augmentation: the augmentation to use when ``augment``; default
            ``SSDAugmentation(config.image_height, config.image_width)``.
        annotations: yield ``(images, annotations)`` instead of ``(images, y_true)``, with one
            dict per image: ``boxes`` ``(j, 4)`` float32 in model-input pixels, ``labels``,
            ``difficult``, ``image_path`` and ``size`` (the source ``(width, height)``), for
            evaluation against the ground truth. No encoding is done.
        on_error: what a bad image does (missing, truncated or corrupt file, or pixels whose size
            disagrees with the record's ``size``): ``"raise"`` (default) raises
            :class:`~ssd_lib.datasets.ImageReadError` naming the file and the dataset/split
            (``records.source``); ``"skip"`` logs one warning line naming it and uses the next
            readable record of the epoch's order in its place (so batches keep their size and
            stay a pure function of seed, epoch and index), or, with ``annotations``, leaves it
            out of the batch.
        photometric_on_device: leave the colour distortion to the accelerator: batches carry
            the drawn parameters instead (train ``ssd_lib.photometric.with_photometric_distortion(model)``).
        shard: this process's part of each batch and the last batch's padding (:class:`Shard`);
            ``batch_size`` is the global batch, each process loads ``batch_size / shard.count``.
        workers: loader threads while ``model.fit`` runs; default :func:`default_workers`.
        use_multiprocessing, max_queue_size: as in ``keras.utils.PyDataset``.

    Batches (``dataset[index]``):
        ``images`` ``(b, H, W, 3)`` uint8 RGB (the model converts them to float on the
        accelerator, a quarter of the bytes of float32) and ``y_true`` ``(b, n_anchors, 5)``
        float32 from the encoder (or the annotations list). With ``photometric_on_device`` the
        first item is ``{"images": uint8 images, "photometric": (b, 13) float32}``
        (:func:`ssd_lib.photometric.photometric_parameters`).

    Example:
        >>> train = DetectionDataset(parse_voc("data/shapes", "train", SHAPES_CLASSES), config)
        >>> images, y_true = train[0]
    """

    def __init__(self, records, config: SSDConfig, batch_size: int = 32, augment: bool = True,
                 shuffle: bool = True, seed: int = 0, encoder: SSDEncoder | None = None,
                 augmentation: SSDAugmentation | None = None, annotations: bool = False,
                 on_error: str = "raise", photometric_on_device: bool = False, shard: Shard = Shard(),
                 workers: int | None = None, use_multiprocessing: bool = False,
                 max_queue_size: int = 10):  # fmt: skip
        workers = default_workers() if workers is None else workers
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size)
        self.source = getattr(records, "source", "") or "records"
        self.records = list(records)
        if not self.records:
            raise ValueError(f"DetectionDataset: {self.source} is empty; nothing to batch")
        if on_error not in ("raise", "skip"):
            raise ValueError(f"DetectionDataset: on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self._warned: set[int] = set()  # records already named in a skip warning
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"DetectionDataset: batch_size must be a positive integer, got {batch_size!r}")
        if batch_size % shard.count:
            raise ValueError(f"DetectionDataset: batch_size {batch_size} (the global batch) does not divide "
                             f"among {shard.count} processes")  # fmt: skip
        if shard.count > 1 and not shard.pad_last_batch:
            raise ValueError("DetectionDataset: several processes need equal batches; use Shard(pad_last_batch=True)")
        if annotations and shard.pad_last_batch:
            raise ValueError("DetectionDataset: annotations=True does not pad (evaluate every image once)")
        self.config = config
        self.batch_size = batch_size
        self.shard = shard
        self.shuffle = shuffle
        self.seed = int(seed)
        self.annotations = annotations
        self.encoder = None if annotations else (encoder or SSDEncoder(config))
        if augment and augmentation is None:
            augmentation = SSDAugmentation(config.image_height, config.image_width)
        if augment and (augmentation.height, augmentation.width) != (config.image_height, config.image_width):
            raise ValueError(
                f"DetectionDataset: the augmentation outputs {augmentation.height}x{augmentation.width} "
                f"images but the config's input is {config.image_height}x{config.image_width}"
            )
        self.augmentation = augmentation if augment else None
        self.photometric_on_device = bool(photometric_on_device) and augment and augmentation.photometric is not None
        self.epoch = 0
        self._order = self._sample_order(0)

    def __len__(self) -> int:
        return math.ceil(len(self.records) / self.batch_size)

    def _sample_order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.records))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.records))

    def on_epoch_end(self) -> None:
        """Advance to the next epoch: a new sample order and new augmentations."""
        self.set_epoch(self.epoch + 1)

    def set_epoch(self, epoch: int) -> None:
        """Jump to ``epoch`` (e.g. when resuming training): its order and augmentations."""
        self.epoch = int(epoch)
        self._order = self._sample_order(self.epoch)

    @property
    def local_batch_size(self) -> int:
        """Images per batch of this process: ``batch_size / shard.count``."""
        return self.batch_size // self.shard.count

    def _first_position(self, index: int) -> int:
        """Position in the epoch's order of this process's first record of batch ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"DetectionDataset: batch index {index} out of range 0..{len(self) - 1}")
        return index * self.batch_size + self.shard.index * self.local_batch_size

    def record_indices(self, index: int) -> np.ndarray:
        """The record indices of this process's part of batch ``index`` in the current epoch
        (without padding; unreadable images skipped with ``on_error="skip"`` are replaced later)."""
        first = self._first_position(index)
        end = min((index + 1) * self.batch_size, first + self.local_batch_size)
        return self._order[first:end]

    def load_sample(self, record_index: int):
        """Load, augment (or resize) one record as the current epoch does, colour distortion
        included (on the host, whatever ``photometric_on_device`` says).

        Returns:
            ``(image (H, W, 3) uint8, boxes (j, 4) float32 model-input pixels, labels (j,),
            difficult (j,) bool)``.

        Raises:
            ImageReadError: the image file is missing, truncated or unreadable, or its size is
                not the record's ``size`` (names the file and the dataset).
            ValueError: the record's boxes are malformed (names the file).
        """
        pixels, plan = self._load(record_index, color=True)
        return pixels, plan.boxes, plan.labels, plan.difficult

    def _load(self, record_index: int, color: bool, out=None):
        """``(pixels (H, W, 3) uint8, the AugmentationPlan)`` of one record in this epoch (written
        into ``out`` if given); the validation path is :func:`ssd_lib.augment.resize` of the whole
        photo, as in inference. Raises as :meth:`load_sample`."""
        record = self.records[record_index]
        path = record["image_path"]
        boxes = record["boxes"]
        labels = np.asarray(record["labels"], dtype=np.int64)
        difficult = record.get("difficult")
        difficult = np.zeros(len(labels), bool) if difficult is None else difficult
        where = f"{self.source}, record {record_index}"
        try:
            image = open_image(path)
        except ImageReadError as error:
            raise ImageReadError(f"{error} ({where})") from None
        width, height = image.size if isinstance(image, EncodedJpeg) else image.shape[1::-1]
        if "size" in record and tuple(record["size"]) != (width, height):
            raise ImageReadError(
                f"{path} ({where}): the image is {width}x{height} pixels but its record says "
                f"{record['size'][0]}x{record['size'][1]}; its boxes would not fit"
            )
        try:
            if self.augmentation is None:
                plan = resize_plan(width, height, boxes, labels, difficult,
                                   self.config.image_height, self.config.image_width)  # fmt: skip
            else:
                rng = np.random.default_rng([self.seed, self.epoch, int(record_index)])
                plan = self.augmentation.plan(width, height, boxes, labels, difficult, rng=rng)
        except ValueError as error:
            raise ValueError(f"record {record_index} ({path}): {error}") from None
        try:
            if self.augmentation is not None:
                return render(image, plan, self.augmentation.mean, color=color, out=out), plan
            photo = load_image(path) if isinstance(image, EncodedJpeg) else image  # decoded as inference does
        except ImageReadError as error:  # decoding a truncated or corrupt file
            raise ImageReadError(str(error).replace(f"{path}:", f"{path} ({where}):", 1)) from None
        pixels, _ = resize(photo, np.zeros((0, 4)), self.config.image_height, self.config.image_width)
        if out is not None:
            out[...] = pixels
        return pixels, plan

    def _sample(self, position: int, color: bool, out):
        """``(record index, plan)`` for ``position`` in the epoch's order, its pixels written into
        ``out``.

        With ``on_error="skip"`` a bad image is named in one warning and replaced by the next
        readable record in the order (training), or gives None (``annotations``: left out).
        """
        for step in range(len(self.records)):
            record_index = int(self._order[(position + step) % len(self.records)])
            try:
                return record_index, self._load(record_index, color, out)[1]
            except ImageReadError as error:
                if self.on_error == "raise":
                    raise
                if record_index not in self._warned:
                    self._warned.add(record_index)
                    logger.warning("skipping a bad image: %s", error)
                if self.annotations:
                    return None
        raise ImageReadError(f"DetectionDataset: no image of {self.source} can be read")

    def __getitem__(self, index: int):
        """Batch ``index`` of the current epoch: ``(images, y_true)`` (or ``(images,
        annotations)``); see the class docstring."""
        first, n_real = self._first_position(index), len(self.record_indices(index))
        # Padding (shard.pad_last_batch): the short last batch takes records from the epoch's
        # start again; their anchors become neutral below.
        size = self.local_batch_size if self.shard.pad_last_batch else n_real
        height, width = self.config.image_height, self.config.image_width
        images = np.empty((size, height, width, 3), dtype=np.uint8)
        photometric = np.empty((size, PHOTOMETRIC_PARAMETERS), np.float32) if self.photometric_on_device else None
        targets = []
        for offset in range(size):
            position = len(targets)
            start = first + offset if offset < n_real else offset - n_real  # padding: from the start
            sample = self._sample(start, color=photometric is None, out=images[position])
            if sample is None:
                continue
            record_index, plan = sample
            if photometric is not None:
                photometric[position] = photometric_parameters(plan)
            if self.annotations:
                record = self.records[record_index]
                targets.append({"boxes": plan.boxes, "labels": plan.labels, "difficult": plan.difficult,
                                "image_path": record["image_path"], "size": tuple(record["size"])})  # fmt: skip
            else:
                targets.append(np.concatenate([plan.labels[:, None].astype(np.float32), plan.boxes], axis=1))
        images = images[: len(targets)]
        inputs = images if photometric is None else {"images": images, "photometric": photometric[: len(targets)]}
        if self.annotations:
            return inputs, targets
        y_true = self.encoder(targets)
        y_true[n_real:, :, 0] = NEUTRAL  # padding: no anchor counts in the loss or as a positive
        y_true[n_real:, :, 1:] = 0.0
        return inputs, y_true
