"""SSD300 training and inference throughput in images per second.

Three figures, each after ``--warmup`` untimed steps (compilation, first-call costs):

- **training, synthetic data**: ``train_on_batch`` on one in-memory batch (random pixels and
  ``y_true`` encoded from random boxes): the model + loss + optimizer step alone;
- **training, real pipeline**: ``model.fit`` on :class:`ssd_lib.pipeline.DetectionDataset` over
  the shapes dataset (``data/shapes``, made if missing) with the SSD augmentation and encoder,
  ``--workers`` loader threads: whether the input pipeline keeps up;
- **inference**: ``predict_on_batch`` on the synthetic batch (the network only; decoding is
  measured by ``bench_decoder.py``).

Run from the repository root, e.g. on a CPU (few steps: one SSD300 step at batch 32 takes
minutes on two cores)::

    .venv/bin/python benchmarks/bench_train.py --steps 2 --warmup 1

and on a GPU with JAX, bfloat16 and XLA::

    KERAS_BACKEND=jax python benchmarks/bench_train.py --precision mixed_bfloat16 --jit on --steps 50

``--backend`` sets ``KERAS_BACKEND`` before Keras is imported (the same as the variable).
Figures go to stdout, one line per measurement; ``--json FILE`` also writes them as JSON. On a
CPU the synthetic and inference lines also give images per CPU-second of the process (time
spent on all its cores): on a machine shared with other jobs that figure, times the number of
cores, estimates the unloaded throughput better than the wall-clock one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("tensorflow", "jax", "torch"), help="Keras backend (default: KERAS_BACKEND or tensorflow)")
    parser.add_argument("--model", choices=("ssd300", "small"), default="ssd300")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation)")
    parser.add_argument("--precision", default="auto", choices=("auto", "float32", "mixed_float16", "mixed_bfloat16"))
    parser.add_argument("--jit", default="auto", choices=("auto", "on", "off"), help="XLA compilation of the steps")
    parser.add_argument("--workers", type=int, default=4, help="data loading threads for the pipeline run")
    parser.add_argument("--data", default=str(ROOT / "data" / "shapes"), help="shapes dataset folder")
    parser.add_argument("--skip", nargs="*", default=(), choices=("synthetic", "pipeline", "inference"))
    parser.add_argument("--json", help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    arguments = parse_arguments(argv)
    if arguments.backend:
        os.environ["KERAS_BACKEND"] = arguments.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    import dataclasses

    import keras
    import numpy as np

    from ssd_lib.config import SHAPES_CLASSES, SSD300_VOC, SSD_SMALL_SHAPES
    from ssd_lib.encoder import SSDEncoder
    from ssd_lib.losses import SSDLoss
    from ssd_lib.small_ssd import build_small_ssd
    from ssd_lib.vgg_ssd import build_ssd300
    from ssd_lib.training import configure_devices, make_optimizer

    class StepTimer(keras.callbacks.Callback):
        """Times the training batches after the first ``warmup`` ones."""

        def __init__(self, warmup: int):
            super().__init__()
            self.warmup, self.seconds, self._start = warmup, 0.0, None

        def on_train_begin(self, logs=None):
            self._start = time.perf_counter() if self.warmup == 0 else None

        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 == self.warmup:
                self._start = time.perf_counter()
            elif self._start is not None:
                self.seconds = time.perf_counter() - self._start

    keras.utils.set_random_seed(0)
    devices = configure_devices(arguments.precision)
    jit_compile = devices.jit_compile_for(arguments.jit)
    if arguments.model == "ssd300":
        config = dataclasses.replace(SSD300_VOC, n_classes=len(SHAPES_CLASSES), class_names=SHAPES_CLASSES)
        build = build_ssd300
    else:
        config, build = SSD_SMALL_SHAPES, build_small_ssd
    batch_size = arguments.batch_size
    print(f"bench_train: {arguments.model} {config.image_height}x{config.image_width}, batch {batch_size}, "
          f"{arguments.warmup} warm-up + {arguments.steps} timed steps; {devices.describe()}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip

    def compiled_model():
        with devices.strategy.scope() if devices.strategy is not None else contextlib.nullcontext():
            model = build(config)
            model.compile(optimizer=make_optimizer("sgd", 1e-3, 0.9), loss=SSDLoss(config=config),
                          jit_compile=jit_compile)  # fmt: skip
        return model

    # One synthetic batch: random pixels, 1-6 random boxes per image encoded to y_true.
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, config.image_height, config.image_width, 3)).astype(np.float32)
    boxes = []
    for _ in range(batch_size):
        count = int(rng.integers(1, 7))
        corners = np.sort(rng.uniform(0, config.image_width - 4, (count, 2, 2)), axis=1).reshape(count, 4)  # (xmin, ymin, xmax, ymax)
        corners[:, 2:] += 4.0  # at least 4 px wide and high
        boxes.append(np.concatenate([rng.integers(1, config.n_classes + 1, (count, 1)), corners], axis=1))
    y_true = SSDEncoder(config)(boxes)
    results = {"backend": devices.backend, "model": arguments.model, "batch_size": batch_size,
               "precision": devices.precision, "jit_compile": str(jit_compile), "gpus": devices.gpus}  # fmt: skip
    model = compiled_model()
    print(f"  parameters: {model.count_params():,}")

    if "synthetic" not in arguments.skip:
        for _ in range(arguments.warmup):
            model.train_on_batch(images, y_true)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(arguments.steps):
            loss = model.train_on_batch(images, y_true)
        float(np.asarray(loss))  # wait for the device
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        results["train_synthetic_images_per_s"] = arguments.steps * batch_size / seconds
        results["train_synthetic_images_per_cpu_s"] = arguments.steps * batch_size / cpu_seconds
        print(f"  training, synthetic data: {results['train_synthetic_images_per_s']:8.2f} images/s "
              f"({seconds / arguments.steps:.3f} s/step; {results['train_synthetic_images_per_cpu_s']:.2f} "
              "images per CPU-second of this process)")  # fmt: skip

    if "pipeline" not in arguments.skip:
        from ssd_lib.datasets import make_shapes_dataset, parse_voc
        from ssd_lib.pipeline import DetectionDataset

        data = make_shapes_dataset(arguments.data, 2000, 500, 0)
        records = parse_voc(data, "train", SHAPES_CLASSES)
        dataset = DetectionDataset(records, config, batch_size, seed=0, workers=arguments.workers)
        timer = StepTimer(arguments.warmup)
        model.fit(dataset, epochs=1, steps_per_epoch=arguments.warmup + arguments.steps, callbacks=[timer], verbose=0)
        results["train_pipeline_images_per_s"] = arguments.steps * batch_size / timer.seconds
        print(f"  training, real pipeline ({arguments.workers} workers): "
              f"{results['train_pipeline_images_per_s']:8.2f} images/s ({timer.seconds / arguments.steps:.3f} s/step)")  # fmt: skip

    if "inference" not in arguments.skip:
        for _ in range(arguments.warmup):
            model.predict_on_batch(images)
        start, start_cpu = time.perf_counter(), time.process_time()
        for _ in range(arguments.steps):
            output = model.predict_on_batch(images)
        np.asarray(keras.ops.convert_to_numpy(output)).sum()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
        results["inference_images_per_s"] = arguments.steps * batch_size / seconds
        results["inference_images_per_cpu_s"] = arguments.steps * batch_size / cpu_seconds
        print(f"  inference (network only): {results['inference_images_per_s']:8.2f} images/s "
              f"({results['inference_images_per_cpu_s']:.2f} images per CPU-second)")

    if arguments.json:
        Path(arguments.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
