"""Tests for ssd_lib.datasets.sources (open_dataset / load_dataset over VOC, VOCdevkit, COCO, CSV,
YOLO) and the YOLO parser. Every dataset is built in tmp_path."""

import json

import numpy as np
import pytest

from dataset_files import make_voc, voc_object, voc_xml, write_image
from ssd_lib.config import SHAPES_CLASSES
from ssd_lib.datasets import load_dataset, make_shapes_dataset, open_dataset, parse_voc
from ssd_lib.datasets.yolo import yolo_label_path

# ---------------------------------------------------------------------------------------------
# VOC, VOCdevkit and the shapes dataset
# ---------------------------------------------------------------------------------------------


def make_voc_with_splits(root, year_objects):
    """A VOC root whose ``trainval`` and ``test`` lists hold the given ids -> objects."""
    for split, objects in year_objects.items():
        make_voc(root, {image_id: voc_xml(found) for image_id, found in objects.items()}, image_set=split)
    return root


def test_voc_root_splits_classes_of_the_whole_dataset(tmp_path):
    root = make_voc_with_splits(tmp_path / "voc", {
        "trainval": {"a": [voc_object("dog", (1, 1, 9, 9))]},
        "test": {"b": [voc_object("cat", (1, 1, 9, 9))]},
    })  # fmt: skip
    (root / "ImageSets" / "Main" / "dog_trainval.txt").write_text("a 1\n")  # a per-class list
    source = open_dataset(root)
    assert source.format == "voc" and source.splits() == ("test", "trainval")
    assert source.default_splits() == ("trainval", "test")
    assert source.discover_classes() == ("cat", "dog")  # both splits: the same labels in each
    train, test = source.records("trainval"), source.records("test")
    assert train[0]["labels"].tolist() == [2] and test[0]["labels"].tolist() == [1]
    assert train.class_names == test.class_names == ("cat", "dog")
    assert train.source == f"{root} (split 'trainval')"
    assert load_dataset(root)[0]["image_path"] == train[0]["image_path"]  # default: trainval
    given = load_dataset(root, "test", classes=["dog", "cat"])
    assert given.class_names == ("dog", "cat") and given[0]["labels"].tolist() == [2]


def test_voc_root_without_image_sets_has_one_split(tmp_path):
    root = make_voc(tmp_path / "labelimg", {"x": voc_xml([voc_object("helmet", (1, 1, 9, 9))])})
    (root / "ImageSets" / "Main" / "trainval.txt").unlink()
    source = open_dataset(root)
    assert source.splits() == ("all",) and source.default_splits() == ("all", None)
    assert len(source.records()) == 1 and source.discover_classes() == ("helmet",)


def test_vocdevkit_combines_years(tmp_path):
    devkit = tmp_path / "mine" / "VOCdevkit"
    make_voc_with_splits(devkit / "VOC2007", {"trainval": {"1": [voc_object("dog", (1, 1, 9, 9))]},
                                              "test": {"2": []}})  # fmt: skip
    make_voc_with_splits(devkit / "VOC2012", {"trainval": {"3": [voc_object("bird", (1, 1, 9, 9))]}})
    for path in (devkit, tmp_path / "mine"):  # the devkit, or the folder holding it
        source = open_dataset(path)
        assert source.format == "vocdevkit"
        assert source.splits() == ("test", "trainval", "VOC2007/test", "VOC2007/trainval",
                                   "VOC2012/trainval")  # fmt: skip
        assert source.default_splits() == ("trainval", "test")
        assert source.discover_classes() == ("bird", "dog")
    train = source.records("trainval")  # 07 + 12, as the paper's "07+12"
    assert [r["labels"].tolist() for r in train] == [[2], [1]]
    assert len(source.records("VOC2012/trainval")) == 1 and len(source.records("test")) == 1


