"""Tests for ssd_lib.datasets: VOC / COCO / CSV parsing (with real-world quirks and bad inputs)
and load_image. Every fixture is built in tmp_path."""

import json

import numpy as np
import pytest
from PIL import Image

from dataset_files import make_voc, voc_object, voc_xml, warnings_logged, write_image
from ssd_lib.config import VOC_CLASSES
from ssd_lib.datasets import (
    Records,
    check_class_names,
    discover_classes,
    image_size,
    load_image,
    parse_coco,
    parse_csv,
    parse_voc,
)
from ssd_lib.datasets.images import ImageHeader, boxes_to_upright, read_image_header


# ---------------------------------------------------------------------------------------------
# parse_voc: the normal case and the record contract
# ---------------------------------------------------------------------------------------------


def test_parse_voc_record_contract(tmp_path):
    root = make_voc(tmp_path / "VOC2007", {
        "000001": voc_xml([voc_object("dog", (10, 5, 40, 30), difficult=0),
                           voc_object("person", (1, 2, 63, 47), difficult=1)]),
        "000002": voc_xml([]),  # an image without objects is valid
    })  # fmt: skip
    records = parse_voc(root)
    assert isinstance(records, Records) and records.class_names == VOC_CLASSES
    assert [r["image_path"] for r in records] == [
        str(root / "JPEGImages" / "000001.jpg"), str(root / "JPEGImages" / "000002.jpg")]  # fmt: skip
    first, empty = records
    assert first["size"] == (64, 48)
    assert first["boxes"].dtype == np.float32 and first["boxes"].shape == (2, 4)
    np.testing.assert_array_equal(first["boxes"], [[10, 5, 40, 30], [1, 2, 63, 47]])
    assert first["labels"].tolist() == [VOC_CLASSES.index("dog") + 1, VOC_CLASSES.index("person") + 1]
    assert first["difficult"].dtype == bool and first["difficult"].tolist() == [False, True]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert empty["difficult"].shape == (0,)


def test_parse_voc_quirks(tmp_path):
    """Tag order, <size> after the objects, missing flags, float coordinates, a <filename> that
    disagrees with the id, a box one pixel past the border (clipped)."""
    reordered = (
        "<annotation><object><bndbox><ymax>30.5</ymax><xmin>10.25</xmin><xmax>40.75</xmax>"
        "<ymin>5.5</ymin></bndbox><difficult>1</difficult><name> cat </name></object>"
        "<filename>IMG_9999.JPG</filename>"
        "<size><height>48</height><width>64</width></size></annotation>"
    )
    root = make_voc(tmp_path / "custom", {
        "a": reordered,
        "b": voc_xml([voc_object("cat", (0, 0, 65, 49))], size_first=False, filename="other.jpg"),
    })  # fmt: skip
    records = parse_voc(root, classes=("dog", "cat"))
    a, b = records
    assert a["image_path"].endswith("a.jpg") and a["size"] == (64, 48)
    np.testing.assert_allclose(a["boxes"], [[10.25, 5.5, 40.75, 30.5]])
    assert a["labels"].tolist() == [2] and a["difficult"].tolist() == [True]
    np.testing.assert_array_equal(b["boxes"], [[0, 0, 64, 48]])  # clipped to the image
    assert b["difficult"].tolist() == [False]  # no <difficult> tag


def test_parse_voc_missing_size_reads_image(tmp_path):
    root = make_voc(tmp_path / "r", {"x": voc_xml([voc_object("dog", (1, 1, 5, 5))], size=None),
                                     "y": voc_xml([], size=(0, 0))},  # fmt: skip
                    image_sizes={"x": (37, 21), "y": (12, 34)})
    assert [r["size"] for r in parse_voc(root)] == [(37, 21), (12, 34)]


def test_parse_voc_image_fallbacks(tmp_path):
    """JPEGImages/<id>.jpg first, then other extensions, then <filename>."""
    root = make_voc(tmp_path / "r", {
        "png_image": voc_xml([]),
        "by_filename": voc_xml([], filename="C:\\labels\\photo_17.jpg"),
        "both": voc_xml([], filename="elsewhere.jpg"),
    }, image_sizes={"png_image": None, "by_filename": None})  # fmt: skip
    write_image(root / "JPEGImages" / "png_image.png", 64, 48)
    write_image(root / "JPEGImages" / "photo_17.jpg", 64, 48)
    write_image(root / "JPEGImages" / "elsewhere.jpg", 64, 48)
    paths = [r["image_path"] for r in parse_voc(root)]
    assert paths == [str(root / "JPEGImages" / name)
                     for name in ("png_image.png", "photo_17.jpg", "both.jpg")]  # fmt: skip


