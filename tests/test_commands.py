"""The user's commands end to end on tiny generated data: ssd_lib.train (--model on any dataset
format) -> ssd_lib.evaluate -> ssd_lib.predict -> ssd_lib.export, their bad inputs (one error line, exit status 1),
the dataset fit of the defaults, the run folder's model.json, and the wheel's shipped model."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ssd_lib import evaluate as evaluate_command  # noqa: E402
from ssd_lib import export as export_command  # noqa: E402
from ssd_lib import predict as predict_command  # noqa: E402
from ssd_lib import train as train_command  # noqa: E402
from ssd_lib.anchors import best_anchor_iou, generate_anchors  # noqa: E402
from ssd_lib.config import SSD_SMALL_SHAPES  # noqa: E402
from ssd_lib.inference import SHIPPED_MODELS_DIR, load_run, write_model_file  # noqa: E402
from ssd_lib.training import TimeBudget  # noqa: E402
from ssd_lib.training.dataset_fit import MIN_EPOCH_IMAGES, MIN_STEPS, fit_to_dataset  # noqa: E402
from test_dataset_sources import write_every_format  # noqa: E402
from test_export import TOP_K, assert_same_detections, skip_onnx_without_the_extra, two_images  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FAST = ["--epochs", "1", "--steps-per-epoch", "1", "--width-multiplier", "0.25", "--jit", "off", "--verbose", "0"]


def run(main, argv, capsys) -> tuple[int, str]:
    """``main(argv)``'s exit status and its stderr."""
    status = main([str(arg) for arg in argv])
    return status, capsys.readouterr().err


@pytest.fixture(scope="module")
def formats(tmp_path_factory):
    """One tiny dataset (3 images, classes cat and dog) as VOC, COCO, CSV and YOLO."""
    return dict(zip(("voc", "csv", "coco", "yolo"), write_every_format(tmp_path_factory.mktemp("formats"))))


@pytest.fixture(scope="module")
def trained_run(formats, tmp_path_factory):
    """A run of ``--model small`` trained one step on the VOC form (TensorBoard on, the default)."""
    out = tmp_path_factory.mktemp("runs") / "voc"
    status = train_command.main(["--model", "small", "--data", str(formats["voc"]), "--out", str(out), *FAST])
    assert status == 0
    return out


# ------------------------------------------------------------------------------ end to end
def test_train_records_the_model_classes_and_fitted_anchors(trained_run):
    description = json.loads((trained_run / "model.json").read_text())
    assert description["model"] == "small" and description["width_multiplier"] == 0.25
    assert description["config"]["class_names"] == ["cat", "dog"]
    model, config, _ = load_run(trained_run)
    assert config.n_classes == 2 and model.output_shape[-1] == 2 + 1 + 4
    assert len(config.scales) == SSD_SMALL_SHAPES.n_layers + 1  # the fitted scales, recorded
    assert (trained_run / "final.weights.h5").is_file() and any((trained_run / "tensorboard").rglob("*tfevents*"))
    log = (trained_run / "train.log").read_text()
    assert "python -m ssd_lib.train --model small" in log and "fitted to the data: anchor scales" in log
    settings = json.loads((trained_run / "settings.json").read_text())
    assert settings["config"] == description["config"]


@pytest.mark.parametrize("flags, evaluations", [((), 4), (("--map-every", "3"), None), (("--epochs", "5"), "none"),
                                                (("--total-steps", "50"), "none")])  # fmt: skip
def test_train_without_a_run_length_sets_a_time_budget(formats, tmp_path, monkeypatch, capsys, flags, evaluations):
    """The command's wiring (the budget itself: tests/test_time_budget.py): no --epochs or --total-steps,
    a TimeBudget of --time-budget minutes whose limits are the fitted run's; else none."""
    given = {}
    monkeypatch.setattr(train_command, "train_and_evaluate",
                        lambda build, config, train, val, out, recipe, options, command: given.update(options=options))  # fmt: skip
    status, err = run(train_command.main, ["--model", "small", "--data", formats["voc"], "--out", tmp_path / "run",
                                           "--time-budget", "1.5", *flags], capsys)  # fmt: skip
    assert status == 0, err
    budget = given["options"].time_budget
    if evaluations == "none":
        assert budget is None
        return
    arguments, _, _ = train_command.parse_arguments(["--model", "small", "--data", str(formats["voc"]), "--out", "x"])
    fit = train_command.fitted_run(arguments, train_command.read_splits(arguments, None)[0], ("cat", "dog"))[3]
    assert budget == TimeBudget(90.0, max_epochs=fit.max_epochs, advised_epochs=fit.min_epochs, evaluations=evaluations)


