"""Data parallelism on CPU stand-ins: 2 virtual JAX devices (XLA_FLAGS) compute the same steps as
one device, the last, short batch included; two processes on 127.0.0.1 train one run folder,
agree on the validation mAP, resume together and stop together; bad cluster settings name the flag."""

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ssd_lib.datasets import make_shapes_dataset
from ssd_lib.distribution import Cluster
from ssd_lib.training import read_log
from jax_subprocess import jax_environment

REPO = Path(__file__).resolve().parents[1]
JAX_MISSING = importlib.util.find_spec("jax") is None

# One device, then DataParallel over two virtual CPU devices: the same small SSD (BatchNorm
# included), the same two SGD steps on 4 + 1 images (the last batch padded to 4), compared.
TWO_DEVICES = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from ssd_lib import distribution
    from ssd_lib.config import SHAPES_CLASSES
    from ssd_lib.datasets import make_shapes_dataset, parse_voc
    from ssd_lib.losses import SSDLoss
    from ssd_lib.small_ssd import build_small_ssd
    from ssd_lib.pipeline import DetectionDataset
    from ssd_lib.training.devices import set_random_seed
    from ssd_lib.training.presets import TINY_SHAPES as config
    root = make_shapes_dataset(sys.argv[1], n_train=5, n_val=0, seed=0, image_size=32)
    records = parse_voc(root, "train", SHAPES_CLASSES)

    def two_steps():
        set_random_seed(0)
        model = build_small_ssd(config, width_multiplier=0.5)
        model.compile(keras.optimizers.SGD(0.05, momentum=0.9), SSDLoss(config=config), jit_compile=True)
        data = DetectionDataset(records, config, batch_size=4, seed=0, workers=1, shard=distribution.process_shard())
        losses = [float(model.train_on_batch(*data[index])) for index in range(len(data))]
        return losses, [keras.ops.convert_to_numpy(weight) for weight in model.weights]

    assert distribution.device_count() == 2
    one_losses, one_weights = two_steps()  # no distribution set yet: one device
    assert distribution.use_all_devices() is not None
    two_losses, two_weights = two_steps()
    difference = max(float(np.abs(a - b).max()) for a, b in zip(one_weights, two_weights))
    print(json.dumps({"one": one_losses, "two": two_losses, "weight_difference": difference,
                      "shard": repr(distribution.process_shard()), "tensorflow": "tensorflow" in sys.modules}))
    """
)


def run_python(code: str, *args, devices: int = 1, timeout: int = 300) -> subprocess.CompletedProcess:
    environment = jax_environment(devices)
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], env=environment, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


@pytest.mark.skipif(JAX_MISSING, reason="jax is not installed (pip install jax)")
def test_two_devices_take_the_same_steps_as_one(tmp_path):
    completed = run_python(TWO_DEVICES, tmp_path / "shapes", devices=2)
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert len(result["one"]) == 2  # 4 images, then 1 image padded to 4
    assert result["one"] == pytest.approx(result["two"], rel=1e-5)
    assert result["weight_difference"] < 1e-5
    assert "pad_last_batch=True" in result["shard"]
    assert not result["tensorflow"]  # seeding under JAX does not start TensorFlow (seconds per process)


def test_partial_cluster_settings_name_the_missing_flag(monkeypatch):
    monkeypatch.delenv("SLURM_NTASKS", raising=False)
    monkeypatch.delenv("JAX_COORDINATOR_ADDRESS", raising=False)
    assert not Cluster().requested
    with pytest.raises(ValueError, match="needs --process-id too"):
        Cluster("127.0.0.1:1234", 2)
    with pytest.raises(ValueError, match="--process-id must be in 0..1"):
        Cluster("127.0.0.1:1234", 2, 2)
    with pytest.raises(ValueError, match="--num-processes must be >= 1"):
        Cluster("127.0.0.1:1234", 0, 0)
    assert Cluster("127.0.0.1:1234", 2, 1).requested
    monkeypatch.setenv("SLURM_NTASKS", "4")  # srun: JAX reads the rest from SLURM
    assert Cluster().requested and Cluster(num_processes=4).requested


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_two_processes(data, run, epochs: int) -> list[subprocess.Popen]:
    """The README's two-machine command, both processes on this machine (127.0.0.1)."""
    command = [sys.executable, "-m", "ssd_lib.train", "--preset", "tiny_shapes", "--data", str(data), "--out", str(run),
               "--epochs", str(epochs), "--verbose", "2", "--no-tensorboard",
               "--coordinator-address", f"127.0.0.1:{free_port()}", "--num-processes", "2"]  # fmt: skip
    environment = jax_environment(cache=Path(run).parent / "jax_cache")
    return [subprocess.Popen(command + ["--process-id", str(index)], env=environment, cwd=REPO, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for index in range(2)]  # fmt: skip


@pytest.mark.skipif(JAX_MISSING, reason="jax is not installed (pip install jax)")
def test_two_processes_train_resume_and_stop_together(tmp_path):
    data, run = make_shapes_dataset(tmp_path / "shapes", n_train=6, n_val=3, seed=0, image_size=32), tmp_path / "run"
    first = launch_two_processes(data, run, epochs=2)
    outputs = [process.communicate(timeout=300)[0] for process in first]
    assert [process.returncode for process in first] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    log, summary = read_log(run / "log.csv"), json.loads((run / "summary.json").read_text())
    assert [row["epoch"] for row in log] == [1, 2] and summary["epochs"] == 2  # one writer: process 0
    # Validation mAP each epoch: the processes predict 2 and 1 of the 3 images and all log the mAP
    # of all three, the one process 0 alone finds for the final weights.
    shown = [re.findall(r"val_mAP: (\S+)", output) for output in outputs]
    assert len(shown[0]) == 2 and shown[0] == shown[1], shown
    assert summary["val_mAP_11point"] > 0 and log[-1]["val_mAP"] == pytest.approx(summary["val_mAP_11point"], abs=1e-4)
    names = {path.name for path in run.iterdir()}
    assert {"checkpoint", "final.weights.h5", "log.csv", "settings.json", "summary.json"} <= names
    assert not any(name.endswith((".tmp", ".new")) for name in names), names  # no half-written file left
    assert "process 1 of 2" in outputs[1] and "summary" not in outputs[1]

    # Both resume after epoch 2; then process 1 dies and process 0 stops soon after.
    second = launch_two_processes(data, run, epochs=1000)
    deadline = time.monotonic() + 240
    while len(read_log(run / "log.csv")) < 3 and time.monotonic() < deadline and second[0].poll() is None:
        time.sleep(0.2)
    second[1].kill()
    killed_at = time.monotonic()
    survivor = second[0].communicate(timeout=120)[0]
    stopped_after = time.monotonic() - killed_at
    victim = second[1].communicate(timeout=30)[0]
    assert "resuming after epoch 2 of 1000" in survivor and "resuming after epoch 2 of 1000" in victim
    assert second[0].returncode != 0 and stopped_after < 60, survivor[-3000:]
    # Our line when a collective fails; JAX's own when its heartbeat check ends the process first.
    assert "error: process 0 of 2 stops" in survivor or "another task died" in survivor, survivor[-3000:]