def test_parse_voc_several_roots_and_discovery(tmp_path):
    first = make_voc(tmp_path / "VOC2007", {"1": voc_xml([voc_object("zebra", (1, 1, 9, 9))])})
    second = make_voc(tmp_path / "VOC2012", {"2": voc_xml([voc_object("ant", (1, 1, 9, 9)),
                                                           voc_object("zebra", (2, 2, 8, 8))])})  # fmt: skip
    assert discover_classes([first, second]) == ("ant", "zebra")
    records = parse_voc([first, second], classes=None)
    assert records.class_names == ("ant", "zebra")
    assert [r["labels"].tolist() for r in records] == [[2], [1, 2]]
    assert [len(parse_voc(root, classes=None)) for root in (first, second)] == [1, 1]


def test_parse_voc_image_set_variants(tmp_path):
    root = make_voc(tmp_path / "r", {"1": voc_xml([]), "2": voc_xml([])}, image_set="train")
    # class-specific set files have a second column; blank lines are ignored
    (root / "ImageSets" / "Main" / "dog_val.txt").write_text("2  1\n\n")
    assert len(parse_voc(root, "dog_val")) == 1
    assert len(parse_voc(root, None)) == 2  # every annotation
    with pytest.raises(ValueError, match=r"image_set 'trainval'.*available sets: \['dog_val', 'train'\]"):
        parse_voc(root)


def test_parse_voc_root_errors(tmp_path):
    make_voc(tmp_path / "VOCdevkit" / "VOC2007", {"1": voc_xml([])})
    with pytest.raises(ValueError, match=r"has no Annotations/.*VOCdevkit/VOC2007"):
        parse_voc(tmp_path)
    with pytest.raises(ValueError, match="non-empty list"):
        parse_voc([])
    with pytest.raises(ValueError, match="on_error"):
        parse_voc(tmp_path / "VOCdevkit" / "VOC2007", on_error="ignore")
    with pytest.raises(ValueError, match=r"duplicate names \['dog'\]"):
        parse_voc(tmp_path / "VOCdevkit" / "VOC2007", classes=("dog", "cat", "dog"))


# ---------------------------------------------------------------------------------------------
# parse_voc: bad inputs raise naming the file and object, or are skipped with one warning
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def bad_voc(tmp_path):
    """One good image and one of each problem."""
    return make_voc(tmp_path / "bad", {
        "good": voc_xml([voc_object("dog", (1, 1, 9, 9))]),
        "broken": "<annotation><object><name>dog</name>",
        "no_image": voc_xml([voc_object("dog", (1, 1, 9, 9))]),
        "unknown": voc_xml([voc_object("dog", (1, 1, 9, 9)), voc_object("Cat", (2, 2, 8, 8))]),
        "inverted": voc_xml([voc_object("dog", (30, 1, 10, 9))]),
        "no_box": voc_xml(["<object><name>dog</name></object>"]),
        "outside": voc_xml([voc_object("dog", (100, 100, 120, 130))]),
    }, image_sizes={"no_image": None})  # fmt: skip


@pytest.mark.parametrize("image_id, message", [
    ("broken", r"broken\.xml: malformed XML"),
    ("ghost", r"ghost\.xml: annotation file not found"),
    ("no_image", r"no_image\.xml: image not found \(expected .*JPEGImages/no_image\.jpg"),
    ("unknown", r"unknown\.xml: object 1 \('Cat'\): unknown class 'Cat' \(did you mean 'cat'\?\)"),
    ("inverted", r"inverted\.xml: object 0 \('dog'\): inverted or empty box"),
    ("no_box", r"no_box\.xml: object 0 \('dog'\): missing or non-numeric <bndbox>"),
    ("outside", r"outside\.xml: object 0 \('dog'\): box .* lies outside the 64x48 image"),
])  # fmt: skip
def test_parse_voc_bad_input_raises(bad_voc, image_id, message):
    (bad_voc / "ImageSets" / "Main" / "one.txt").write_text(f"good\n{image_id}\n")
    with pytest.raises(ValueError, match=message):
        parse_voc(bad_voc, "one")


