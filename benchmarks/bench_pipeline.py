"""Training-pipeline throughput at SSD300 size: images per CPU-second on one core, and what a
fast GPU needs.

Reads the training split of a dataset given as the argument, in any layout the train command reads
(e.g. ``../shared/datasets/dogs-voc``, real photos of 400-1000 px), or generates synthetic shapes (300x300 JPEGs) without one, and times
``DetectionDataset(..., augment=True, photometric_on_device=True)`` batches: the host side of
training (open + plan + JPEG decode + resample + encode; the colour distortion runs on the
accelerator, :mod:`ssd_lib.photometric`). The host colour path (``photometric_on_device=False``)
and the validation path are timed too.

Figures are images per **CPU-second** of this process (``time.process_time``), pinned to one core:
the machine may be shared with other jobs, which stretch wall-clock times and, less, the CPU time
a batch needs (a busy sibling core slows this one). Every pass computes the same batches (the
same epochs, so the same augmentations), and each batch counts with its fastest of ``--repeats``
passes: other jobs only ever make a batch slower. Then: cores needed to feed ``--target-rate``
images/s (1,500: one H200 training SSD300), and the wall-clock rate of the default loader
threads on all cores.

Target: >= 300 images per CPU-second per core.
Run: ``python benchmarks/bench_pipeline.py [DATASET] [--profile]``.
Explained in notebooks/07_data_pipeline.ipynb.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import math
import os
import pstats
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ssd_lib.config import SHAPES_CLASSES, SSD300_VOC  # noqa: E402
from ssd_lib.datasets import load_dataset, make_shapes_dataset, parse_voc  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402
from ssd_lib.pipeline import DetectionDataset, default_workers  # noqa: E402

TARGET_PER_CORE = 300.0


def images_per_cpu_second(dataset, n_batches: int, repeats: int) -> float:
    """Images per CPU-second over ``n_batches`` batches (epochs 0, 1, ... in turn), each batch
    computed ``repeats`` times and counted with its fastest time."""
    dataset[0]  # warm up (scratch buffers, encoder tables)
    fastest, n_images = [math.inf] * n_batches, [0] * n_batches
    for _ in range(repeats):
        for step in range(n_batches):
            dataset.set_epoch(step // len(dataset))
            start = time.process_time()
            n_images[step] = len(dataset[step % len(dataset)][1])
            fastest[step] = min(fastest[step], time.process_time() - start)
    return sum(n_images) / sum(fastest)


def images_per_second_threads(dataset, n_batches: int, workers: int) -> float:
    """Wall-clock images/s of ``workers`` threads computing whole batches (as ``model.fit`` runs
    the dataset's loader threads)."""
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda index: dataset[index % len(dataset)], range(workers)))  # warm up
        start = time.perf_counter()
        n_images = sum(len(batch[1]) for batch in pool.map(lambda i: dataset[i % len(dataset)], range(n_batches)))
        return n_images / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="a dataset in any layout the train command reads (its training "
                        "split is timed), e.g. ../shared/datasets/dogs-voc; default: generated shapes")
    parser.add_argument("--images", type=int, default=320, help="shapes images to generate without a folder")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=8, help="batches per timed pass")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes; each batch's fastest counts")
    parser.add_argument("--target-rate", type=float, default=1500.0, help="images/s the accelerator consumes")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one-core batches")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        if args.data:
            try:
                records = load_dataset(args.data)
            except ValueError as error:  # a wrong path or layout: one line, as the commands say it
                parser.exit(2, f"bench_pipeline: {error}\n")
            classes = records.class_names
            source = f"{records.source} ({len(records)} images)"
        else:
            classes = SHAPES_CLASSES
            root = make_shapes_dataset(Path(folder) / "shapes", n_train=args.images, n_val=0, seed=0)
            records = parse_voc(root, "train", classes=SHAPES_CLASSES)
            source = f"synthetic shapes ({len(records)} JPEGs, 300x300)"
        config = dataclasses.replace(SSD300_VOC, n_classes=len(classes), class_names=tuple(classes))
        encoder = SSDEncoder(config)
        batch_size = min(args.batch_size, len(records))
        options = dict(batch_size=batch_size, seed=0, encoder=encoder)
        train = DetectionDataset(records, config, photometric_on_device=True, **options)
        host_colour = DetectionDataset(records, config, **options)
        validation = DetectionDataset(records, config, augment=False, **options)
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        workers = default_workers()

        print(f"data: {source}; input {config.image_width}x{config.image_height}, "
              f"{config.n_anchors} anchors, batch {batch_size}")  # fmt: skip
        print(f"machine: {len(cpus)} CPUs; load average {os.getloadavg()[0]:.1f} (figures are CPU time of "
              "this process, best of several passes: other jobs stretch wall-clock times)")  # fmt: skip
        threads = images_per_second_threads(train, args.batches * 2, workers) if len(cpus) > 1 else None
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, {cpus[0]})  # pin to one core, as taskset -c would
        per_core = images_per_cpu_second(train, args.batches, args.repeats)
        per_core_host_colour = images_per_cpu_second(host_colour, args.batches, args.repeats)
        per_core_validation = images_per_cpu_second(validation, args.batches, args.repeats)

        verdict = "met" if per_core >= TARGET_PER_CORE else "NOT met"
        print(f"training, colour on the accelerator: {per_core:7.1f} images/s per core "
              f"(target >= {TARGET_PER_CORE:.0f}: {verdict})")  # fmt: skip
        print(f"  cores needed for {args.target_rate:.0f} images/s: {math.ceil(args.target_rate / per_core)} "
              f"({args.target_rate / per_core:.1f} at this rate)")  # fmt: skip
        print(f"training, colour on the host:        {per_core_host_colour:7.1f} images/s per core")
        print(f"validation (resize only):            {per_core_validation:7.1f} images/s per core")
        if threads is not None:
            print(f"{workers} loader threads (the default), wall clock: {threads:7.1f} images/s")
        if args.profile:
            profiler = cProfile.Profile(time.process_time)  # CPU time, as the figures above
            profiler.enable()
            for index in range(args.batches):
                train[index % len(train)]
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
