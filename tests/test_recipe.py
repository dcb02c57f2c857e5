"""The training recipe: every field validated with a message naming it, JSON round trips, the
presets as named recipes, and the command line's flags generated from the fields."""

import dataclasses
import json
import math

import numpy as np
import pytest

from ssd_lib import train as command
from ssd_lib.config import SSDConfig
from ssd_lib.inference import SHIPPED_MODELS_DIR
from ssd_lib.training import Recipe, presets
from ssd_lib.training.schedule import check_schedule

VALID = dict(epochs=3)


def test_defaults_are_the_papers_optimizer():
    recipe = Recipe(**VALID)
    assert (recipe.optimizer, recipe.learning_rate, recipe.momentum) == ("sgd", 1e-3, 0.9)
    assert (recipe.schedule, recipe.decay_steps, recipe.decay_factor) == ("piecewise", (), 0.1)
    assert (recipe.batch_size, recipe.weight_decay, recipe.expand_max_ratio, recipe.crop) == (32, 5e-4, 4.0, True)
    assert (recipe.pos_iou_threshold, recipe.neg_iou_limit) == (None, None)
    assert (recipe.precision, recipe.jit, recipe.seed) == ("auto", "auto", 0)


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(epochs=None), "give epochs or total_steps"),
        (dict(epochs=0), "epochs must be a positive integer, got 0"),
        (dict(epochs=2.5), "epochs must be an integer, got 2.5"),
        (dict(epochs=True), "epochs must be a finite number"),
        (dict(epochs=None, total_steps=-5), "total_steps must be a positive integer"),
        (dict(batch_size=0), "batch_size must be a positive integer"),
        (dict(batch_size="32"), "batch_size must be a finite number"),
        (dict(steps_per_epoch=0), "steps_per_epoch must be a positive integer"),
        (dict(steps_batch_size=0), "steps_batch_size must be a positive integer"),
        (dict(optimizer="rmsprop"), r"optimizer must be one of \('sgd', 'adam'\)"),
        (dict(learning_rate=0.0), "learning_rate must be > 0"),
        (dict(learning_rate=math.nan), "learning_rate must be a finite number"),
        (dict(momentum=1.5), r"momentum must be in \[0, 1\]"),
        (dict(schedule="step"), r"schedule must be one of \('piecewise', 'cosine'\)"),
        (dict(decay_epochs=(3, 2)), "decay boundaries must be positive and increasing"),
        (dict(decay_steps=(0,)), "decay boundaries must be positive and increasing"),
        (dict(decay_steps=5), "decay_steps must be a sequence of ints"),
        (dict(decay_steps=(1.5,)), "decay_steps must be an integer"),
        (dict(decay_epochs=(1,), decay_steps=(5,)), "not both"),
        (dict(decay_factor=0.0), "decay_factor must be > 0"),
        (dict(warmup_epochs=1.0), "warmup_epochs needs schedule='cosine'"),
        (dict(schedule="cosine", warmup_epochs=-1.0), "warmup_epochs must be >= 0"),
        (dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
        (dict(decoupled_weight_decay=-1.0), "decoupled_weight_decay must be >= 0"),
        (dict(clipnorm=0.0), "clipnorm must be > 0"),
        (dict(expand_max_ratio=0.5), "expand_max_ratio must be >= 1"),
        (dict(crop="yes"), "crop must be True or False"),
        (dict(pos_iou_threshold=1.5), r"pos_iou_threshold must be in \[0, 1\]"),
        (dict(neg_iou_limit=-0.1), r"neg_iou_limit must be in \[0, 1\]"),
        (dict(map_every=0), "map_every must be a positive integer"),
        (dict(precision="float8"), "precision must be one of"),
        (dict(jit=True), "jit must be a string"),
        (dict(jit="always"), "jit must be one of"),
        (dict(seed=-1), "seed must be a non-negative integer"),
    ],
)
def test_every_bad_value_names_its_field(changes, message):
    with pytest.raises(ValueError, match=f"^Recipe: .*{message}"):
        Recipe(**{**VALID, **changes})


