"""Builders of small dataset files for the tests (VOC trees, images), and the log-capture helper.

Imported by the dataset tests as ``from dataset_files import ...`` (pytest puts ``tests/`` on the
import path).
"""

import logging

from PIL import Image


def warnings_logged(caplog) -> list[str]:
    """The warning lines ssd_lib logged while ``caplog`` was capturing."""
    return [record.getMessage() for record in caplog.records
            if record.levelno == logging.WARNING and record.name.startswith("ssd_lib")]  # fmt: skip


def write_image(path, width, height, mode="RGB", color=(200, 100, 50), **save_args):
    """A small solid image file; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, (width, height), color).save(path, **save_args)
    return path


def voc_object(name, box, difficult=None, truncated=None):
    """An <object> element; optional tags are omitted when None."""
    parts = [f"<name>{name}</name>"]
    if truncated is not None:
        parts.append(f"<truncated>{truncated}</truncated>")
    if difficult is not None:
        parts.append(f"<difficult>{difficult}</difficult>")
    xmin, ymin, xmax, ymax = box
    parts.append(
        f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>"
    )
    return "<object>" + "".join(parts) + "</object>"


def voc_xml(objects, size=(64, 48), filename=None, size_first=True):
    """An annotation document; ``size=None`` omits <size>, ``size_first=False`` puts it last."""
    size_tag = "" if size is None else (
        f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
    )
    name_tag = "" if filename is None else f"<filename>{filename}</filename>"
    body = "".join(objects)
    inner = f"{name_tag}{size_tag}{body}" if size_first else f"{body}{name_tag}{size_tag}"
    return f"<annotation><folder>whatever</folder>{inner}</annotation>"


def make_voc(root, annotations, image_set="trainval", image_sizes=None):
    """A VOC tree: ``annotations`` maps id -> XML text; images are written for every id unless
    ``image_sizes[id]`` is None (then none is written)."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    image_sizes = image_sizes or {}
    for image_id, xml in annotations.items():
        (root / "Annotations" / f"{image_id}.xml").write_text(xml)
        size = image_sizes.get(image_id, (64, 48))
        if size is not None:
            write_image(root / "JPEGImages" / f"{image_id}.jpg", *size)
    (root / "ImageSets" / "Main" / f"{image_set}.txt").write_text("\n".join(annotations) + "\n")
    return root
