"""The hardware a run trains on: precision, XLA compilation and distribution.

:func:`configure_devices` chooses, for the visible devices, mixed precision (``mixed_bfloat16``
or ``mixed_float16``) and XLA compilation when a GPU is present,
``tf.distribute.MirroredStrategy`` over several GPUs under TensorFlow, and
``keras.distribution.DataParallel`` under JAX; :class:`DeviceSetup` records the choice.

Explained in notebooks/08_train_ssd300.ipynb.
"""

from __future__ import annotations

import dataclasses

import keras

__all__ = ["PRECISIONS", "DeviceSetup", "gpu_devices", "configure_devices"]

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


@dataclasses.dataclass
class DeviceSetup:
    """What :func:`configure_devices` chose.

    Attributes:
        backend: the Keras backend (``tensorflow``, ``jax``, ``torch``).
        gpus: the visible GPUs.
        precision: the Keras dtype policy now in force (``float32``, ``mixed_float16``,
            ``mixed_bfloat16``).
        jit_compile: what to pass to ``model.compile`` (``True`` on GPU, else ``"auto"``).
        strategy: a ``tf.distribute.MirroredStrategy`` over several GPUs under TensorFlow, else
            ``None`` (under JAX, several GPUs are used through ``keras.distribution``).
    """

    backend: str
    gpus: list
    precision: str
    jit_compile: object
    strategy: object = None

    def jit_compile_for(self, jit: str):
        """What ``model.compile`` gets for a recipe's ``jit`` ("auto": this setup's choice)."""
        return {"auto": self.jit_compile, "on": True, "off": False}[jit]

    def describe(self) -> str:
        """One line for the log: backend, devices, precision, compilation, distribution."""
        devices = f"{len(self.gpus)} GPU(s)" if self.gpus else "CPU only"
        distributed = type(self.strategy).__name__ if self.strategy is not None else "one device"
        if self.strategy is None and self.backend == "jax" and len(self.gpus) > 1:
            distributed = "keras.distribution.DataParallel"
        return (
            f"backend {self.backend}, {devices}, precision {self.precision}, "
            f"jit_compile {self.jit_compile}, {distributed}"
        )


def configure_devices(precision: str = "auto", distribute: bool = True) -> DeviceSetup:
    """Choose precision, compilation and distribution for the visible hardware.

    Call it before building the model: the dtype policy applies to layers created afterwards.

    Args:
        precision: ``"auto"`` (``mixed_bfloat16`` when a GPU is visible, else ``float32``),
            ``"float32"``, ``"mixed_float16"`` (GPUs without bfloat16, e.g. V100/T4; Keras adds
            loss scaling) or ``"mixed_bfloat16"``.
        distribute: use all visible GPUs (MirroredStrategy under TensorFlow, DataParallel under
            JAX) when there are several.

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
        precision = "mixed_bfloat16" if gpus else "float32"
    keras.mixed_precision.set_global_policy(precision)
    strategy = None
    if distribute and len(gpus) > 1:
        if backend == "tensorflow":
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy()
        elif backend == "jax":
            devices = keras.distribution.list_devices("gpu")
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
    # XLA on a GPU; Keras' "auto" keeps it off on CPU-only TensorFlow and with tf.distribute.
    jit_compile = True if gpus and strategy is None else "auto"
    return DeviceSetup(backend, gpus, precision, jit_compile, strategy)
