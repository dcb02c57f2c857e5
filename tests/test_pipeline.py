"""DetectionDataset: batch shapes, encoding, determinism per (seed, epoch, index), epochs,
validation and annotation modes, images without boxes, workers, bad inputs and bad images."""

import logging
import os
import pickle
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from ssd_lib.augment import SSDAugmentation, resize  # noqa: E402
from ssd_lib.config import SSDConfig  # noqa: E402
from ssd_lib.datasets import ImageReadError, Records  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402
from ssd_lib.jpeg import EncodedJpeg  # noqa: E402
from ssd_lib.matching import BACKGROUND, NEUTRAL  # noqa: E402
from ssd_lib.pipeline import DetectionDataset, Shard, open_image  # noqa: E402

CONFIG = SSDConfig(image_height=64, image_width=80, n_classes=3, feature_map_sizes=(8, 4, 2),
                   aspect_ratios=((1.0, 2.0, 0.5),) * 3, scales=(0.15, 0.35, 0.6, 0.9))  # fmt: skip
PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """Seven images (PNG and JPEG, several sizes) with filled boxes; label k = PALETTE[k - 1];
    record 3 has no boxes."""
    folder = tmp_path_factory.mktemp("pipeline")
    rng = np.random.default_rng(0)
    result = []
    for index in range(7):
        width, height = int(rng.integers(90, 260)), int(rng.integers(80, 200))
        image = np.full((height, width, 3), 30, np.uint8)
        n_boxes = 0 if index == 3 else int(rng.integers(1, 4))
        boxes, labels = [], []
        for k in range(n_boxes):
            # boxes in separate vertical bands so they never overlap
            band = width / 3
            x0 = int(band * k + rng.integers(0, band / 3))
            x1 = int(min(band * (k + 1), x0 + rng.integers(12, band)))
            y0 = int(rng.integers(0, height // 2))
            y1 = int(rng.integers(y0 + 12, height + 1))
            image[y0:y1, x0:x1] = PALETTE[k]
            boxes.append([x0, y0, x1, y1])
            labels.append(k + 1)
        path = folder / f"image_{index}.{'jpg' if index % 2 else 'png'}"
        Image.fromarray(image).save(path, quality=95)
        result.append({"image_path": str(path), "size": (width, height),
                       "boxes": np.array(boxes, np.float32).reshape(-1, 4),
                       "labels": np.array(labels, np.int32), "difficult": np.zeros(n_boxes, bool)})  # fmt: skip
    return result


def test_batches_have_the_documented_shapes(records):
    dataset = DetectionDataset(records, CONFIG, batch_size=3, seed=0)
    assert len(dataset) == 3
    sizes = []
    for index in range(len(dataset)):
        images, y_true = dataset[index]
        assert images.dtype == np.uint8 and images.shape[1:] == (64, 80, 3)
        assert y_true.dtype == np.float32 and y_true.shape == (len(images), CONFIG.n_anchors, 5)
        assert images.min() >= 0 and images.max() <= 255
        sizes.append(len(images))
    assert sizes == [3, 3, 1]
    with pytest.raises(IndexError, match="out of range"):
        dataset[3]


def test_y_true_is_the_encoding_of_the_augmented_boxes(records):
    dataset = DetectionDataset(records, CONFIG, batch_size=4, seed=3)
    encoder = SSDEncoder(CONFIG)
    images, y_true = dataset[0]
    for position, record_index in enumerate(dataset.record_indices(0)):
        pixels, boxes, labels, _ = dataset.load_sample(int(record_index))
        np.testing.assert_array_equal(images[position], pixels.astype(np.float32))
        expected = encoder([np.concatenate([labels[:, None], boxes], axis=1)])[0]
        np.testing.assert_array_equal(y_true[position], expected)
        assert (y_true[position, :, 0] > 0).any() == (len(boxes) > 0)


def test_boxes_stay_on_their_pixels_through_the_pipeline(records):
    geometry_only = SSDAugmentation(64, 80, photometric=None)  # colours stay identifiable
    dataset = DetectionDataset(records, CONFIG, batch_size=7, seed=1, annotations=True, augmentation=geometry_only)
    for epoch in range(3):
        dataset.set_epoch(epoch)
        images, annotations = dataset[0]
        for image, annotation in zip(images, annotations):
            for box, label in zip(annotation["boxes"], annotation["labels"]):
                of_color = np.abs(image.astype(int) - PALETTE[label - 1]).sum(axis=-1) < 80
                rows, cols = np.nonzero(of_color)
                assert np.all(cols + 0.5 > box[0] - 2) and np.all(cols + 0.5 < box[2] + 2)
                assert np.all(rows + 0.5 > box[1] - 2) and np.all(rows + 0.5 < box[3] + 2)


def test_batches_depend_only_on_seed_epoch_and_index(records):
    first = DetectionDataset(records, CONFIG, batch_size=2, seed=5)
    second = DetectionDataset(records, CONFIG, batch_size=2, seed=5)
    later = second[2]  # another access order
    for index in range(len(first)):
        np.testing.assert_array_equal(first[index][0], second[index][0])
        np.testing.assert_array_equal(first[index][1], second[index][1])
    np.testing.assert_array_equal(first[2][0], later[0])
    other = DetectionDataset(records, CONFIG, batch_size=2, seed=6)
    assert not np.array_equal(other[0][0], first[0][0])


def test_each_epoch_is_a_new_permutation_of_every_record(records):
    dataset = DetectionDataset(records, CONFIG, batch_size=3, seed=0)
    orders = []
    for _ in range(4):
        order = np.concatenate([dataset.record_indices(i) for i in range(len(dataset))])
        np.testing.assert_array_equal(np.sort(order), np.arange(len(records)))
        orders.append(tuple(order))
        dataset.on_epoch_end()
    assert len(set(orders)) > 1 and dataset.epoch == 4
    # same record, another epoch: another augmentation
    dataset.set_epoch(0)
    sample_epoch_0 = dataset.load_sample(0)[0]
    dataset.set_epoch(1)
    assert not np.array_equal(dataset.load_sample(0)[0], sample_epoch_0)
    dataset.set_epoch(0)
    np.testing.assert_array_equal(dataset.load_sample(0)[0], sample_epoch_0)
    fixed = DetectionDataset(records, CONFIG, batch_size=3, shuffle=False)
    np.testing.assert_array_equal(fixed.record_indices(0), [0, 1, 2])


def test_validation_mode_only_resizes(records):
    dataset = DetectionDataset(records, CONFIG, batch_size=7, augment=False, shuffle=False)
    images, _ = dataset[0]
    for position, record in enumerate(records):
        if not record["image_path"].endswith(".png"):
            continue  # JPEGs may be decoded at reduced size (draft); PNGs match exactly
        source = np.asarray(Image.open(record["image_path"]).convert("RGB"))
        expected, _ = resize(source, record["boxes"], 64, 80)
        np.testing.assert_array_equal(images[position], expected)
    dataset.on_epoch_end()
    np.testing.assert_array_equal(dataset[0][0], images)  # no augmentation, no shuffling


def test_annotation_mode_returns_boxes_per_image(records):
    dataset = DetectionDataset(records, CONFIG, batch_size=7, augment=False, shuffle=False, annotations=True)
    assert dataset.encoder is None
    images, annotations = dataset[0]
    assert len(annotations) == 7
    for record, annotation in zip(records, annotations):
        width, height = record["size"]
        np.testing.assert_allclose(annotation["boxes"], record["boxes"] * np.array([80 / width, 64 / height] * 2),
                                   rtol=1e-6)  # fmt: skip
        np.testing.assert_array_equal(annotation["labels"], record["labels"])
        assert annotation["size"] == (width, height) and annotation["image_path"] == record["image_path"]
        assert annotation["difficult"].dtype == bool


def test_an_image_without_boxes_is_all_background(records):
    dataset = DetectionDataset(records[3:4], CONFIG, batch_size=1, seed=0)
    images, y_true = dataset[0]
    assert np.all(y_true[..., 0] == BACKGROUND) and np.all(y_true[..., 1:] == 0)


def test_a_pickled_copy_gives_the_same_batches(records):
    """Process workers get a pickled copy of the dataset; it must produce the same batches."""
    dataset = DetectionDataset(records, CONFIG, batch_size=3, seed=2, workers=2, use_multiprocessing=True)
    dataset.on_epoch_end()
    copy = pickle.loads(pickle.dumps(dataset))
    assert copy.epoch == 1
    np.testing.assert_array_equal(copy[1][0], dataset[1][0])
    np.testing.assert_array_equal(copy[1][1], dataset[1][1])


def test_threads_give_the_same_batches_as_a_loop(records):
    dataset = DetectionDataset(records, CONFIG, batch_size=2, seed=4, workers=3)
    sequential = [dataset[index] for index in range(len(dataset))]
    with ThreadPoolExecutor(3) as pool:
        parallel = list(pool.map(dataset.__getitem__, [3, 1, 2, 0, 3, 0]))
    for index, batch in zip([3, 1, 2, 0, 3, 0], parallel):
        np.testing.assert_array_equal(batch[0], sequential[index][0])
        np.testing.assert_array_equal(batch[1], sequential[index][1])


def test_open_image_leaves_jpeg_encoded(records):
    jpeg = open_image(records[1]["image_path"])
    assert isinstance(jpeg, EncodedJpeg) and jpeg.size == tuple(records[1]["size"])  # not decoded yet
    png = open_image(records[0]["image_path"])
    assert isinstance(png, np.ndarray) and png.dtype == np.uint8


def test_bad_inputs_name_the_culprit(records, tmp_path):
    with pytest.raises(ValueError, match="records is empty"):
        DetectionDataset([], CONFIG)
    with pytest.raises(ValueError, match="batch_size"):
        DetectionDataset(records, CONFIG, batch_size=0)
    with pytest.raises(ValueError, match="outputs 32x32 images but the config's input is 64x80"):
        DetectionDataset(records, CONFIG, augmentation=SSDAugmentation(32, 32))
    missing = dict(records[0], image_path=str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="missing.jpg"):
        DetectionDataset([missing], CONFIG, batch_size=1)[0]
    inverted = dict(records[0], boxes=np.array([[50, 10, 20, 30]], np.float32), labels=np.array([1]),
                    difficult=np.zeros(1, bool))  # fmt: skip
    with pytest.raises(ValueError, match=r"record 0 .*image_0.png.*boxes\[0\]"):
        DetectionDataset([inverted], CONFIG, batch_size=1)[0]
    unknown_class = dict(records[0], labels=np.full(len(records[0]["labels"]), 9))
    with pytest.raises(ValueError, match="class id outside"):
        DetectionDataset([unknown_class], CONFIG, batch_size=1)[0]


# ---------------------------------------------------------------------------------------------
# A bad image names itself (issue 16 item 1)
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def with_truncated_jpeg(records, tmp_path):
    """The seven records, record 1's JPEG cut in half (as an interrupted copy leaves it)."""
    cut = tmp_path / "cut.jpg"
    data = open(records[1]["image_path"], "rb").read()
    cut.write_bytes(data[: len(data) // 2])
    changed = [dict(record) for record in records]
    changed[1]["image_path"] = str(cut)
    return Records(changed, ("red", "green", "blue"), source="toy (split 'train')")


def test_a_truncated_jpeg_names_itself_and_the_split(with_truncated_jpeg):
    dataset = DetectionDataset(with_truncated_jpeg, CONFIG, batch_size=7, shuffle=False)
    with pytest.raises(ImageReadError, match=r"cannot read image .*cut.jpg \(toy \(split 'train'\), "
                       r"record 1\): image file is truncated"):  # fmt: skip
        dataset[0]


def test_skip_replaces_a_bad_image_deterministically_with_one_warning(with_truncated_jpeg, records, caplog):
    dataset = DetectionDataset(with_truncated_jpeg, CONFIG, batch_size=3, seed=3, on_error="skip")
    bad_batch = next(index for index in range(len(dataset)) if 1 in dataset.record_indices(index))
    position = list(dataset.record_indices(bad_batch)).index(1)
    images, y_true = dataset[bad_batch]
    images_again, _ = dataset[bad_batch]
    assert images.shape[0] == len(dataset.record_indices(bad_batch))  # the batch keeps its size
    np.testing.assert_array_equal(images, images_again)
    # its place goes to the next record of the epoch's order, exactly as that record loads
    order = np.concatenate([dataset.record_indices(i) for i in range(len(dataset))])
    substitute = int(order[(list(order).index(1) + 1) % len(order)])
    np.testing.assert_array_equal(images[position], dataset.load_sample(substitute)[0])
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 1 and "cut.jpg" in logged[0] and "split 'train'" in logged[0]
    validation = DetectionDataset(with_truncated_jpeg, CONFIG, batch_size=7, augment=False, shuffle=False,
                                  annotations=True, on_error="skip")  # fmt: skip
    images, annotations = validation[0]
    assert len(images) == len(annotations) == 6  # evaluation leaves it out (no double counting)
    assert str(with_truncated_jpeg[1]["image_path"]) not in [a["image_path"] for a in annotations]


def test_an_image_whose_size_is_not_its_records_is_refused(records):
    wrong = dict(records[0], size=(records[0]["size"][0] * 2, records[0]["size"][1] * 2))
    with pytest.raises(ImageReadError, match=r"image_0.png \(records, record 0\): the image is \d+x\d+ "
                       r"pixels but its record says \d+x\d+; its boxes would not fit"):  # fmt: skip
        DetectionDataset([wrong], CONFIG, batch_size=1)[0]
    with pytest.raises(ValueError, match="on_error must be 'raise' or 'skip'"):
        DetectionDataset(records, CONFIG, on_error="ignore")


def test_shards_split_every_batch_and_cover_the_epoch_once(records):
    whole = DetectionDataset(records, CONFIG, batch_size=4, seed=2, workers=1)
    shards = [DetectionDataset(records, CONFIG, batch_size=4, seed=2, workers=1,
                               shard=Shard(index, 2, pad_last_batch=True)) for index in range(2)]  # fmt: skip
    assert [len(shard) for shard in shards] == [len(whole)] * 2 == [2, 2]
    seen = []
    for index in range(len(whole)):
        parts = [shard.record_indices(index) for shard in shards]
        np.testing.assert_array_equal(np.concatenate(parts), whole.record_indices(index))
        seen += [int(i) for part in parts for i in part]
        (images_0, y_0), (images_1, y_1) = shards[0][index], shards[1][index]
        assert len(images_0) == len(images_1) == 2  # padded to the local batch
        if index == 0:
            whole_images, whole_y = whole[0]
            np.testing.assert_array_equal(np.concatenate([images_0, images_1]), whole_images)
            np.testing.assert_array_equal(np.concatenate([y_0, y_1]), whole_y)
    assert sorted(seen) == list(range(len(records)))  # 7 records: the last batch has 3, one padded


def test_padding_counts_nowhere_in_the_loss(records):
    from ssd_lib.losses import SSDLoss

    padded = DetectionDataset(records, CONFIG, batch_size=4, seed=0, workers=1, shard=Shard(pad_last_batch=True))
    plain = DetectionDataset(records, CONFIG, batch_size=4, seed=0, workers=1)
    (images, y_true), (plain_images, plain_y) = padded[1], plain[1]
    assert len(images) == 4 and len(plain_images) == 3
    np.testing.assert_array_equal(images[:3], plain_images)
    np.testing.assert_array_equal(y_true[:3], plain_y)
    assert np.all(y_true[3, :, 0] == NEUTRAL) and not y_true[3, :, 1:].any()
    y_pred = np.random.default_rng(0).normal(size=(4, CONFIG.n_anchors, CONFIG.n_classes + 5)).astype(np.float32)
    loss = SSDLoss(config=CONFIG)
    np.testing.assert_allclose(float(loss(y_true, y_pred)), float(loss(plain_y, y_pred[:3])), rtol=1e-6)


def test_bad_shards_name_the_setting(records):
    with pytest.raises(ValueError, match="index must be in 0..count-1"):
        Shard(2, 2)
    with pytest.raises(ValueError, match="batch_size 5 .* among 2 processes"):
        DetectionDataset(records, CONFIG, batch_size=5, shard=Shard(0, 2, pad_last_batch=True))
    with pytest.raises(ValueError, match="pad_last_batch=True"):
        DetectionDataset(records, CONFIG, batch_size=4, shard=Shard(0, 2))