def test_shapes_dataset_keeps_its_class_order_and_matches_parse_voc(tmp_path):
    """What train.load_splits reads today: the shapes dataset's train/val with SHAPES_CLASSES."""
    root = make_shapes_dataset(tmp_path / "shapes", 3, 2, seed=1, image_size=64)
    source = open_dataset(root)
    assert source.default_splits() == ("train", "val")
    assert source.discover_classes() == SHAPES_CLASSES
    for split in ("train", "val"):
        ours, reference = source.records(split), parse_voc(root, split, SHAPES_CLASSES)
        assert [r["image_path"] for r in ours] == [r["image_path"] for r in reference]
        for mine, theirs in zip(ours, reference):
            np.testing.assert_array_equal(mine["boxes"], theirs["boxes"])
            np.testing.assert_array_equal(mine["labels"], theirs["labels"])


# ---------------------------------------------------------------------------------------------
# COCO and CSV
# ---------------------------------------------------------------------------------------------


def coco_document(file_names, categories, boxes):
    """A COCO dict: images (60x40) ``file_names``; ``boxes`` = [(image index, category id, xywh)]."""
    return {
        "images": [{"id": k + 10, "file_name": name, "width": 60, "height": 40}
                   for k, name in enumerate(file_names)],
        "annotations": [{"id": k + 1, "image_id": image + 10, "category_id": category, "bbox": box}
                        for k, (image, category, box) in enumerate(boxes)],
        "categories": [{"id": key, "name": name} for key, name in categories.items()],
    }  # fmt: skip