def test_parse_voc_skip_warns_once_with_counts(bad_voc, caplog):
    records = parse_voc(bad_voc, on_error="skip")
    assert len(warnings_logged(caplog)) == 1
    text = warnings_logged(caplog)[0]
    assert "skipped 2 images (1 malformed XML, 1 missing image)" in text
    assert "4 objects (2 bad box, 1 missing or bad <bndbox>, 1 unknown class)" in text
    assert "first problem: " in text and "broken.xml: malformed XML" in text
    by_id = {r["image_path"].rsplit("/", 1)[1]: r for r in records}
    assert sorted(by_id) == ["good.jpg", "inverted.jpg", "no_box.jpg", "outside.jpg", "unknown.jpg"]
    assert by_id["unknown.jpg"]["labels"].tolist() == [VOC_CLASSES.index("dog") + 1]
    assert by_id["inverted.jpg"]["boxes"].shape == (0, 4)


def test_parse_voc_skip_is_silent_when_clean(tmp_path, caplog):
    root = make_voc(tmp_path / "r", {"1": voc_xml([voc_object("dog", (1, 1, 9, 9))])})
    assert len(parse_voc(root, on_error="skip")) == 1
    assert warnings_logged(caplog) == []


# ---------------------------------------------------------------------------------------------
# load_image / image_size
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode, color, expected", [
    ("L", 128, (128, 128, 128)),
    ("RGBA", (10, 20, 30, 0), (10, 20, 30)),
    ("CMYK", (0, 255, 255, 0), (255, 0, 0)),
    ("P", 3, None),
])  # fmt: skip
def test_load_image_converts_modes(tmp_path, mode, color, expected):
    path = write_image(tmp_path / f"image_{mode}.png" if mode != "CMYK" else tmp_path / "c.tif",
                       7, 5, mode=mode, color=color)  # fmt: skip
    pixels = load_image(path)
    assert pixels.shape == (5, 7, 3) and pixels.dtype == np.uint8
    if expected is not None:
        np.testing.assert_array_equal(pixels[0, 0], expected)


def test_load_image_16_bit_gray(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((4, 6), 65535, dtype=np.uint16)).save(path)
    pixels = load_image(path)
    assert pixels.shape == (4, 6, 3) and pixels.max() == 255 and pixels.min() == 255


def test_load_image_applies_exif_orientation(tmp_path):
    """Orientation 6 (rotate 90 degrees clockwise to view): a 40x20 file shows as 20x40."""
    array = np.zeros((20, 40, 3), dtype=np.uint8)
    array[:, :20] = 255  # left half white in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(array).save(path, exif=exif, quality=95)
    pixels = load_image(path)
    assert pixels.shape == (40, 20, 3)
    assert pixels[:20].mean() > 200 and pixels[20:].mean() < 50  # left half is now the top
    assert image_size(path) == (20, 40)


def test_load_image_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="not found: .*missing.jpg"):
        load_image(tmp_path / "missing.jpg")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(ValueError, match="cannot read image .*text.jpg"):
        load_image(tmp_path / "text.jpg")


# ---------------------------------------------------------------------------------------------
# parse_coco
# ---------------------------------------------------------------------------------------------


def write_coco(tmp_path, annotations, images=None, categories=None):
    images_dir = tmp_path / "images"
    write_image(images_dir / "a.jpg", 50, 40)
    write_image(images_dir / "b.jpg", 30, 20)
    document = {
        "images": images if images is not None else [
            {"id": 7, "file_name": "a.jpg", "width": 50, "height": 40},
            {"id": 9, "file_name": "b.jpg"},  # size read from the file
        ],
        "annotations": annotations,
        "categories": categories or [{"id": 18, "name": "dog"}, {"id": 1, "name": "person"}],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(document))
    return path, images_dir


