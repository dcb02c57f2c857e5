"""Benchmark of ssd_lib.decoder.decode_detections on one CPU core.

Decodes a batch of 32 SSD300 (Pascal VOC, 8732 anchors, 20 classes) predictions with a
trained-like score distribution: the background logit is about 8 above the others, so about
1,000 (anchor, class) pairs per image score above the 0.01 threshold, plus a few confident
objects (every anchor overlapping an object with IoU > 0.5 predicts it). Prints images/s of
``decode_detections`` and of a straightforward per-class greedy loop in numpy (the textbook
implementation, also used here to check that both give the same detections), measured in the
same run, and their ratio. Target: at least 300 images/s.

Run: ``python benchmarks/bench_decoder.py`` (pins itself to CPU 0, like ``taskset -c 0``).
"""

from __future__ import annotations

import os

for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import time  # noqa: E402

import numpy as np  # noqa: E402

from ssd_lib.anchors import generate_anchors  # noqa: E402
from ssd_lib.boxes import centroids_to_corners, iou  # noqa: E402
from ssd_lib.config import SSD300_VOC  # noqa: E402
from ssd_lib.decoder import (  # noqa: E402
    class_probabilities,
    decode_all_boxes,
    decode_detections,
)

BATCH = 32
OBJECTS_PER_IMAGE = (1, 5)
BACKGROUND_MARGIN = 8.0
LOGIT_NOISE = 1.0  # calibrated so that about 1,000 pairs per image exceed 0.01
REPEATS = 7


def trained_like_predictions(config, batch: int, seed: int = 0) -> np.ndarray:
    """``(batch, n_anchors, n_classes + 5)`` float32 logits + offsets, as a trained SSD outputs."""
    rng = np.random.default_rng(seed)
    anchors = generate_anchors(config)
    anchor_corners = centroids_to_corners(anchors)
    y_pred = np.zeros((batch, config.n_anchors, config.n_classes + 5), dtype=np.float32)
    y_pred[..., : config.n_classes + 1] = rng.normal(0, LOGIT_NOISE, (batch, config.n_anchors,
                                                                      config.n_classes + 1))  # fmt: skip
    y_pred[..., 0] += BACKGROUND_MARGIN
    y_pred[..., -4:] = rng.normal(0, 0.5, (batch, config.n_anchors, 4))
    for image in range(batch):
        for _ in range(rng.integers(*OBJECTS_PER_IMAGE, endpoint=True)):
            size = rng.uniform(0.1, 0.7, 2)
            corner = rng.uniform(0, 1 - size)
            object_box = np.concatenate([corner, corner + size])[None]
            near = np.flatnonzero(iou(anchor_corners, object_box)[:, 0] > 0.5)
            class_id = rng.integers(1, config.n_classes + 1)
            y_pred[image, near, class_id] = BACKGROUND_MARGIN + rng.uniform(1, 6, len(near))
    return y_pred


def per_class_loop(y_pred, config, confidence_threshold=0.01, iou_threshold=0.45, top_k=200,
                   nms_max_output_size=400, anchors=None):  # fmt: skip
    """The straightforward decoder: per image, per class, a greedy NMS loop over kept boxes."""
    probabilities = class_probabilities(y_pred, config)
    boxes, valid = decode_all_boxes(y_pred, config, anchors)
    results = []
    for image in range(len(y_pred)):
        detections = []
        for class_id in range(1, config.n_classes + 1):
            scores = probabilities[image, :, class_id]
            candidates = np.flatnonzero((scores > confidence_threshold) & valid[image])
            candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
            kept = []
            while len(candidates) and len(kept) < nms_max_output_size:
                best, candidates = candidates[0], candidates[1:]
                kept.append(best)
                overlaps = iou(boxes[image, best][None], boxes[image, candidates])[0]
                candidates = candidates[overlaps <= iou_threshold]
            for anchor in kept:
                detections.append((class_id, scores[anchor], *boxes[image, anchor]))
        detections = np.array(detections, dtype=np.float32).reshape(-1, 6)
        order = np.lexsort((detections[:, 0], -detections[:, 1]))[:top_k]
        results.append(detections[order])
    return results


def best_time(function, repeats: int, clock=time.perf_counter) -> float:
    """Fastest of ``repeats`` runs in seconds (the machine may be shared: noise only adds time)."""
    times = []
    for _ in range(repeats):
        start = clock()
        function()
        times.append(clock() - start)
    return min(times)


def main() -> None:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, as `taskset -c 0`
    config = SSD300_VOC
    anchors = generate_anchors(config)
    y_pred = trained_like_predictions(config, BATCH)
    above = (class_probabilities(y_pred, config)[..., 1:] > 0.01).sum(axis=(1, 2))
    detections = decode_detections(y_pred, config, anchors=anchors)
    reference = per_class_loop(y_pred, config, anchors=anchors)
    for image, (a, b) in enumerate(zip(detections, reference)):
        assert a.shape == b.shape and np.array_equal(a[:, 0], b[:, 0]), f"image {image} differs"
        assert np.allclose(a[:, 1:], b[:, 1:]), f"image {image} differs"

    fast = lambda: decode_detections(y_pred, config, anchors=anchors)  # noqa: E731
    slow = lambda: per_class_loop(y_pred, config, anchors=anchors)  # noqa: E731
    fast_time, slow_time = best_time(fast, REPEATS), best_time(slow, 2)
    # CPU time of this process: what one idle core would take when other jobs share the core.
    fast_cpu, slow_cpu = (best_time(f, n, time.process_time) for f, n in ((fast, REPEATS), (slow, 2)))
    print(f"batch {BATCH} x SSD300 ({config.n_anchors} anchors, {config.n_classes} classes), "
          f"1 core, best of {REPEATS}")  # fmt: skip
    print(f"(anchor, class) pairs above 0.01 per image: mean {above.mean():.0f} "
          f"(min {above.min()}, max {above.max()}); detections per image: mean "
          f"{np.mean([len(d) for d in detections]):.0f}")  # fmt: skip
    print("                         wall clock             CPU time of this process")
    for name, wall, cpu in (("decode_detections", fast_time, fast_cpu),
                            ("per-class greedy loop", slow_time, slow_cpu)):  # fmt: skip
        print(f"{name:22s} {BATCH / wall:7.1f} images/s        {BATCH / cpu:7.1f} images/s")
    verdict = lambda seconds: "met" if BATCH / seconds >= 300 else "NOT met"  # noqa: E731
    print(f"speed-up: {slow_time / fast_time:.1f}x (wall), {slow_cpu / fast_cpu:.1f}x (CPU)")
    print(f"target >= 300 images/s: {verdict(fast_time)} on the wall clock, {verdict(fast_cpu)} in "
          f"CPU time (load average now {os.getloadavg()[0]:.1f}; on a busy machine trust CPU time)")


if __name__ == "__main__":
    main()
