"""Tests of the run folder's safety: the checkpoint swap under kills, damaged checkpoint files, a full disk,
the lock, and the same-run check of a resume (ssd_lib.training.checkpoint, run_folder, run_identity).

A real ``kill -9`` inside the swap window of a training run, and the resume after it, are tested in
test_train.py (one subprocess for both)."""

import errno
import json
import logging
import os
import shutil
from collections import namedtuple
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssd_lib import training  # noqa: E402
from ssd_lib.training import checkpoint, run_identity  # noqa: E402
from ssd_lib.training.run_folder import RunFolderError, check_run_folder, lock_run_folder  # noqa: E402


def tiny_model():
    """A compiled two-layer model with a built Adam (momenta and step counter to save)."""
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(1, name="out")(keras.layers.Dense(4, name="hidden")(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def stamp(model, epoch: int) -> None:
    """Weights and optimizer state that say which epoch they are (``epoch / 10`` everywhere)."""
    for variable in model.weights + checkpoint._optimizer_state(model.optimizer):
        variable.assign(np.full(variable.shape, epoch if variable.name == "iteration" else epoch / 10,
                                dtype=variable.dtype))  # fmt: skip


def stamp_of(model) -> float:
    values = {float(np.ravel(keras.ops.convert_to_numpy(v))[0]) for v in model.weights}
    moments = {float(np.ravel(keras.ops.convert_to_numpy(v))[0]) for v in checkpoint._optimizer_state(model.optimizer)
               if v.name != "iteration"}  # fmt: skip
    assert len(values) == 1 and values == moments, (values, moments)
    assert int(model.optimizer.iterations) * 0.1 == pytest.approx(values.pop() * 1.0)
    return int(model.optimizer.iterations)


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory):
    """A run folder with the checkpoints of epochs 1 (``checkpoint.previous``) and 2 (``checkpoint``)."""
    out = tmp_path_factory.mktemp("two") / "run"
    model = tiny_model()
    for epoch in (1, 2):
        stamp(model, epoch)
        checkpoint.save_checkpoint(model, out, epoch)
    return out


def copy_run(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(source, target)
    return target


# ------------------------------------------------------------------------------ the swap under kills
class _Killed(BaseException):
    """A kill at this instant: nothing after it runs (no except/finally that catches Exception)."""


def test_a_kill_at_any_instant_of_the_swap_leaves_a_checkpoint(two_checkpoints, tmp_path, monkeypatch):
    operations = []
    real = {"replace": os.replace, "rmtree": shutil.rmtree, "fsync": os.fsync}

    def counted(name):
        def operation(*args, **kwargs):
            operations.append(name)
            if len(operations) == kill_at:
                if name == "rmtree" and Path(args[0]).exists():  # killed half-way through a removal
                    (Path(args[0]) / checkpoint.WEIGHTS_FILE).unlink(missing_ok=True)
                raise _Killed
            return real[name](*args, **kwargs)

        return operation

    model = tiny_model()
    total = None
    for kill_at in range(1, 20):
        out = copy_run(two_checkpoints, tmp_path / str(kill_at))
        operations.clear()
        monkeypatch.setattr(os, "replace", counted("replace"))
        monkeypatch.setattr(shutil, "rmtree", counted("rmtree"))
        monkeypatch.setattr(os, "fsync", counted("fsync"))
        stamp(model, 3)
        try:
            checkpoint.save_checkpoint(model, out, 3)
            total = len(operations)
        except _Killed:
            pass
        monkeypatch.undo()
        if total is not None:
            break
        # The newest intact checkpoint is epoch 2 or 3, and it loads as it was saved.
        resumed = tiny_model()
        epoch = checkpoint.checkpoint_epoch(out)
        assert epoch in (2, 3), (kill_at, operations)
        assert checkpoint.load_checkpoint(resumed, out)["epoch"] == epoch
        assert stamp_of(resumed) == epoch
        # The run goes on: the next checkpoint is saved and loads.
        stamp(model, 4)
        checkpoint.save_checkpoint(model, out, 4)
        assert checkpoint.load_checkpoint(resumed, out)["epoch"] == 4 and stamp_of(resumed) == 4
    assert total is not None and total >= 6  # every step of a save was interrupted once
    assert "rmtree" in operations and operations.count("replace") >= 3


# ------------------------------------------------------------------------------ damaged files
@pytest.mark.parametrize("name", [checkpoint.WEIGHTS_FILE, checkpoint.OPTIMIZER_FILE, checkpoint.STATE_FILE])
def test_a_truncated_file_is_named_and_the_previous_checkpoint_used(two_checkpoints, tmp_path, caplog, name):
    out = copy_run(two_checkpoints, tmp_path)
    damaged = out / "checkpoint" / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])
    model = tiny_model()
    with caplog.at_level(logging.WARNING, logger="ssd_lib.training.checkpoint"):
        assert checkpoint.load_checkpoint(model, out)["epoch"] == 1
    assert stamp_of(model) == 1
    assert f"{damaged} is damaged" in caplog.text and "resuming from" in caplog.text
    # With the previous one damaged too: one line naming the file and what to do.
    previous = out / "checkpoint.previous" / name
    previous.write_bytes(b"")
    with pytest.raises(checkpoint.CheckpointError, match=rf"{damaged} is damaged.*--overwrite") as raised:
        checkpoint.load_checkpoint(model, out)
    assert "\n" not in str(raised.value)


