"""Datasets on disk -> records: Pascal VOC, COCO-style JSON, CSV and YOLO formats, one entry
point that recognises them, the synthetic shapes dataset, the Pascal VOC download, and image
loading.

Start with :func:`load_dataset` (or :func:`open_dataset` for the splits and class names): it
recognises the layout of a folder or file and calls the format's parser. Every parser returns
the same thing, a :class:`Records` list with one dict per image:

- ``image_path``: ``str``, the image file;
- ``size``: ``(width, height)`` of the upright image (after EXIF rotation) in pixels;
- ``boxes``: ``(k, 4)`` float32 corners ``(xmin, ymin, xmax, ymax)`` in pixels;
- ``labels``: ``(k,)`` int32 class ids in ``1 .. n_classes`` (0 is the background);
- ``difficult``: ``(k,)`` bool.

``records.class_names`` holds the class names in label order (label ``i`` is
``class_names[i - 1]``), whether they were given or discovered from the annotations;
``records.source`` names the dataset (and split) for messages. Images without boxes are valid
records (``k == 0``).

Bad input raises ``ValueError`` naming the file and the object; with ``on_error="skip"`` the
parsers skip the bad image or object instead and log one warning that counts what was skipped
(``logging``, logger ``ssd_lib.datasets.records``). Long reads show a progress bar on a terminal.

Modules (one concept each): ``sources`` (recognising a dataset, its splits and classes),
``records`` (the record format and what the parsers share), ``images`` (image files, EXIF),
``voc``, ``coco``, ``csv_boxes``, ``yolo`` (the parsers), ``splits`` (``load_splits``: the
training and validation splits of a shapes or VOC folder), ``shapes`` (the synthetic dataset),
``download`` (Pascal VOC archives), ``cli`` (the command line).

Command line (``python -m ssd_lib.datasets --help``):

- ``download voc2007 voc2012 --to data/``: the official Pascal VOC archives, extracted into
  ``data/VOCdevkit/VOC2007`` and ``data/VOCdevkit/VOC2012``;
- ``shapes --to data/shapes --train 2000 --val 500 --seed 0``: the synthetic shapes dataset.

Explained in notebooks/07_data_pipeline.ipynb.
"""

from ssd_lib.datasets.coco import parse_coco
from ssd_lib.datasets.csv_boxes import parse_csv
from ssd_lib.datasets.download import download_voc
from ssd_lib.datasets.images import ImageReadError, image_size, load_image
from ssd_lib.datasets.records import Records, check_class_names
from ssd_lib.datasets.shapes import make_shapes_dataset
from ssd_lib.datasets.sources import DatasetSource, load_dataset, open_dataset
from ssd_lib.datasets.splits import load_splits
from ssd_lib.datasets.voc import discover_classes, parse_voc
from ssd_lib.datasets.yolo import parse_yolo

__all__ = [
    "load_dataset",
    "open_dataset",
    "DatasetSource",
    "Records",
    "check_class_names",
    "parse_voc",
    "discover_classes",
    "parse_coco",
    "parse_csv",
    "parse_yolo",
    "load_image",
    "image_size",
    "ImageReadError",
    "make_shapes_dataset",
    "download_voc",
    "load_splits",
]
