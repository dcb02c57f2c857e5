"""Training-pipeline throughput at SSD300 size: images/s on one core and on all cores.

Generates a small synthetic shapes dataset (300x300 JPEGs) in a temporary folder, or uses
``--voc ROOT`` (a VOC-layout folder, e.g. data/samples), and times
``DetectionDataset(..., augment=True)`` batches: load + SSD augmentation + encoding.

- one core: ``workers=1`` in this process, pinned to one CPU (``os.sched_setaffinity``, what
  ``taskset -c 0`` does); also the validation path and a per-stage breakdown.
- all cores: one process per CPU, each computing whole batches (what ``PyDataset`` does with
  ``workers=nproc, use_multiprocessing=True``).

Target: >= 150 images/s per core. Run: ``python benchmarks/bench_pipeline.py [--profile]``.
Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import multiprocessing
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from ssd_lib.augment import render  # noqa: E402
from ssd_lib.config import SHAPES_CLASSES, SSD300_VOC  # noqa: E402
from ssd_lib.datasets import discover_classes, make_shapes_dataset, parse_voc  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402
from ssd_lib.pipeline import DetectionDataset, open_image  # noqa: E402

TARGET_PER_CORE = 150.0
_DATASET = None  # the dataset of a worker process


def images_per_second(dataset, batch_indices) -> tuple[float, float]:
    """``(images per wall-clock second, images per CPU second of this process)``.

    On a machine shared with other jobs the second is the fairer "per core" figure.
    """
    dataset[batch_indices[0]]  # warm up (scratch buffers, encoder tables)
    start, start_cpu = time.perf_counter(), time.process_time()
    n_images = sum(len(dataset[index][0]) for index in batch_indices)
    return n_images / (time.perf_counter() - start), n_images / (time.process_time() - start_cpu)


def _init_worker(dataset) -> None:
    global _DATASET
    _DATASET = dataset


def _batch_size_of(index: int) -> int:
    return len(_DATASET[index][0])


def images_per_second_all_cores(dataset, batch_indices, processes: int) -> float:
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_init_worker, initargs=(dataset,)) as pool:
        pool.map(_batch_size_of, batch_indices[:processes])  # warm up every worker
        start = time.perf_counter()
        n_images = sum(pool.map(_batch_size_of, batch_indices, chunksize=1))
        return n_images / (time.perf_counter() - start)


def stage_breakdown(dataset, n_samples: int) -> dict:
    """CPU milliseconds per image for: open + plan, decode + resample + colour, encode (one image
    at a time; the pipeline encodes whole batches)."""
    augmentation, encoder = dataset.augmentation, dataset.encoder
    times = {"open + plan": 0.0, "decode + resample + colour": 0.0, "encode": 0.0}
    for index in range(n_samples):
        record = dataset.records[index % len(dataset.records)]
        rng = np.random.default_rng([0, index])
        start = time.process_time()
        image = open_image(record["image_path"])
        width, height = image.shape[1::-1] if isinstance(image, np.ndarray) else image.size
        plan = augmentation.plan(width, height, record["boxes"], record["labels"], rng=rng)
        middle = time.process_time()
        render(image, plan, augmentation.mean)
        decoded = time.process_time()
        encoder([np.concatenate([plan.labels[:, None].astype(np.float32), plan.boxes], axis=1)])
        end = time.process_time()
        times["open + plan"] += middle - start
        times["decode + resample + colour"] += decoded - middle
        times["encode"] += end - decoded
    return {stage: 1000 * seconds / n_samples for stage, seconds in times.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voc", help="a VOC-layout folder to read instead of generated shapes")
    parser.add_argument("--images", type=int, default=320, help="shapes images to generate")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one-core batches")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        if args.voc:
            classes = discover_classes(args.voc, image_set=None)
            records = parse_voc(args.voc, image_set=None, classes=classes)
            source = f"{args.voc} ({len(records)} images)"
        else:
            classes = SHAPES_CLASSES
            root = make_shapes_dataset(Path(folder) / "shapes", n_train=args.images, n_val=0, seed=0)
            records = parse_voc(root, "train", classes=SHAPES_CLASSES)
            source = f"synthetic shapes ({len(records)} JPEGs, 300x300)"
        config = dataclasses.replace(SSD300_VOC, n_classes=len(classes), class_names=tuple(classes))
        encoder = SSDEncoder(config)
        batch_size = min(args.batch_size, len(records))
        train = DetectionDataset(records, config, batch_size=batch_size, seed=0, encoder=encoder)
        validation = DetectionDataset(records, config, batch_size=batch_size, augment=False, encoder=encoder)
        # Enough batches for ~2 s of work per measurement, cycling through the dataset.
        batch_indices = [index % len(train) for index in range(max(len(train), 2))]
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]

        print(f"data: {source}; input {config.image_width}x{config.image_height}, "
              f"{config.n_anchors} anchors, batch {batch_size}")  # fmt: skip
        print(f"machine: {len(cpus)} CPUs available; load average {os.getloadavg()[0]:.1f} "
              "(other processes make these figures lower)")  # fmt: skip

        all_cores = images_per_second_all_cores(train, batch_indices * 2, len(cpus)) if len(cpus) > 1 else None
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpus[0]})  # pin to one core, as taskset -c would
        per_core = images_per_second(train, batch_indices)
        per_core_validation = images_per_second(validation, batch_indices)
        breakdown = stage_breakdown(train, 200)

        (per_core, per_cpu_second), (validation_wall, validation_cpu) = per_core, per_core_validation
        print(f"training pipeline, 1 core : {per_core:7.1f} images/s wall clock, {per_cpu_second:7.1f} per CPU "
              f"second (target >= {TARGET_PER_CORE:.0f}: {'met' if per_cpu_second >= TARGET_PER_CORE else 'NOT met'})")  # fmt: skip
        if all_cores is not None:
            print(f"training pipeline, {len(cpus)} cores: {all_cores:7.1f} images/s wall clock "
                  f"({all_cores / per_core:.2f}x one core)")  # fmt: skip
        print(f"validation (resize only), 1 core: {validation_wall:7.1f} images/s wall clock, "
              f"{validation_cpu:7.1f} per CPU second")  # fmt: skip
        print("one core, CPU ms per image: " + ", ".join(f"{stage} {ms:.2f}" for stage, ms in breakdown.items()))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for index in batch_indices:
                train[index]
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
