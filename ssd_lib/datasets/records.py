"""The record format every dataset parser returns, shared error handling, and image loading.

A record is a dict per image: ``image_path`` (str), ``size`` (width, height) in pixels, ``boxes``
(k, 4) float32 pixel corners (xmin, ymin, xmax, ymax), ``labels`` (k,) int32 in 1..n_classes,
``difficult`` (k,) bool. Parsers return a :class:`Records` list, which also carries the class
names.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageOps

__all__ = ["Records", "load_image", "image_size"]


class Records(list):
    """A list of image records (dicts) that also knows its class names.

    Attributes:
        class_names: tuple of ``n_classes`` names; label ``i`` (1-based) is ``class_names[i - 1]``.
    """

    def __init__(self, records=(), class_names: Sequence[str] = ()):
        super().__init__(records)
        self.class_names = tuple(class_names)

    def __getitem__(self, index):
        """A record, or for a slice (``records[:100]``) a :class:`Records` with the same names."""
        if isinstance(index, slice):
            return Records(super().__getitem__(index), self.class_names)
        return super().__getitem__(index)


class _Problems:
    """Collects skipped images/objects (``on_error="skip"``) or raises at the first one."""

    def __init__(self, on_error: str, source: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error: expected 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.source = source
        self.skipped_images: Counter = Counter()
        self.skipped_objects: Counter = Counter()
        self.first_message: str | None = None

    def report(self, kind: str, message: str, whole_image: bool) -> None:
        """Raise ``ValueError(message)``, or count it under ``kind`` when skipping."""
        if self.on_error == "raise":
            raise ValueError(message)
        (self.skipped_images if whole_image else self.skipped_objects)[kind] += 1
        if self.first_message is None:
            self.first_message = message

    def warn_once(self) -> None:
        """Emit the single summary warning, if anything was skipped."""
        if self.first_message is None:
            return
        parts = []
        for what, counts in (("images", self.skipped_images), ("objects", self.skipped_objects)):
            if counts:
                detail = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
                parts.append(f"{sum(counts.values())} {what} ({detail})")
        warnings.warn(
            f"{self.source}: skipped {' and '.join(parts)}; first problem: {self.first_message}",
            stacklevel=3,
        )


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def load_image(path) -> np.ndarray:
    """Read an image file as RGB ``uint8`` pixels, upright.

    Applies the EXIF orientation tag (so phone photos are not sideways) and converts grayscale,
    palette, RGBA (alpha dropped), CMYK and 16-bit images to 8-bit RGB.

    Args:
        path: image file (any format Pillow reads).

    Returns:
        ``(height, width, 3)`` uint8 array.

    Raises:
        ValueError: the file does not exist or is not a readable image (names the file).

    Explained in notebooks/07_data_pipeline.ipynb.
    """
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels = np.asarray(image, dtype=np.float64)
                top = 65535.0 if image.mode.startswith("I;16") or pixels.max() > 255 else 255.0
                gray = np.clip(np.rint(pixels * (255.0 / top)), 0, 255).astype(np.uint8)
                return np.repeat(gray[..., None], 3, axis=-1)
            if image.mode == "P" and "transparency" in image.info:
                image = image.convert("RGBA")
            return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise ValueError(f"load_image: image file not found: {path}") from None
    except (OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise ValueError(f"load_image: cannot read image {path}: {error}") from None


def image_size(path) -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`load_image` returns it (EXIF-upright).

    Reads only the file header. Raises ``ValueError`` naming the file if it cannot be read.
    """
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError) as error:
        raise ValueError(f"cannot read image {path}: {error}") from None
    # EXIF orientations 5..8 rotate by 90 degrees: width and height swap.
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


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
    """``{name: label}`` with labels 1..n in ``classes`` order; duplicate names are an error."""
    duplicates = sorted(name for name, count in Counter(classes).items() if count > 1)
    if duplicates:
        raise ValueError(f"classes: duplicate names {duplicates}")
    return {name: index + 1 for index, name in enumerate(classes)}


def _unknown_class_message(where: str, name: str, classes) -> str:
    """Error text for a class name missing from ``classes``, with a case-insensitive hint."""
    classes = list(classes)
    hint = [known for known in classes if known.lower() == name.strip().lower()]
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    shown = ", ".join(classes[:25]) + (", ..." if len(classes) > 25 else "")
    return f"{where}: unknown class {name!r}{suggestion}; known classes: {shown}"
