"""Command line: ``python -m ssd_lib.evaluate --run RUN --data PATH --split NAME [--json FILE]``
(or ``ssd-evaluate``).

Evaluates a training run's model (:func:`ssd_lib.inference.load_run`) on one split of any
dataset :func:`ssd_lib.datasets.open_dataset` recognises, with the run's classes: Pascal VOC
mAP at IoU 0.5, 11-point (VOC2007) and all-point (VOC2010+), per class
(:func:`ssd_lib.metrics.evaluate`), and COCO-style mAP@[.5:.95] with AP50, AP75 and
small/medium/large (:func:`ssd_lib.metrics.evaluate_coco`, pycocotools). Detections at the
evaluation's confidence threshold 0.01, 200 per image; boxes in original image pixels.

``--json FILE`` writes ``mAP_voc07_11point``, ``mAP_voc_allpoint``, ``mAP_coco``, the COCO
statistics (``coco``), per-class AP (``per_class``: ``{name: {"voc07_11point", "voc_allpoint",
"coco"}}``) and what was evaluated (run, data, split, images).

Explained in notebooks/05_decoder.ipynb (mAP).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from .datasets import open_dataset
from .inference import load_run, predict
from .metrics import evaluate, evaluate_coco
from .status import show_status

__all__ = ["evaluate_run", "main"]

logger = logging.getLogger(__spec__.name)  # ssd_lib.<command> also under python -m (__name__ is __main__)


def _number(value: float) -> float | None:
    """JSON has no NaN: ``None`` for an undefined score."""
    return None if math.isnan(value) else round(float(value), 4)


def evaluate_run(run_dir, data, split: str | None = None, batch_size: int = 8, progress: bool = True) -> dict:
    """The scores of a run's model on one split of a dataset (see the module docstring).

    Args:
        run_dir: a training run folder.
        data: a dataset path (:func:`ssd_lib.datasets.open_dataset`).
        split: the split; ``None``: the dataset's validation split (else its training split).
        batch_size: images per forward pass.
        progress: a progress bar while predicting.

    Returns:
        The dict ``--json`` writes.

    Raises:
        ValueError: not a run folder, an unknown dataset layout or split, a class the run does
            not know, an empty split, an unreadable file (each names what is wrong).
    """
    model, config, _ = load_run(run_dir)
    source = open_dataset(data)
    if split is None:
        train_split, val_split = source.default_splits()
        split = val_split or train_split
    records = source.records(split, config.class_names)
    detections = predict(model, [record["image_path"] for record in records], config, batch_size=batch_size,
                         progress=progress)  # fmt: skip
    voc07 = evaluate(detections, records, config.n_classes, mode="11point")
    voc = evaluate(detections, records, config.n_classes, mode="allpoint")
    coco = evaluate_coco(detections, records, config.n_classes)
    for result in (voc07, voc, coco):
        logger.info("%s", result.table(config.class_names))
    per_class = {name: {"voc07_11point": _number(voc07.average_precision[class_id]),
                        "voc_allpoint": _number(voc.average_precision[class_id]),
                        "coco": _number(coco.average_precision[class_id])}
                 for class_id, name in enumerate(config.class_names, start=1)}  # fmt: skip
    return {"run": str(run_dir), "data": str(data), "split": split, "images": len(records),
            "mAP_voc07_11point": _number(voc07.mean_average_precision),
            "mAP_voc_allpoint": _number(voc.mean_average_precision),
            "mAP_coco": _number(coco.mean_average_precision),
            "coco": {name: _number(value) for name, value in coco.statistics.items()},
            "per_class": per_class}  # fmt: skip


def main(argv=None) -> int:
    """Entry point of ``python -m ssd_lib.evaluate`` and ``ssd-evaluate``; returns the exit
    status (1 with one ``error:`` line for a bad run, dataset, split or file)."""
    show_status()
    parser = argparse.ArgumentParser(prog="python -m ssd_lib.evaluate",
                                     description="VOC and COCO mAP of a training run's model on a dataset split.")
    parser.add_argument("--run", required=True, help="training run folder (python -m ssd_lib.train --out)")
    parser.add_argument("--data", required=True, help="dataset: VOC root or VOCdevkit, COCO JSON, CSV, YOLO folder")
    parser.add_argument("--split", help="the split to evaluate (default: the dataset's validation split)")
    parser.add_argument("--json", help="write the scores to this JSON file")
    parser.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    arguments = parser.parse_args(argv)
    try:
        scores = evaluate_run(arguments.run, arguments.data, arguments.split, arguments.batch_size)
        if arguments.json:
            Path(arguments.json).write_text(json.dumps(scores, indent=1))
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    logger.info("mAP VOC07 11-point %s, VOC all-point %s, COCO @[.5:.95] %s", scores["mAP_voc07_11point"],
                scores["mAP_voc_allpoint"], scores["mAP_coco"])  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
