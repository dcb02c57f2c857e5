"""A CSV of boxes, one row per box (``image,xmin,ymin,xmax,ymax,class``) -> records.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import csv
import io
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

__all__ = ["parse_csv", "csv_class_names", "CSV_COLUMNS"]

CSV_COLUMNS = ("image", "xmin", "ymin", "xmax", "ymax", "class")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_rows(csv_path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, cells)`` of every non-blank row (the file must be UTF-8)."""
    text = read_text(csv_path, "CSV file")
    try:
        rows = enumerate(csv.reader(io.StringIO(text, newline="")), start=1)
        return [(number, row) for number, row in rows if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise ValueError(f"{csv_path}: malformed CSV ({error})") from None


def _read_objects(csv_path: Path, problems: _Problems) -> dict[str, list]:
    """``{image: [(line number, box, class name), ...]}`` in order of first appearance (an image
    listed without a box has an empty list); bad rows go to ``problems``."""
    rows = _read_rows(csv_path)
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
    return objects


def _names(objects: dict) -> tuple[str, ...]:
    """The sorted distinct class names of :func:`_read_objects`' result."""
    return tuple(sorted({name for entries in objects.values() for _, _, name in entries}))


def csv_class_names(csv_path) -> tuple[str, ...]:
    """The sorted distinct names of the ``class`` column of a boxes CSV (see :func:`parse_csv`).

    Raises:
        ValueError: the file is unreadable, not UTF-8 or malformed (names the file and line).
    """
    return _names(_read_objects(Path(csv_path), _Problems("raise", str(csv_path))))


def parse_csv(
    csv_path, images_dir=None, classes: Sequence[str] | None = None, on_error: str = "raise"
) -> Records:
    """Read a CSV of boxes, one row per box: ``image,xmin,ymin,xmax,ymax,class``.

    A header row is optional; when present, its column names (those six, in any order, extra
    columns ignored) choose the columns. Rows of the same image are grouped into one record, in
    order of first appearance. A row with empty coordinates and class (``image,,,,,``) lists an
    image without boxes. Coordinates are pixels of the upright image (after EXIF rotation); a
    warning says so when every box is smaller than 2 pixels (normalized 0..1 coordinates?).

    Args:
        csv_path: the CSV file (UTF-8).
        images_dir: folder that the ``image`` column is relative to; ``None`` means the CSV's
            folder, or its ``images/`` subfolder if the first image is there.
        classes: class names (label ``i`` is ``classes[i - 1]``); ``None`` takes the sorted
            distinct names of the ``class`` column.
        on_error: ``"raise"`` or ``"skip"`` as in :func:`ssd_lib.datasets.parse_voc`.

    Returns:
        :class:`Records`; ``records.class_names`` holds the classes.

    Raises:
        ValueError: a file that is not UTF-8 text, a short or non-numeric row, a missing image,
            an unknown class or an inverted box, naming the file, the line number and the image.
    """
    csv_path = Path(csv_path)
    problems = _Problems(on_error, f"parse_csv {csv_path}")
    objects = _read_objects(csv_path, problems)
    if images_dir is None:
        images_dir = locate_images_dir(list(objects)[:1], [csv_path.parent, csv_path.parent / "images"],
                                       str(csv_path))  # fmt: skip
    images_dir = Path(images_dir)
    label_of = _label_map(_names(objects) if classes is None else classes)
    records = Records(class_names=tuple(label_of), source=str(csv_path))
    for image, entries in progress(objects.items(), len(objects), "reading boxes"):
        image_path = images_dir / image
        if not image_path.is_file():
            first_line = entries[0][0] if entries else "?"
            problems.report("missing image", f"{csv_path}: image {image!r} (first on line "
                            f"{first_line}) not found: {image_path}", True)  # fmt: skip
            continue
        fitted = _fit_annotation_to_image(image_path, None, [], problems)
        if fitted is None:
            continue
        size, _ = fitted
        boxes, labels = [], []
        for number, box, name in entries:
            where = f"{csv_path}: line {number} ({image})"
            if name not in label_of:
                message = _unknown_class_message(where, name, label_of)
                problems.report("unknown class", message, False)
                continue
            box = _usable_box(box, size, where, problems)
            if box is not None:
                boxes.append(box)
                labels.append(label_of[name])
        records.append(_record(image_path, size, boxes, labels, [False] * len(labels)))
    return problems.finish(records)
