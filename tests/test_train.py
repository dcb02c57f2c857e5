"""Tests of ssd_lib.training and the ssd_lib.train command: schedules, checkpoints and resume, NaN stop,
loss decrease, predict."""

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ssd_lib import inference, training  # noqa: E402
from ssd_lib import train as command  # noqa: E402
from ssd_lib.config import SSDConfig  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402
from ssd_lib.small_ssd import build_small_ssd  # noqa: E402
from ssd_lib.pipeline import DetectionDataset  # noqa: E402
from jax_subprocess import jax_environment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

# A tiny detector: 32x32 inputs, maps 4, 2, 1, two classes (square, bar).
TINY = SSDConfig(
    image_height=32, image_width=32, n_classes=2, feature_map_sizes=(4, 2, 1),
    aspect_ratios=((1.0, 2.0, 0.5),) * 3, scales=(0.25, 0.45, 0.7, 0.95),
    class_names=("square", "bar"),
)  # fmt: skip


def build_tiny():
    return build_small_ssd(TINY, width_multiplier=0.25, l2_regularization=0.0)


# The smallest detector, for the resume tests (what they prove does not need one that learns): one
# stride-2 stage to a 16x16 map, one anchor per cell. Compiling it takes a quarter of TINY's time.
SMALLEST = SSDConfig(
    image_height=32, image_width=32, n_classes=2, feature_map_sizes=(16,), aspect_ratios=((1.0,),),
    scales=(0.3, 0.6), class_names=("square", "bar"),
)  # fmt: skip


def build_smallest():
    return build_small_ssd(SMALLEST, width_multiplier=0.25, l2_regularization=0.0)


