"""How fast SSDEncoder turns ground truth into y_true, against the straightforward encoder.

Encodes batches of 32 images on the SSD300 (VOC) anchors, with 1-6 boxes per image (Pascal VOC
averages 2.4 objects per image) and with 20 boxes per image, and prints images per second for
``ssd_lib.encoder.SSDEncoder`` and for the plain reference of ``tests/test_encoder.py`` (full IoU
matrix, greedy loop over it), measured in the same run, and their ratio. The process pins
itself to one CPU core first (like ``taskset -c 0``), the setting of the targets:
>= 3,000 images/s at 1-6 boxes and >= 1,000 images/s at 20 boxes.

Run: ``.venv/bin/python benchmarks/bench_encoder.py`` (about 30 s).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_encoder import reference_encode  # noqa: E402

from ssd_lib.config import SSD300_VOC  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402

BATCH_SIZE = 32


def voc_like_boxes(rng, n_boxes: int, size: int = 300) -> np.ndarray:
    """``(n_boxes, 5)`` boxes with VOC-like sizes (a few percent to all of the image)."""
    side = np.exp(rng.uniform(np.log(0.05), np.log(1.0), (n_boxes, 1)))
    shape = np.exp(rng.normal(0, 0.4, (n_boxes, 2)))
    box_size = np.clip(side * shape, 0.02, 1.0) * size
    top_left = rng.uniform(0, 1, (n_boxes, 2)) * (size - box_size)
    labels = rng.integers(1, 21, (n_boxes, 1))
    return np.concatenate([labels, top_left, top_left + box_size], axis=1)


def images_per_second(encode, batches, min_seconds: float) -> float:
    """Median over repeats of images/s for encoding all ``batches``."""
    encode(batches[0])  # warm-up
    rates = []
    start_all = time.perf_counter()
    while time.perf_counter() - start_all < min_seconds or len(rates) < 3:
        start = time.perf_counter()
        for batch in batches:
            encode(batch)
        rates.append(len(batches) * BATCH_SIZE / (time.perf_counter() - start))
    return float(np.median(rates))


def main() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(f"pinned to CPU core {sorted(os.sched_getaffinity(0))}")
    rng = np.random.default_rng(0)
    encoder = SSDEncoder(SSD300_VOC)
    print(f"SSD300 VOC: {len(encoder.anchors)} anchors, batches of {BATCH_SIZE} images")
    cases = {
        "1-6 boxes/image": lambda: voc_like_boxes(rng, int(rng.integers(1, 7))),
        "20 boxes/image": lambda: voc_like_boxes(rng, 20),
    }
    for name, make_boxes in cases.items():
        batches = [[make_boxes() for _ in range(BATCH_SIZE)] for _ in range(8)]
        encoder.n_full_matches = 0
        for batch in batches:
            encoder(batch)
        full = encoder.n_full_matches
        fast = images_per_second(encoder, batches, min_seconds=4.0)
        reference = images_per_second(lambda batch: reference_encode(SSD300_VOC, batch), batches[:2], 3.0)
        same = all(
            np.array_equal(encoder(batch), reference_encode(SSD300_VOC, batch)) for batch in batches[:2]
        )
        print(
            f"{name:>16}: SSDEncoder {fast:7.0f} images/s | reference {reference:6.0f} images/s | "
            f"ratio {fast / reference:4.1f}x | identical y_true: {same} | "
            f"images matched on the full IoU matrix: {full} of {len(batches) * BATCH_SIZE}"
        )


if __name__ == "__main__":
    main()
