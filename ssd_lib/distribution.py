"""Many GPUs and many machines: data parallelism on the JAX backend through ``keras.distribution``.

One process per machine sees all its accelerators; ``keras.distribution.DataParallel`` over
``keras.distribution.list_devices()`` replicates the model and splits every batch across them,
and the compiled step computes the loss of the **global** batch, so ``SSDLoss`` divides by the
positives of the whole batch and one step on N devices is the step of one device on the same
batch. Several machines join through ``jax.distributed`` (:func:`initialize_cluster`, with the
argument names of ``jax.distributed.initialize``, or found in a SLURM allocation as JAX does).
Each process then loads its own part of every batch (:func:`process_shard`,
:class:`ssd_lib.pipeline.Shard`); process 0 writes the run folder (:func:`is_chief`); all
processes check that they resume from the same epoch (:func:`agree`). Validation runs on a copy of
the model in each process (:func:`local_copy`), each on its share of the images, and every
process receives all results (:func:`gather_rows`). A process that dies makes JAX's coordination
service end the others after ``heartbeat_seconds``.

TensorFlow's ``MirroredStrategy`` is not used: multi-GPU and multi-machine training run on the
JAX backend (``KERAS_BACKEND=jax``).

Explained in README.md, "Scaling out".
"""

from __future__ import annotations

import contextlib
import dataclasses
import os

import keras
import numpy as np

from .pipeline import Shard

__all__ = ["Cluster", "initialize_cluster", "use_all_devices", "device_count", "process_count", "process_index",
           "devices_in_use", "local_only", "local_copy", "process_shard", "is_chief", "agree", "from_chief", "barrier",
           "gather_rows", "check_global_batch"]  # fmt: skip

#: Seconds without a heartbeat after which JAX declares a process dead and ends the others
#: (JAX's default is 100).
HEARTBEAT_SECONDS = 10


@dataclasses.dataclass(frozen=True)
class Cluster:
    """How this process joins a multi-process run (``jax.distributed.initialize``'s arguments).

    All ``None``: a single process, unless a SLURM job with several tasks (or
    ``JAX_COORDINATOR_ADDRESS``) provides them, as JAX reads them.

    Attributes:
        coordinator_address: ``HOST:PORT`` of process 0, reachable from every machine.
        num_processes: processes in the run (one per machine).
        process_id: this process, ``0 .. num_processes - 1``; process 0 writes the run folder.
        heartbeat_seconds: a process silent this long is dead and the others stop.
    """

    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None
    heartbeat_seconds: int = HEARTBEAT_SECONDS

    def __post_init__(self):
        given = {"--coordinator-address": self.coordinator_address, "--num-processes": self.num_processes,
                 "--process-id": self.process_id}  # fmt: skip
        missing = [flag for flag, value in given.items() if value is None]
        if missing and len(missing) < 3 and not _cluster_environment():
            raise ValueError(f"multi-process training needs {', '.join(missing)} too (or a SLURM job)")
        if self.num_processes is not None and self.num_processes < 1:
            raise ValueError(f"--num-processes must be >= 1, got {self.num_processes}")
        if self.process_id is not None and self.num_processes is not None and not 0 <= self.process_id < self.num_processes:
            raise ValueError(f"--process-id must be in 0..{self.num_processes - 1}, got {self.process_id}")

    @property
    def requested(self) -> bool:
        """Whether this is a multi-process run (arguments given, or found in the environment)."""
        return any(value is not None for value in (self.coordinator_address, self.num_processes,
                                                    self.process_id)) or _cluster_environment()  # fmt: skip


def _cluster_environment() -> bool:
    """A launcher that JAX reads (SLURM with several tasks, or JAX_COORDINATOR_ADDRESS)."""
    return int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "JAX_COORDINATOR_ADDRESS" in os.environ


def initialize_cluster(cluster: Cluster) -> bool:
    """Join the multi-process run described by ``cluster``; call before any computation.

    Returns:
        ``True`` if this is a multi-process run (then ``jax.distributed`` is initialized).

    Raises:
        ValueError: a multi-process run on a backend other than JAX.
    """
    if not cluster.requested:
        return False
    if keras.backend.backend() != "jax":
        raise ValueError(f"multi-process training runs on the JAX backend (KERAS_BACKEND=jax), not "
                         f"{keras.backend.backend()}")  # fmt: skip
    import jax

    jax.distributed.initialize(cluster.coordinator_address, cluster.num_processes, cluster.process_id,
                               heartbeat_timeout_seconds=cluster.heartbeat_seconds)  # fmt: skip
    return True


def device_count() -> int:
    """Accelerators (or CPU devices) that train together: all processes' devices under JAX, 1
    otherwise."""
    if keras.backend.backend() != "jax":
        return 1
    return len(keras.distribution.list_devices())


