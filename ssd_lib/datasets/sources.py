"""One entry point for any dataset on disk: recognise its layout, list its splits, find its class
names, read a split into records.

>>> source = open_dataset("data/VOCdevkit")        # or a VOC root, a COCO JSON, a CSV, a YOLO folder
>>> source.splits(), source.default_splits()       # ('test', 'trainval', 'VOC2007/test', ...), ('trainval', 'test')
>>> train = source.records("trainval")             # Records, labels 1..n in discover_classes() order
>>> train = load_dataset("data/VOCdevkit", "trainval")   # the same in one call

Layouts (:func:`open_dataset` tries them in this order):

========== ================================================================= ==================
format     what is recognised                                                splits
========== ================================================================= ==================
yolo       a folder with ``data.yaml`` (or the YAML file itself), or with     ``train``, ``val``,
           ``images/`` and ``labels/`` (names from ``classes.txt``)          ``test``; else the
                                                                             ``images/`` subfolders
voc        a folder with ``Annotations/`` (``JPEGImages/``,                  the lists in
           ``ImageSets/Main/``), e.g. the shapes dataset                     ``ImageSets/Main``, or
                                                                             ``all``
vocdevkit  a ``VOCdevkit`` folder (``VOC2007/``, ``VOC2012/`` ...) or a      a split of every year
           folder holding one                                                that has it
                                                                             (``trainval`` = 07+12)
                                                                             or of one
                                                                             (``VOC2007/test``)
coco       a COCO JSON file, or a folder with ``annotations/*.json`` or      one per JSON file
           ``<split>/_annotations.coco.json`` (Roboflow)                     (``instances_val2017``
                                                                             -> ``val2017``)
csv        a CSV file (``image,xmin,ymin,xmax,ymax,class``) or a folder of   one per CSV file
           them                                                              (its name)
========== ================================================================= ==================

Class names are those of the whole dataset, so every split gets the same labels: VOC and CSV
the sorted names found in all annotations (the shapes dataset: its ``shapes.json``), COCO its
categories in id order, YOLO its ``names``. Giving ``classes`` fixes the names and their order.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ssd_lib.datasets.coco import parse_coco, read_coco_json
from ssd_lib.datasets.csv_boxes import csv_class_names, parse_csv
from ssd_lib.datasets.records import Records, check_class_names, read_text
from ssd_lib.datasets.voc import discover_classes, parse_voc
from ssd_lib.datasets.yolo import IMAGE_SUFFIXES, parse_yolo, read_data_yaml, yolo_images

__all__ = ["DatasetSource", "open_dataset", "load_dataset"]

logger = logging.getLogger(__name__)


class EmptySplitError(ValueError):
    """A split that exists but holds no images (the message names the dataset and the split)."""

_ALL = "all"  # the split of every image, where a dataset names no splits


class DatasetSource:
    """A dataset on disk in one of the known layouts (see the module docstring).

    Attributes:
        path: the dataset's root folder or file, as given to :func:`open_dataset`.
        format: ``"voc"``, ``"vocdevkit"``, ``"coco"``, ``"csv"`` or ``"yolo"``.
    """

    format = ""

    def __init__(self, path):
        self.path = Path(path)
        self._classes: tuple[str, ...] | None = None

    def __repr__(self) -> str:
        return f"<{self.format} dataset {self.path}: splits {', '.join(self.splits())}>"

    def splits(self) -> tuple[str, ...]:
        """The names of the splits this dataset has."""
        raise NotImplementedError

    def _discover_classes(self) -> tuple[str, ...]:
        raise NotImplementedError

    def _parse(self, split: str, classes: tuple[str, ...], on_error: str) -> Records:
        raise NotImplementedError

    def discover_classes(self) -> tuple[str, ...]:
        """The class names of the whole dataset, in label order (label ``i`` is name ``i - 1``).

        Raises:
            ValueError: no class names can be found (no objects, no names file).
        """
        if self._classes is None:
            self._classes = check_class_names(self._discover_classes(), f"{self.path}: class names")
            if not self._classes:
                raise ValueError(f"{self.path}: no class names found (no objects in the "
                                 "annotations); give the classes")  # fmt: skip
        return self._classes

    def default_splits(self) -> tuple[str, str | None]:
        """``(training split, validation split or None)``: ``trainval``/``test`` when both exist,
        else ``train`` (or the one name starting with "train") and ``val``/``valid``/
        ``validation``/``test``; a dataset with one split trains on it, with no validation split.

        Raises:
            ValueError: several splits, none of which looks like the training split.
        """
        names = self.splits()
        if "trainval" in names and "test" in names:
            return "trainval", "test"

        def pick(exact, prefix):
            found = [name for name in exact if name in names]
            starting = [name for name in names if name.startswith(prefix) and name != "trainval"]
            return found[0] if found else (starting[0] if len(starting) == 1 else None)

        train = pick(("train",), "train")
        if train is not None:
            return train, pick(("val", "valid", "validation", "test"), "val")
        if len(names) == 1:
            return names[0], None
        raise ValueError(f"{self.path}: cannot tell which of the splits {', '.join(names)} is for "
                         "training; choose one")  # fmt: skip

    def records(self, split: str | None = None, classes=None, on_error: str = "raise") -> Records:
        """Read one split.

        Args:
            split: a name from :meth:`splits`; ``None`` means the training split of
                :meth:`default_splits`.
            classes: class names in label order; ``None`` means :meth:`discover_classes`.
            on_error: ``"raise"`` or ``"skip"`` as in :func:`ssd_lib.datasets.parse_voc`.

        Returns:
            :class:`Records` with ``source`` naming the dataset and the split.

        Raises:
            ValueError: an unknown split (lists the available ones), a string instead of a list
                of classes, an unknown class, an empty split, or any problem of the format's
                parser, naming the file.
        """
        if split is None:
            split = self.default_splits()[0]
            logger.info("%s: reading split %r", self.path, split)
        if split not in self.splits():
            raise ValueError(f"{self.path}: no split {split!r}; this {self.format} dataset has "
                             f"{', '.join(self.splits())}")  # fmt: skip
        classes = self.discover_classes() if classes is None else check_class_names(classes)
        records = self._parse(split, classes, on_error)
        if not records:
            skipped = " (every image was skipped: see the warning)" if on_error == "skip" else ""
            raise EmptySplitError(f"{self.path}: split {split!r} has no images{skipped}")
        records.source = f"{self.path} (split {split!r})"
        return records


class VOCSource(DatasetSource):
    """A Pascal VOC-format folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``)."""

    format = "voc"

    def splits(self):
        lists = {path.stem for path in (self.path / "ImageSets" / "Main").glob("*.txt")}
        # VOC also has per-class lists such as aeroplane_trainval.txt: not splits of their own
        names = sorted(name for name in lists
                       if not any(name.endswith(f"_{other}") for other in lists))  # fmt: skip
        return tuple(names) or (_ALL,)

    def _discover_classes(self):
        manifest = self.path / "shapes.json"  # the synthetic shapes dataset keeps its class order
        if manifest.is_file():
            return tuple(json.loads(read_text(manifest, "shapes manifest"))["classes"])
        return discover_classes(self.path, None)

    def _parse(self, split, classes, on_error):
        return parse_voc(self.path, None if split == _ALL else split, classes, on_error)


class VOCDevkitSource(DatasetSource):
    """A ``VOCdevkit`` folder of VOC-format years (or a folder holding ``VOCdevkit/``)."""

    format = "vocdevkit"

    def __init__(self, path):
        super().__init__(path)
        devkit = self.path / "VOCdevkit" if (self.path / "VOCdevkit").is_dir() else self.path
        self.years = {folder.name: VOCSource(folder) for folder in sorted(devkit.iterdir())
                      if (folder / "Annotations").is_dir()}  # fmt: skip

    def splits(self):
        combined = sorted({split for year in self.years.values() for split in year.splits()})
        qualified = [f"{name}/{split}" for name, year in self.years.items() for split in year.splits()]
        return tuple(combined + qualified)

    def _discover_classes(self):
        return tuple(sorted({name for year in self.years.values() for name in year.discover_classes()}))

    def _parse(self, split, classes, on_error):
        if "/" in split:
            year, split = split.split("/", 1)
            return self.years[year]._parse(split, classes, on_error)
        roots = [year.path for year in self.years.values() if split in year.splits()]
        return parse_voc(roots, None if split == _ALL else split, classes, on_error)


def _coco_split_name(path: Path) -> str:
    """``instances_val2017.json`` -> ``val2017``; ``train/_annotations.coco.json`` -> ``train``."""
    if path.name == "_annotations.coco.json":
        return path.parent.name
    return path.stem.removeprefix("instances_")


class COCOSource(DatasetSource):
    """COCO detection JSON files, one per split."""

    format = "coco"

    def __init__(self, path, files: list[Path], images_dir=None):
        super().__init__(path)
        self.files = {_coco_split_name(file): file for file in files}
        self.images_dir = images_dir

    def splits(self):
        return tuple(self.files)

    def _discover_classes(self):
        names_by_id: dict = {}
        for file in self.files.values():
            for category in read_coco_json(file)["categories"]:
                name = names_by_id.setdefault(category["id"], category["name"])
                if name != category["name"]:
                    raise ValueError(f"{file}: category id {category['id']} is {category['name']!r} "
                                     f"but {name!r} in another split")  # fmt: skip
        return tuple(str(names_by_id[category_id]) for category_id in sorted(names_by_id))

    def _parse(self, split, classes, on_error):
        return parse_coco(self.files[split], self.images_dir, classes, on_error, split=split)


class CSVSource(DatasetSource):
    """CSV files of boxes, one per split."""

    format = "csv"

    def __init__(self, path, files: list[Path], images_dir=None):
        super().__init__(path)
        self.files = {file.stem: file for file in files}
        self.images_dir = images_dir

    def splits(self):
        return tuple(self.files)

    def _discover_classes(self):
        return tuple(sorted({name for file in self.files.values() for name in csv_class_names(file)}))

    def _parse(self, split, classes, on_error):
        return parse_csv(self.files[split], self.images_dir, classes, on_error)


class YOLOSource(DatasetSource):
    """A YOLO-format dataset: ``data.yaml`` with the names and splits, or ``images/`` +
    ``labels/`` folders (splits: the subfolders of ``images/``; names: ``classes.txt``)."""

    format = "yolo"

    def __init__(self, path, data_yaml: Path | None):
        super().__init__(path)
        if data_yaml is not None:
            layout = read_data_yaml(data_yaml)
            self.root, self.names, self.entries = layout["root"], layout["names"], layout["splits"]
        else:
            self.root = self.path
            folders = sorted(folder for folder in (self.path / "images").iterdir() if folder.is_dir())
            self.entries = {folder.name: f"images/{folder.name}" for folder in folders} or {_ALL: "images"}
            names_file = self.path / "classes.txt"
            self.names = (tuple(line.strip() for line in read_text(names_file, "class names file")
                                .splitlines() if line.strip()) if names_file.is_file() else None)  # fmt: skip

    def splits(self):
        return tuple(self.entries)

    def _discover_classes(self):
        if self.names is None:
            raise ValueError(f"{self.path}: no class names: add 'names' to data.yaml (or a "
                             "classes.txt), or give the classes")  # fmt: skip
        return self.names

    def _parse(self, split, classes, on_error):
        images = yolo_images(self.entries[split], self.root)
        names = self.names if self.names is not None else classes
        return parse_yolo(images, names, classes, on_error, source=f"{self.path} ({split})")


def _yolo_yaml(folder: Path) -> Path | None:
    """``data.yaml`` (or ``dataset.yaml``) of a YOLO dataset folder, if there is one."""
    return next((folder / name for name in ("data.yaml", "dataset.yaml") if (folder / name).is_file()),
                None)  # fmt: skip


def _coco_files(folder: Path) -> list[Path]:
    """The COCO JSON files of a folder: ``annotations/*.json``, ``*/_annotations.coco.json``,
    or ``*.json``."""
    for pattern in ("annotations/*.json", "*/_annotations.coco.json", "*.json"):
        files = sorted(folder.glob(pattern))
        if files:
            return files
    return []


def open_dataset(path, images_dir=None) -> DatasetSource:
    """Recognise the dataset at ``path`` (see the module docstring for the layouts).

    Args:
        path: a dataset folder, or a COCO ``.json``, a ``.csv`` or a YOLO ``.yaml`` file.
        images_dir: for COCO and CSV, the image folder (default: found beside the file).

    Returns:
        A :class:`DatasetSource`.

    Raises:
        ValueError: the path does not exist, or is none of the known layouts (says what was
            looked for).
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path}: no such dataset file or folder")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return COCOSource(path, [path], images_dir)
        if suffix == ".csv":
            return CSVSource(path, [path], images_dir)
        if suffix in (".yaml", ".yml"):
            return YOLOSource(path.parent, path)
        raise ValueError(f"{path}: not a dataset file (expected a COCO .json, a .csv of boxes or a "
                         "YOLO data.yaml)")  # fmt: skip
    if _yolo_yaml(path) is not None:
        return YOLOSource(path, _yolo_yaml(path))
    if (path / "Annotations").is_dir():
        return VOCSource(path)
    devkit = path / "VOCdevkit" if (path / "VOCdevkit").is_dir() else path
    if any((folder / "Annotations").is_dir() for folder in devkit.iterdir() if folder.is_dir()):
        return VOCDevkitSource(path)
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return YOLOSource(path, None)
    if _coco_files(path):
        return COCOSource(path, _coco_files(path), images_dir)
    if sorted(path.glob("*.csv")):
        return CSVSource(path, sorted(path.glob("*.csv")), images_dir)
    images = [file for file in path.iterdir() if file.suffix.lower() in IMAGE_SUFFIXES]
    found = f" (it holds {len(images)} images but no annotations)" if images else ""
    raise ValueError(
        f"{path}: not a dataset I know{found}; expected a VOC folder (Annotations/), a VOCdevkit "
        "(VOC2007/Annotations/ ...), a YOLO folder (data.yaml, or images/ and labels/), COCO JSON "
        "(annotations/*.json) or a CSV of boxes"
    )


def load_dataset(path, split: str | None = None, classes=None, on_error: str = "raise",
                 images_dir=None) -> Records:  # fmt: skip
    """Read one split of the dataset at ``path``: ``open_dataset(path, images_dir).records(split,
    classes, on_error)`` (see :class:`DatasetSource`).

    Args:
        path: a dataset folder or file (see :func:`open_dataset`).
        split: a split name; ``None`` means the training split (``trainval`` or ``train``).
        classes: class names in label order; ``None`` discovers the dataset's.
        on_error: ``"raise"`` or ``"skip"``.
        images_dir: for COCO and CSV, the image folder (default: found beside the file).

    Returns:
        :class:`Records`.

    Example:
        >>> train = load_dataset("data/shapes", "train")
        >>> train.class_names
        ('circle', 'square', 'triangle', 'bar')
    """
    return open_dataset(path, images_dir).records(split, classes, on_error)