@pytest.mark.parametrize("form", ["voc", "coco", "csv", "yolo"])
def test_evaluate_any_format_writes_the_json(trained_run, formats, form, tmp_path, capsys):
    out = tmp_path / "scores.json"
    status, err = run(evaluate_command.main, ["--run", trained_run, "--data", formats[form], "--split", "train",
                                              "--json", out], capsys)  # fmt: skip
    assert status == 0, err
    scores = json.loads(out.read_text())
    assert scores["images"] == 3 and scores["split"] == "train"
    for key in ("mAP_voc07_11point", "mAP_voc_allpoint", "mAP_coco"):
        assert 0.0 <= scores[key] <= 1.0
    assert set(scores["per_class"]) == {"cat", "dog"}
    assert set(scores["per_class"]["cat"]) == {"voc07_11point", "voc_allpoint", "coco"}
    assert {"AP_small", "AP_medium", "AP_large"} <= set(scores["coco"])


def test_the_same_detections_score_the_same_in_every_format(trained_run, formats, capsys):
    scores = []
    for form in ("voc", "coco", "csv", "yolo"):
        scores.append(evaluate_command.evaluate_run(trained_run, formats[form], "train", progress=False))
    assert all(score["mAP_voc_allpoint"] == scores[0]["mAP_voc_allpoint"] for score in scores)
    assert all(score["mAP_coco"] == scores[0]["mAP_coco"] for score in scores)


def test_predict_writes_annotated_images_and_detections_in_original_pixels(trained_run, formats, tmp_path, capsys):
    images = formats["yolo"] / "images" / "train"
    out = tmp_path / "predictions"
    status, err = run(predict_command.main, ["--run", trained_run, images, "--out", out, "--confidence", "0.0",
                                             "--top-k", "5"], capsys)  # fmt: skip
    assert status == 0, err
    entries = json.loads((out / "detections.json").read_text())
    assert [entry["annotated"] for entry in entries] == ["a.png", "b.png", "c.png"]
    for entry in entries:
        assert 0 < len(entry["detections"]) <= 5
        boxes = np.array([detection["box"] for detection in entry["detections"]])
        assert boxes[:, [0, 2]].max() <= entry["width"] and boxes[:, [1, 3]].max() <= entry["height"]
        assert {detection["class"] for detection in entry["detections"]} <= {"cat", "dog"}
        with open(out / entry["annotated"], "rb") as file:
            assert file.read(8) == b"\x89PNG\r\n\x1a\n"
    assert run(predict_command.main, ["--run", trained_run, images, "--out", out], capsys)[0] == 0  # its own folder


# ------------------------------------------------------------------------------ bad inputs
def one_error_line(err: str, *fragments) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.mark.parametrize("form", ["keras", "tflite", "onnx"])
def test_export_of_the_trained_run_gives_its_predict_detections(trained_run, form, tmp_path, capsys):
    """train -> export -> load back: the run's model.json (its fitted anchors and classes) and final
    weights, exported, detect as ``predict`` does with the run's model, on two images."""
    skip_onnx_without_the_extra(form)
    out = tmp_path / export_command.FORMATS[form]
    assert run(export_command.main, ["--run", trained_run, "--format", form, "--out", out, "--top-k", TOP_K],
               capsys)[0] == 0  # fmt: skip
    model, config, _ = load_run(trained_run)
    expected = assert_same_detections(export_command.load_exported(out, form), model, config, two_images())
    assert all(len(detections) > 0 for detections in expected)  # something to compare


def test_train_bad_inputs_give_one_line(formats, tmp_path, capsys):
    common = ["--model", "small", *FAST]
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "empty.csv").write_text("image,xmin,ymin,xmax,ymax,class\n")
    cases = [
        (["--data", formats["voc"], "--train-split", "nope"], ["no split 'nope'", "train"]),
        (["--data", formats["voc"], "--classes", "cat"], ["'dog'"]),  # a class the list lacks
        (["--data", empty], [str(empty)]),  # no dataset layout
        (["--data", tmp_path / "empty.csv"], ["empty.csv"]),  # no images
        (["--data", formats["voc"], "--epochs", "0"], ["epochs"]),
    ]
    for extra, fragments in cases:
        status, err = run(train_command.main, [*common, *extra, "--out", tmp_path / "never"], capsys)
        assert status == 1, extra
        one_error_line(err, *fragments)
    assert not (tmp_path / "never").exists()


