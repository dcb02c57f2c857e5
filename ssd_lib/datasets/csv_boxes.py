"""A CSV of boxes, one row per box (``image,xmin,ymin,xmax,ymax,class``) -> records.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from ssd_lib.datasets.records import (
    Records,
    _label_map,
    _Problems,
    _record,
    _unknown_class_message,
    _usable_box,
    image_size,
)

__all__ = ["parse_csv", "CSV_COLUMNS"]

CSV_COLUMNS = ("image", "xmin", "ymin", "xmax", "ymax", "class")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_csv(
    csv_path, images_dir, classes: Sequence[str] | None = None, on_error: str = "raise"
) -> Records:
    """Read a CSV of boxes, one row per box: ``image,xmin,ymin,xmax,ymax,class``.

    A header row is optional; when present, its column names (those six, in any order, extra
    columns ignored) choose the columns. Rows of the same image are grouped into one record, in
    order of first appearance. A row with empty coordinates and class (``image,,,,,``) lists an
    image without boxes.

    Args:
        csv_path: the CSV file.
        images_dir: folder that the ``image`` column is relative to.
        classes: class names (label ``i`` is ``classes[i - 1]``); ``None`` takes the sorted
            distinct names of the ``class`` column.
        on_error: ``"raise"`` or ``"skip"`` as in :func:`parse_voc`.

    Returns:
        :class:`Records`; ``records.class_names`` holds the classes.

    Raises:
        ValueError: a short or non-numeric row, a missing image, an unknown class or an
            inverted box, naming the file, the line number and the image.
    """
    csv_path, images_dir = Path(csv_path), Path(images_dir)
    with open(csv_path, newline="", encoding="utf-8-sig") as file:
        rows = [(number, row) for number, row in enumerate(csv.reader(file), start=1)
                if any(cell.strip() for cell in row)]  # fmt: skip
    columns = list(range(6))
    first = [cell.strip().lower() for cell in rows[0][1]] if rows else []
    looks_like_header = any(name in first for name in CSV_COLUMNS[1:5]) or (
        len(first) > 1 and first[1] != "" and not _is_number(first[1])
    )
    if looks_like_header:
        header = [cell.strip().lower() for cell in rows.pop(0)[1]]
        missing = [name for name in CSV_COLUMNS if name not in header]
        if missing:
            raise ValueError(f"{csv_path}: header {header} lacks columns {missing}; expected "
                             f"{','.join(CSV_COLUMNS)}")  # fmt: skip
        columns = [header.index(name) for name in CSV_COLUMNS]
    problems = _Problems(on_error, "parse_csv")
    objects: dict[str, list] = {}
    for number, row in rows:
        where = f"{csv_path}: line {number}"
        if len(row) <= max(columns):
            problems.report("short row", f"{where}: expected {len(CSV_COLUMNS)} columns "
                            f"{','.join(CSV_COLUMNS)}, got {row}", False)  # fmt: skip
            continue
        image, *coordinates, name = (row[column].strip() for column in columns)
        entries = objects.setdefault(image, [])
        if not any(coordinates) and not name:
            continue
        try:
            box = [float(value) for value in coordinates]
        except ValueError:
            problems.report("non-numeric box", f"{where} ({image}): non-numeric coordinates "
                            f"{coordinates}", False)  # fmt: skip
            continue
        entries.append((number, box, name))
    if classes is None:
        classes = sorted({name for entries in objects.values() for _, _, name in entries})
    classes = tuple(classes)
    label_of = _label_map(classes)
    records = Records(class_names=classes)
    for image, entries in objects.items():
        image_path = images_dir / image
        if not image_path.is_file():
            first_line = entries[0][0] if entries else "?"
            problems.report("missing image", f"{csv_path}: image {image!r} (first on line "
                            f"{first_line}) not found: {image_path}", True)  # fmt: skip
            continue
        try:
            size = image_size(image_path)
        except ValueError as error:
            problems.report("unreadable image", f"{csv_path}: {error}", True)
            continue
        boxes, labels = [], []
        for number, box, name in entries:
            where = f"{csv_path}: line {number} ({image})"
            if name not in label_of:
                message = _unknown_class_message(where, name, classes)
                problems.report("unknown class", message, False)
                continue
            box = _usable_box(box, size, where, problems)
            if box is not None:
                boxes.append(box)
                labels.append(label_of[name])
        records.append(_record(image_path, size, boxes, labels, [False] * len(labels)))
    problems.warn_once()
    return records
