"""The synthetic shapes dataset: coloured circles, squares, triangles and bars, in VOC format.

It is the dataset that CPU training and the CI notebooks use, built so the anchor choices
matter: object sizes run from 4% to 90% of the image side, log-uniformly (small objects are
common, as in real photos), and the classes differ in aspect ratio (circles and squares 1:1,
triangles 0.8 to 1.25, bars 2:1 to 4:1 lying or standing).

Each image has 1 to 6 shapes on a textured background (smooth colour blobs, a gradient or
stripes, plus pixel noise). Shapes are painted one after another, larger first, so later
(smaller) shapes may cover parts of earlier ones. Boxes are the tight boxes of the *visible*
pixels (the VOC convention), in pixel-edge coordinates (``0 <= xmin < xmax <= width``), so a
box hugs its pixels exactly. A placement that would leave an earlier shape less than
``MIN_VISIBLE`` (40%) of its pixels visible is rejected (another position is tried, and after
12 tries the new shape is left out), so no shape is hidden; a shape with less than
``DIFFICULT_BELOW`` (65%) visible is marked ``difficult`` (ignored by the VOC metric; about 7%
of the objects).

Classes are balanced over each split (a shuffled, equal share of the objects), and the dataset
is a pure function of ``(seed, n_train, n_val, image_size)``: the same call writes the same
bytes.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import colorsys
import json
import shutil
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from ssd_lib.config import SHAPES_CLASSES
from ssd_lib.datasets.records import progress

__all__ = ["make_shapes_dataset", "generate_shapes_image", "MIN_VISIBLE", "DIFFICULT_BELOW"]

#: Smallest and largest object size, as a fraction of the image side (sqrt of the box area).
MIN_SIZE, MAX_SIZE = 0.04, 0.9
#: A shape must keep at least this fraction of its pixels visible.
MIN_VISIBLE = 0.4
#: A shape with less than this fraction visible is marked difficult.
DIFFICULT_BELOW = 0.65
MAX_OBJECTS = 6
_PLACEMENT_TRIES = 12  # positions tried per shape
_FORMAT_VERSION = 3  # bump whenever the generator changes its output
_SPLITS = ("train", "val")


# --------------------------------------------------------------------------------------------
# Backgrounds
# --------------------------------------------------------------------------------------------


def _random_color(rng, saturation=(0.5, 1.0), value=(0.45, 1.0)) -> np.ndarray:
    """A random RGB colour (uint8, shape (3,)) from hue/saturation/value ranges."""
    rgb = colorsys.hsv_to_rgb(rng.uniform(0, 1), rng.uniform(*saturation), rng.uniform(*value))
    return np.array([round(255 * channel) for channel in rgb], dtype=np.uint8)


def _background(rng, side: int) -> np.ndarray:
    """``(side, side, 3)`` uint8 textured background: blobs, a gradient or stripes, plus noise.

    A weight map in [0, 1] mixes two colours (Pillow's ``composite`` does the mixing in C).
    """
    first = _random_color(rng, saturation=(0.0, 0.6), value=(0.2, 0.95))
    second = _random_color(rng, saturation=(0.0, 0.6), value=(0.2, 0.95))
    kind = rng.integers(3)
    if kind == 0:  # smooth blobs: a coarse random grid of colours, upsampled
        cells = int(rng.integers(3, 8))
        grid = rng.integers(0, 256, (cells, cells), dtype=np.uint8)
        weight = Image.fromarray(grid).resize((side, side), Image.BICUBIC)  # clips in 8 bits
    else:
        coordinates = np.arange(side, dtype=np.float32) / side
        angle = rng.uniform(0, np.pi)
        ramp = np.cos(angle) * coordinates[None, :] + np.sin(angle) * coordinates[:, None]
        if kind == 1:  # linear gradient
            weight = (ramp - ramp.min()) / (ramp.max() - ramp.min())
        else:  # stripes: a few to a few dozen periods across the image
            periods = rng.uniform(3, 30)
            weight = 0.5 + 0.5 * np.sin(np.float32(2 * np.pi * periods) * ramp)
        weight = Image.fromarray((weight * 255 + 0.5).astype(np.uint8))  # weight is in [0, 1]
    size = (side, side)
    mixed = Image.composite(Image.new("RGB", size, tuple(second.tolist())),
                            Image.new("RGB", size, tuple(first.tolist())),
                            weight)  # fmt: skip
    # grey pixel noise: random bytes mapped through a table onto a triangular distribution of
    # half-width `amplitude` around 128, added with an offset of -128 (Pillow clips to 0..255)
    amplitude = int(rng.integers(3, 16))
    quantiles = (np.arange(256) + 0.5) / 256
    triangular = np.where(quantiles < 0.5, np.sqrt(2 * quantiles) - 1,
                          1 - np.sqrt(2 - 2 * quantiles))  # fmt: skip
    table = np.rint(128 + amplitude * triangular).astype(np.uint8)
    random_bytes = np.frombuffer(rng.bytes(side * side), dtype=np.uint8).reshape(side, side)
    noise = Image.fromarray(table[random_bytes]).convert("RGB")
    return np.asarray(ImageChops.add(mixed, noise, scale=1.0, offset=-128)).copy()


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


def _shape_size(rng, class_name: str, side: int) -> tuple[int, int]:
    """``(width, height)`` in pixels: log-uniform size, the class's aspect ratio."""
    size = np.exp(rng.uniform(np.log(MIN_SIZE), np.log(MAX_SIZE))) * side
    if class_name in ("circle", "square"):
        ratio = 1.0
    elif class_name == "triangle":
        ratio = np.exp(rng.uniform(np.log(0.8), np.log(1.25)))
    else:  # bar: 2:1 to 4:1, lying or standing
        ratio = np.exp(rng.uniform(np.log(2.0), np.log(4.0)))
        ratio = ratio if rng.uniform() < 0.5 else 1 / ratio
    width, height = size * np.sqrt(ratio), size / np.sqrt(ratio)
    shrink = min(1.0, 0.95 * side / max(width, height))  # long bars must fit in the image
    return max(3, round(width * shrink)), max(3, round(height * shrink))


_OUTSIDE, _RIM, _FILL = 0, 1, 2


def _shape_mask(rng, class_name: str, width: int, height: int) -> np.ndarray:
    """``(height, width)`` uint8 map of one shape filling its box exactly: ``_FILL`` inside, a
    ``_RIM`` along its edge (about 4% of its smaller side, drawn inwards), ``_OUTSIDE`` around."""
    mask = Image.new("L", (width, height), _OUTSIDE)
    draw = ImageDraw.Draw(mask)
    style = {"fill": _FILL, "outline": _RIM, "width": max(1, round(min(width, height) / 25))}
    if class_name == "circle":
        draw.ellipse((0, 0, width - 1, height - 1), **style)
    elif class_name == "triangle":
        # base along one side of the box, apex somewhere on the opposite side
        apex = rng.uniform(0.15, 0.85)
        side_index = rng.integers(4)
        right, bottom = width - 1, height - 1
        if side_index == 0:  # base at the bottom
            points = [(0, bottom), (right, bottom), (apex * right, 0)]
        elif side_index == 1:  # base at the top
            points = [(0, 0), (right, 0), (apex * right, bottom)]
        elif side_index == 2:  # base on the left
            points = [(0, 0), (0, bottom), (right, apex * bottom)]
        else:  # base on the right
            points = [(right, 0), (right, bottom), (0, apex * bottom)]
        draw.polygon(points, **style)
    else:  # square and bar: the full box
        draw.rectangle((0, 0, width - 1, height - 1), **style)
    return np.asarray(mask)


def _paint(rng, mask: np.ndarray, color: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` uint8 pixels of a shape (``mask`` from :func:`_shape_mask`): soft shading
    across it and a darker rim."""
    height, width = mask.shape
    angle = rng.uniform(0, 2 * np.pi)
    u = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    v = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    shade = 1.0 + np.float32(0.35 * np.cos(angle)) * u + np.float32(0.35 * np.sin(angle)) * v
    shade = np.where(mask == _RIM, np.float32(0.55), shade)
    return np.clip(color * shade[..., None], 0, 255).astype(np.uint8)


def _contrasting_color(rng, region: np.ndarray) -> np.ndarray:
    """A saturated colour far (in RGB) from the mean colour of ``region`` (h, w, 3)."""
    mean = region.reshape(-1, 3).mean(axis=0)
    best, best_distance = None, -1.0
    for _ in range(8):
        color = _random_color(rng)
        distance = float(np.linalg.norm(color.astype(np.float32) - mean))
        if distance > 110:
            return color
        if distance > best_distance:
            best, best_distance = color, distance
    return best


def generate_shapes_image(rng, class_ids, image_size: int = 300):
    """One synthetic image and its annotations.

    Args:
        rng: ``numpy.random.Generator`` (all randomness comes from it).
        class_ids: labels (1-based, into ``SHAPES_CLASSES``) of the shapes to try to place,
            1 to 6 of them; a shape that finds no position is left out.
        image_size: side of the square image in pixels.

    Returns:
        ``(pixels, boxes, labels, difficult)``: ``(S, S, 3)`` uint8 RGB; ``(k, 4)`` float32
        pixel-edge corners of the visible part of each shape; ``(k,)`` int32; ``(k,)`` bool.
    """
    side = int(image_size)
    canvas = _background(rng, side)
    owner = np.zeros((side, side), dtype=np.int32)  # which shape (1-based) owns each pixel
    placed = []  # (label, full pixel count, window) per painted shape
    visible = [0]  # visible pixel count per shape, index 0 = background
    sizes = [(label, _shape_size(rng, SHAPES_CLASSES[label - 1], side)) for label in class_ids]
    sizes.sort(key=lambda item: -item[1][0] * item[1][1])  # larger shapes first (behind)
    for label, (width, height) in sizes:
        shape_map = _shape_mask(rng, SHAPES_CLASSES[label - 1], width, height)
        mask = shape_map != _OUTSIDE
        area = int(mask.sum())
        for _ in range(_PLACEMENT_TRIES):
            x0, y0 = int(rng.integers(0, side - width + 1)), int(rng.integers(0, side - height + 1))
            window = (slice(y0, y0 + height), slice(x0, x0 + width))
            covered = np.bincount(owner[window][mask], minlength=len(visible))
            remaining = np.array(visible) - covered
            full = np.array([1] + [count for _, count, _ in placed])
            if np.all(remaining[1:] >= MIN_VISIBLE * full[1:]):
                break
        else:
            continue  # no position leaves the earlier shapes visible enough: leave it out
        color = _contrasting_color(rng, canvas[window][mask])
        np.copyto(canvas[window], _paint(rng, shape_map, color), where=mask[..., None])
        owner[window][mask] = len(visible)
        visible = list(remaining) + [area]
        placed.append((label, area, window))
    boxes, labels, difficult = [], [], []
    for index, (label, area, (row_slice, column_slice)) in enumerate(placed, start=1):
        own = owner[row_slice, column_slice] == index  # a shape owns pixels only in its window
        rows, columns = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
        x0, y0 = column_slice.start, row_slice.start
        boxes.append([x0 + columns[0], y0 + rows[0], x0 + columns[-1] + 1, y0 + rows[-1] + 1])
        labels.append(label)
        difficult.append(visible[index] < DIFFICULT_BELOW * area)
    return (canvas, np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
            np.asarray(labels, dtype=np.int32), np.asarray(difficult, dtype=bool))  # fmt: skip


# --------------------------------------------------------------------------------------------
# The dataset on disk
# --------------------------------------------------------------------------------------------


def _voc_annotation(image_id: str, side: int, boxes, labels, difficult) -> str:
    """VOC XML text for one image (coordinates are pixel edges, written as integers)."""
    objects = "".join(
        f"  <object>\n    <name>{escape(SHAPES_CLASSES[label - 1])}</name>\n"
        f"    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
        f"    <difficult>{int(hard)}</difficult>\n    <bndbox>\n"
        f"      <xmin>{int(box[0])}</xmin>\n      <ymin>{int(box[1])}</ymin>\n"
        f"      <xmax>{int(box[2])}</xmax>\n      <ymax>{int(box[3])}</ymax>\n"
        f"    </bndbox>\n  </object>\n"
        for box, label, hard in zip(boxes, labels, difficult)
    )
    return (
        f"<annotation>\n  <folder>shapes</folder>\n  <filename>{image_id}.jpg</filename>\n"
        f"  <size>\n    <width>{side}</width>\n    <height>{side}</height>\n"
        f"    <depth>3</depth>\n  </size>\n{objects}</annotation>\n"
    )


def _class_plan(seed: int, split_index: int, n_images: int) -> list[np.ndarray]:
    """Per image, the labels to place: 1..6 objects, classes an equal shuffled share."""
    rng = np.random.default_rng([seed, split_index, 2**31])
    counts = rng.integers(1, MAX_OBJECTS + 1, n_images)
    n_classes = len(SHAPES_CLASSES)
    labels = rng.permutation(np.arange(int(counts.sum())) % n_classes) + 1
    return np.split(labels, np.cumsum(counts)[:-1]) if n_images else []


def make_shapes_dataset(
    root, n_train: int = 2000, n_val: int = 500, seed: int = 0, image_size: int = 300,
    overwrite: bool = False,
) -> Path:  # fmt: skip
    """Write the synthetic shapes dataset in Pascal VOC layout (or reuse it if up to date).

    Writes ``JPEGImages/<id>.jpg``, ``Annotations/<id>.xml``, ``ImageSets/Main/{train,val,
    trainval}.txt`` (ids ``train_000000``, ``val_000000``, ...) and ``shapes.json`` (the
    parameters). If ``root`` already holds a dataset made with the same parameters, nothing is
    written; one made with other parameters is replaced. On a terminal, a progress bar shows
    once generating has taken 2 seconds.

    Read it with ``parse_voc(root, "train", classes=SHAPES_CLASSES)``.

    Args:
        root: output folder.
        n_train, n_val: number of images per split (>= 0).
        seed: the dataset is a pure function of ``(seed, n_train, n_val, image_size)``.
        image_size: side of the square images in pixels (>= 32).
        overwrite: regenerate even if an identical dataset is there.

    Returns:
        ``root`` as a Path.

    Raises:
        ValueError: negative counts, a too small ``image_size``, or a non-empty ``root`` that is
            not a shapes dataset (it is never deleted).

    Explained in notebooks/07_data_pipeline.ipynb.
    """
    root = Path(root)
    if n_train < 0 or n_val < 0:
        raise ValueError(f"n_train and n_val must be >= 0, got {n_train} and {n_val}")
    if image_size < 32:
        raise ValueError(f"image_size must be >= 32 pixels, got {image_size}")
    manifest = {"format_version": _FORMAT_VERSION, "classes": list(SHAPES_CLASSES),
                "n_train": int(n_train), "n_val": int(n_val), "seed": int(seed),
                "image_size": int(image_size)}  # fmt: skip
    manifest_path = root / "shapes.json"
    if manifest_path.is_file():
        if not overwrite and json.loads(manifest_path.read_text()) == manifest:
            return root
    elif root.exists() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty and holds no shapes.json: not overwriting it; "
                         "choose an empty or new folder")  # fmt: skip
    manifest_path.unlink(missing_ok=True)
    for folder in ("JPEGImages", "Annotations", "ImageSets"):
        shutil.rmtree(root / folder, ignore_errors=True)
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    (root / "ImageSets" / "Main").mkdir(parents=True)
    all_ids = []
    for split_index, (split, n_images) in enumerate(zip(_SPLITS, (n_train, n_val))):
        ids = []
        plan = _class_plan(seed, split_index, n_images)
        for index, class_ids in progress(enumerate(plan), n_images, f"generating {split} shapes"):
            rng = np.random.default_rng([seed, split_index, index])
            pixels, boxes, labels, difficult = generate_shapes_image(rng, class_ids, image_size)
            image_id = f"{split}_{index:06d}"
            Image.fromarray(pixels).save(root / "JPEGImages" / f"{image_id}.jpg", quality=90)
            (root / "Annotations" / f"{image_id}.xml").write_text(
                _voc_annotation(image_id, image_size, boxes, labels, difficult)
            )
            ids.append(image_id)
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids))
        all_ids += ids
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("".join(f"{i}\n" for i in all_ids))
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")  # last: marks it complete
    return root