def test_train_refuses_a_run_folder_of_another_model(formats, trained_run, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(trained_run, out)
    status, err = run(train_command.main, ["--model", "small", "--data", formats["voc"], "--classes", "dog,cat",
                                           "--out", out, *FAST], capsys)  # fmt: skip
    assert status == 1
    one_error_line(err, "another model, classes or anchors")


def test_evaluate_and_predict_bad_inputs_give_one_line(trained_run, formats, tmp_path, capsys):
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    cases = [
        (evaluate_command.main, ["--run", tmp_path, "--data", formats["voc"]], ["not a training run folder"]),
        (evaluate_command.main, ["--run", trained_run, "--data", formats["voc"], "--split", "val"], ["no split 'val'"]),
        (predict_command.main, ["--run", trained_run, tmp_path / "broken.jpg", "--out", tmp_path / "p"], ["broken.jpg"]),
        (predict_command.main, ["--run", trained_run, tmp_path / "missing.jpg", "--out", tmp_path / "p"], ["missing.jpg"]),
        (predict_command.main, ["--run", trained_run, tmp_path / "notes", "--out", tmp_path / "p"], ["no images"]),
        (predict_command.main, ["--run", trained_run, formats["yolo"] / "images" / "train", "--out",
                                tmp_path / "notes"], ["holds other files"]),  # fmt: skip
    ]
    for main, argv, fragments in cases:
        status, err = run(main, argv, capsys)
        assert status == 1, argv
        one_error_line(err, *fragments)
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_evaluate_a_dataset_with_a_class_the_run_does_not_know(trained_run, tmp_path, capsys):
    from dataset_files import make_voc, voc_object, voc_xml

    root = make_voc(tmp_path / "other", {"x": voc_xml([voc_object("horse", (1, 1, 30, 30))])}, image_set="test")
    status, err = run(evaluate_command.main, ["--run", trained_run, "--data", root, "--split", "test"], capsys)
    assert status == 1
    one_error_line(err, "horse")


# ------------------------------------------------------------------------------ the fitted defaults
def test_fit_chooses_scales_that_cover_the_boxes_better(tmp_path):
    """Big boxes only (shapes scaled up): the fit's anchors cover them at least as well as the
    model's own, the coverage it reports is the coverage of its anchors, and the run length and
    batch follow the rules."""
    records = []
    rng = np.random.default_rng(0)
    for index in range(40):
        side = rng.uniform(0.35, 0.6) * 200
        x0, y0 = rng.uniform(0, 200 - side, size=2)
        records.append({"size": (200, 200), "boxes": np.array([[x0, y0, x0 + side, y0 + side / 2]]),
                        "labels": np.array([1])})  # fmt: skip
    fit = fit_to_dataset(SSD_SMALL_SHAPES, records, seconds_per_image=0.01, budget_seconds=60)
    assert fit.coverage >= fit.model_coverage and fit.n_boxes == 40
    corners = np.concatenate([record["boxes"] / 200 for record in records])
    import dataclasses

    best = best_anchor_iou(corners, generate_anchors(dataclasses.replace(SSD_SMALL_SHAPES, scales=fit.scales)))
    assert fit.coverage == pytest.approx(np.mean(best >= fit.pos_iou_threshold))
    assert fit.batch_size == 8 and fit.repeats * 40 >= MIN_EPOCH_IMAGES
    steps = fit.epochs * -(-40 * fit.repeats // fit.batch_size)
    assert steps >= MIN_STEPS


def test_fit_refuses_empty_data():
    with pytest.raises(ValueError, match="no training images"):
        fit_to_dataset(SSD_SMALL_SHAPES, [], 0.01, 60)
    with pytest.raises(ValueError, match="no boxes"):
        fit_to_dataset(SSD_SMALL_SHAPES, [{"size": (10, 10), "boxes": np.zeros((0, 4))}], 0.01, 60)


def test_write_model_file_keeps_a_matching_description(tmp_path):
    write_model_file(tmp_path, "small", SSD_SMALL_SHAPES, {"width_multiplier": 0.5})
    write_model_file(tmp_path, "small", SSD_SMALL_SHAPES, {"width_multiplier": 0.5})  # the same run: fine
    with pytest.raises(ValueError, match="another model"):
        write_model_file(tmp_path, "small", SSD_SMALL_SHAPES, {"width_multiplier": 0.25})


# ------------------------------------------------------------------------------ packaging
def test_pyproject_declares_the_console_scripts_and_the_shipped_models():
    text = (REPO / "pyproject.toml").read_text()
    for script in ("ssd-train = \"ssd_lib.train:main\"", "ssd-evaluate = \"ssd_lib.evaluate:main\"",
                   "ssd-predict = \"ssd_lib.predict:main\"", "ssd-export = \"ssd_lib.export:main\""):  # fmt: skip
        assert script in text
    assert SHIPPED_MODELS_DIR.parent == REPO / "ssd_lib"
    assert (SHIPPED_MODELS_DIR / "small_ssd_shapes.weights.h5").is_file()


def test_a_built_wheel_ships_the_models_and_finds_them(tmp_path):
    """Build the wheel (no isolation: setuptools from the venv), unpack it as an installed
    site-packages would hold it, and load the shipped model from there."""
    source, wheels = tmp_path / "source", tmp_path / "wheels"  # a copy: building writes build/ beside the code
    shutil.copytree(REPO / "ssd_lib", source / "ssd_lib", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(wheels), str(source)], check=True, capture_output=True, timeout=300)  # fmt: skip
    wheel = next(wheels.glob("ssd_tutorial-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
        names = archive.namelist()
    assert "ssd_lib/shipped_models/small_ssd_shapes.weights.h5" in names
    assert any(name.endswith("entry_points.txt") for name in names)
    code = ("import ssd_lib, numpy as np; from ssd_lib.inference import load_shipped_model, predict; "
            "model, config, info = load_shipped_model(); print(ssd_lib.__file__); "
            "print(len(predict(model, np.zeros((64, 64, 3), np.uint8), config)))")  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0].startswith(str(site)) and result.stdout.splitlines()[1] == "1"
