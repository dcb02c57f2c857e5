"""Pascal VOC-format datasets (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``) -> records.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from pathlib import Path

from ssd_lib.config import VOC_CLASSES
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

__all__ = ["parse_voc", "discover_classes", "IMAGE_EXTENSIONS"]

#: Extensions tried, in order, when ``JPEGImages/<id>.jpg`` does not exist.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".webp", ".tif")


def _voc_roots(voc_root) -> list[Path]:
    """One root or a list of roots, each checked to contain ``Annotations/``."""
    roots = [voc_root] if isinstance(voc_root, (str, os.PathLike)) else list(voc_root)
    if not roots:
        raise ValueError("voc_root: expected a path or a non-empty list of paths")
    checked = []
    for root in map(Path, roots):
        if not (root / "Annotations").is_dir():
            inside = [str(path.parent) for pattern in ("*/Annotations", "VOCdevkit/*/Annotations")
                      for path in sorted(root.glob(pattern)) if path.is_dir()]  # fmt: skip
            hint = f"; did you mean one of {inside}?" if inside else ""
            raise ValueError(f"voc_root: {root} has no Annotations/ folder{hint}")
        checked.append(root)
    return checked


def _voc_image_ids(root: Path, image_set: str | None) -> list[str]:
    """Image ids of ``image_set`` (first token per line of ``ImageSets/Main/<set>.txt``).

    ``image_set=None`` means every ``Annotations/*.xml``.
    """
    if image_set is None:
        return sorted(path.stem for path in (root / "Annotations").glob("*.xml"))
    candidates = [root / "ImageSets" / "Main" / f"{image_set}.txt", root / f"{image_set}.txt"]
    for list_file in candidates:
        if list_file.is_file():
            lines = read_text(list_file, "image set list").splitlines()
            return [line.split()[0] for line in lines if line.strip()]
    available = sorted(p.stem for p in (root / "ImageSets" / "Main").glob("*.txt"))
    raise ValueError(
        f"image_set {image_set!r}: no {candidates[0]} (nor {candidates[1].name} in {root}); "
        f"available sets: {available[:20]}; image_set=None reads every annotation"
    )


def _annotation_files(roots, image_set) -> list[tuple[Path, str, Path]]:
    """``(root, image id, annotation file)`` of every image of ``image_set`` in every root."""
    return [(root, image_id, root / "Annotations" / f"{image_id}.xml")
            for root in roots for image_id in _voc_image_ids(root, image_set)]  # fmt: skip


def _voc_image_path(root: Path, image_id: str, filename: str | None) -> Path | None:
    """The image of annotation ``image_id``: ``JPEGImages/<id>.jpg``, then other extensions,
    then the annotation's ``<filename>`` (with and without an added extension)."""
    folder = root / "JPEGImages"
    candidates = [folder / f"{image_id}{extension}" for extension in IMAGE_EXTENSIONS]
    if filename:
        name = Path(filename.replace("\\", "/")).name
        candidates.append(folder / name)
        candidates += [folder / f"{name}{extension}" for extension in IMAGE_EXTENSIONS]
    return next((path for path in candidates if path.is_file()), None)


def _text(element, tag: str) -> str | None:
    """Stripped text of the first child ``tag`` of ``element``, or None."""
    child = element.find(tag)
    if child is None or child.text is None:
        return None
    return child.text.strip()


def _flag(element, tag: str) -> bool:
    """A VOC 0/1 flag such as ``<difficult>``; missing or empty means False."""
    value = _text(element, tag)
    return value is not None and value.lower() in ("1", "true", "yes")


def _annotated_size(tree_root) -> tuple[int, int] | None:
    """``(width, height)`` from ``<size>``, or None when it is missing, zero or not a number."""
    size = tree_root.find("size")
    if size is None:
        return None
    try:
        width, height = int(float(_text(size, "width"))), int(float(_text(size, "height")))
    except (TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _parse_voc_file(xml_path, image_id, root, label_of, problems):
    """One VOC annotation file -> record (or None when the whole image is skipped)."""
    try:
        tree_root = ElementTree.parse(xml_path).getroot()
    except FileNotFoundError:
        problems.report("missing annotation", f"{xml_path}: annotation file not found", True)
        return None
    except ElementTree.ParseError as error:
        problems.report("malformed XML", f"{xml_path}: malformed XML ({error})", True)
        return None
    image_path = _voc_image_path(root, image_id, _text(tree_root, "filename"))
    if image_path is None:
        expected = root / "JPEGImages" / f"{image_id}.jpg"
        problems.report(
            "missing image", f"{xml_path}: image not found (expected {expected}; also tried other "
            f"extensions and <filename> {_text(tree_root, 'filename')!r})", True)  # fmt: skip
        return None
    objects = []  # (where, box as annotated, label, difficult)
    for index, obj in enumerate(tree_root.iter("object")):
        name = _text(obj, "name") or ""
        where = f"{xml_path}: object {index} ({name!r})"
        if name not in label_of:
            problems.report("unknown class", _unknown_class_message(where, name, label_of), False)
            continue
        box_element = obj.find("bndbox")
        try:
            box = [float(_text(box_element, tag)) for tag in ("xmin", "ymin", "xmax", "ymax")]
        except (TypeError, ValueError, AttributeError):
            problems.report("missing or bad <bndbox>", f"{where}: missing or non-numeric "
                            "<bndbox> xmin/ymin/xmax/ymax", False)  # fmt: skip
            continue
        objects.append((where, box, label_of[name], _flag(obj, "difficult")))
    fitted = _fit_annotation_to_image(image_path, _annotated_size(tree_root),
                                      [box for _, box, _, _ in objects], problems)  # fmt: skip
    if fitted is None:
        return None
    size, upright_boxes = fitted
    boxes, labels, difficult = [], [], []
    for (where, _, label, hard), box in zip(objects, upright_boxes):
        box = _usable_box([float(value) for value in box], size, where, problems)
        if box is not None:
            boxes.append(box)
            labels.append(label)
            difficult.append(hard)
    return _record(image_path, size, boxes, labels, difficult)


def discover_classes(voc_root, image_set: str | None = "trainval") -> tuple[str, ...]:
    """Sorted class names found in the ``<object><name>`` tags of a VOC dataset.

    Args:
        voc_root: a VOC folder (containing ``Annotations/``) or a list of them.
        image_set: as in :func:`parse_voc`.

    Returns:
        Sorted tuple of distinct names (unreadable annotation files are ignored here;
        :func:`parse_voc` reports them).
    """
    names: set[str] = set()
    files = _annotation_files(_voc_roots(voc_root), image_set)
    for _, _, xml_path in progress(files, len(files), "reading class names"):
        try:
            tree_root = ElementTree.parse(xml_path).getroot()
        except (OSError, ElementTree.ParseError):
            continue
        names.update(_text(obj, "name") or "" for obj in tree_root.iter("object"))
    names.discard("")
    return tuple(sorted(names))


def parse_voc(
    voc_root,
    image_set: str | None = "trainval",
    classes: Sequence[str] | None = VOC_CLASSES,
    on_error: str = "raise",
) -> Records:
    """Read a Pascal VOC-format dataset into records.

    The image of annotation ``Annotations/<id>.xml`` is ``JPEGImages/<id>.jpg`` as in the VOC
    layout; when that file does not exist, other extensions and then the XML's ``<filename>`` are
    tried. Tags may come in any order; ``<difficult>`` and ``<truncated>`` may be missing (False);
    coordinates may be floats. VOC coordinates are used as written (1-based pixel indices, no
    shift), clipped to the image.

    The image's size is read from its header (upright, after EXIF rotation) and checked against
    ``<size>`` (which may be missing): a photo annotated on its stored pixels while an EXIF tag
    turns it by 90 degrees gets its boxes turned with it (one warning counts these images); any
    other disagreement is an error (or the image is skipped), never a silent cut.

    Args:
        voc_root: a folder with ``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/`` (e.g.
            ``data/VOCdevkit/VOC2007``), or a list of such folders whose images are combined
            (e.g. VOC2007 + VOC2012 trainval).
        image_set: name of ``ImageSets/Main/<image_set>.txt`` (a ``<root>/<image_set>.txt`` is
            accepted too); ``None`` reads every ``Annotations/*.xml``.
        classes: class names; label ``i`` is ``classes[i - 1]``. ``None`` discovers them from the
            annotations (sorted, see :func:`discover_classes`); read them back from
            ``records.class_names``.
        on_error: ``"raise"`` (default) raises at the first problem; ``"skip"`` drops the bad
            image (malformed XML, missing image, size mismatch) or object (unknown class, bad
            box) and logs one warning counting what was skipped.

    Returns:
        :class:`Records`: one dict per image (``image_path``, ``size`` (width, height), ``boxes``
        (k, 4) float32 pixel corners, ``labels`` (k,) int32 in 1..n, ``difficult`` (k,) bool),
        in image-set order, roots one after another; ``records.class_names`` is the class tuple.

    Raises:
        ValueError: a root without ``Annotations/``, an unknown image set, or (when
            ``on_error="raise"``) malformed XML, a missing or unreadable image, an image whose
            size disagrees with ``<size>``, an unknown class, or an inverted/empty/outside box,
            naming the file and the object index and name.

    Explained in notebooks/07_data_pipeline.ipynb.
    """
    roots = _voc_roots(voc_root)
    if classes is None:
        classes = discover_classes(roots, image_set)
    label_of = _label_map(classes)
    where = ", ".join(str(root) for root in roots)
    source = f"{where} ({'every annotation' if image_set is None else f'image set {image_set!r}'})"
    problems = _Problems(on_error, f"parse_voc {source}")
    records = Records(class_names=tuple(label_of), source=source)
    files = _annotation_files(roots, image_set)
    for root, image_id, xml_path in progress(files, len(files), "reading annotations"):
        record = _parse_voc_file(xml_path, image_id, root, label_of, problems)
        if record is not None:
            records.append(record)
    return problems.finish(records)