def process_count() -> int:
    """Processes of the run (JAX multi-process), 1 otherwise."""
    if keras.backend.backend() != "jax":
        return 1
    import jax

    return jax.process_count()


def process_index() -> int:
    """This process's number (0 writes the run folder)."""
    if keras.backend.backend() != "jax":
        return 0
    import jax

    return jax.process_index()


def devices_in_use() -> int:
    """Devices the current ``keras.distribution`` splits a batch over (1 without one)."""
    current = keras.distribution.distribution()
    return 1 if current is None else int(np.prod(current.device_mesh.shape))


def use_all_devices():
    """Set ``keras.distribution.DataParallel`` over every device of every process (JAX, more than
    one device); returns it, or ``None`` (one device: nothing to distribute). Each process loads its
    own part of the data (:func:`process_shard`), so Keras does not shard the dataset."""
    if device_count() < 2:
        return None
    distribution = keras.distribution.DataParallel(devices=keras.distribution.list_devices(), auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    return distribution


@contextlib.contextmanager
def local_only():
    """A block that one process runs alone (process 0 writing a checkpoint): Keras variables
    created inside (saving makes some) stay on this process. Under a multi-process distribution,
    creating a variable is a collective step that every process would have to join."""
    current = keras.distribution.distribution()
    keras.distribution.set_distribution(None)
    try:
        yield
    finally:
        keras.distribution.set_distribution(current)


def local_copy(model: keras.Model, copy: keras.Model | None = None) -> keras.Model:
    """``model``'s weights in a model of this process alone (made by ``keras.models.clone_model``
    unless ``copy``, an earlier result, is given to refresh): it predicts without the other
    processes, inside :func:`local_only`."""
    if copy is None:
        with local_only():
            copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())  # replicated weights: every process has them whole
    return copy


def process_shard() -> Shard:
    """This process's part of every batch; the last batch is padded when the batch is split over
    several devices (they need equal parts)."""
    return Shard(process_index(), process_count(), pad_last_batch=device_count() > 1)


def is_chief() -> bool:
    """Whether this process writes the run folder (process 0, or the only one)."""
    return process_index() == 0


def agree(value: int, what: str) -> int:
    """Check that every process has the same integer ``value`` (e.g. the epoch to resume from).

    Raises:
        ValueError: process 0 has another value (names ``what``, both values and this process).
    """
    chief = from_chief(value)
    if chief != value:
        raise ValueError(f"process {process_index()} has {what} {value} but process 0 has {chief}; "
                         "all processes must see the same run folder (a shared --out)")  # fmt: skip
    return value


def from_chief(value: int) -> int:
    """Process 0's integer ``value``, on every process (``value`` itself in a single process)."""
    if process_count() == 1:
        return value
    from jax.experimental import multihost_utils

    return int(multihost_utils.broadcast_one_to_all(np.int32(value)))


def barrier(name: str) -> None:
    """Wait until every process gets here (nothing to wait for in a single process)."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def gather_rows(arrays, width: int) -> list[list[np.ndarray]]:
    """Every process's list of ``(k, width)`` arrays (``k`` may differ between arrays, e.g. the
    detections of each image), received by every process.

    Args:
        arrays: this process's arrays (any number, also none).
        width: their number of columns.

    Returns:
        One list per process, in process order; ``[list(arrays)]`` in a single process.
    """
    arrays = [np.asarray(array, np.float32).reshape(-1, width) for array in arrays]
    if process_count() == 1:
        return [arrays]
    from jax.experimental import multihost_utils

    lengths = np.array([len(array) for array in arrays], np.int32)
    rows = np.concatenate(arrays) if arrays else np.zeros((0, width), np.float32)
    sizes = multihost_utils.process_allgather(np.array([len(lengths), len(rows)], np.int32))  # (processes, 2)
    most_arrays, most_rows = sizes.max(axis=0)
    all_lengths = multihost_utils.process_allgather(np.pad(lengths, (0, most_arrays - len(lengths))))
    all_rows = multihost_utils.process_allgather(np.pad(rows, ((0, most_rows - len(rows)), (0, 0))))
    return [np.split(process_rows[:n_rows], np.cumsum(process_lengths[:n_arrays])[:-1]) if n_arrays else []
            for (n_arrays, n_rows), process_lengths, process_rows in zip(sizes, all_lengths, all_rows)]  # fmt: skip


def check_global_batch(batch_size: int) -> None:
    """The global batch must split evenly over the devices (and so over the processes).

    Raises:
        ValueError: it does not (names the batch size and the device count).
    """
    devices = device_count()
    if batch_size % devices:
        raise ValueError(f"--batch-size {batch_size} does not split over {devices} devices; use a multiple "
                         f"of {devices} (the global batch)")  # fmt: skip