def make_records(folder: Path, n: int, seed: int = 0, size=(40, 48)) -> list:
    """``n`` PNG images (width x height = size) with one grey square or bar on black."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    width, height = size
    for index in range(n):
        label = int(rng.integers(1, 3))
        box_w, box_h = (16, 16) if label == 1 else (28, 8)
        x0, y0 = int(rng.integers(0, width - box_w)), int(rng.integers(0, height - box_h))
        pixels = np.zeros((height, width, 3), np.uint8)
        pixels[y0 : y0 + box_h, x0 : x0 + box_w] = 200
        path = folder / f"{index:03d}.png"
        Image.fromarray(pixels).save(path)
        records.append({"image_path": str(path), "size": (width, height),
                        "boxes": np.array([[x0, y0, x0 + box_w, y0 + box_h]], np.float32),
                        "labels": np.array([label], np.int32), "difficult": np.zeros(1, bool)})  # fmt: skip
    return records


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return make_records(tmp_path_factory.mktemp("tiny_images"), 16)


def dataset(records, batch_size=4, config=TINY):
    return DetectionDataset(records, config, batch_size=batch_size, augment=False, seed=0)


# ------------------------------------------------------------------------------ schedules
def test_piecewise_schedule_golden_values():
    schedule = training.learning_rate_schedule(1e-3, steps_per_epoch=10, decay_epochs=(2, 3))
    rates = [float(schedule(step)) for step in (0, 19, 20, 29, 30, 100)]
    assert rates == pytest.approx([1e-3, 1e-3, 1e-4, 1e-4, 1e-5, 1e-5], rel=1e-5)
    by_steps = training.learning_rate_schedule(1e-3, decay_steps=(80_000, 100_000))
    assert float(by_steps(79_999)) == pytest.approx(1e-3)
    assert float(by_steps(80_000)) == pytest.approx(1e-4)
    assert float(by_steps(100_000)) == pytest.approx(1e-5)
    assert training.learning_rate_schedule(1e-3) == 1e-3  # no boundaries: constant


def test_cosine_schedule_warms_up_then_decays_to_zero():
    schedule = training.learning_rate_schedule(2e-3, steps_per_epoch=10, epochs=5, schedule="cosine",
                                               warmup_epochs=1)  # fmt: skip
    assert float(schedule(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(schedule(5)) == pytest.approx(1e-3, rel=1e-4)  # halfway through the warm-up
    assert float(schedule(10)) == pytest.approx(2e-3, rel=1e-4)  # the peak
    assert float(schedule(30)) == pytest.approx(1e-3, rel=1e-3)  # halfway through the decay
    assert float(schedule(50)) == pytest.approx(0.0, abs=1e-9)
    rates = [float(schedule(step)) for step in range(10, 51)]
    assert all(b <= a + 1e-12 for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(schedule="step"), "schedule must be"),
        (dict(decay_epochs=(2,), decay_steps=(5,)), "not both"),
        (dict(decay_steps=(50, 40)), "increasing"),
        (dict(warmup_epochs=1), "needs schedule='cosine'"),
        (dict(learning_rate=0.0), "must be > 0"),
    ],
)
def test_schedule_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        training.learning_rate_schedule(**kwargs)


def test_make_optimizer():
    sgd = training.make_optimizer("sgd", 1e-3, momentum=0.9)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0.9
    assert isinstance(training.make_optimizer("adam", 1e-3), keras.optimizers.Adam)
    with pytest.raises(ValueError, match="'sgd' or 'adam'"):
        training.make_optimizer("rmsprop")


def test_configure_devices_on_cpu_keeps_float32():
    setup = training.configure_devices("auto")
    try:
        assert setup.gpus == [] and setup.precision == "float32" and setup.data_parallel == 1
        assert keras.mixed_precision.global_policy().name == "float32"
        assert "CPU only" in setup.describe()
        with pytest.raises(ValueError, match="precision must be one of"):
            training.configure_devices("float8")
    finally:
        keras.mixed_precision.set_global_policy("float32")


# ------------------------------------------------------------------------------ training
def test_a_few_steps_lower_the_loss_and_log_the_map(records, tmp_path):
    keras.utils.set_random_seed(0)
    data = dataset(records)
    recipe = training.Recipe(epochs=4, batch_size=4, map_every=2, optimizer="adam", learning_rate=3e-3)
    quiet = training.RunOptions(tensorboard=False, verbose=0)
    result = training.train(build_tiny, TINY, data, tmp_path / "run", recipe, val_records=records[:4],
                            options=quiet)  # fmt: skip
    losses = [row["loss"] for row in result.log]
    assert [row["epoch"] for row in result.log] == [1, 2, 3, 4]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < 0.8 * losses[0]
    maps = [row["val_mAP"] for row in result.log]
    assert math.isnan(maps[0]) and math.isnan(maps[2])  # evaluated every 2 epochs only
    assert 0.0 <= maps[1] <= 1.0 and 0.0 <= maps[3] <= 1.0
    assert [row["learning_rate"] for row in result.log] == pytest.approx([3e-3] * 4)
    assert (tmp_path / "run" / "checkpoint" / "model.weights.h5").exists()
    assert result.initial_epoch == 0 and result.epochs == 4
    # Training again with the same folder does nothing more: all epochs are done.
    again = training.train(build_tiny, TINY, data, tmp_path / "run", recipe, options=quiet)
    assert again.initial_epoch == 4 and len(again.log) == 4

    # The checkpoint holds the final weights and optimizer state (Adam moments, step counter), not
    # the learning rate: the one of the resuming optimizer stays.
    model = build_tiny()
    model.compile(optimizer=training.make_optimizer("adam", 1e-3), loss="mse")
    assert training.load_checkpoint(model, tmp_path / "run")["epoch"] == 4
    for saved, loaded in zip(result.model.weights + result.model.optimizer.variables,
                             model.weights + model.optimizer.variables):  # fmt: skip
        if saved.name != "learning_rate":
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(loaded))
    assert int(model.optimizer.iterations) == 4 * len(data)
    assert training.schedule.current_learning_rate(model.optimizer) == pytest.approx(1e-3)

    # A checkpoint is refused by another architecture or another optimizer, naming the folder.
    wider = build_small_ssd(TINY, width_multiplier=0.5, l2_regularization=0.0)
    wider.compile(optimizer=training.make_optimizer("adam", 1e-3), loss="mse")
    with pytest.raises(ValueError, match="checkpoint.*does not fit"):
        training.load_checkpoint(wider, tmp_path / "run")
    other_optimizer = build_tiny()
    other_optimizer.compile(optimizer=training.make_optimizer("sgd", 1e-3, momentum=0.0), loss="mse")
    with pytest.raises(ValueError, match="another model or optimizer"):
        training.load_checkpoint(other_optimizer, tmp_path / "run")
    assert training.load_checkpoint(model, tmp_path / "empty") is None


# A run of 3 epochs of 4 steps, killed (SIGKILL) inside the checkpoint swap after epoch 2.
KILLED_RECIPE = training.Recipe(epochs=3, batch_size=4, optimizer="sgd", learning_rate=0.02, decay_epochs=(2,))

_KILLED_IN_THE_SWAP = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import keras
    sys.path.insert(0, {tests!r})
    import test_train as helpers
    from ssd_lib import training

    replace = os.replace
    def replace_then_die(source, target):
        replace(source, target)
        if str(source).endswith("checkpoint"):  # epoch 2's swap: the old one moved aside, the new one not yet in place
            os.kill(os.getpid(), signal.SIGKILL)
    os.replace = replace_then_die

    keras.utils.set_random_seed(0)
    records = helpers.make_records(pathlib.Path({images!r}), 16)
    training.train(helpers.build_smallest, helpers.SMALLEST, helpers.dataset(records, config=helpers.SMALLEST), {out!r},
                   helpers.KILLED_RECIPE, options=training.RunOptions(tensorboard=False, verbose=0))
    """
)


