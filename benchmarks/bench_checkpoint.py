"""Size and save time of an SSD300 checkpoint (``ssd_lib.training.checkpoint``), no training needed.

Builds SSD300 (VOC, 21 classes), compiles it with the paper's SGD with momentum, builds the
optimizer (momenta for every trainable variable) and prints, in MB: the weights-only file, the
weights file as ``model.save_weights`` writes it for a compiled model (the optimizer included),
and the checkpoint folder ``save_checkpoint`` writes (weights once, optimizer state once), with
its save time.

    python benchmarks/bench_checkpoint.py [--optimizer sgd|adam]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from ssd_lib.vgg_ssd import build_ssd300  # noqa: E402
from ssd_lib.training import make_optimizer, save_checkpoint  # noqa: E402


def megabytes(path: Path) -> float:
    files = [path] if path.is_file() else [file for file in path.rglob("*") if file.is_file()]
    return sum(file.stat().st_size for file in files) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    arguments = parser.parse_args()
    model = build_ssd300()
    model.compile(optimizer=make_optimizer(arguments.optimizer, 1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    print(f"SSD300 VOC: {model.count_params() / 1e6:.1f} million parameters, optimizer {arguments.optimizer} "
          f"({len(model.optimizer.variables)} variables)")  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        keras.saving.save_weights(model, folder / "weights_only.weights.h5", objects_to_skip=[model.optimizer])
        model.save_weights(folder / "with_optimizer.weights.h5")
        start = time.perf_counter()
        checkpoint = save_checkpoint(model, folder / "run", 1)
        seconds = time.perf_counter() - start
        print(f"weights only (model.weights.h5 now):        {megabytes(folder / 'weights_only.weights.h5'):8.1f} MB")
        print(f"model.save_weights of the compiled model:   {megabytes(folder / 'with_optimizer.weights.h5'):8.1f} MB")
        optimizer_file = megabytes(checkpoint / "optimizer.npz")
        print(f"checkpoint folder (weights + optimizer.npz): {megabytes(checkpoint):8.1f} MB, saved in {seconds:.1f} s")
        print(f"the layout before (optimizer in both files): "
              f"{megabytes(folder / 'with_optimizer.weights.h5') + optimizer_file:8.1f} MB")


if __name__ == "__main__":
    main()
