"""YOLO-format datasets (``images/``, ``labels/``, ``data.yaml``) -> records.

The layout Ultralytics and Roboflow use: every image ``.../images/<rest>/<name>.jpg`` has a
label file ``.../labels/<rest>/<name>.txt`` with one line per object,
``class_index x_center y_center width height``, all but the class normalized to 0..1 by the
image's width and height (a line with more pairs is a polygon; its bounding box is used). A
missing or empty label file is an image without objects. ``data.yaml`` names the classes
(``names``, a list or ``{index: name}``) and the splits (``train``, ``val``, ``test``: a folder
of images, a text file listing images, or a list of those, relative to ``path`` or to the
YAML's folder).

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import yaml

from ssd_lib.datasets.records import (
    Records,
    _fit_annotation_to_image,
    _label_map,
    _Problems,
    _record,
    _unknown_class_message,
    _usable_box,
    progress,
    read_text,
)

__all__ = ["parse_yolo", "read_data_yaml", "yolo_images", "yolo_label_path", "YOLO_SPLITS",
           "IMAGE_SUFFIXES"]  # fmt: skip

#: The split keys of ``data.yaml``, in the order they are listed.
YOLO_SPLITS = ("train", "val", "test")
#: Files with these extensions (any case) are images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: Normalized coordinates may overshoot 1 by this much (rounding in export tools).
_TOLERANCE = 1e-3


def _names(value, path: Path) -> tuple[str, ...]:
    """``names`` of a data.yaml (a list, or a dict ``{0: name, 1: name, ...}``) as a tuple."""
    if isinstance(value, dict):
        if sorted(value) != list(range(len(value))):
            raise ValueError(f"{path}: names: the indices must be 0..{len(value) - 1}, got "
                             f"{sorted(value)}")  # fmt: skip
        return tuple(str(value[index]) for index in range(len(value)))
    if isinstance(value, list):
        return tuple(str(name) for name in value)
    raise ValueError(f"{path}: names: expected a list of class names or {{index: name}}, got "
                     f"{value!r}")  # fmt: skip


def read_data_yaml(path) -> dict:
    """Read a YOLO ``data.yaml``.

    Returns:
        ``{"root": Path, "names": tuple or None, "splits": {name: entry}}``: ``root`` is the
        ``path`` key (relative to the YAML's folder) when that folder exists, else the YAML's
        folder (``path`` often names the machine the dataset was exported on); ``splits`` holds
        the non-empty ``train``/``val``/``test`` entries as written.

    Raises:
        ValueError: unreadable or malformed YAML, or malformed ``names`` (naming the file).
    """
    path = Path(path)
    try:
        data = yaml.safe_load(read_text(path, "YOLO data.yaml"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: malformed YAML ({' '.join(str(error).split())})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with 'names' and 'train'/'val', got {data!r}")
    root = path.parent / str(data.get("path") or ".")
    names = _names(data["names"], path) if data.get("names") is not None else None
    splits = {split: data[split] for split in YOLO_SPLITS if data.get(split)}
    return {"root": root if root.is_dir() else path.parent, "names": names, "splits": splits}


def yolo_images(entry, root) -> list[Path]:
    """The image files of one split entry of data.yaml, sorted within each part.

    Args:
        entry: a folder (searched recursively), a ``.txt`` file listing image paths (relative
            to the file's folder), or a list of those; relative to ``root``.
        root: the dataset root (see :func:`read_data_yaml`).

    Raises:
        ValueError: a part that does not exist (names it).
    """
    images = []
    for part in entry if isinstance(entry, list) else [entry]:
        location = Path(root) / str(part)
        if location.is_dir():
            images += sorted(path for path in location.rglob("*")
                             if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())  # fmt: skip
        elif location.is_file():
            lines = read_text(location, "image list").splitlines()
            images += [location.parent / line.strip() for line in lines if line.strip()]
        else:
            raise ValueError(f"{location}: no such folder or image list (from the split entry "
                             f"{part!r})")  # fmt: skip
    return images


def yolo_label_path(image_path) -> Path:
    """The label file of an image: the last ``images`` folder of its path becomes ``labels``
    and the extension ``.txt`` (an image outside any ``images`` folder: the ``.txt`` beside it)."""
    parts = list(Path(image_path).parts)
    if "images" in parts:
        parts[len(parts) - 1 - parts[::-1].index("images")] = "labels"
    return Path(*parts).with_suffix(".txt")


def _read_label_file(label_path: Path, image_path: Path, size, names, label_of, problems):
    """``(boxes, labels)`` in pixels of one label file (no file: no objects)."""
    if not label_path.is_file():
        return [], []
    try:
        lines = read_text(label_path, "YOLO label file").splitlines()
    except ValueError as error:
        problems.report("unreadable label file", str(error), True)
        return None
    width, height = size
    boxes, labels = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{label_path}: line {number}"
        fields = line.split()
        try:
            class_index, values = int(fields[0]), [float(value) for value in fields[1:]]
        except ValueError:
            problems.report("malformed line", f"{where}: expected 'class x_center y_center width "
                            f"height' numbers, got {line.strip()!r}", False)  # fmt: skip
            continue
        if not (len(values) == 4 or (len(values) >= 6 and len(values) % 2 == 0)):
            problems.report("malformed line", f"{where}: expected 4 box values or a polygon "
                            f"(pairs of x y), got {len(values)} values", False)  # fmt: skip
            continue
        if not 0 <= class_index < len(names):
            problems.report("unknown class", f"{where}: class index {class_index} but there are "
                            f"{len(names)} class names (0..{len(names) - 1})", False)  # fmt: skip
            continue
        if min(values) < -_TOLERANCE or max(values) > 1 + _TOLERANCE:
            problems.report("not normalized", f"{where}: coordinates must be normalized to 0..1 "
                            f"by the image size (YOLO format), got {values[:4]}; pixel "
                            "coordinates?", False)  # fmt: skip
            continue
        name = names[class_index]
        if name not in label_of:
            problems.report("unknown class", _unknown_class_message(where, name, label_of), False)
            continue
        if len(values) == 4:
            x_center, y_center, box_width, box_height = values
            box = [x_center - box_width / 2, y_center - box_height / 2,
                   x_center + box_width / 2, y_center + box_height / 2]  # fmt: skip
        else:  # polygon: its bounding box
            xs, ys = values[0::2], values[1::2]
            box = [min(xs), min(ys), max(xs), max(ys)]
        pixels = [box[0] * width, box[1] * height, box[2] * width, box[3] * height]
        pixels = _usable_box(pixels, size, f"{where} ({image_path.name})", problems)
        if pixels is not None:
            boxes.append(pixels)
            labels.append(label_of[name])
    return boxes, labels


def parse_yolo(image_paths, names: Sequence[str], classes: Sequence[str] | None = None,
               on_error: str = "raise", source: str = "") -> Records:  # fmt: skip
    """Read YOLO-format labels of the given images into records.

    Args:
        image_paths: the images (e.g. from :func:`yolo_images`); each one's labels are read
            from :func:`yolo_label_path`.
        names: the class names of the label files' indices 0..n-1 (``names`` in data.yaml).
        classes: class names in label order (label ``i`` is ``classes[i - 1]``); ``None`` means
            ``names``. Names of ``names`` missing from ``classes`` are unknown classes.
        on_error: ``"raise"`` or ``"skip"`` as in :func:`ssd_lib.datasets.parse_voc`.
        source: where the images come from, for messages.

    Returns:
        :class:`Records` (boxes in pixels of the upright image), in ``image_paths`` order.

    Raises:
        ValueError: (with ``on_error="raise"``) an unreadable image or label file, a malformed
            line, a class index without a name, coordinates outside 0..1, an unknown class or
            an empty box, naming the file and line.
    """
    names = tuple(names)
    label_of = _label_map(names if classes is None else classes)
    problems = _Problems(on_error, f"parse_yolo {source}".strip())
    records = Records(class_names=tuple(label_of), source=source)
    image_paths = [Path(path) for path in image_paths]
    for image_path in progress(image_paths, len(image_paths), "reading labels"):
        fitted = _fit_annotation_to_image(image_path, None, [], problems)
        if fitted is None:
            continue
        size, _ = fitted
        found = _read_label_file(yolo_label_path(image_path), image_path, size, names, label_of,
                                 problems)  # fmt: skip
        if found is not None:
            boxes, labels = found
            records.append(_record(image_path, size, boxes, labels, [False] * len(labels)))
    return problems.finish(records)