@pytest.fixture(scope="module")
def killed_in_the_swap(tmp_path_factory):
    """``(run folder, images folder, the killed process)`` of a run killed by ``kill -9`` inside the
    checkpoint swap after epoch 2 of 3 (one subprocess for the tests below; they leave the folder as it is)."""
    folder = tmp_path_factory.mktemp("killed")
    script = folder / "killed_run.py"
    script.write_text(_KILLED_IN_THE_SWAP.format(tests=str(REPO / "tests"), images=str(folder / "images"),
                                                 out=str(folder / "run")))  # fmt: skip
    killed = subprocess.run([sys.executable, str(script)], cwd=REPO, capture_output=True, text=True, timeout=300)
    return folder / "run", folder / "images", killed


def test_kill_9_inside_the_checkpoint_swap_leaves_the_new_checkpoint(killed_in_the_swap):
    out, _, killed = killed_in_the_swap
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not (out / "checkpoint").exists() and (out / "checkpoint.new").exists()  # killed in the window
    assert training.checkpoint_epoch(out) == 2  # checkpoint.new is complete: it is read
    assert [row["epoch"] for row in training.read_log(out / "log.csv")] == [1, 2]
    with training.run_folder.lock_run_folder(out):  # the killed process's lock is gone with it
        pass


def test_resume_after_a_kill_continues_from_the_last_epoch_bit_exactly(killed_in_the_swap, tmp_path, caplog):
    killed_run, images, killed = killed_in_the_swap
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    out = shutil.copytree(killed_run, tmp_path / "run")
    before = training.read_log(out / "log.csv")
    records = make_records(images, 16)
    quiet = training.RunOptions(tensorboard=False, verbose=0)
    random.seed(1234)  # Python's global random (Keras' fit shuffle) is in another state than in the killed run
    caplog.set_level(logging.INFO, logger="ssd_lib")
    result = training.train(build_smallest, SMALLEST, dataset(records, config=SMALLEST), out, KILLED_RECIPE,
                            options=quiet)  # fmt: skip
    assert "resuming after epoch 2 of 3" in caplog.text
    assert result.initial_epoch == 2
    after = training.read_log(out / "log.csv")
    assert [row["epoch"] for row in after] == [1, 2, 3]  # continuous, nothing repeated
    for old, new in zip(before, after):
        assert old == pytest.approx(new, nan_ok=True)  # the first epochs' rows are kept as they were
    # The optimizer's step counter went on from the checkpoint (nothing lost, nothing repeated),
    # so the schedule continued: 0.02 until epoch 2, then 0.002.
    assert int(result.model.optimizer.iterations) == 3 * 4
    assert [row["learning_rate"] for row in after] == pytest.approx([0.02, 0.002, 0.002])
    assert sorted(path.name for path in out.iterdir() if "checkpoint" in path.name) == [
        "checkpoint", "checkpoint.previous"]  # fmt: skip

    # Kill + resume trains exactly as an uninterrupted run.
    keras.utils.set_random_seed(0)
    uninterrupted = training.train(build_smallest, SMALLEST, dataset(records, config=SMALLEST), tmp_path / "whole",
                                   KILLED_RECIPE, options=quiet)  # fmt: skip
    for resumed, whole in zip(result.model.weights, uninterrupted.model.weights, strict=True):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(resumed), keras.ops.convert_to_numpy(whole))


