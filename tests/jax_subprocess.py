"""JAX in a subprocess for the tests: the environment that makes it start and compile fast."""

import functools
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@functools.cache
def fast_compile_flags() -> str:
    """XLA flags that make the compilations of these tiny models several times faster (the
    results do not change): no LLVM optimisations, and XLA's older CPU code generator for fusions
    where this XLA still has it (an unknown flag stops XLA, so one quick start-up checks)."""
    flags = "--xla_backend_optimization_level=0"
    older_fusions = f"{flags} --xla_cpu_use_fusion_emitters=false"
    probe = subprocess.run([sys.executable, "-c", "import jax; jax.devices()"], capture_output=True, timeout=120,
                           env=dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=older_fusions))  # fmt: skip
    return older_fusions if probe.returncode == 0 else flags


def jax_environment(devices: int = 1, cache=None) -> dict:
    """JAX on ``devices`` virtual CPU devices, compiling fast (:func:`fast_compile_flags`), and
    compiled programs kept in ``cache`` (a folder) for the next process that needs them."""
    flags = f"--xla_force_host_platform_device_count={devices} {fast_compile_flags()}"
    environment = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu", XLA_FLAGS=flags,
                       TF_CPP_MIN_LOG_LEVEL="3")  # fmt: skip
    if cache is not None:
        environment.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                           JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")  # fmt: skip
    return environment
