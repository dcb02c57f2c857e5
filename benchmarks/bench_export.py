"""Benchmark of ssd_lib.export: time to write each format, and detection latency of each.

Exports the shipped small model (192x192 input, 18 414 anchors, 4 classes) as a deployable
model (decoding and NMS inside) in every format, loads each back with
:func:`ssd_lib.export.load_exported`, and prints the export seconds, the file size and the
milliseconds per image at batch 1 and batch 8 on shapes images, next to
``ssd_lib.inference.predict`` (Keras model + numpy decoding) measured in the same run. The
detections of every format are checked against ``predict`` on the batch (same classes).

Run: ``python benchmarks/bench_export.py`` (ONNX needs the ``export`` extra).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from ssd_lib import export
from ssd_lib.datasets.shapes import generate_shapes_image
from ssd_lib.inference import load_shipped_model, predict_prepared, prepare_images

REPEATS = 5


def milliseconds_per_image(run, batch) -> float:
    """Best of ``REPEATS`` timed calls (after one warm-up call), per image."""
    run(batch)
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        run(batch)
        times.append(time.perf_counter() - start)
    return 1000 * min(times) / len(batch)


def size_of(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    model, config, _ = load_shipped_model()
    images = [generate_shapes_image(np.random.default_rng(seed), [1, 2, 3, 4], 300)[0] for seed in range(8)]
    inputs, sizes = prepare_images(images, config)
    expected = predict_prepared(model, inputs, sizes, config, top_k=200, nms_max_output_size=200)
    reference = lambda batch: predict_prepared(model, batch, sizes[: len(batch)], config)  # noqa: E731
    print(f"shipped small model, {config.image_width}x{config.image_height}, {config.n_anchors} anchors")
    print(f"{'':12s} {'export s':>9s} {'size MB':>8s} {'ms/img b1':>10s} {'ms/img b8':>10s}")
    print(f"{'predict':12s} {'':>9s} {'':>8s} {milliseconds_per_image(reference, inputs[:1]):10.1f} "
          f"{milliseconds_per_image(reference, inputs):10.1f}")  # fmt: skip
    deployable = export.deployable_model(model, config)
    with tempfile.TemporaryDirectory() as folder:
        for format, name in export.FORMATS.items():
            path = Path(folder) / name
            start = time.perf_counter()
            try:
                export.export_model(deployable, path, format)
            except ImportError as error:
                print(f"{format:12s} skipped: {error}")
                continue
            seconds = time.perf_counter() - start
            run = export.load_exported(path, format)
            rows = run(inputs)
            for image, want in enumerate(expected):
                got = rows[image][rows[image, :, 0] > 0]
                assert np.array_equal(got[:, 0], want[:, 0]), f"{format}: image {image} differs from predict"
            print(f"{format:12s} {seconds:9.1f} {size_of(path) / 1e6:8.2f} "
                  f"{milliseconds_per_image(run, inputs[:1]):10.1f} {milliseconds_per_image(run, inputs):10.1f}")


if __name__ == "__main__":
    main()