def test_resume_uses_new_resumable_settings_and_refuses_another_run(records, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ssd_lib")  # the status lines
    out = tmp_path / "run"
    quiet = training.RunOptions(tensorboard=False, verbose=0)

    def run(train_records, recipe, options=quiet):
        return training.train(build_smallest, SMALLEST, dataset(train_records, recipe.batch_size, SMALLEST), out,
                              recipe, options=options)  # fmt: skip

    four = records[:4]  # one step per epoch
    recipe = training.Recipe(epochs=1, batch_size=4, optimizer="sgd", learning_rate=0.02)
    run(four, recipe)
    # More epochs and a new learning rate: resumed, and the new learning rate is used (not the restored one).
    longer = recipe.replace(epochs=2, learning_rate=0.005)
    result = run(four, longer)
    assert "resuming after epoch 1 of 2 with epochs: 1 -> 2; learning_rate: 0.02 -> 0.005" in caplog.text
    assert [row["learning_rate"] for row in result.log] == pytest.approx([0.02, 0.005])
    assert training.read_settings(out)[0] == longer

    # Other data or another batch size: refused, naming what differs; --overwrite moves the old run aside.
    with pytest.raises(training.RunFolderError, match=r"holds another run \(training data: 4 images .* -> 8 images"):
        run(records[:8], longer)
    with pytest.raises(training.RunFolderError, match=r"batch_size: 4 -> 2.*--overwrite"):
        run(four, longer.replace(batch_size=2))
    # The fresh run is a cosine one of 2 epochs, which a longer run then stretches.
    cosine = training.Recipe(epochs=2, batch_size=4, learning_rate=0.02, schedule="cosine")
    fresh = run(four, cosine, options=dataclasses.replace(quiet, overwrite=True))
    assert fresh.initial_epoch == 0 and [row["epoch"] for row in fresh.log] == [1, 2]
    assert training.checkpoint_epoch(tmp_path / "run.replaced-1") == 2  # the old run, kept
    # A longer cosine run continues its (stretched) schedule at the restored step, not at 0.
    stretched = run(four, cosine.replace(epochs=4))
    expected = training.learning_rate_schedule(0.02, 1, 4, "cosine")(3)
    assert stretched.log[2]["learning_rate"] == pytest.approx(float(expected)) and float(expected) > 0.002


class _PoisonWeights(keras.callbacks.Callback):
    """Sets the first kernel to NaN after batch 2 of epoch 2: batch 3 gives a NaN loss."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 1:
            first_convolution = next(layer for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D))
            kernel = first_convolution.kernel
            kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))


def test_nan_loss_stops_training_with_a_clear_message(records, tmp_path):
    keras.utils.set_random_seed(0)
    with pytest.raises(training.TrainingDivergedError) as raised:
        training.train(build_tiny, TINY, dataset(records), tmp_path / "run", training.Recipe(epochs=4, batch_size=4),
                       options=training.RunOptions(tensorboard=False, verbose=0,
                                                   callbacks=[_PoisonWeights()]))  # fmt: skip
    message = str(raised.value)
    assert "the loss became nan at epoch 2, batch 3" in message
    assert "lower learning rate" in message and "resumes from the last checkpoint" in message
    # Epoch 1 was saved; the diverged epoch 2 is logged (NaN) but not checkpointed; 3-4 never ran.
    assert training.load_checkpoint(build_tiny(), tmp_path / "run")["epoch"] == 1
    log = training.read_log(tmp_path / "run" / "log.csv")
    assert [row["epoch"] for row in log] == [1, 2]
    assert math.isfinite(log[0]["loss"]) and math.isnan(log[1]["loss"])


def test_tensorboard_without_the_package_says_what_to_install(records, tmp_path):
    pytest.importorskip("tensorflow")
    if training.loop._tensorboard_installed():
        pytest.skip("tensorboard is installed")
    with pytest.raises(ImportError, match="pip install tensorboard"):
        training.train(build_tiny, TINY, dataset(records[:4]), tmp_path / "run",
                       training.Recipe(epochs=1, batch_size=4), options=training.RunOptions(tensorboard=True))


_JAX_STEPS = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    import keras, numpy as np, pathlib
    import test_train as helpers
    from ssd_lib import training
    from ssd_lib.training.devices import set_random_seed
    assert keras.backend.backend() == "jax"
    set_random_seed(0)  # without importing TensorFlow
    records = helpers.make_records(pathlib.Path({images!r}), 16)
    recipe = training.Recipe(epochs=4, batch_size=4, optimizer="adam", learning_rate=3e-3)
    result = training.train(helpers.build_tiny, helpers.TINY, helpers.dataset(records), {out!r}, recipe,
                            options=training.RunOptions(tensorboard=False, verbose=0))
    losses = [row["loss"] for row in result.log]
    print("losses", losses)
    assert losses[-1] < 0.8 * losses[0], losses
    """
)


