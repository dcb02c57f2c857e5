"""Tests of ssd_lib.training.time_budget: the plan's arithmetic, and a run whose first epoch sets its
length (equal to the run of that length, kept on resume)."""

import dataclasses
import json
import logging
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from test_train import SMALLEST, build_smallest, dataset, make_records  # noqa: E402

from ssd_lib import training  # noqa: E402
from ssd_lib.training.time_budget import (FirstEpochTiming, TimeBudget, compiled_seconds, plan_epochs,  # noqa: E402
                                          validation_interval, validations)  # fmt: skip

TIMING = FirstEpochTiming(elapsed=20.0, epoch=5.0, compile=10.0, validation=2.0)


# ------------------------------------------------------------------------------ arithmetic
def test_validations_counts_every_nth_epoch_and_the_last():
    assert validations(2, 12, 3) == 4  # 3, 6, 9, 12
    assert validations(2, 13, 3) == 5  # 3, 6, 9, 12, 13
    assert validations(1, 1, 1) == 1 and validations(2, 1, 1) == 0
    rng = np.random.default_rng(0)
    for _ in range(300):
        first, last, every = (int(v) for v in rng.integers(1, 40, 3))
        expected = sum(1 for e in range(first, last + 1) if e % every == 0 or e == last)
        assert validations(first, last, every) == expected, (first, last, every)


def test_compiled_seconds_leaves_out_the_steps_that_compile():
    # Measured shape of a first epoch: the first step compiles, so does the last, partial batch.
    assert compiled_seconds([27.8, 0.58, 0.61, 0.57, 0.55, 14.8]) == pytest.approx(6 * 0.595)
    assert compiled_seconds([2.0]) == 2.0 and compiled_seconds([]) == 0.0


def test_plan_golden_values():
    # 100 s budget; 20 s spent, 10 s to compile the new schedule: 70 s for epochs 2.. and their validations.
    # 13 epochs: 12 x 5 s + 5 validations (3, 6, 9, 12, 13) x 2 s = 70 s; 14 would take 75 s.
    assert plan_epochs(TimeBudget(100.0), TIMING, map_every=1) == (13, 3)
    assert validation_interval(13, 4) == 3
    # The recipe's interval kept (evaluations=None): 12 x 5 s + 12 x 2 s > 70 s; 11 epochs: 50 + 20 = 70 s.
    assert plan_epochs(TimeBudget(100.0, evaluations=None), TIMING, map_every=1) == (11, 1)
    assert plan_epochs(TimeBudget(100.0, max_epochs=5), TIMING, map_every=1) == (5, 1)
    assert plan_epochs(TimeBudget(1.0), TIMING, map_every=1) == (2, 1)  # over budget already: warm-up + one


def test_plan_fits_the_budget_grows_with_it_and_respects_the_limit():
    rng = np.random.default_rng(1)
    for _ in range(200):
        timing = FirstEpochTiming(*(float(v) for v in rng.uniform(0.1, 30.0, 4)))
        seconds = float(rng.uniform(1.0, 2000.0))
        epochs, every = plan_epochs(TimeBudget(seconds), timing, map_every=1)
        cost = timing.elapsed + timing.compile + (epochs - 1) * timing.epoch + validations(2, epochs, every) * timing.validation
        assert epochs == 2 or cost <= seconds + 1e-9
        longer, _ = plan_epochs(TimeBudget(seconds * 1.5), timing, map_every=1)
        assert longer >= epochs
        assert plan_epochs(TimeBudget(seconds, max_epochs=7), timing, map_every=1)[0] == min(max(epochs, 2), 7) or epochs > 7


@pytest.mark.parametrize("kwargs, message", [
    ({"seconds": 0}, "seconds must be a positive number, got 0"),
    ({"seconds": -5.0}, "seconds must be a positive number"),
    ({"seconds": math.nan}, "seconds must be a positive number"),
    ({"seconds": "600"}, "seconds must be a positive number, got '600'"),
    ({"seconds": 60, "max_epochs": 0}, "max_epochs must be a positive integer or None, got 0"),
    ({"seconds": 60, "evaluations": 2.5}, "evaluations must be a positive integer or None"),
])  # fmt: skip
def test_time_budget_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TimeBudget(**kwargs)


# ------------------------------------------------------------------------------ a planned run
RECIPE = training.Recipe(epochs=6, batch_size=4, optimizer="sgd", learning_rate=0.02, schedule="cosine",
                         warmup_epochs=1.0)  # fmt: skip
