"""COCO-style detection JSON (``images``, ``annotations``, ``categories``) -> records.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import json
from pathlib import Path

from ssd_lib.datasets.records import Records, _Problems, _record, _usable_box, image_size

__all__ = ["parse_coco"]


def parse_coco(annotation_json, images_dir, on_error: str = "raise") -> Records:
    """Read a COCO-style detection JSON (``images``, ``annotations``, ``categories``) into records.

    Category ids are mapped to labels ``1..n`` in increasing id order (COCO's 80 ids run from 1
    to 90 with gaps); ``records.class_names`` holds the category names in that order. A ``bbox``
    ``[x, y, width, height]`` becomes corners ``(x, y, x + width, y + height)``; ``iscrowd`` marks
    the box difficult. Images without annotations are kept (no boxes).

    Args:
        annotation_json: path of the JSON file.
        images_dir: folder that ``images[i].file_name`` is relative to.
        on_error: ``"raise"`` or ``"skip"`` as in :func:`parse_voc`.

    Returns:
        :class:`Records`, in the order of the JSON's ``images`` list.

    Raises:
        ValueError: malformed JSON or missing keys, a missing image, an annotation whose
            ``image_id`` or ``category_id`` is unknown, or a box with non-positive size (naming
            the annotation index and id).
    """
    annotation_json, images_dir = Path(annotation_json), Path(images_dir)
    try:
        data = json.loads(annotation_json.read_text(encoding="utf-8"))
        images, categories = data["images"], data["categories"]
        annotations = data.get("annotations", [])
        category_ids = sorted(int(category["id"]) for category in categories)
        names_by_id = {int(category["id"]): str(category["name"]) for category in categories}
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{annotation_json}: not a COCO detection file ({error!r})") from None
    label_of = {category_id: index + 1 for index, category_id in enumerate(category_ids)}
    problems = _Problems(on_error, "parse_coco")
    per_image: dict = {}
    for index, annotation in enumerate(annotations):
        where = f"{annotation_json}: annotation {index} (id {annotation.get('id')})"
        category_id = annotation.get("category_id")
        if category_id not in label_of:
            problems.report("unknown category", f"{where}: unknown category_id {category_id!r}",
                            False)  # fmt: skip
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
            ([x, y, x + width, y + height], label_of[category_id], bool(annotation.get("iscrowd")))
        )
    known_ids = {image.get("id") for image in images}
    for image_id in per_image.keys() - known_ids:
        problems.report("unknown image_id", f"{annotation_json}: annotations refer to image_id "
                        f"{image_id!r}, which is not in 'images'", False)  # fmt: skip
    records = Records(class_names=[names_by_id[category_id] for category_id in category_ids])
    for index, image in enumerate(images):
        image_path = images_dir / str(image.get("file_name", ""))
        where = (f"{annotation_json}: image {index} (id {image.get('id')}, "
                 f"{image.get('file_name')!r})")  # fmt: skip
        if not image_path.is_file():
            problems.report("missing image", f"{where}: image file not found: {image_path}", True)
            continue
        width, height = image.get("width"), image.get("height")
        try:
            size = (int(width), int(height)) if width and height else image_size(image_path)
        except ValueError as error:
            problems.report("unreadable image", f"{where}: {error}", True)
            continue
        objects = per_image.get(image.get("id"), [])
        kept = []
        for box, label, crowd in objects:
            box = _usable_box(box, size, where, problems)
            if box is not None:
                kept.append((box, label, crowd))
        records.append(_record(image_path, size, [k[0] for k in kept], [k[1] for k in kept],
                               [k[2] for k in kept]))  # fmt: skip
    problems.warn_once()
    return records