def test_a_few_steps_lower_the_loss_under_jax(tmp_path):
    pytest.importorskip("jax")
    script = tmp_path / "jax_steps.py"
    script.write_text(_JAX_STEPS.format(tests=str(REPO / "tests"), images=str(tmp_path / "images"),
                                        out=str(tmp_path / "run")))  # fmt: skip
    done = subprocess.run([sys.executable, str(script)], cwd=REPO, env=jax_environment(), capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


# ------------------------------------------------------------------------------ predict
def _constant_model(y_pred):
    """A model that ignores its input and outputs ``y_pred`` for every image."""
    images = keras.Input((TINY.image_height, TINY.image_width, 3))
    constant = keras.ops.convert_to_tensor(y_pred[None])
    output = keras.layers.Lambda(lambda x: keras.ops.reshape(x[:, 0, 0, 0], (-1, 1, 1)) * 0.0 + constant)(images)
    return keras.Model(images, output)


def test_predict_maps_boxes_to_each_image_pixels():
    # The perfect prediction for one box given in model-input pixels (32 x 32).
    box = np.array([[1, 4.0, 8.0, 20.0, 16.0]])  # class 1, corners
    y_true = SSDEncoder(TINY)([box])[0]  # (n_anchors, 5)
    y_pred = np.zeros((TINY.n_anchors, TINY.n_classes + 5), np.float32)
    positive = y_true[:, 0] > 0
    y_pred[:, 0] = 10.0  # background everywhere ...
    y_pred[positive, 0], y_pred[positive, 1] = 0.0, 10.0  # ... but class 1 on the matched anchors
    y_pred[:, -4:] = y_true[:, 1:]
    model = _constant_model(y_pred)
    wide = np.zeros((50, 200, 3), np.uint8)  # width 200, height 50
    same = np.zeros((32, 32, 3), np.float32)
    detections = inference.predict(model, [wide, same], TINY, confidence_threshold=0.5)
    assert len(detections) == 2
    scale = np.array([200 / 32, 50 / 32, 200 / 32, 50 / 32])
    np.testing.assert_allclose(detections[0][0, 2:], box[0, 1:] * scale, rtol=1e-4)
    np.testing.assert_allclose(detections[1][0, 2:], box[0, 1:], rtol=1e-4)
    assert detections[0][0, 0] == 1 and detections[0][0, 1] > 0.99
    single = inference.predict(model, wide, TINY, confidence_threshold=0.5)  # one image, not a list
    assert len(single) == 1 and np.allclose(single[0], detections[0])
    with pytest.raises(ValueError, match="image 0 must be"):
        inference.predict(model, [np.zeros((10, 10))], TINY)


# ------------------------------------------------------------------------------ the shipped model
def test_shipped_small_model_reaches_the_required_map(tmp_path):
    """The weights in ssd_lib/shipped_models reach mAP@0.5 >= 0.85 (VOC07 11-point) on the 500 shapes
    validation images, regenerated from their seed, and the figure recorded beside them."""
    from ssd_lib.datasets import load_image, make_shapes_dataset, parse_voc
    from ssd_lib.metrics import evaluate

    model, config, info = inference.load_shipped_model("small_ssd_shapes")
    root = make_shapes_dataset(tmp_path / "shapes", n_train=0, n_val=info["val_images"], seed=0)
    records = parse_voc(root, "val", config.class_names)
    detections = inference.predict(model, [load_image(record["image_path"]) for record in records], config,
                                   batch_size=16)  # fmt: skip
    result = evaluate(detections, records, n_classes=config.n_classes, mode="11point")
    assert result.mean_average_precision >= 0.85
    assert result.mean_average_precision == pytest.approx(info["val_mAP_11point"], abs=0.005)


def test_map_callback_shows_progress_and_prints_nothing_into_the_keras_bar(records, monkeypatch, capsys):
    shown = []

    def recorded(iterable, total=None, description=""):
        shown.append(description)
        return training.callbacks.tqdm(iterable, total=total, disable=True)

    monkeypatch.setattr(training.callbacks, "progress", recorded)
    callback = training.MeanAveragePrecision(records[:6], TINY, batch_size=4, verbose=1)
    callback.set_model(build_tiny())
    logs = {}
    callback.on_epoch_end(0, logs)
    assert 0.0 <= logs["val_mAP"] <= 1.0
    assert shown == ["loading validation images", "validation mAP"]
    assert capsys.readouterr().out == ""  # the mAP is in the logs, which Keras' bar shows


# ------------------------------------------------------------------------------ logs, command line
def test_csv_log_drops_rows_after_the_checkpoint(tmp_path):
    path = tmp_path / "log.csv"
    logger = training.EpochCSVLogger(path)
    for epoch in range(3):
        logger.on_epoch_begin(epoch)
        logger.on_epoch_end(epoch, {"loss": 1.0 / (epoch + 1), "val_mAP": math.nan if epoch == 0 else 0.5})
    assert [row["epoch"] for row in training.read_log(path)] == [1, 2, 3]
    resumed = training.EpochCSVLogger(path, initial_epoch=2)  # epoch 3 was written, not checkpointed
    resumed.on_train_begin()
    rows = training.read_log(path)
    assert [row["epoch"] for row in rows] == [1, 2]
    assert math.isnan(rows[0]["val_mAP"]) and rows[1]["val_mAP"] == 0.5 and rows[1]["loss"] == 0.5


def test_command_line_trains_and_writes_a_summary(tmp_path, capsys, caplog):
    from ssd_lib.datasets import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", 4, 2, 0, image_size=96)
    out = tmp_path / "run"
    arguments = ["--preset", "small_shapes", "--data", str(data), "--out", str(out), "--epochs", "1",
                 "--batch-size", "2", "--steps-per-epoch", "1", "--width-multiplier", "0.25",
                 "--no-tensorboard", "--verbose", "0"]  # fmt: skip
    assert command.main(arguments) == 0
    assert "predicting" not in capsys.readouterr().err  # --verbose 0: no progress bar either
    for name in ("final.weights.h5", "summary.json", "log.csv", "settings.json", "checkpoint"):
        assert (out / name).exists(), name
    # settings.json loads back into the recipe (the preset's, with the flags) and the config.
    recipe, config, facts = training.read_settings(out)
    preset = training.presets()["small_shapes"]
    assert recipe == preset.recipe.replace(epochs=1, batch_size=2, steps_per_epoch=1) and config == preset.config
    assert (facts["epochs"], facts["steps_per_epoch"], facts["dtype_policy"]) == (1, 1, "float32")
    with pytest.raises(FileNotFoundError, match="no .*settings.json"):
        training.read_settings(tmp_path)
    assert command.main(["--preset", "small_shapes", "--data", str(tmp_path), "--out", str(out)]) == 1
    assert command.main([*arguments[:6], "--pos-iou-threshold", "1.5"]) == 1  # a clear error, no traceback
    # Arguments that cannot be right: one error line naming the flag, exit status 1.
    capsys.readouterr()
    for bad, message in [(["--epochs", "0"], "epochs must be a positive integer, got 0"),
                         (["--steps-per-epoch", "0"], "steps_per_epoch must be a positive integer"),
                         (["--batch-size", "0"], "batch_size must be a positive integer"),
                         (["--max-train-images", "-3"], "--max-train-images must be a positive integer, got -3"),
                         (["--max-val-images", "0"], "--max-val-images must be a positive integer"),
                         (["--width-multiplier", "0"], "--width-multiplier must be a positive number, got 0.0"),
                         (["--workers", "0"], "--workers must be a positive integer")]:  # fmt: skip
        assert command.main([*arguments[:6], *bad]) == 1, bad
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
    (tmp_path / "a_file").write_text("")
    assert command.main([*arguments[:4], "--out", str(tmp_path / "a_file")]) == 1
    assert "a_file is a file" in capsys.readouterr().err
    # The same --out with another batch size: refused, naming it; the run is untouched.
    assert command.main([*arguments, "--batch-size", "1"]) == 1
    assert "holds another run (batch_size: 2 -> 1" in capsys.readouterr().err
    # Empty splits: the training split is named with its folder; an empty validation split is said, and
    # summary.json stays valid JSON (null, not NaN).
    empty_train = make_shapes_dataset(tmp_path / "no_train", 0, 2, 0, image_size=96)
    assert command.main(["--data", str(empty_train), *arguments[:2], *arguments[4:]]) == 1
    assert f"the training split is empty ({empty_train} (image set 'train'))" in capsys.readouterr().err
    empty_val = make_shapes_dataset(tmp_path / "no_val", 4, 0, 0, image_size=96)
    tiny = ["--preset", "tiny_shapes", "--jit", "off"]  # a whole run in seconds: 32x32 inputs, no XLA
    other_out = ["--out", str(tmp_path / "run2")]
    assert command.main(["--data", str(empty_val), *tiny, *other_out, *arguments[6:]]) == 0
    warned = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert sum("the validation split is empty" in message for message in warned) == 1  # said once
    summary = json.loads((tmp_path / "run2" / "summary.json").read_text(), parse_constant=lambda name: 1 / 0)
    assert summary["val_mAP_11point"] is None and summary["val_mAP_allpoint"] is None


def test_command_line_options_default_to_the_presets_recipe():
    required = ["--data", "data/shapes", "--out", "runs/x"]
    _, _, small = command.parse_arguments(["--preset", "small_shapes", *required])
    recipe = training.presets()["small_shapes"].recipe
    assert (small.crop, small.jit, small.batch_size) == (recipe.crop, recipe.jit, recipe.batch_size)
    _, _, voc = command.parse_arguments(["--preset", "ssd300_voc", *required])
    assert (voc.crop, voc.jit, voc.expand_max_ratio, voc.schedule) == (True, "auto", 4.0, "piecewise")
    assert (small.pos_iou_threshold, small.neg_iou_limit) == (recipe.pos_iou_threshold, recipe.neg_iou_limit)
    assert (voc.pos_iou_threshold, voc.neg_iou_limit) == (None, None)  # left to SSDEncoder's defaults
    _, _, overridden = command.parse_arguments(["--preset", "small_shapes", *required, "--crop", "--jit", "off"])
    assert (overridden.crop, overridden.jit) == (True, "off")
    assert command.parse_arguments(["--preset", "ssd300_voc", *required, "--no-crop"])[2].crop is False


def test_auto_precision_follows_the_compute_capability():
    assert training.devices.auto_precision(False, []) == "float32"
    assert training.devices.auto_precision(True, [9.0, 9.0]) == "mixed_bfloat16"  # H100/H200
    assert training.devices.auto_precision(True, [8.0]) == "mixed_bfloat16"  # A100
    assert training.devices.auto_precision(True, [7.0]) == "mixed_float16"  # V100: no fast bfloat16
    assert training.devices.auto_precision(True, [8.6, 7.5]) == "mixed_float16"  # the slowest GPU decides
    assert training.devices.auto_precision(True, []) == "mixed_float16"  # unknown: the safe choice


def test_describe_says_the_xla_mode_the_recipe_gets():
    setup = training.DeviceSetup("jax", [], "float32", "auto")
    assert "XLA on" in setup.describe("on") and "XLA off" in setup.describe("off")
    assert "XLA Keras' choice" in setup.describe() and "one device" in setup.describe()
    spread = training.DeviceSetup("jax", ["gpu0"] * 8, "mixed_bfloat16", True, data_parallel=16, processes=2)
    assert spread.describe().endswith("XLA on, keras.distribution.DataParallel over 16 devices in 2 processes")
