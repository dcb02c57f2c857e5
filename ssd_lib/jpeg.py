"""JPEG files for the training pipeline: the size from the header, decoding at reduced size.

:func:`read_jpeg` reads a file once and finds its size and EXIF orientation by walking the JPEG
markers (a few microseconds; Pillow's ``Image.open`` parses every table in Python, a noticeable
share of the pipeline's time); :func:`decode_jpeg` decodes it with OpenCV (libjpeg-turbo), at
1/2, 1/4 or 1/8 of its size when the augmentation shrinks it that much (libjpeg's DCT scaling:
less inverse-DCT and colour-conversion work). Files that are not upright 8-bit colour JPEGs are
left to :func:`ssd_lib.datasets.load_image` (Pillow), which handles every format and orientation.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np

from .datasets.images import ImageReadError

__all__ = ["EncodedJpeg", "read_jpeg", "decode_jpeg"]

_START_OF_FRAME = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_START_OF_SCAN, _APP1, _ORIENTATION_TAG = 0xDA, 0xE1, 0x0112
_STANDALONE = {0x01, *range(0xD0, 0xD9)}  # markers without a length
#: libjpeg's DCT scaling factors and OpenCV's flags for them, largest first.
_REDUCED_DECODING = ((8, cv2.IMREAD_REDUCED_COLOR_8), (4, cv2.IMREAD_REDUCED_COLOR_4), (2, cv2.IMREAD_REDUCED_COLOR_2))


@dataclasses.dataclass(frozen=True, repr=False)
class EncodedJpeg:
    """An upright 8-bit colour JPEG, read but not decoded: its bytes, ``size`` ``(width, height)``
    and ``path`` (for error messages)."""

    data: bytes
    size: tuple
    path: str

    def __repr__(self) -> str:
        return f"EncodedJpeg({self.path!r}, size={self.size})"


def _exif_orientation(tiff: bytes) -> int:
    """The orientation tag of an EXIF block (TIFF layout), 1 (upright) if it has none."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None:
        return 1
    number = lambda start, length=2: int.from_bytes(tiff[start : start + length], order)  # noqa: E731
    directory = number(4, 4)
    for entry in range(number(directory)):
        start = directory + 2 + 12 * entry
        if start + 12 > len(tiff):
            break
        if number(start) == _ORIENTATION_TAG:
            return number(start + 8)
    return 1


def _frame_header(data: bytes):
    """``(width, height, components, precision, orientation)`` from the markers before the frame
    header, or ``None`` if ``data`` is no JPEG or the scan starts first."""
    if data[:2] != b"\xff\xd8":
        return None
    position, orientation = 2, 1
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF or marker in _STANDALONE:  # fill byte, or a marker without a segment
            position += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position + 4 : position + 2 + length]
        if marker == _APP1 and segment[:6] == b"Exif\0\0":
            orientation = _exif_orientation(segment[6:])
        elif marker in _START_OF_FRAME and len(segment) >= 6:
            height, width = int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big")
            return width, height, segment[5], segment[0], orientation
        elif marker == _START_OF_SCAN:
            return None
        position += 2 + length
    return None


def read_jpeg(path) -> EncodedJpeg | None:
    """Read ``path``; an :class:`EncodedJpeg` if it is an upright (EXIF orientation 1 or none)
    8-bit JPEG with 3 colour components, else ``None`` (another format, greyscale, CMYK, a
    rotated photo: decode those with :func:`ssd_lib.datasets.load_image`).

    Raises:
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    header = _frame_header(data)
    if header is None:
        return None
    width, height, components, precision, orientation = header
    if components != 3 or precision != 8 or orientation != 1 or width < 1 or height < 1:
        return None
    return EncodedJpeg(data, (width, height), str(path))


def decode_jpeg(jpeg: EncodedJpeg, shrink: float = 1.0) -> np.ndarray:
    """Decode at the smallest DCT scale (1, 1/2, 1/4, 1/8) that is at least ``1 / shrink``.

    Args:
        jpeg: from :func:`read_jpeg`.
        shrink: how many times smaller the image will be resampled (>= 1 reduces).

    Returns:
        ``(h, w, 3)`` uint8 **BGR** (OpenCV's order), ``h = ceil(height / factor)``.

    Raises:
        ImageReadError: the data cannot be decoded (names the file).
    """
    flag = next((flag for factor, flag in _REDUCED_DECODING if shrink >= factor), cv2.IMREAD_COLOR)
    pixels = cv2.imdecode(np.frombuffer(jpeg.data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
    if pixels is None:
        raise ImageReadError(f"cannot read image {jpeg.path}: image file is truncated or corrupt")
    return pixels
