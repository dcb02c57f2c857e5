"""How fast the synthetic shapes dataset is generated (images/s on one core, JPEG + XML written).

The CI notebooks generate ``python -m ssd_lib.datasets shapes --train 2000 --val 500`` (2,500
images of 300 x 300), so this must stay well under a minute on one core. The process pins itself
to one CPU core first (like ``taskset -c 0``), writes ``N_IMAGES`` images into a temporary folder
with :func:`ssd_lib.datasets.shapes.make_shapes_dataset`, and prints images/s, the CPU time per
image (all of it, and the drawing alone) and the projected time for 2,500 images. It reports
both wall-clock time and the process's CPU time: on a machine shared with other jobs, CPU time
is the figure that says what one free core would take.

Run: ``.venv/bin/python benchmarks/bench_shapes.py [N_IMAGES]`` (default 500, about 10 s).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import numpy as np

from ssd_lib.datasets import shapes


def main(n_images: int = 500) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(f"pinned to CPU core {sorted(os.sched_getaffinity(0))}")
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        shapes.make_shapes_dataset(folder, n_images, 0, seed=0, image_size=300)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    drawing = time.process_time()
    for index in range(n_images):
        shapes.generate_shapes_image(np.random.default_rng([0, 0, index]), [1, 2, 3, 4], 300)
    drawing = time.process_time() - drawing
    print(f"{n_images} images of 300x300 written: wall {wall:.2f} s "
          f"({n_images / wall:.0f} images/s), CPU {cpu:.2f} s ({n_images / cpu:.0f} images/s)")
    print(f"CPU per image: {1000 * cpu / n_images:.1f} ms in all, of which drawing 4 shapes "
          f"{1000 * drawing / n_images:.1f} ms")
    print(f"projected for 2,500 images (--train 2000 --val 500) on one free core: "
          f"{2500 * cpu / n_images:.0f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