def test_optimizer_state_is_stored_once_without_the_learning_rate(two_checkpoints):
    import h5py

    with h5py.File(two_checkpoints / "checkpoint" / checkpoint.WEIGHTS_FILE) as weights:
        assert "optimizer" not in weights
    state = json.loads((two_checkpoints / "checkpoint" / checkpoint.STATE_FILE).read_text())
    # Keras numbers optimizers created earlier in the process (adam, adam_1, ...): match the variable.
    assert any(path.endswith("/iteration") for path in state["optimizer_variables"])
    assert not any(path.endswith("learning_rate") for path in state["optimizer_variables"])
    model = tiny_model()
    model.optimizer.learning_rate.assign(0.5)  # the resuming run's learning rate stays
    checkpoint.load_checkpoint(model, two_checkpoints)
    assert float(model.optimizer.learning_rate) == 0.5


# ------------------------------------------------------------------------------ a full disk
def test_a_full_disk_is_found_before_writing(two_checkpoints, tmp_path, monkeypatch):
    out = copy_run(two_checkpoints, tmp_path)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint.shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    model = tiny_model()
    with pytest.raises(checkpoint.CheckpointError, match=r"no space left on the disk of .*the checkpoint of epoch 2 "
                                                         r"is kept"):  # fmt: skip
        checkpoint.save_checkpoint(model, out, 3)
    assert checkpoint.checkpoint_epoch(out) == 2 and not (out / "checkpoint.new").exists()


def test_a_disk_full_while_writing_removes_the_partial_checkpoint(two_checkpoints, tmp_path, monkeypatch):
    out = copy_run(two_checkpoints, tmp_path)

    def savez_on_a_full_disk(path, **arrays):
        Path(path).write_bytes(b"PK\x03\x04partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoint.np, "savez", savez_on_a_full_disk)
    model = tiny_model()
    stamp(model, 3)
    with pytest.raises(checkpoint.CheckpointError, match="no space left.*epoch 2 is kept.*run the same command"):
        checkpoint.save_checkpoint(model, out, 3)
    monkeypatch.undo()
    assert not (out / "checkpoint.new").exists()
    assert checkpoint.load_checkpoint(model, out)["epoch"] == 2 and stamp_of(model) == 2


# ------------------------------------------------------------------------------ lock, --out
def test_a_second_run_into_the_same_folder_refuses(tmp_path):
    out = check_run_folder(tmp_path / "run")
    with lock_run_folder(out):
        with pytest.raises(RunFolderError, match=rf"{out} is in use by another training run \(pid {os.getpid()}"):
            with lock_run_folder(out):
                pass
    with lock_run_folder(out):  # released
        pass


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunFolderError, match="is a file"):
        check_run_folder(tmp_path / "file")
    with pytest.raises(RunFolderError, match="is a file"):
        check_run_folder(tmp_path / "file" / "run")


# ------------------------------------------------------------------------------ same run?
def _records(folder: str, boxes=((1, 2, 3, 4),)):
    return [{"image_path": f"{folder}/{index}.png", "boxes": np.array(boxes, np.float32),
             "labels": np.array([1], np.int32)} for index in range(3)]  # fmt: skip


def test_data_fingerprint_sees_the_annotations_not_the_folder():
    fingerprint = run_identity.data_fingerprint(_records("/data/a"))
    assert fingerprint["images"] == 3
    assert run_identity.data_fingerprint(_records("/elsewhere/b")) == fingerprint  # moved: the same data
    assert run_identity.data_fingerprint(_records("/data/a", ((1, 2, 3, 5),))) != fingerprint
    assert run_identity.data_fingerprint(_records("/data/a")[:2]) != fingerprint


def _settings(recipe, data):
    from ssd_lib.config import SSD_SMALL_SHAPES

    facts = {"model": "ssd", "parameters": 10, "data": run_identity.data_fingerprint(data), "epochs": recipe.epochs}
    return training.run_folder.run_settings(recipe, SSD_SMALL_SHAPES, facts)


def test_resumable_changes_resume_and_others_refuse(tmp_path):
    recipe = training.Recipe(epochs=4, batch_size=4, learning_rate=1e-3)
    old = _settings(recipe, _records("/data"))
    assert run_identity.setting_changes(old, old) == ([], [])
    other, resumable = run_identity.setting_changes(old, _settings(recipe.replace(epochs=8, learning_rate=0.01),
                                                                   _records("/data")))  # fmt: skip
    assert other == [] and resumable == ["epochs: 4 -> 8", "learning_rate: 0.001 -> 0.01"]
    other, _ = run_identity.setting_changes(old, _settings(recipe.replace(batch_size=2), _records("/data")[:2]))
    assert other[0] == "batch_size: 4 -> 2" and other[1].startswith("training data: 3 images (")

    out = check_run_folder(tmp_path / "run")
    (out / "settings.json").write_text(json.dumps(old))
    (out / "log.csv").write_text("epoch\n1\n")
    assert run_identity.check_same_run(out, old) == ([], None)
    changed = _settings(recipe.replace(batch_size=2), _records("/data"))
    with pytest.raises(RunFolderError, match=rf"{out} holds another run \(batch_size: 4 -> 2\); use another --out, "
                                             "or --overwrite"):  # fmt: skip
        run_identity.check_same_run(out, changed)
    assert run_identity.check_same_run(out, changed, overwrite=True) == ([], tmp_path / "run.replaced-1")
    assert (tmp_path / "run.replaced-1" / "log.csv").read_text() == "epoch\n1\n"  # moved, not deleted
    assert list(out.iterdir()) == []
    (out / "settings.json").write_text('{"recipe": ')
    with pytest.raises(RunFolderError, match="settings.json is damaged"):
        run_identity.check_same_run(out, changed)
