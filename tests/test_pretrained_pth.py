"""Tests for ssd_lib.pretrained.pth: reading torch.save files without torch, refusing code.

``tests/fixtures/tiny_zip.pth`` and ``tiny_legacy.pth`` were written by ``torch.save`` (zip and
legacy formats) in ``tools/torchvision_reference.py``; ``tiny_checkpoint_contents`` there says
what they hold. The malicious checkpoints are built here, by hand, opcode by opcode.
"""

import importlib.util
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from ssd_lib.pretrained.pth import PthError, UnsafePickleError, find_state_dict, read_pth

FIXTURES = Path(__file__).parent / "fixtures"


def reference_tool():
    spec = importlib.util.spec_from_file_location(
        "torchvision_reference", Path(__file__).parents[1] / "tools" / "torchvision_reference.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["tiny_zip.pth", "tiny_legacy.pth"])
def test_reads_torch_save_files_of_both_formats(name):
    loaded = read_pth(FIXTURES / name)
    expected = reference_tool().tiny_checkpoint_contents()
    conv = loaded.pop("conv")
    assert isinstance(conv, OrderedDict) and list(conv) == ["weight", "bias"]
    assert conv._metadata[""] == {"version": 1}  # the state dict's attribute survives
    loaded.update({f"conv.{key}": value for key, value in conv.items()})
    assert sorted(loaded) == sorted(expected)
    for key, value in expected.items():
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape, key
        np.testing.assert_array_equal(loaded[key], value, err_msg=key)
    assert loaded["transposed"].flags.writeable  # copies, not views of the file's bytes


def _zip_checkpoint(path, pickle_bytes, storages=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
    return path


def _legacy_checkpoint(path, pickle_bytes):
    header = b"".join(pickle.dumps(value, protocol=2) for value in
                      (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True}))  # fmt: skip
    path.write_bytes(header + pickle_bytes + pickle.dumps([], protocol=2))
    return path


class Exploit:
    """Unpickling this calls ``print`` (a stand-in for ``os.system``) with a marker."""

    def __reduce__(self):
        return (print, ("EXPLOITED",))


@pytest.mark.parametrize(
    "payload, refused",
    [
        (pickle.dumps({"weight": Exploit()}, protocol=2), "__builtin__.print"),  # protocol 2 spelling
        (b"cos\nsystem\n(S'echo EXPLOITED'\ntR.", "os.system"),  # protocol 0 GLOBAL + REDUCE
        (pickle.dumps(eval, protocol=4), "builtins.eval"),  # protocol 4: STACK_GLOBAL
        (pickle.dumps(OrderedDict, protocol=2).replace(b"OrderedDict", b"OrderedDicx"), "collections.OrderedDicx"),
    ],
    ids=["reduce", "protocol-0", "stack-global", "near-miss-name"],
)
@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_refuses_any_other_global_before_calling_it(tmp_path, capsys, payload, refused, layout):
    path = tmp_path / "evil.pth"
    (_zip_checkpoint if layout == "zip" else _legacy_checkpoint)(path, payload)
    with pytest.raises(UnsafePickleError, match=rf"{path}: refusing to load: .*'{refused}'"):
        read_pth(path)
    assert "EXPLOITED" not in capsys.readouterr().out


def test_refuses_a_persistent_id_that_is_not_a_storage(tmp_path):
    class Pid(pickle.Pickler):
        def persistent_id(self, obj):
            return ("module", "os.system") if obj == "x" else None

    import io

    buffer = io.BytesIO()
    Pid(buffer, protocol=2).dump({"a": "x"})
    with pytest.raises(UnsafePickleError, match="unexpected persistent id"):
        read_pth(_zip_checkpoint(tmp_path / "pid.pth", buffer.getvalue()))


def _truncated(fixture, size):
    return lambda path: path.write_bytes((FIXTURES / fixture).read_bytes()[:size])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path.write_bytes(b""), "not a readable torch.save checkpoint"),
        (lambda path: path.write_text("hello, I am text"), "not a readable torch.save checkpoint"),
        (lambda path: path.write_bytes(pickle.dumps({"a": 1}, protocol=2)), r"not a torch.save checkpoint \(neither"),
        (lambda path: zipfile.ZipFile(path, "w").close(), "the zip archive has no <name>/data.pkl"),
        (_truncated("tiny_legacy.pth", 1000), r"not a readable torch.save checkpoint \(UnpicklingError: pickle data was truncated\)"),
        (_truncated("tiny_zip.pth", 3000), r"a zip archive without its central directory \(truncated or corrupt file\)"),
    ],
)
def test_broken_files_raise_one_clear_error_naming_the_file(tmp_path, make, message):
    path = tmp_path / "broken.pth"
    make(path)
    with pytest.raises(PthError, match=f"^{path}: {message}"):
        read_pth(path)


def test_a_storage_missing_from_the_archive_or_too_short_is_named(tmp_path):
    source = zipfile.ZipFile(FIXTURES / "tiny_zip.pth")
    prefix = source.namelist()[0].split("/")[0]
    pickle_bytes = source.read(f"{prefix}/data.pkl")
    with pytest.raises(PthError, match="storage '0' is missing"):
        read_pth(_zip_checkpoint(tmp_path / "missing.pth", pickle_bytes))
    storages = {name.split("/")[-1]: source.read(name) for name in source.namelist() if "/data/" in name}
    storages["0"] = storages["0"][:-1]
    with pytest.raises(PthError, match=r"storage .0. has \d+ bytes, expected \d+ \(truncated file\)"):
        read_pth(_zip_checkpoint(tmp_path / "short.pth", pickle_bytes, storages))


def test_find_state_dict_unwraps_training_checkpoints_and_names_a_file_without_one():
    weights = {"layer.weight": np.ones(2)}
    assert find_state_dict(weights) is not None and list(find_state_dict(weights)) == ["layer.weight"]
    assert list(find_state_dict({"model": weights, "epoch": 3})) == ["layer.weight"]
    assert list(find_state_dict({"state_dict": weights})) == ["layer.weight"]
    with pytest.raises(PthError, match="x.pth: holds no state dict"):
        find_state_dict({"epoch": 3}, "x.pth")
    with pytest.raises(PthError, match="holds no state dict"):
        find_state_dict([np.ones(2)], "x.pth")
