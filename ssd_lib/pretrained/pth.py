"""Read a PyTorch ``.pth`` checkpoint into numpy arrays, without PyTorch and without running code.

A ``.pth`` written by ``torch.save`` is a pickle whose tensors point to raw storages:

- the **zip format** (PyTorch >= 1.6): ``<archive>/data.pkl`` holds the pickle and
  ``<archive>/data/<key>`` the raw bytes of each storage;
- the **legacy format**: five pickles in a row (magic number, protocol version, system info, the
  object, the list of storage keys), then each storage as an 8-byte element count and its bytes.

Unpickling is how a pickle runs code (its ``GLOBAL`` opcodes import any function and its
``REDUCE`` opcodes call it), so a checkpoint from the internet is read with a *restricted*
unpickler: the only globals it resolves are ``collections.OrderedDict``, the storage types
(``torch.FloatStorage`` ...) and the tensor-rebuild functions (``torch._utils._rebuild_tensor_v2``,
``_rebuild_parameter``), each replaced by a numpy function of ours. Any other global raises
:class:`UnsafePickleError` before anything is called; ``torch`` itself is never imported.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["PthError", "UnsafePickleError", "read_pth", "find_state_dict"]

#: ``torch.save``'s legacy format starts with this number (a pickled int) and protocol 1001.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
#: Element type of each storage class ``torch.save`` writes (bfloat16 is converted to float32).
_STORAGE_DTYPES = {
    "FloatStorage": "f4", "DoubleStorage": "f8", "HalfStorage": "f2", "BFloat16Storage": "u2",
    "LongStorage": "i8", "IntStorage": "i4", "ShortStorage": "i2", "CharStorage": "i1",
    "ByteStorage": "u1", "BoolStorage": "?",
}  # fmt: skip


class PthError(ValueError):
    """A file that is not a readable PyTorch checkpoint; the message names the file."""


class UnsafePickleError(PthError):
    """The checkpoint's pickle asks for something other than tensors and dictionaries."""


class _StorageType:
    """What the unpickler returns for ``torch.<Name>Storage``: only its element type."""

    def __init__(self, name: str, byteorder: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name]).newbyteorder(byteorder)


class _PendingStorage:
    """A legacy-format storage whose bytes come after the pickle (first of two passes)."""


def _rebuild_tensor(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                    metadata=None):  # fmt: skip
    """``torch._utils._rebuild_tensor_v2`` in numpy: a strided view of a storage, copied."""
    if isinstance(storage, _PendingStorage):
        return None
    if not isinstance(storage, np.ndarray):
        raise UnsafePickleError(f"a tensor's storage must be a storage, got {type(storage).__name__}")
    size, stride = tuple(size), tuple(stride)
    values = [storage_offset, *size, *stride]
    if len(size) != len(stride) or not all(isinstance(v, int) and v >= 0 for v in values):
        raise PthError(f"invalid tensor layout: offset {storage_offset}, size {size}, stride {stride}")
    if math.prod(size) == 0:
        return np.zeros(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * step for n, step in zip(size, stride))
    if last >= len(storage):
        raise PthError(
            f"a tensor of size {size} at offset {storage_offset} reaches element {last} of a "
            f"storage of {len(storage)} elements (truncated or corrupt file)"
        )
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=[step * itemsize for step in stride]
    )
    return np.array(view, dtype=storage.dtype.newbyteorder("="))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    """``torch._utils._rebuild_parameter`` (and ``_with_state``): a parameter is its data."""
    return data