QUIET = training.RunOptions(tensorboard=False, verbose=0)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("budget_images")
    return make_records(folder / "train", 8), make_records(folder / "val", 3, seed=1)


def _train(records, out, recipe, options, val_records=None):
    keras.utils.set_random_seed(0)
    return training.train(build_smallest, SMALLEST, dataset(records, config=SMALLEST), out, recipe,
                          val_records=val_records, options=options)  # fmt: skip


def _weights(model):
    return [keras.ops.convert_to_numpy(weight) for weight in model.weights]


class _StopAfter(keras.callbacks.Callback):
    """Stops the fit after epoch ``epoch`` (counted from 1), as an interruption would."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            self.model.stop_training = True


def test_a_planned_run_is_the_run_of_that_length_and_resumes_on_its_plan(images, tmp_path, caplog):
    train_records, val_records = images
    caplog.set_level(logging.INFO, logger="ssd_lib")
    # A budget that allows any length, up to 3 epochs: the first epoch plans 3 (the recipe said 6).
    budget = dataclasses.replace(QUIET, time_budget=TimeBudget(3600.0, max_epochs=3))
    planned = _train(train_records, tmp_path / "planned", RECIPE, budget, val_records)
    assert [row["epoch"] for row in planned.log] == [1, 2, 3] and planned.initial_epoch == 0
    assert "3 epochs (6 steps) fit the time budget of 60 min" in caplog.text
    recipe, _, facts = training.read_settings(tmp_path / "planned")
    plan = facts["time_budget_plan"]
    assert recipe.epochs == facts["epochs"] == plan["epochs"] == 3 and recipe.map_every == plan["map_every"] == 1
    assert plan["budget_seconds"] == 3600.0 and plan["first_epoch"]["epoch"] > 0
    assert all(math.isfinite(row["val_mAP"]) for row in planned.log)  # epoch 1 measured a validation too
    # The cosine schedule of 3 epochs from the start: the first epoch's warm-up does not depend on the length.
    schedule = training.learning_rate_schedule(0.02, 2, 3, "cosine", warmup_epochs=1.0)
    assert [row["learning_rate"] for row in planned.log] == pytest.approx([float(schedule(s)) for s in (2, 4, 6)])

    # Bit for bit the run started with epochs=3 and no budget.
    fixed = _train(train_records, tmp_path / "fixed", RECIPE.replace(epochs=3), QUIET, val_records)
    for a, b in zip(_weights(planned.model), _weights(fixed.model), strict=True):
        np.testing.assert_array_equal(a, b)

    # Interrupted after epoch 2, resumed with another first estimate and a budget that would now plan
    # 5: the run keeps its plan of 3 epochs and ends as the uninterrupted one.
    out = tmp_path / "interrupted"
    stopped = dataclasses.replace(budget, callbacks=(_StopAfter(2),))
    assert [row["epoch"] for row in _train(train_records, out, RECIPE, stopped, val_records).log] == [1, 2]
    caplog.clear()
    resumed = _train(train_records, out, RECIPE.replace(epochs=9),
                     dataclasses.replace(QUIET, time_budget=TimeBudget(3600.0, max_epochs=5)), val_records)  # fmt: skip
    assert "resuming after epoch 2 of 3" in caplog.text and "fit the time budget" not in caplog.text
    assert [row["epoch"] for row in resumed.log] == [1, 2, 3] and resumed.initial_epoch == 2
    assert "time_budget_plan" in json.loads((out / "settings.json").read_text())  # kept for the next resume
    for a, b in zip(_weights(resumed.model), _weights(fixed.model), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_budget_spent_in_the_first_epoch_trains_two_and_warns(images, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ssd_lib")
    options = dataclasses.replace(QUIET, time_budget=TimeBudget(0.001, advised_epochs=50))
    result = _train(images[0], tmp_path / "run", RECIPE, options)
    assert [row["epoch"] for row in result.log] == [1, 2]
    assert "the time budget allows 2 epochs; about 50 would train this model better" in caplog.text


def test_a_budget_needs_a_warm_up_of_an_epoch(images, tmp_path):
    options = dataclasses.replace(QUIET, time_budget=TimeBudget(60.0))
    with pytest.raises(ValueError, match=r"warmup_epochs >= 1 \(got 0.5\)"):
        _train(images[0], tmp_path / "run", RECIPE.replace(warmup_epochs=0.5), options)
    assert not (tmp_path / "run" / "settings.json").exists()
