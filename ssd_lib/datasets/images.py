"""Image files: reading pixels upright, reading sizes from headers, and EXIF orientation.

Phone photos are often stored sideways with an EXIF ``Orientation`` tag that tells viewers how to
turn them. ``ssd_lib`` always works on the *upright* image (as viewers show it): :func:`load_image`
applies the tag, and :func:`image_size` reports the upright size. Some annotation tools ignore
the tag and draw boxes on the stored pixels; :func:`boxes_to_upright` turns such boxes with the
image (the parsers do so when an annotation's declared size is that of the stored pixels).

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ImageReadError", "ImageHeader", "load_image", "image_size", "read_image_header",
           "boxes_to_upright"]  # fmt: skip

_EXIF_ORIENTATION = 0x0112


class ImageReadError(ValueError):
    """An image file is missing, truncated or not an image; the message names the file."""


@dataclasses.dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says about its geometry.

    Attributes:
        stored_size: ``(width, height)`` of the pixels as stored in the file.
        orientation: the EXIF orientation tag, 1..8 (1: stored upright; 5..8 turn by 90 degrees).
    """

    stored_size: tuple[int, int]
    orientation: int = 1

    @property
    def upright_size(self) -> tuple[int, int]:
        """``(width, height)`` as viewers show the image (orientations 5..8 swap the sides)."""
        width, height = self.stored_size
        return (height, width) if self.orientation in (5, 6, 7, 8) else (width, height)


def load_image(path) -> np.ndarray:
    """Read an image file as RGB ``uint8`` pixels, upright.

    Applies the EXIF orientation tag (so phone photos are not sideways) and converts grayscale,
    palette, RGBA (alpha dropped), CMYK and 16-bit images to 8-bit RGB.

    Args:
        path: image file (any format Pillow reads).

    Returns:
        ``(height, width, 3)`` uint8 array.

    Raises:
        ImageReadError: (a ``ValueError``) the file does not exist, is truncated or is not a
            readable image; the message names the file.

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
        raise ImageReadError(f"load_image: image file not found: {path}") from None
    except (OSError, Image.DecompressionBombError, SyntaxError) as error:
        raise ImageReadError(f"load_image: cannot read image {path}: {error}") from None


def read_image_header(path) -> ImageHeader:
    """The stored size and EXIF orientation of an image file, from its header only.

    Raises:
        ImageReadError: the file is missing or not an image (names the file).
    """
    try:
        with Image.open(path) as image:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
            return ImageHeader(image.size, orientation if orientation in range(1, 9) else 1)
    except FileNotFoundError:
        raise ImageReadError(f"image file not found: {path}") from None
    except (OSError, SyntaxError) as error:
        raise ImageReadError(f"cannot read image {path}: {error}") from None


def image_size(path) -> tuple[int, int]:
    """``(width, height)`` of an image file as :func:`load_image` returns it (EXIF-upright).

    Reads only the file header. Raises :class:`ImageReadError` naming the file if it cannot be
    read.
    """
    return read_image_header(path).upright_size


def boxes_to_upright(boxes, stored_size, orientation: int) -> np.ndarray:
    """Pixel corners drawn on the stored pixels -> the same boxes on the upright image.

    Args:
        boxes: ``(k, 4)`` corners ``(xmin, ymin, xmax, ymax)`` in stored pixels.
        stored_size: ``(width, height)`` of the stored pixels.
        orientation: EXIF orientation 1..8, as in :class:`ImageHeader`.

    Returns:
        ``(k, 4)`` float32 corners in pixels of the upright image (what :func:`load_image`
        returns), so each box covers the same pixels as before.
    """
    width, height = stored_size
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x = boxes[:, [0, 2]]
    y = boxes[:, [1, 3]]
    # Where stored point (x, y) lands on the upright image, per orientation (Pillow's
    # exif_transpose: 2 mirror, 3 turn 180, 4 flip, 5 transpose, 6 turn 90 clockwise,
    # 7 transverse, 8 turn 90 counter-clockwise).
    moved = {
        1: (x, y), 2: (width - x, y), 3: (width - x, height - y), 4: (x, height - y),
        5: (y, x), 6: (height - y, x), 7: (height - y, width - x), 8: (y, width - x),
    }[orientation]  # fmt: skip
    new_x, new_y = moved
    return np.stack([new_x.min(axis=1), new_y.min(axis=1), new_x.max(axis=1), new_y.max(axis=1)],
                    axis=1).astype(np.float32)  # fmt: skip
