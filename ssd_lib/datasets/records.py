"""The record format every dataset parser returns, and what the parsers share: error handling,
progress, class-name checks, and fitting an annotation to its image.

A record is a dict per image: ``image_path`` (str), ``size`` (width, height) of the upright image
in pixels, ``boxes`` (k, 4) float32 pixel corners (xmin, ymin, xmax, ymax), ``labels`` (k,) int32
in 1..n_classes, ``difficult`` (k,) bool. Parsers return a :class:`Records` list, which also
carries the class names and a description of where the records come from.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ssd_lib.datasets.images import boxes_to_upright, read_image_header

__all__ = ["Records", "check_class_names"]

logger = logging.getLogger(__name__)

#: A dataset whose every box is smaller than this (in pixels, both sides) is probably
#: annotated in normalized 0..1 coordinates where pixels are expected.
TINY_BOX_PIXELS = 2.0
#: A progress bar appears once a loop over images has run this long (seconds).
PROGRESS_DELAY = 2.0


class Records(list):
    """A list of image records (dicts) that also knows its class names and its origin.

    Attributes:
        class_names: tuple of ``n_classes`` names; label ``i`` (1-based) is ``class_names[i - 1]``.
        source: where the records come from, for messages (e.g. ``"data/VOC2007 (split
            'trainval')"``); empty if unknown.
    """

    def __init__(self, records=(), class_names: Sequence[str] = (), source: str = ""):
        super().__init__(records)
        self.class_names = tuple(class_names)
        self.source = str(source)

    def __getitem__(self, index):
        """A record, or for a slice (``records[:100]``) a :class:`Records` with the same names."""
        if isinstance(index, slice):
            return Records(super().__getitem__(index), self.class_names, self.source)
        return super().__getitem__(index)


def check_class_names(classes, field: str = "classes") -> tuple[str, ...]:
    """``classes`` as a tuple of distinct names; a bare string is refused (``"dog"`` would
    otherwise become the three classes ``'d', 'o', 'g'``).

    Raises:
        ValueError: a string instead of a sequence, or a duplicate name.
    """
    if isinstance(classes, (str, bytes)):
        raise ValueError(f"{field}: expected a sequence of class names, got the string {classes!r}; "
                         f"write ({classes!r},) for one class")  # fmt: skip
    names = tuple(str(name) for name in classes)
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"{field}: duplicate names {duplicates}")
    return names


class _Problems:
    """Collects skipped images/objects (``on_error="skip"``) or raises at the first one; also
    counts notices (fixes applied to the data, such as boxes turned with an EXIF rotation)."""

    def __init__(self, on_error: str, source: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.source = source
        self.skipped_images: Counter = Counter()
        self.skipped_objects: Counter = Counter()
        self.first_message: str | None = None
        self.notices: Counter = Counter()
        self.first_notice: dict = {}

    def report(self, kind: str, message: str, whole_image: bool) -> None:
        """Raise ``ValueError(message)``, or count it under ``kind`` when skipping."""
        if self.on_error == "raise":
            raise ValueError(message)
        (self.skipped_images if whole_image else self.skipped_objects)[kind] += 1
        if self.first_message is None:
            self.first_message = message

    def notice(self, kind: str, message: str) -> None:
        """Count a change made to the data; :meth:`finish` reports each kind once."""
        self.notices[kind] += 1
        self.first_notice.setdefault(kind, message)

    def finish(self, records: Records) -> Records:
        """Log one warning for what was skipped, one per kind of notice, and one if every box
        is tiny (normalized coordinates?); returns ``records``."""
        if self.first_message is not None:
            parts = []
            for what, counts in (("images", self.skipped_images), ("objects", self.skipped_objects)):
                if counts:
                    detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
                    parts.append(f"{sum(counts.values())} {what} ({detail})")
            logger.warning("%s: skipped %s; first problem: %s", self.source, " and ".join(parts),
                           self.first_message)  # fmt: skip
        for kind, count in sorted(self.notices.items()):
            logger.warning("%s: %d %s; first: %s", self.source, count, kind, self.first_notice[kind])
        sizes = [record["boxes"][:, 2:] - record["boxes"][:, :2] for record in records]
        sizes = np.concatenate(sizes) if sizes else np.zeros((0, 2))
        if len(sizes) and np.all(sizes < TINY_BOX_PIXELS):
            logger.warning(
                "%s: all %d boxes are smaller than %g pixels: are the coordinates normalized to "
                "0..1? Boxes are expected in pixels", self.source, len(sizes), TINY_BOX_PIXELS)  # fmt: skip
        logger.info("%s: %d images, %d boxes", self.source, len(records), len(sizes))
        return records


def progress(iterable, total: int | None = None, description: str = ""):
    """A progress bar for a long loop over images (reading a large dataset, generating one).

    It appears on stderr only if that is a terminal and only once the loop has run for
    :data:`PROGRESS_DELAY` seconds, so short loops, tests, logs and notebooks stay quiet.
    """
    return tqdm(iterable, total=total, desc=description, unit="image", delay=PROGRESS_DELAY,
                disable=None, leave=False)  # fmt: skip


def read_text(path, what: str = "file") -> str:
    """The UTF-8 text of ``path`` (a byte-order mark is dropped).

    Raises:
        ValueError: the file is missing or not UTF-8 (names the file and the first bad byte).
    """
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: {what} is not UTF-8 text (byte 0x{error.object[error.start]:02x} at position "
            f"{error.start}); save it as UTF-8"
        ) from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read {what} ({error.strerror or error})") from None


def locate_images_dir(relative_paths, candidates, what: str) -> Path:
    """The first folder of ``candidates`` in which the first of ``relative_paths`` exists.

    Raises:
        ValueError: none holds it (names ``what`` and every folder tried).
    """
    candidates = list(dict.fromkeys(Path(folder) for folder in candidates))
    first = next(iter(relative_paths), None)
    if first is None:
        return candidates[0]
    for folder in candidates:
        if (folder / first).is_file():
            return folder
    tried = ", ".join(str(folder) for folder in candidates)
    raise ValueError(f"{what}: image {first!r} is in none of the folders {tried}; give the image "
                     "folder (images_dir)")  # fmt: skip


def _fit_annotation_to_image(image_path, annotated_size, boxes, problems: _Problems):
    """Reconcile an annotation's declared image size with the image file.

    The pixels are the truth. When the annotation declares the size of the *stored* pixels of a
    photo that an EXIF tag turns by 90 degrees (the annotation tool ignored the tag), the boxes
    are turned with the image and a notice is counted. Any other disagreement is reported (the
    boxes are never cut to wrong bounds).

    Args:
        image_path: the image file.
        annotated_size: ``(width, height)`` the annotation declares, or None.
        boxes: ``(k, 4)`` pixel corners as annotated.

    Returns:
        ``(size, boxes)``: the upright ``(width, height)`` and the boxes on the upright image;
        None when the image is skipped (unreadable, or sizes disagree and ``on_error="skip"``).
    """
    try:
        header = read_image_header(image_path)
    except ValueError as error:
        problems.report("unreadable image", str(error), True)
        return None
    upright = header.upright_size
    if annotated_size is None or tuple(annotated_size) == upright:
        return upright, boxes
    if tuple(annotated_size) == header.stored_size and header.orientation != 1:
        problems.notice(
            "images annotated on their stored pixels, ignoring the EXIF rotation (boxes turned "
            "with the image)", f"{image_path} (annotated {annotated_size[0]}x{annotated_size[1]}, "
            f"upright {upright[0]}x{upright[1]}, EXIF orientation {header.orientation})")  # fmt: skip
        return upright, boxes_to_upright(boxes, header.stored_size, header.orientation)
    problems.report(
        "size mismatch", f"{image_path}: the annotation says {annotated_size[0]}x"
        f"{annotated_size[1]} pixels but the image is {upright[0]}x{upright[1]}"
        f"{'' if header.orientation == 1 else ' (upright)'}; boxes would not fit: re-annotate or "
        "rescale the boxes", True)  # fmt: skip
    return None


def _record(image_path, size, boxes, labels, difficult) -> dict:
    """One record dict with the documented dtypes and shapes."""
    return {
        "image_path": str(image_path),
        "size": (int(size[0]), int(size[1])),
        "boxes": np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        "labels": np.asarray(labels, dtype=np.int32).reshape(-1),
        "difficult": np.asarray(difficult, dtype=bool).reshape(-1),
    }


def _box_problem(box, size) -> str | None:
    """Why ``box`` (pixel corners) is unusable in an image of ``size``, or None if it is fine."""
    xmin, ymin, xmax, ymax = box
    if not all(np.isfinite(box)):
        return f"non-finite coordinates {tuple(box)}"
    if xmax <= xmin or ymax <= ymin:
        return f"inverted or empty box (xmin, ymin, xmax, ymax) = {tuple(box)}"
    width, height = size
    if xmax <= 0 or ymax <= 0 or xmin >= width or ymin >= height:
        return f"box {tuple(box)} lies outside the {width}x{height} image"
    return None


def _clip(box, size) -> list[float]:
    """Clip pixel corners to the image (annotations often reach one pixel past the border)."""
    width, height = size
    return [min(max(box[0], 0.0), width), min(max(box[1], 0.0), height),
            min(max(box[2], 0.0), width), min(max(box[3], 0.0), height)]  # fmt: skip


def _usable_box(box, size, where: str, problems: _Problems) -> list[float] | None:
    """``box`` clipped to the image, or None after reporting (as "bad box") why it is unusable."""
    problem = _box_problem(box, size)
    if problem is not None:
        problems.report("bad box", f"{where}: {problem}", False)
        return None
    return _clip(box, size)


def _label_map(classes: Sequence[str]) -> dict[str, int]:
    """``{name: label}`` with labels 1..n in ``classes`` order (checked by
    :func:`check_class_names`)."""
    return {name: index + 1 for index, name in enumerate(check_class_names(classes))}


def _unknown_class_message(where: str, name: str, classes) -> str:
    """Error text for a class name missing from ``classes``, with a case-insensitive hint."""
    classes = list(classes)
    hint = [known for known in classes if known.lower() == name.strip().lower()]
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    shown = ", ".join(classes[:25]) + (", ..." if len(classes) > 25 else "")
    return f"{where}: unknown class {name!r}{suggestion}; known classes: {shown}"
