"""The hardware a run trains on: precision, XLA compilation and data parallelism.

:func:`configure_devices` chooses, for the visible devices, mixed precision where the GPU has
fast bfloat16 (``mixed_bfloat16`` from compute capability 8.0, Ampere; ``mixed_float16`` with
loss scaling on older GPUs; float32 on a CPU), XLA compilation when a GPU is present, and, under
JAX, ``keras.distribution.DataParallel`` over all devices of all processes
(:mod:`ssd_lib.distribution`). Under TensorFlow a run uses one GPU: multi-GPU and multi-machine
training run on the JAX backend. :class:`DeviceSetup` records the choice.
:func:`set_random_seed` seeds a run without starting TensorFlow under another backend.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import dataclasses
import logging
import sys

import keras

from .. import distribution

__all__ = ["PRECISIONS", "DeviceSetup", "gpu_devices", "gpu_compute_capabilities", "auto_precision",
           "configure_devices", "set_random_seed"]

logger = logging.getLogger(__name__)

#: Keras dtype policies :func:`configure_devices` accepts ("auto": chosen by the hardware).
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")


def gpu_devices() -> list[str]:
    """Names of the GPUs the active Keras backend can use (empty on a CPU-only machine)."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [device.name for device in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(device) for device in jax.devices() if device.platform in ("gpu", "cuda", "rocm")]
    if backend == "torch":
        import torch

        return [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    return []


def gpu_compute_capabilities() -> list[float]:
    """CUDA compute capability of each visible GPU (``8.0`` for an A100, ``9.0`` for an H100/H200);
    empty without GPUs or where the backend does not say."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        details = [tf.config.experimental.get_device_details(gpu) for gpu in tf.config.list_physical_devices("GPU")]
        return [float("{}.{}".format(*detail["compute_capability"])) for detail in details
                if "compute_capability" in detail]  # fmt: skip
    if backend == "jax":
        import jax

        return [float(device.compute_capability) for device in jax.local_devices()
                if getattr(device, "compute_capability", None)]  # fmt: skip
    if backend == "torch":
        import torch

        return [float("{}.{}".format(*torch.cuda.get_device_capability(index)))
                for index in range(torch.cuda.device_count())]  # fmt: skip
    return []


def auto_precision(has_gpu: bool, compute_capabilities) -> str:
    """What ``precision="auto"`` means: ``mixed_bfloat16`` on GPUs that all have compute
    capability >= 8.0 (native bfloat16), ``mixed_float16`` (Keras adds loss scaling) on older or
    unknown GPUs, ``float32`` without a GPU."""
    if not has_gpu:
        return "float32"
    capabilities = list(compute_capabilities)
    return "mixed_bfloat16" if capabilities and min(capabilities) >= 8.0 else "mixed_float16"


@dataclasses.dataclass
class DeviceSetup:
    """What :func:`configure_devices` chose.

    Attributes:
        backend: the Keras backend (``tensorflow``, ``jax``, ``torch``).
        gpus: the visible GPUs (of this process).
        precision: the Keras dtype policy now in force (``float32``, ``mixed_float16``,
            ``mixed_bfloat16``).
        jit_compile: what ``model.compile`` gets for ``jit="auto"`` (``True`` on GPU, else
            ``"auto"``: Keras decides).
        data_parallel: devices that split every batch (``keras.distribution.DataParallel``, JAX);
            1: one device.
        processes: processes of the run (machines; JAX multi-process), 1 otherwise.
    """

    backend: str
    gpus: list
    precision: str
    jit_compile: object
    data_parallel: int = 1
    processes: int = 1

    def jit_compile_for(self, jit: str):
        """What ``model.compile`` gets for a recipe's ``jit`` ("auto": this setup's choice)."""
        return {"auto": self.jit_compile, "on": True, "off": False}[jit]

    def describe(self, jit: str = "auto") -> str:
        """One line for the log: backend, devices, precision, XLA as a recipe's ``jit`` gets it,
        distribution."""
        devices = f"{len(self.gpus)} GPU(s)" if self.gpus else "CPU only"
        xla = {True: "on", False: "off", "auto": "Keras' choice"}[self.jit_compile_for(jit)]
        distributed = "one device"
        if self.data_parallel > 1:
            distributed = f"keras.distribution.DataParallel over {self.data_parallel} devices"
            if self.processes > 1:
                distributed += f" in {self.processes} processes"
        return f"backend {self.backend}, {devices}, precision {self.precision}, XLA {xla}, {distributed}"


def configure_devices(precision: str = "auto", distribute: bool = True) -> DeviceSetup:
    """Choose precision, compilation and data parallelism for the visible hardware.

    Call it before building the model (the dtype policy and the distribution apply to variables
    created afterwards) and, in a multi-process run, after
    :func:`ssd_lib.distribution.initialize_cluster`.

    Args:
        precision: ``"auto"`` (:func:`auto_precision`), ``"float32"``, ``"mixed_float16"`` (GPUs
            before Ampere, e.g. V100/T4; Keras adds loss scaling) or ``"mixed_bfloat16"``.
        distribute: under JAX, split every batch over all devices (of all processes) when there
            are several. Under TensorFlow several GPUs are not used together: a one-line note
            says to use the JAX backend.

    Returns:
        A :class:`DeviceSetup`. The global Keras dtype policy is set to its ``precision``.

    Raises:
        ValueError: an unknown ``precision``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"configure_devices: precision must be one of {PRECISIONS}, got {precision!r}")
    backend = keras.backend.backend()
    gpus = gpu_devices()
    if precision == "auto":
        precision = auto_precision(bool(gpus), gpu_compute_capabilities())
    keras.mixed_precision.set_global_policy(precision)
    data_parallel = processes = 1
    if distribute and distribution.use_all_devices() is not None:
        data_parallel, processes = distribution.device_count(), distribution.process_count()
    elif backend != "jax" and len(gpus) > 1:
        logger.warning("note: %s trains on one of the %d GPUs; several GPUs and machines train on the JAX backend "
                       "(KERAS_BACKEND=jax), see README.md 'Scaling out'", backend, len(gpus))  # fmt: skip
    # XLA on a GPU; Keras' "auto" keeps it off on CPU-only TensorFlow.
    jit_compile = True if gpus else "auto"
    return DeviceSetup(backend, gpus, precision, jit_compile, data_parallel, processes)


def set_random_seed(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)``: Python's, NumPy's, Keras' and the backend's random
    generators. Keras also seeds TensorFlow whenever it is installed (for ``tf.data``, which this
    library does not use); under another backend that import alone costs seconds of every
    process start, so there it is skipped (Keras then treats TensorFlow as absent in this process).
    """
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    sys.modules["tensorflow"] = None  # importing it fails at once: Keras leaves it out
    try:
        keras.utils.set_random_seed(seed)
    finally:
        del sys.modules["tensorflow"]
