"""Median redraw time of every explorer in ssd_lib.explorers when one control moves.

Run from the repository root: ``.venv/bin/python benchmarks/bench_widgets.py``. A redraw is what
a slider move costs in the notebook: the observer's ``update()`` (the explorer's ``draw()`` plus
rendering the figure to PNG). The target is well under 100 ms at SSD300 scale.

To add an explorer, append a :class:`Case` to ``CASES``: a name, a factory that builds the
explorer, a function that returns the control to move, and the values to cycle through.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ssd_lib.anchors import records_to_normalized_corners  # noqa: E402
from ssd_lib.datasets import load_image, parse_voc  # noqa: E402
from ssd_lib.explorers.anchor_grids import AnchorGridExplorer  # noqa: E402
from ssd_lib.explorers.anchor_scales import ASPECT_RATIO_SETS, AnchorScaleExplorer  # noqa: E402
from ssd_lib.explorers.augmentation import AugmentationExplorer  # noqa: E402
from ssd_lib.explorers.decoder import DecoderExplorer  # noqa: E402
from ssd_lib.explorers.loss import LossExplorer  # noqa: E402
from ssd_lib.explorers.matching import MatchingExplorer  # noqa: E402
from ssd_lib.explorers.model import ModelExplorer  # noqa: E402
from ssd_lib.explorers.training import TrainingCurvesExplorer  # noqa: E402

SAMPLES = ROOT / "data" / "samples"
REPEATS = 4  # passes over each case's values


@dataclass
class Case:
    name: str
    factory: Callable[[], Any]
    control: Callable[[Any], Any]
    values: list


def sample_records():
    return parse_voc(SAMPLES, image_set="samples", classes=None)


def sample_photo(image_id: str = "astronaut"):
    return load_image(SAMPLES / "JPEGImages" / f"{image_id}.jpg")


CASES: list[Case] = [
    Case(
        "AnchorScaleExplorer (SSD300, s_min slider)",
        lambda: AnchorScaleExplorer(records_to_normalized_corners(sample_records())),
        lambda explorer: explorer.min_scale,
        [0.15, 0.18, 0.22, 0.25, 0.2],
    ),
    Case(
        "AnchorScaleExplorer (SSD300, aspect-ratio set)",
        lambda: AnchorScaleExplorer(records_to_normalized_corners(sample_records())),
        lambda explorer: explorer.aspect_ratio_set,
        list(ASPECT_RATIO_SETS)[1:] + ["as preset"],
    ),
    Case(
        "AnchorGridExplorer (SSD300 layer 0 on a 512x512 photo, row slider)",
        lambda: AnchorGridExplorer(sample_photo()),
        lambda explorer: explorer.row,
        [5, 10, 15, 20, 25, 30, 19],
    ),
    Case(
        "AnchorGridExplorer (SSD300, layer slider)",
        lambda: AnchorGridExplorer(sample_photo()),
        lambda explorer: explorer.layer,
        [1, 2, 3, 4, 5, 0],
    ),
]


# ModelExplorer (notebook 06): SSD300 with random weights; building it includes the model and
# one forward pass, so the "build" column is much larger than for the anchor explorers.
def ssd300_explorer():
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from ssd_lib.config import SSD300_VOC
    from ssd_lib.vgg_ssd import build_ssd300

    return ModelExplorer(build_ssd300(SSD300_VOC), SSD300_VOC, sample_photo())


CASES += [
    Case("ModelExplorer (SSD300, cell column slider)", ssd300_explorer, lambda explorer: explorer.col,
         [5, 10, 20, 30, 37, 19]),
    Case("ModelExplorer (SSD300, layer slider)", ssd300_explorer, lambda explorer: explorer.layer,
         [1, 2, 3, 4, 5, 0]),
]  # fmt: skip


# AugmentationExplorer (notebook 07): a 2x3 grid of SSD300 augmentations of the astronaut.
def augmentation_explorer():
    records = sample_records()
    record = next(r for r in records if Path(r["image_path"]).stem == "astronaut")
    return AugmentationExplorer(sample_photo(), record["boxes"], record["labels"],
                                        class_names=records.class_names)  # fmt: skip


CASES += [
    Case("AugmentationExplorer (SSD300, 6 samples, seed slider)", augmentation_explorer,
         lambda explorer: explorer.seed, [1, 2, 3, 4, 5, 0]),
]  # fmt: skip


# DecoderExplorer (notebook 05): SSD300 (8732 anchors, 20 classes), 4 copies of the astronaut
# resized to 300x300 with trained-like predictions (about 1,200 pairs above 0.01 per image).
def decoder_explorer():
    import numpy as np
    from bench_decoder import trained_like_predictions  # benchmarks/ is the script's folder
    from PIL import Image

    from ssd_lib.config import SSD300_VOC

    photo = np.asarray(Image.fromarray(sample_photo()).resize((300, 300)))
    y_pred = trained_like_predictions(SSD300_VOC, 4)
    return DecoderExplorer(np.stack([photo] * 4), y_pred, SSD300_VOC)


CASES += [
    Case("DecoderExplorer (SSD300, confidence threshold)", decoder_explorer,
         lambda explorer: explorer.threshold_slider, [0.05, 0.2, 0.5, 0.02, 0.01]),
    Case("DecoderExplorer (SSD300, image slider)", decoder_explorer,
         lambda explorer: explorer.image_slider, [1, 2, 3, 0]),
]  # fmt: skip


# MatchingExplorer (notebook 03) on the astronaut's 4 boxes, and LossExplorer (notebook 04) on a
# batch of 2 (astronaut, cat) encoded for SSD300 (8732 anchors, 20 classes).
def matching_explorer():
    record = next(r for r in sample_records() if Path(r["image_path"]).stem == "astronaut")
    return MatchingExplorer(sample_photo(), record["boxes"])


def loss_explorer():
    import numpy as np

    from ssd_lib.config import SSD300_VOC
    from ssd_lib.encoder import SSDEncoder

    records = {Path(r["image_path"]).stem: r for r in sample_records()}
    batch = []
    for name in ("astronaut", "chelsea"):
        width, height = records[name]["size"]
        boxes = records[name]["boxes"] / np.array([width, height, width, height]) * 300
        batch.append(np.concatenate([np.ones((len(boxes), 1)), boxes], axis=1))
    return LossExplorer(sample_photo(), SSDEncoder(SSD300_VOC)(batch), SSD300_VOC,
                                gt_boxes=records["astronaut"]["boxes"])  # fmt: skip


CASES += [
    Case("MatchingExplorer (SSD300, pos_iou_threshold)", matching_explorer,
         lambda explorer: explorer.pos_iou_threshold, [0.3, 0.4, 0.6, 0.7, 0.5]),
    Case("MatchingExplorer (preset: SSD300 / SSD512)", matching_explorer,
         lambda explorer: explorer.preset, ["SSD512 VOC", "SSD300 COCO", "SSD300 VOC"]),
    Case("LossExplorer (SSD300, batch of 2, quality)", loss_explorer,
         lambda explorer: explorer.quality, [0.0, 0.25, 0.75, 1.0, 0.5]),
    Case("LossExplorer (SSD300, batch of 2, neg_pos_ratio)", loss_explorer,
         lambda explorer: explorer.neg_pos_ratio, [1, 5, 10, 3]),
]  # fmt: skip


# TrainingCurvesExplorer (notebook 08): the log of a 120-epoch run (mAP every 5 epochs); axes
# limits and titles change with every move, so it re-renders the whole figure (no blitting).
def training_curves_explorer():
    import math

    log = [{"epoch": epoch, "loss": 10.0 / epoch ** 0.5 + 0.1 * math.sin(epoch), "val_loss": 11.0 / epoch ** 0.5,
            "val_mAP": 1.0 - 1.0 / epoch if epoch % 5 == 0 else math.nan,
            "learning_rate": 1e-3 * 0.1 ** ((epoch > 80) + (epoch > 100))} for epoch in range(1, 121)]
    return TrainingCurvesExplorer(log, title="120 epochs")


CASES += [
    Case("TrainingCurvesExplorer (120 epochs, smoothing)", training_curves_explorer,
         lambda explorer: explorer.smoothing, [0.3, 0.6, 0.9, 0.0]),
    Case("TrainingCurvesExplorer (120 epochs, epoch range)", training_curves_explorer,
         lambda explorer: explorer.epochs, [(10, 120), (10, 60), (60, 120), (1, 120)]),
]  # fmt: skip


def time_case(case: Case) -> dict[str, float]:
    """Milliseconds: building the explorer (first full render), and the median and slowest
    redraw in wall-clock time and in this process's CPU time (closer to the wall-clock time of
    an idle machine when the benchmark shares the CPU with other jobs)."""
    quiet = io.StringIO()  # Output.clear_output() writes terminal escapes outside a kernel
    with contextlib.redirect_stdout(quiet):
        start = time.perf_counter()
        explorer = case.factory()
        build = time.perf_counter() - start
        control = case.control(explorer)
        wall, cpu = [], []
        for _ in range(REPEATS):
            for value in case.values:
                start_wall, start_cpu = time.perf_counter(), time.process_time()
                control.value = value
                wall.append(time.perf_counter() - start_wall)
                cpu.append(time.process_time() - start_cpu)
    return {
        "build": 1000 * build,
        "median": 1000 * statistics.median(wall),
        "max": 1000 * max(wall),
        "median_cpu": 1000 * statistics.median(cpu),
    }


def main() -> None:
    print(f"{'explorer (control moved)':<68} {'build':>7} {'median':>7} {'max':>7} {'median CPU':>11}  (ms)")
    for case in CASES:
        result = time_case(case)
        print(f"{case.name:<68} {result['build']:7.1f} {result['median']:7.1f} {result['max']:7.1f} "
              f"{result['median_cpu']:11.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