def test_every_field_is_covered_by_a_validation_case():
    cases = test_every_bad_value_names_its_field.pytestmark[0].args[1]
    tested = {name for changes, _ in cases for name in changes}
    assert tested == {field.name for field in dataclasses.fields(Recipe)}


def test_values_are_normalised_so_equal_recipes_compare_equal():
    recipe = Recipe(epochs=np.int64(3), learning_rate=1, decay_steps=[np.int64(10), 20.0],
                    momentum=np.float32(0.5))  # fmt: skip
    assert recipe == Recipe(epochs=3, learning_rate=1.0, decay_steps=(10, 20), momentum=0.5)
    assert type(recipe.epochs) is int and type(recipe.learning_rate) is float and recipe.decay_steps == (10, 20)
    assert all(type(step) is int for step in recipe.decay_steps)


@pytest.mark.parametrize("name", sorted(presets()))
def test_presets_round_trip_through_json(name):
    recipe = presets()[name].recipe
    text = recipe.to_json()
    assert json.loads(text)["batch_size"] == recipe.batch_size
    again = Recipe.from_json(text)
    assert again == recipe and again.to_json() == text


@pytest.mark.parametrize("name", sorted(presets()))
def test_preset_configs_round_trip_through_json(name):
    config = presets()[name].config
    assert SSDConfig.from_json(config.to_json()) == config


def test_from_json_refuses_what_is_not_a_recipe():
    # (the JSON errors shared with SSDConfig are tested in test_config.py)
    with pytest.raises(ValueError, match=r"Recipe: unknown field\(s\) \['epoch'\]"):
        Recipe.from_json('{"epoch": 3}')
    with pytest.raises(ValueError, match="Recipe: batch_size must be a positive integer"):
        Recipe.from_json('{"epochs": 3, "batch_size": 0}')


def test_replace_validates_and_keeps_coupled_fields_consistent():
    paper = presets()["ssd300_voc"].recipe
    assert paper.replace(epochs=5).epochs == 5 and paper.epochs is None
    # Boundaries in epochs replace the recipe's boundaries in steps (and back).
    by_epochs = paper.replace(decay_epochs=(8, 10))
    assert (by_epochs.decay_epochs, by_epochs.decay_steps) == ((8.0, 10.0), ())
    assert by_epochs.replace(decay_steps=(7,)).decay_epochs == ()
    # Another schedule drops the recipe's warm-up unless one is given.
    small = presets()["small_shapes"].recipe
    assert small.replace(schedule="piecewise").warmup_epochs == 0.0
    assert paper.replace(schedule="cosine", warmup_epochs=2).warmup_epochs == 2.0
    assert small.replace(learning_rate=1e-3).warmup_epochs == 1.0  # same schedule: kept
    with pytest.raises(ValueError, match=r"Recipe: unknown field\(s\) \['learning_rte'\]"):
        small.replace(learning_rte=1e-3)
    with pytest.raises(ValueError, match="Recipe: batch_size must be a positive integer"):
        small.replace(batch_size=-2)


def test_run_length_in_epochs_from_steps():
    assert Recipe(total_steps=120_000).epochs_for(518) == 232  # ceil(120000 / 518)
    assert Recipe(epochs=4, total_steps=120_000).epochs_for(518) == 4  # epochs win


def test_step_counts_scale_with_the_batch_size():
    paper = presets()["ssd300_voc"].recipe
    assert paper.steps_batch_size == 32 and paper.scaled_steps(120_000) == 120_000
    eight_gpus = paper.replace(batch_size=256)
    assert [eight_gpus.scaled_steps(steps) for steps in (120_000, 80_000, 100_000)] == [15_000, 10_000, 12_500]
    assert (eight_gpus.epochs_for(65), paper.epochs_for(518)) == (231, 232)  # VOC 07+12: the same epochs, but for rounding
    assert Recipe(total_steps=100, batch_size=64).scaled_steps(100) == 100  # no steps_batch_size: as given