_ALLOWED_FUNCTIONS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`_ALLOWED_FUNCTIONS` and storage types; storages come from
    ``load_storage(key, storage_type, numel)``."""

    def __init__(self, file, load_storage, byteorder: str):
        super().__init__(file)
        self._load_storage = load_storage
        self._byteorder = byteorder

    def find_class(self, module, name):
        if (module, name) in _ALLOWED_FUNCTIONS:
            return _ALLOWED_FUNCTIONS[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, self._byteorder)
        raise UnsafePickleError(
            f"refusing to load: its pickle asks for the global '{module}.{name}', which is not a "
            "tensor, a storage or a dictionary (a checkpoint can run code this way)"
        )

    def persistent_load(self, pid):
        if self._load_storage is None:
            raise PthError(f"unexpected storage reference {pid!r} outside the tensors' pickle")
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[2], str)
                and isinstance(pid[4], int) and pid[4] >= 0):  # fmt: skip
            raise UnsafePickleError(f"refusing to load: unexpected persistent id {pid!r}")
        storage = self._load_storage(pid[2], pid[1], pid[4])
        view = pid[5] if len(pid) > 5 else None  # legacy views: (view key, offset, size)
        if view is not None and not isinstance(storage, _PendingStorage):
            _, offset, view_size = view
            storage = storage[offset : offset + view_size]
        return storage


def _storage_array(data: bytes, storage_type: _StorageType, numel: int, key: str) -> np.ndarray:
    """Raw storage bytes -> 1-D array of ``numel`` elements (bfloat16 widened to float32)."""
    expected = numel * storage_type.dtype.itemsize
    if len(data) < expected:
        raise PthError(f"storage {key!r} has {len(data)} bytes, expected {expected} (truncated file)")
    array = np.frombuffer(data, dtype=storage_type.dtype, count=numel)
    if storage_type.name == "BFloat16Storage":  # the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _read_zip(archive: zipfile.ZipFile):
    pickles = [name for name in archive.namelist() if name.endswith("data.pkl") and name.count("/") == 1]
    if len(pickles) != 1:
        raise PthError("the zip archive has no <name>/data.pkl: not a torch.save checkpoint")
    prefix = pickles[0][: -len("data.pkl")]
    byteorder = "<"
    if f"{prefix}byteorder" in archive.namelist():
        byteorder = {"little": "<", "big": ">"}.get(archive.read(f"{prefix}byteorder").decode().strip(), "<")
    storages = {}

    def load_storage(key, storage_type, numel):
        if key not in storages:
            try:
                data = archive.read(f"{prefix}data/{key}")
            except KeyError:
                raise PthError(f"storage {key!r} is missing from the archive") from None
            storages[key] = _storage_array(data, storage_type, numel, key)
        return storages[key]

    return _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), load_storage, byteorder).load()


def _read_legacy(file):
    """The legacy format: unpickle once to list the storages, read them, unpickle again."""
    for expected in (_LEGACY_MAGIC, _LEGACY_PROTOCOL):
        if _RestrictedUnpickler(file, None, "<").load() != expected:
            raise PthError("not a torch.save checkpoint (neither a zip archive nor the legacy format)")
    system_info = _RestrictedUnpickler(file, None, "<").load()
    if not isinstance(system_info, dict):
        raise PthError("not a torch.save checkpoint (no system information after the magic number)")
    byteorder = "<" if system_info.get("little_endian", True) else ">"
    start = file.tell()
    wanted = {}

    def note_storage(key, storage_type, numel):
        wanted[key] = (storage_type, numel)
        return _PendingStorage()

    _RestrictedUnpickler(file, note_storage, byteorder).load()
    keys = _RestrictedUnpickler(file, None, byteorder).load()
    if not isinstance(keys, list) or set(keys) != set(wanted):
        raise PthError("the list of storages after the pickle does not match the tensors in it")
    storages = {}
    for key in keys:
        storage_type, numel = wanted[key]
        count = np.frombuffer(file.read(8), dtype=np.dtype("i8").newbyteorder(byteorder))
        if len(count) != 1 or count[0] != numel:
            raise PthError(f"storage {key!r}: expected {numel} elements, the file says {count.tolist()}")
        storages[key] = _storage_array(file.read(numel * storage_type.dtype.itemsize), storage_type, numel, key)
    file.seek(start)
    return _RestrictedUnpickler(file, lambda key, storage_type, numel: storages[key], byteorder).load()


def read_pth(path):
    """The object a ``.pth`` file holds, with every tensor as a numpy array.

    Args:
        path: a file written by ``torch.save`` (zip or legacy format).

    Returns:
        The saved object (typically a dict or ``OrderedDict`` of name -> array), tensors as
        writable numpy arrays of their dtype (bfloat16 as float32).

    Raises:
        UnsafePickleError: the pickle asks for any global other than tensors, storages and
            ``OrderedDict`` (nothing is called before this check).
        PthError: not a checkpoint, or truncated/corrupt (the message names the file).
        FileNotFoundError: no such file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as file:
            if zipfile.is_zipfile(file):
                file.seek(0)
                with zipfile.ZipFile(file) as archive:
                    return _read_zip(archive)
            file.seek(0)
            if file.read(4) == b"PK\x03\x04":
                raise PthError("a zip archive without its central directory (truncated or corrupt file)")
            file.seek(0)
            return _read_legacy(file)
    except PthError as error:
        raise type(error)(f"{path}: {error}") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as error:  # fmt: skip
        raise PthError(f"{path}: not a readable torch.save checkpoint ({type(error).__name__}: {error})") from None


def find_state_dict(checkpoint, path="checkpoint") -> dict[str, np.ndarray]:
    """The ``{parameter name: array}`` mapping of a loaded checkpoint.

    Accepts a state dict itself or a training checkpoint that keeps it under ``"model"`` or
    ``"state_dict"`` (as torchvision's reference scripts do).

    Raises:
        PthError: no mapping of names to arrays found (names ``path``).
    """
    if isinstance(checkpoint, dict):
        for key in ("model", "state_dict"):
            if isinstance(checkpoint.get(key), dict):
                checkpoint = checkpoint[key]
                break
        arrays = {name: value for name, value in checkpoint.items() if isinstance(value, np.ndarray)}
        if arrays and all(isinstance(name, str) for name in arrays):
            return arrays
    raise PthError(f"{path}: holds no state dict (a mapping of parameter names to tensors)")
