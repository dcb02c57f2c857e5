"""COCO-style detection JSON (``images``, ``annotations``, ``categories``) -> records.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ssd_lib.datasets.records import (
    Records,
    _fit_annotation_to_image,
    _label_map,
    _Problems,
    _record,
    _unknown_class_message,
    _usable_box,
    locate_images_dir,
    progress,
    read_text,
)

__all__ = ["parse_coco", "read_coco_json", "coco_images_dir_candidates"]


def _list_of_dicts(data: dict, key: str, path: Path, required: bool = True) -> list:
    """``data[key]`` checked to be a list of objects (a missing optional key is ``[]``)."""
    if key not in data and not required:
        return []
    if key not in data:
        raise ValueError(f"{path}: not a COCO detection file: no {key!r} list")
    value = data[key]
    if not isinstance(value, list):
        hint = " (use [] for images without boxes)" if key == "annotations" else ""
        raise ValueError(f"{path}: {key!r} must be a list, got {json.dumps(value)[:40]}{hint}")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise ValueError(f"{path}: {key}[{index}] must be an object, got {json.dumps(item)[:40]}")
    return value


def _unique_ids(items: list, key: str, describe, path: Path) -> None:
    """Refuse two entries of ``items`` with the same ``key`` (naming both)."""
    seen: dict = {}
    for index, item in enumerate(items):
        value = item.get(key)
        if value in seen:
            first = seen[value]
            raise ValueError(f"{path}: {describe(first, items[first])} and {describe(index, item)} "
                             f"share {key} {value!r}; ids must be unique")  # fmt: skip
        seen[value] = index


def read_coco_json(annotation_json) -> dict:
    """Read and check a COCO detection file: ``{"images", "annotations", "categories"}`` lists.

    ``annotations`` may be missing (a file of images without boxes). Category ids and names and
    image ids must be unique; every category needs an ``id`` and a ``name``.

    Raises:
        ValueError: unreadable, non-UTF-8 or malformed JSON, a missing or non-list section,
            ``"annotations": null``, or a duplicate id or name (naming the file and the entries).
    """
    path = Path(annotation_json)
    try:
        data = json.loads(read_text(path, "COCO annotation file"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: malformed JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a COCO detection file: expected an object with 'images', "
                         "'annotations' and 'categories'")  # fmt: skip
    images = _list_of_dicts(data, "images", path)
    categories = _list_of_dicts(data, "categories", path)
    annotations = _list_of_dicts(data, "annotations", path, required=False)
    for index, category in enumerate(categories):
        if not isinstance(category.get("id"), int) or not category.get("name"):
            raise ValueError(f"{path}: categories[{index}] needs an integer 'id' and a 'name', got "
                             f"{json.dumps(category)[:60]}")  # fmt: skip
    _unique_ids(categories, "id", lambda k, c: f"categories[{k}] ({c.get('name')!r})", path)
    _unique_ids(categories, "name", lambda k, c: f"categories[{k}] (id {c.get('id')})", path)
    _unique_ids(images, "id", lambda k, i: f"images[{k}] ({i.get('file_name')!r})", path)
    return {"images": images, "annotations": annotations, "categories": categories}


def coco_images_dir_candidates(annotation_json, split: str | None = None) -> list[Path]:
    """Folders where the images of a COCO file usually are, most likely first: beside it, in
    ``images/``, in a folder named after the split (``annotations/instances_val2017.json`` ->
    ``val2017/``) beside it or one level up, and in ``images/<split>``."""
    folder = Path(annotation_json).parent
    names = [split] if split else []
    return [folder, folder / "images", *(folder / name for name in names),
            *(folder / "images" / name for name in names), *(folder.parent / name for name in names),
            *(folder.parent / "images" / name for name in names), folder.parent / "images"]  # fmt: skip


def parse_coco(annotation_json, images_dir=None, classes: Sequence[str] | None = None,
               on_error: str = "raise", split: str | None = None) -> Records:  # fmt: skip
    """Read a COCO-style detection JSON (``images``, ``annotations``, ``categories``) into records.

    Without ``classes``, category ids are mapped to labels ``1..n`` in increasing id order
    (COCO's 80 ids run from 1 to 90 with gaps) and ``records.class_names`` holds the category
    names in that order; with ``classes``, categories are matched by name. A ``bbox``
    ``[x, y, width, height]`` becomes corners ``(x, y, x + width, y + height)``; ``iscrowd`` marks
    the box difficult. Images without annotations are kept (no boxes). An image's ``width`` and
    ``height`` (optional) are checked against the file as ``parse_voc`` checks ``<size>``.

    Args:
        annotation_json: path of the JSON file.
        images_dir: folder that ``images[i].file_name`` is relative to; ``None`` looks in
            :func:`coco_images_dir_candidates` for the first image.
        classes: class names in label order, or ``None`` for the file's categories.
        on_error: ``"raise"`` or ``"skip"`` as in :func:`ssd_lib.datasets.parse_voc`.
        split: the split's name, a hint for finding ``images_dir`` (``"val2017"``).

    Returns:
        :class:`Records`, in the order of the JSON's ``images`` list.

    Raises:
        ValueError: see :func:`read_coco_json`; a missing image folder; and (when
            ``on_error="raise"``) a missing or unreadable image, a size mismatch, an annotation
            whose ``image_id``, ``category_id`` or category name is unknown, or a box with
            non-positive size (naming the annotation index and id).
    """
    annotation_json = Path(annotation_json)
    data = read_coco_json(annotation_json)
    images = data["images"]
    if images_dir is None:
        images_dir = locate_images_dir([str(image.get("file_name", "")) for image in images[:1]],
                                       coco_images_dir_candidates(annotation_json, split),
                                       str(annotation_json))  # fmt: skip
    images_dir = Path(images_dir)
    categories = sorted(data["categories"], key=lambda category: category["id"])
    names = [str(category["name"]) for category in categories]
    label_of_name = _label_map(names if classes is None else classes)
    name_of_id = {category["id"]: str(category["name"]) for category in categories}
    problems = _Problems(on_error, f"parse_coco {annotation_json}")
    per_image: dict = {}
    for index, annotation in enumerate(data["annotations"]):
        where = f"{annotation_json}: annotation {index} (id {annotation.get('id')})"
        category_id = annotation.get("category_id")
        if category_id not in name_of_id:
            problems.report("unknown category", f"{where}: unknown category_id {category_id!r}",
                            False)  # fmt: skip
            continue
        name = name_of_id[category_id]
        if name not in label_of_name:
            problems.report("unknown class", _unknown_class_message(where, name, label_of_name), False)
            continue
        try:
            x, y, width, height = (float(value) for value in annotation["bbox"])
        except (KeyError, TypeError, ValueError):
            problems.report("bad bbox", f"{where}: missing or malformed bbox "
                            f"{annotation.get('bbox')!r}", False)  # fmt: skip
            continue
        if not width > 0 or not height > 0:
            problems.report("bad box", f"{where}: bbox [x, y, w, h] = {[x, y, width, height]} "
                            "has non-positive width or height", False)  # fmt: skip
            continue
        per_image.setdefault(annotation.get("image_id"), []).append(
            ([x, y, x + width, y + height], label_of_name[name], bool(annotation.get("iscrowd")))
        )
    known_ids = {image.get("id") for image in images}
    for image_id in per_image.keys() - known_ids:
        problems.report("unknown image_id", f"{annotation_json}: annotations refer to image_id "
                        f"{image_id!r}, which is not in 'images'", False)  # fmt: skip
    records = Records(class_names=tuple(label_of_name), source=str(annotation_json))
    for index, image in progress(enumerate(images), len(images), "reading annotations"):
        image_path = images_dir / str(image.get("file_name", ""))
        where = (f"{annotation_json}: image {index} (id {image.get('id')}, "
                 f"{image.get('file_name')!r})")  # fmt: skip
        if not image_path.is_file():
            problems.report("missing image", f"{where}: image file not found: {image_path}", True)
            continue
        width, height = image.get("width"), image.get("height")
        objects = per_image.get(image.get("id"), [])
        annotated_size = (int(width), int(height)) if width and height else None
        fitted = _fit_annotation_to_image(image_path, annotated_size,
                                          [box for box, _, _ in objects], problems)  # fmt: skip
        if fitted is None:
            continue
        size, upright_boxes = fitted
        kept = []
        for (_, label, crowd), box in zip(objects, upright_boxes):
            box = _usable_box([float(value) for value in box], size, where, problems)
            if box is not None:
                kept.append((box, label, crowd))
        records.append(_record(image_path, size, [k[0] for k in kept], [k[1] for k in kept],
                               [k[2] for k in kept]))  # fmt: skip
    return problems.finish(records)