def test_the_presets_are_named_recipes():
    known = presets()
    assert sorted(known) == ["small_shapes", "ssd300_shapes", "ssd300_voc", "ssd512_voc", "tiny_shapes"]
    paper = known["ssd300_voc"].recipe
    assert (paper.optimizer, paper.learning_rate, paper.batch_size) == ("sgd", 1e-3, 32)
    assert (paper.decay_steps, paper.total_steps, paper.epochs) == ((80_000, 100_000), 120_000, None)
    assert known["ssd512_voc"].recipe == paper
    shortened = paper.replace(decay_steps=(4_000, 5_000), total_steps=6_000, map_every=5)
    assert known["ssd300_shapes"].recipe == shortened
    small = known["small_shapes"]
    shipped = json.loads((SHIPPED_MODELS_DIR / "small_ssd_shapes.json").read_text())  # how the shipped model was made
    for name in ("epochs", "batch_size", "optimizer", "learning_rate", "schedule", "warmup_epochs"):
        assert getattr(small.recipe, name) == shipped[name], name
    assert small.width_multiplier == shipped["width_multiplier"]
    assert known["ssd300_voc"].width_multiplier is None and not known["ssd300_voc"].has_width_multiplier
    with pytest.raises(ValueError, match="build_ssd300 has no width multiplier"):
        known["ssd300_voc"].build_model(width_multiplier=0.5)


def test_every_field_has_help_and_says_whether_it_may_change_on_resume():
    for field in dataclasses.fields(Recipe):
        assert field.metadata["help"] and isinstance(field.metadata["resumable"], bool), field.name
    resumable = {field.name for field in dataclasses.fields(Recipe) if field.metadata["resumable"]}
    assert {"epochs", "learning_rate"} <= resumable
    assert not {"batch_size", "optimizer", "schedule", "total_steps", "crop", "seed"} & resumable


def test_command_line_flags_and_their_help_come_from_the_recipe(capsys):
    with pytest.raises(SystemExit):
        command.parse_arguments(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for field in dataclasses.fields(Recipe):
        assert "--" + field.name.replace("_", "-") in help_text, field.name
        assert " ".join(field.metadata["help"].split()) in help_text, field.name
    required = ["--preset", "ssd300_voc", "--data", "d", "--out", "o"]
    _, _, recipe = command.parse_arguments([*required, "--learning-rate", "0.002", "--decay-epochs", "8", "10",
                                            "--epochs", "12", "--no-crop"])  # fmt: skip
    expected = presets()["ssd300_voc"].recipe.replace(learning_rate=2e-3, decay_epochs=(8, 10), epochs=12, crop=False)
    assert recipe == expected and recipe.decay_steps == ()
    with pytest.raises(ValueError, match="Recipe: epochs must be a positive integer, got 0"):
        command.parse_arguments([*required, "--epochs", "0"])


def test_schedule_checks_name_their_owner():
    with pytest.raises(ValueError, match="^learning_rate_schedule: learning_rate must be > 0"):
        check_schedule(0.0, "piecewise")
    check_schedule(1e-3, "cosine", warmup_epochs=1.0)  # valid: no error


def test_settings_file_round_trip_and_a_damaged_one_is_named(tmp_path):
    from ssd_lib.training import read_settings, write_settings

    recipe, config = presets()["small_shapes"].recipe, presets()["small_shapes"].config
    path = write_settings(tmp_path, recipe, config, {"epochs": 24, "backend": "tensorflow"})
    assert read_settings(tmp_path) == (recipe, config, {"epochs": 24, "backend": "tensorflow"})
    path.write_text(path.read_text()[:-20])
    with pytest.raises(ValueError, match=f"read_settings: {path} is not a run's settings"):
        read_settings(tmp_path)
    path.write_text(json.dumps({"recipe": {"epochs": 0}, "config": config.to_dict()}))
    with pytest.raises(ValueError, match="is not a run's settings .*Recipe: epochs must be a positive integer"):
        read_settings(tmp_path)