def test_coco_folder_with_official_layout(tmp_path):
    """annotations/instances_<split>.json with images in <split>/ beside annotations/."""
    root = tmp_path / "coco"
    (root / "annotations").mkdir(parents=True)
    for split, category in (("train2017", {3: "car"}), ("val2017", {1: "person", 3: "car"})):
        write_image(root / split / "a.jpg", 60, 40)
        document = coco_document(["a.jpg"], category, [(0, 3, [5, 5, 10, 10])])
        (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    source = open_dataset(root)
    assert source.format == "coco" and source.splits() == ("train2017", "val2017")
    assert source.default_splits() == ("train2017", "val2017")
    assert source.discover_classes() == ("person", "car")  # union, in id order
    train = source.records("train2017")
    assert train[0]["image_path"] == str(root / "train2017" / "a.jpg")
    assert train[0]["labels"].tolist() == [2]  # 'car' is label 2 in every split
    np.testing.assert_array_equal(train[0]["boxes"], [[5, 5, 15, 15]])


def test_coco_file_and_roboflow_layout(tmp_path):
    for split in ("train", "valid"):
        write_image(tmp_path / "rf" / split / "p.jpg", 60, 40)
        document = coco_document(["p.jpg"], {0: "helmet"}, [(0, 0, [1, 2, 3, 4])])
        (tmp_path / "rf" / split / "_annotations.coco.json").write_text(json.dumps(document))
    source = open_dataset(tmp_path / "rf")
    assert source.splits() == ("train", "valid") and source.default_splits() == ("train", "valid")
    assert source.records("valid")[0]["image_path"] == str(tmp_path / "rf" / "valid" / "p.jpg")
    single = open_dataset(tmp_path / "rf" / "train" / "_annotations.coco.json")
    assert single.splits() == ("train",) and single.default_splits() == ("train", None)
    assert load_dataset(tmp_path / "rf" / "train" / "_annotations.coco.json").class_names == ("helmet",)


def test_coco_splits_that_disagree_on_a_category_id(tmp_path):
    (tmp_path / "annotations").mkdir()
    for split, name in (("train", "car"), ("val", "truck")):
        write_image(tmp_path / split / "a.jpg", 60, 40)
        document = coco_document(["a.jpg"], {3: name}, [])
        (tmp_path / "annotations" / f"instances_{split}.json").write_text(json.dumps(document))
    with pytest.raises(ValueError, match=r"instances_val.json: category id 3 is 'truck' but 'car'"):
        load_dataset(tmp_path, "train")


def test_csv_file_and_folder(tmp_path):
    for split, name in (("train", "dog"), ("val", "cat")):
        write_image(tmp_path / "images" / f"{split}.jpg", 60, 40)
        (tmp_path / f"{split}.csv").write_text(f"image,xmin,ymin,xmax,ymax,class\n{split}.jpg,1,2,30,20,{name}\n")
    source = open_dataset(tmp_path)
    assert source.format == "csv" and source.default_splits() == ("train", "val")
    assert source.discover_classes() == ("cat", "dog")
    train = source.records("train")
    assert train[0]["image_path"] == str(tmp_path / "images" / "train.jpg")  # found in images/
    assert train[0]["labels"].tolist() == [2]
    assert open_dataset(tmp_path / "val.csv").splits() == ("val",)


# ---------------------------------------------------------------------------------------------
# YOLO
# ---------------------------------------------------------------------------------------------


def make_yolo(root, labels, names=("helmet", "head"), yaml_text=None, size=(100, 50)):
    """A YOLO dataset: ``labels`` maps 'split/name' -> label file text (None: no label file)."""
    for key, text in labels.items():
        split, name = key.split("/")
        write_image(root / "images" / split / f"{name}.jpg", *size)
        if text is not None:
            (root / "labels" / split).mkdir(parents=True, exist_ok=True)
            (root / "labels" / split / f"{name}.txt").write_text(text)
    if yaml_text is None:
        listed = "\n".join(f"  {index}: {name}" for index, name in enumerate(names))
        yaml_text = f"path: /machine/that/exported/it\ntrain: images/train\nval: images/val\nnames:\n{listed}\n"
    (root / "data.yaml").write_text(yaml_text)
    return root


def test_yolo_boxes_in_pixels(tmp_path):
    root = make_yolo(tmp_path / "yolo", {
        "train/a": "0 0.5 0.5 0.2 0.4\n1 0.1 0.2 0.1 0.2\n",
        "train/b": "1 0.1 0.1 0.3 0.1 0.3 0.5\n",  # a polygon: its bounding box
        "train/empty": None,  # no label file: an image without objects
        "val/c": "",
    })  # fmt: skip
    source = open_dataset(root)
    assert source.format == "yolo" and source.splits() == ("train", "val")
    assert source.default_splits() == ("train", "val") and source.discover_classes() == ("helmet", "head")
    a, b, empty = source.records("train")
    # 100x50 image: centre (50, 25), size (20, 20) -> corners (40, 15, 60, 35)
    np.testing.assert_allclose(a["boxes"], [[40, 15, 60, 35], [5, 5, 15, 15]], atol=1e-4)
    assert a["labels"].tolist() == [1, 2] and a["size"] == (100, 50)
    np.testing.assert_allclose(b["boxes"], [[10, 5, 30, 25]], atol=1e-4)
    assert empty["boxes"].shape == (0, 4)
    assert yolo_label_path(root / "images" / "train" / "a.jpg") == root / "labels" / "train" / "a.txt"
    reordered = source.records("train", classes=("head", "helmet", "hat"))
    assert reordered[0]["labels"].tolist() == [2, 1]


def test_yolo_list_files_names_lists_and_no_yaml(tmp_path):
    root = make_yolo(tmp_path / "a", {"train/x": "0 0.5 0.5 0.5 0.5\n", "train/y": ""},
                     yaml_text="train: train.txt\nnames: [only]\n")  # fmt: skip
    (root / "train.txt").write_text("./images/train/y.jpg\nimages/train/x.jpg\n")
    records = load_dataset(root / "data.yaml")
    assert [r["image_path"].rsplit("/", 1)[1] for r in records] == ["y.jpg", "x.jpg"]
    bare = make_yolo(tmp_path / "b", {"train/x": "1 0.5 0.5 0.5 0.5\n", "val/y": ""})
    (bare / "data.yaml").unlink()
    (bare / "classes.txt").write_text("cat\ndog\n")
    source = open_dataset(bare)
    assert source.format == "yolo" and source.splits() == ("train", "val")
    assert source.records("train")[0]["labels"].tolist() == [2]


@pytest.mark.parametrize("line, message", [
    ("0 50 25 20 20", r"a.txt: line 1: coordinates must be normalized to 0..1.*pixel coordinates\?"),
    ("2 0.5 0.5 0.1 0.1", r"a.txt: line 1: class index 2 but there are 2 class names"),
    ("0 0.5 0.5", r"a.txt: line 1: expected 4 box values or a polygon"),
    ("zero 0.5 0.5 0.1 0.1", r"a.txt: line 1: expected 'class x_center"),
    ("0 0.5 0.5 0 0.1", r"a.txt: line 1 \(a.jpg\): inverted or empty box"),
])  # fmt: skip
def test_yolo_bad_lines_are_named(tmp_path, line, message):
    root = make_yolo(tmp_path / "y", {"train/a": line + "\n", "val/b": ""})
    with pytest.raises(ValueError, match=message):
        load_dataset(root, "train")
    skipped = load_dataset(root, "train", on_error="skip")
    assert skipped[0]["boxes"].shape == (0, 4)


def test_yolo_bad_yaml_and_missing_names(tmp_path):
    root = make_yolo(tmp_path / "y", {"train/a": ""}, yaml_text="train: [images/train\n")
    with pytest.raises(ValueError, match=r"data.yaml: malformed YAML"):
        open_dataset(root)
    (root / "data.yaml").write_text("train: images/train\n")
    with pytest.raises(ValueError, match=r"no class names: add 'names' to data.yaml"):
        load_dataset(root)
    (root / "data.yaml").write_text("train: images/nowhere\nnames: [a]\n")
    with pytest.raises(ValueError, match=r"images/nowhere: no such folder or image list"):
        load_dataset(root)


# ---------------------------------------------------------------------------------------------
# One dataset, four formats, the same records
# ---------------------------------------------------------------------------------------------

OBJECTS = {  # image -> (size, [(class, (xmin, ymin, xmax, ymax)), ...])
    "a": ((80, 60), [("dog", (8, 6, 40, 30)), ("cat", (50, 10, 78, 58))]),
    "b": ((64, 96), [("cat", (1, 2, 63, 50))]),
    "c": ((50, 50), []),
}


def write_every_format(root):
    """OBJECTS as a VOC root, a COCO file, a CSV file and a YOLO folder (train split)."""
    names = ("cat", "dog")
    voc = make_voc(root / "voc", {key: voc_xml([voc_object(name, box) for name, box in found], size=size)
                                  for key, (size, found) in OBJECTS.items()}, image_set="train",
                   image_sizes={key: size for key, (size, _) in OBJECTS.items()})  # fmt: skip
    rows = ["image,xmin,ymin,xmax,ymax,class"]
    coco = {"images": [], "annotations": [], "categories": [{"id": 5, "name": "cat"}, {"id": 7, "name": "dog"}]}
    for index, (key, ((width, height), found)) in enumerate(OBJECTS.items()):
        write_image(root / "yolo" / "images" / "train" / f"{key}.jpg", width, height)
        coco["images"].append({"id": index, "file_name": f"{key}.jpg", "width": width, "height": height})
        lines = []
        for name, (x0, y0, x1, y1) in found:
            rows.append(f"{key}.jpg,{x0},{y0},{x1},{y1},{name}")
            coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": index, "iscrowd": 0,
                                        "category_id": 5 if name == "cat" else 7, "bbox": [x0, y0, x1 - x0, y1 - y0]})  # fmt: skip
            lines.append(f"{names.index(name)} {(x0 + x1) / 2 / width} {(y0 + y1) / 2 / height} "
                         f"{(x1 - x0) / width} {(y1 - y0) / height}")  # fmt: skip
        (root / "yolo" / "labels" / "train").mkdir(parents=True, exist_ok=True)
        (root / "yolo" / "labels" / "train" / f"{key}.txt").write_text("\n".join(lines))
        rows += [] if found else [f"{key}.jpg,,,,,"]
    (root / "yolo" / "data.yaml").write_text("train: images/train\nnames: [cat, dog]\n")
    (root / "voc" / "JPEGImages" / "train.csv").write_text("\n".join(rows) + "\n")
    (root / "voc" / "JPEGImages" / "train.json").write_text(json.dumps(coco))
    return [voc, root / "voc" / "JPEGImages" / "train.csv", root / "voc" / "JPEGImages" / "train.json",
            root / "yolo"]  # fmt: skip