def test_parse_coco(tmp_path):
    path, images_dir = write_coco(tmp_path, [
        {"id": 1, "image_id": 7, "category_id": 18, "bbox": [5, 6, 10, 20], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0.5, 1.5, 2, 3], "iscrowd": 1},
    ])  # fmt: skip
    records = parse_coco(path, images_dir)
    assert records.class_names == ("person", "dog")  # sorted by category id: 1, 18
    a, b = records
    np.testing.assert_allclose(a["boxes"], [[5, 6, 15, 26], [0.5, 1.5, 2.5, 4.5]])
    assert a["labels"].tolist() == [2, 1] and a["difficult"].tolist() == [False, True]
    assert a["size"] == (50, 40) and b["size"] == (30, 20)
    assert b["boxes"].shape == (0, 4)


@pytest.mark.parametrize("annotation, message", [
    ({"id": 5, "image_id": 7, "category_id": 3, "bbox": [1, 1, 2, 2]}, r"annotation 0 \(id 5\): unknown category_id 3"),
    ({"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 1, 0, 2]}, r"annotation 0 \(id 5\).*non-positive width"),
    ({"id": 5, "image_id": 7, "category_id": 1, "bbox": [1, 1]}, r"annotation 0 \(id 5\): missing or malformed bbox"),
    ({"id": 5, "image_id": 99, "category_id": 1, "bbox": [1, 1, 2, 2]}, r"image_id 99, which is not in 'images'"),
])  # fmt: skip
def test_parse_coco_bad_annotations(tmp_path, annotation, message, caplog):
    path, images_dir = write_coco(tmp_path, [annotation])
    with pytest.raises(ValueError, match=message):
        parse_coco(path, images_dir)
    records = parse_coco(path, images_dir, on_error="skip")
    [warning] = warnings_logged(caplog)
    assert "instances.json: skipped 1 objects" in warning
    assert sum(len(r["labels"]) for r in records) == 0


def test_parse_coco_bad_files(tmp_path):
    path, images_dir = write_coco(tmp_path, [], images=[{"id": 1, "file_name": "gone.jpg"}])
    with pytest.raises(ValueError, match=r"image 0 \(id 1, 'gone.jpg'\): image file not found"):
        parse_coco(path, images_dir)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="instances.json: malformed JSON"):
        parse_coco(path, images_dir)


# ---------------------------------------------------------------------------------------------
# parse_csv
# ---------------------------------------------------------------------------------------------


def test_parse_csv_with_and_without_header(tmp_path):
    write_image(tmp_path / "img" / "a.jpg", 50, 40)
    write_image(tmp_path / "img" / "b.png", 30, 20)
    rows = "a.jpg,1,2,11,12,dog\nb.png,,,,,\na.jpg,3.5,4,20,30,cat\n"
    (tmp_path / "plain.csv").write_text(rows)
    # columns in another order, an extra column, an image without boxes
    (tmp_path / "header.csv").write_text("Class,image,xmax,ymax,xmin,ymin,score\n"
                                         "dog,a.jpg,11,12,1,2,0.9\n"
                                         ",b.png,,,,,\n"
                                         "cat,a.jpg,20,30,3.5,4,0.8\n")  # fmt: skip
    for name in ("plain.csv", "header.csv"):
        records = parse_csv(tmp_path / name, tmp_path / "img")
        assert records.class_names == ("cat", "dog"), name
        a, b = records
        np.testing.assert_allclose(a["boxes"], [[1, 2, 11, 12], [3.5, 4, 20, 30]])
        assert a["labels"].tolist() == [2, 1] and a["size"] == (50, 40)
        assert b["image_path"].endswith("b.png") and b["boxes"].shape == (0, 4)
        assert b["size"] == (30, 20)
    given = parse_csv(tmp_path / "plain.csv", tmp_path / "img", classes=("dog", "cat", "cow"))
    assert given.class_names == ("dog", "cat", "cow") and given[0]["labels"].tolist() == [1, 2]


@pytest.mark.parametrize("row, message", [
    ("a.jpg,1,2,11", r"line 2: expected 6 columns"),
    ("a.jpg,1,two,11,12,dog", r"line 2 \(a.jpg\): non-numeric coordinates"),
    ("a.jpg,11,2,1,12,dog", r"line 2 \(a.jpg\): inverted or empty box"),
    ("a.jpg,1,2,11,12,horse", r"line 2 \(a.jpg\): unknown class 'horse'"),
    ("missing.jpg,1,2,11,12,dog", r"image 'missing.jpg' \(first on line 2\) not found"),
])  # fmt: skip
def test_parse_csv_bad_rows(tmp_path, row, message, caplog):
    write_image(tmp_path / "a.jpg", 50, 40)
    (tmp_path / "boxes.csv").write_text(f"a.jpg,1,2,11,12,dog\n{row}\n")
    with pytest.raises(ValueError, match=message):
        parse_csv(tmp_path / "boxes.csv", tmp_path, classes=("dog",))
    records = parse_csv(tmp_path / "boxes.csv", tmp_path, classes=("dog",), on_error="skip")
    [warning] = warnings_logged(caplog)
    assert "boxes.csv: skipped 1 " in warning
    assert records[0]["labels"].tolist() == [1]


def test_unreadable_images_are_reported(tmp_path, caplog):
    (tmp_path / "a.jpg").write_text("this is no JPEG")
    (tmp_path / "boxes.csv").write_text("a.jpg,1,2,11,12,dog\n")
    with pytest.raises(ValueError, match="cannot read image .*a.jpg"):
        parse_csv(tmp_path / "boxes.csv", tmp_path)
    path, images_dir = write_coco(tmp_path, [], images=[{"id": 1, "file_name": "a.jpg"}])
    (images_dir / "a.jpg").write_text("this is no JPEG")
    assert parse_coco(path, images_dir, on_error="skip") == []
    [warning] = warnings_logged(caplog)
    assert "skipped 1 images (1 unreadable image)" in warning


def test_records_slices_keep_class_names(tmp_path):
    root = make_voc(tmp_path / "r", {str(i): voc_xml([]) for i in range(4)})
    records = parse_voc(root, classes=("a", "b"))
    head = records[:2]
    assert isinstance(head, Records) and head.class_names == ("a", "b") and len(head) == 2
    assert records[3]["image_path"].endswith("3.jpg")


def test_parse_csv_bad_header(tmp_path):
    (tmp_path / "boxes.csv").write_text("file,x1,y1,x2,y2,label\n")
    with pytest.raises(ValueError, match=r"lacks columns \['image', 'xmin'"):
        parse_csv(tmp_path / "boxes.csv", tmp_path)


# ---------------------------------------------------------------------------------------------
# Image size against the annotation's size; EXIF rotation (issue 16 item 1)
# ---------------------------------------------------------------------------------------------

STORED_BOX = (4, 2, 14, 8)  # (xmin, ymin, xmax, ymax) in the stored 40x20 pixels


def write_rotated(path, orientation):
    """A 40x20 stored PNG, white inside STORED_BOX, with EXIF ``orientation``."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    xmin, ymin, xmax, ymax = STORED_BOX
    pixels[ymin:ymax, xmin:xmax] = 255
    exif = Image.Exif()
    exif[0x0112] = orientation
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, exif=exif)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_boxes_to_upright_follows_the_pixels(tmp_path, orientation):
    """Every EXIF orientation: the turned box covers exactly the white pixels of the upright image."""
    pixels = load_image(write_rotated(tmp_path / "p.png", orientation))
    rows, columns = np.flatnonzero(pixels[..., 0].any(axis=1)), np.flatnonzero(pixels[..., 0].any(axis=0))
    white = [columns[0], rows[0], columns[-1] + 1, rows[-1] + 1]
    np.testing.assert_array_equal(boxes_to_upright([STORED_BOX], (40, 20), orientation), [white])
    assert read_image_header(tmp_path / "p.png") == ImageHeader((40, 20), orientation)


def test_voc_annotated_on_stored_pixels_turns_the_boxes(tmp_path, caplog):
    root = make_voc(tmp_path / "r", {
        "stored": voc_xml([voc_object("dog", STORED_BOX)], size=(40, 20)),
        "upright": voc_xml([voc_object("dog", (2, 4, 8, 14))], size=(20, 40)),
    }, image_sizes={"stored": None, "upright": None})  # fmt: skip
    for name in ("stored", "upright"):
        write_rotated(root / "JPEGImages" / f"{name}.png", 6)  # turn 90 degrees clockwise to view
    stored, upright = parse_voc(root, classes=("dog",))
    assert stored["size"] == upright["size"] == (20, 40)
    np.testing.assert_array_equal(stored["boxes"], boxes_to_upright([STORED_BOX], (40, 20), 6))
    np.testing.assert_array_equal(upright["boxes"], [[2, 4, 8, 14]])  # as annotated
    [warning] = warnings_logged(caplog)
    assert "1 images annotated on their stored pixels, ignoring the EXIF rotation" in warning
    assert "stored.png (annotated 40x20, upright 20x40, EXIF orientation 6)" in warning


def test_sizes_that_disagree_are_refused_not_cut(tmp_path, caplog):
    root = make_voc(tmp_path / "r", {"resized": voc_xml([voc_object("dog", (10, 10, 120, 90))], size=(128, 96)),
                                     "fine": voc_xml([voc_object("dog", (1, 1, 9, 9))])})  # fmt: skip
    write_image(root / "JPEGImages" / "resized.jpg", 64, 48)
    with pytest.raises(ValueError, match=r"resized.jpg: the annotation says 128x96 pixels but the "
                       r"image is 64x48; boxes would not fit"):  # fmt: skip
        parse_voc(root, classes=("dog",))
    assert [r["image_path"][-8:] for r in parse_voc(root, classes=("dog",), on_error="skip")] == ["fine.jpg"]
    assert "skipped 1 images (1 size mismatch)" in warnings_logged(caplog)[0]
    path, images_dir = write_coco(tmp_path / "coco", [{"id": 1, "image_id": 9, "category_id": 1, "bbox": [1, 1, 5, 5]}],
                                  images=[{"id": 9, "file_name": "b.jpg", "width": 20, "height": 30}])  # fmt: skip
    with pytest.raises(ValueError, match=r"b.jpg: the annotation says 20x30 pixels but the image is 30x20"):
        parse_coco(path, images_dir)


# ---------------------------------------------------------------------------------------------
# Inputs in the wrong convention are told (issue 16 item 6)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(annotations=None), r"'annotations' must be a list, got null \(use \[\] for images"),
    (lambda d: d["categories"].append({"id": 18, "name": "cat"}),
     r"categories\[0\] \('dog'\) and categories\[2\] \('cat'\) share id 18"),
    (lambda d: d["categories"].append({"id": 4, "name": "dog"}), r"categories\[0\] \(id 18\) and categories\[2\] \(id 4\) share name 'dog'"),
    (lambda d: d["images"].append({"id": 7, "file_name": "b.jpg"}),
     r"images\[0\] \('a.jpg'\) and images\[2\] \('b.jpg'\) share id 7"),
    (lambda d: d.update(images={"id": 1}), r"'images' must be a list"),
    (lambda d: d["categories"].append({"name": "nameless"}), r"categories\[2\] needs an integer 'id' and a 'name'"),
])  # fmt: skip
def test_coco_structure_problems_are_named(tmp_path, change, message):
    path, images_dir = write_coco(tmp_path, [])
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message):
        parse_coco(path, images_dir)


def test_coco_without_annotations_key_is_images_without_boxes(tmp_path):
    path, images_dir = write_coco(tmp_path, [])
    document = json.loads(path.read_text())
    del document["annotations"]
    path.write_text(json.dumps(document))
    assert [len(r["boxes"]) for r in parse_coco(path, images_dir)] == [0, 0]


def test_normalized_boxes_in_a_csv_are_warned_about(tmp_path, caplog):
    write_image(tmp_path / "a.jpg", 64, 48)
    (tmp_path / "normalized.csv").write_text("a.jpg,0.1,0.2,0.5,0.6,dog\na.jpg,0.5,0.5,0.9,0.95,dog\n")
    records = parse_csv(tmp_path / "normalized.csv")  # images_dir: the CSV's folder
    assert len(records[0]["boxes"]) == 2
    [warning] = warnings_logged(caplog)
    assert "normalized.csv: all 2 boxes are smaller than 2 pixels: are the coordinates normalized" in warning
    caplog.clear()
    (tmp_path / "pixels.csv").write_text("a.jpg,0.1,0.2,0.5,0.6,dog\na.jpg,5,5,40,30,dog\n")
    parse_csv(tmp_path / "pixels.csv")
    assert warnings_logged(caplog) == []  # one real box: no warning


def test_class_names_must_be_a_sequence(tmp_path):
    root = make_voc(tmp_path / "r", {"1": voc_xml([voc_object("dog", (1, 1, 9, 9))])})
    with pytest.raises(ValueError, match=r"classes: expected a sequence of class names, got the string 'dog'"):
        parse_voc(root, classes="dog")
    assert check_class_names(["dog"]) == ("dog",)
