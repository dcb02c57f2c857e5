"""Command line: ``python -m ssd_lib.predict --run RUN IMAGES_OR_FOLDERS... --out DIR`` (or
``ssd-predict``).

Runs a training run's model (:func:`ssd_lib.inference.load_run`) on image files and the images
of folders, and writes into ``DIR``:

- ``<image name>.png``: the image with its detections (boxes coloured by class, ``"name score"``
  labels), drawn with :func:`ssd_lib.viz.draw_detections` at :data:`DISPLAY_WIDTH` pixels wide
  whatever the photo's size, so lines and labels stay readable;
- ``detections.json``: one entry per image, ``{"image", "width", "height", "detections": [{"box":
  [xmin, ymin, xmax, ymax], "label", "class", "score"}]}``, boxes in the image's original
  pixels (``x`` right, ``y`` down).

``--confidence`` (default 0.5), ``--iou`` (NMS, 0.45) and ``--top-k`` (100) suit display; the
evaluation uses a 0.01 threshold instead.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .datasets import load_image
from .datasets.yolo import IMAGE_SUFFIXES
from .inference import load_run, predict
from .status import show_status
from .viz import draw_detections

__all__ = ["DISPLAY_WIDTH", "image_files", "annotated_image", "main"]

logger = logging.getLogger(__spec__.name)  # ssd_lib.<command> also under python -m (__name__ is __main__)

#: Width in pixels of the annotated images.
DISPLAY_WIDTH = 960
DETECTIONS_FILE = "detections.json"


def image_files(inputs) -> list[Path]:
    """The image files among ``inputs``: files as given, folders' images (sorted, not recursive).

    Raises:
        ValueError: an input that does not exist, a folder without images, or no inputs.
    """
    files = []
    for item in map(Path, inputs):
        if item.is_dir():
            found = sorted(path for path in item.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{item}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            files += found
        elif item.is_file():
            files.append(item)
        else:
            raise ValueError(f"{item}: no such file or folder")
    if not files:
        raise ValueError("no images given")
    return files


def annotated_image(image: np.ndarray, detections: np.ndarray, class_names, path) -> None:
    """Save ``image`` with its ``(k, 6)`` detections (pixel corners) as a PNG at ``path``,
    :data:`DISPLAY_WIDTH` pixels wide."""
    height, width = image.shape[:2]
    dpi = 100
    figure = Figure(figsize=(DISPLAY_WIDTH / dpi, DISPLAY_WIDTH * height / width / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.imshow(image)
    ax.set_axis_off()
    draw_detections(ax, detections, class_names, max_labels=len(detections))
    ax.set_xlim(-0.5, width - 0.5)
    ax.set_ylim(height - 0.5, -0.5)
    figure.savefig(path, dpi=dpi)


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / DETECTIONS_FILE).exists():
        raise ValueError(f"--out {out} holds other files; give an empty or new folder")


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.predict`` and ``ssd-predict``; returns the exit status
    (1 with one ``error:`` line for a bad run, input or image)."""
    show_status()
    parser = argparse.ArgumentParser(prog="python -m ssd_lib.predict",
                                     description="Detect objects in images with a training run's model.")
    parser.add_argument("--run", required=True, help="training run folder (python -m ssd_lib.train --out)")
    parser.add_argument("inputs", nargs="+", metavar="IMAGES_OR_FOLDERS", help="image files and folders of images")
    parser.add_argument("--out", required=True, help="folder for the annotated images and detections.json")
    parser.add_argument("--confidence", type=float, default=0.5, help="lowest score shown (default 0.5)")
    parser.add_argument("--iou", type=float, default=0.45, help="NMS IoU threshold (default 0.45)")
    parser.add_argument("--top-k", type=int, default=100, help="most detections per image (default 100)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    arguments = parser.parse_args(argv)
    try:
        out = Path(arguments.out)
        _check_out(out)
        files = image_files(arguments.inputs)
        model, config, _ = load_run(arguments.run)
        images = [load_image(path) for path in files]
        detections = predict(model, images, config, arguments.batch_size, progress=True,
                             confidence_threshold=arguments.confidence, iou_threshold=arguments.iou,
                             top_k=arguments.top_k)  # fmt: skip
        out.mkdir(parents=True, exist_ok=True)
        entries, names = [], set()
        for path, image, rows in zip(files, images, detections):
            name = path.stem if path.stem not in names else f"{path.stem}_{len(names)}"
            names.add(name)
            annotated_image(image, rows, config.class_names, out / f"{name}.png")
            entries.append({"image": str(path), "annotated": f"{name}.png", "width": image.shape[1],
                            "height": image.shape[0],
                            "detections": [{"box": [round(float(v), 2) for v in row[2:6]], "label": int(row[0]),
                                            "class": config.class_name(int(row[0])), "score": round(float(row[1]), 4)}
                                           for row in rows]})  # fmt: skip
        (out / DETECTIONS_FILE).write_text(json.dumps(entries, indent=1))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    total = sum(len(rows) for rows in detections)
    logger.info("%d detections in %d images: %s", total, len(files), out / DETECTIONS_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