def test_four_formats_of_one_dataset_give_the_same_records(tmp_path):
    for path in write_every_format(tmp_path):
        source = open_dataset(path)
        records = source.records("train")
        assert records.class_names == ("cat", "dog"), source.format
        assert [r["image_path"].rsplit("/", 1)[1] for r in records] == ["a.jpg", "b.jpg", "c.jpg"]
        for record, (size, found) in zip(records, OBJECTS.values()):
            assert record["size"] == size, source.format
            np.testing.assert_allclose(record["boxes"], np.array([box for _, box in found]).reshape(-1, 4),
                                       atol=1e-4, err_msg=source.format)  # fmt: skip
            assert record["labels"].tolist() == [1 if name == "cat" else 2 for name, _ in found]


# ---------------------------------------------------------------------------------------------
# Bad input: one clear line naming the path or field
# ---------------------------------------------------------------------------------------------


def test_errors_name_the_path(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": voc_xml([voc_object("dog", (1, 1, 9, 9))])})
    with pytest.raises(ValueError, match=r"voc: no split 'val'; this voc dataset has trainval"):
        load_dataset(root, "val")
    with pytest.raises(ValueError, match=r"a.xml: object 0 \('dog'\): unknown class 'dog'"):
        load_dataset(root, classes=["cat"])
    with pytest.raises(ValueError, match=r"expected a sequence of class names, got the string 'dog'"):
        load_dataset(root, classes="dog")
    (root / "ImageSets" / "Main" / "empty.txt").write_text("")
    with pytest.raises(ValueError, match=r"voc: split 'empty' has no images"):
        load_dataset(root, "empty")
    with pytest.raises(ValueError, match=r"nowhere: no such dataset file or folder"):
        open_dataset(tmp_path / "nowhere")
    write_image(tmp_path / "photos" / "a.jpg", 8, 8)
    with pytest.raises(ValueError, match=r"photos: not a dataset I know \(it holds 1 images but no "):
        open_dataset(tmp_path / "photos")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt: not a dataset file"):
        open_dataset(tmp_path / "notes.txt")


def test_every_image_skipped_is_an_empty_split(tmp_path):
    root = make_voc(tmp_path / "voc", {"a": voc_xml([])}, image_sizes={"a": None})
    with pytest.raises(ValueError, match=r"split 'trainval' has no images \(every image was skipped"):
        load_dataset(root, classes=["dog"], on_error="skip")


def test_unreadable_files_name_themselves(tmp_path):
    write_image(tmp_path / "a.jpg", 60, 40)
    (tmp_path / "latin1.csv").write_bytes("a.jpg,1,2,30,20,caf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin1.csv: CSV file is not UTF-8 text \(byte 0xe9 at "
                       r"position 19\); save it as UTF-8"):  # fmt: skip
        load_dataset(tmp_path / "latin1.csv")
    (tmp_path / "broken.json").write_text('{"images": [')
    with pytest.raises(ValueError, match=r"broken.json: malformed JSON"):
        load_dataset(tmp_path / "broken.json")
