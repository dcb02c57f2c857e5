"""The matching and loss explorers of notebooks 03-04 (ssd_lib.explorers), driven headless: every
control is moved and what was drawn (artist data, titles, state) is checked against the library."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from explorer_checks import assert_static_picture  # noqa: E402

from ssd_lib.anchors import generate_anchors  # noqa: E402
from ssd_lib.boxes import centroids_to_corners  # noqa: E402
from ssd_lib.config import SSD300_COCO, SSD300_VOC, SSD512_VOC  # noqa: E402
from ssd_lib.datasets import load_image, parse_voc  # noqa: E402
from ssd_lib.encoder import SSDEncoder  # noqa: E402
from ssd_lib.matching import NEUTRAL, POSITIVE, match  # noqa: E402
from ssd_lib.explorers.loss import LossExplorer  # noqa: E402
from ssd_lib.explorers.matching import MatchingExplorer  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples"


@pytest.fixture(scope="module")
def samples():
    records = parse_voc(SAMPLES, image_set="samples", classes=None)
    return {Path(record["image_path"]).stem: record for record in records}


@pytest.fixture(scope="module")
def astronaut(samples):
    record = samples["astronaut"]
    return load_image(record["image_path"]), record


def drawn_corners(box_artist) -> np.ndarray:
    """``(n, 4)`` corners of the rectangles a BoxArtist holds (from its polygon vertices)."""
    paths = box_artist.collection.get_paths()
    if not paths:
        return np.zeros((0, 4))
    vertices = np.stack([path.vertices[:4] for path in paths])  # (n, 4, 2)
    return np.concatenate([vertices.min(axis=1), vertices.max(axis=1)], axis=1)


def test_matching_explorer_every_control(astronaut):
    photo, record = astronaut
    height, width = photo.shape[:2]
    explorer = MatchingExplorer(photo, record["boxes"], ["person", "helmet", "flag", "rocket"])
    normalized = record["boxes"] / np.array([width, height, width, height])
    scale = np.array([width, height, width, height])

    def check(config, pos, neg, matching):
        assert explorer.config is config
        expected = match(normalized, generate_anchors(config), pos, neg, matching)
        np.testing.assert_array_equal(explorer.result.state, expected.state)
        corners = centroids_to_corners(explorer.anchors) * scale
        np.testing.assert_allclose(drawn_corners(explorer.match_artist.positive), corners[expected.state == POSITIVE], atol=1e-3)
        np.testing.assert_allclose(drawn_corners(explorer.match_artist.neutral), corners[expected.state == NEUTRAL], atol=1e-3)
        chosen = expected.bipartite_anchor_index
        np.testing.assert_allclose(drawn_corners(explorer.match_artist.bipartite), corners[chosen], atol=1e-3)
        counts = explorer.counts
        assert counts["positive"] + counts["neutral"] + counts["background"] == config.n_anchors
        assert f"{counts['positive']} positive" in explorer.ax.title.get_text()
        assert f"{counts['neutral']} neutral" in explorer.ax.title.get_text()
        per_box = np.bincount(expected.matched_gt_index[expected.matched_gt_index >= 0], minlength=4)
        assert [int(bar.get_height()) for bar in explorer.bars] == per_box.tolist()
        assert [label.get_text() for label in explorer.bar_labels] == [str(n) for n in per_box]

    check(SSD300_VOC, 0.5, 0.5, "multi")
    assert explorer.counts["neutral"] == 0  # multi with neg_iou_limit = pos threshold: no neutrals
    assert explorer.anchors_per_box[2] == 1  # the thin flag only gets its bipartite match
    first_image = explorer.image.value
    explorer.pos_iou_threshold.value = 0.3
    check(SSD300_VOC, 0.3, 0.5, "multi")
    assert explorer.anchors_per_box.min() > 1 and explorer.image.value != first_image
    explorer.neg_iou_limit.value = 0.2
    check(SSD300_VOC, 0.3, 0.2, "multi")
    assert explorer.counts["neutral"] > 0
    explorer.matching.value = "bipartite"
    check(SSD300_VOC, 0.3, 0.2, "bipartite")
    assert explorer.counts["positive"] == 4  # one anchor per box
    explorer.preset.value = "SSD512 VOC"
    check(SSD512_VOC, 0.3, 0.2, "bipartite")
    assert "24564 anchors" in explorer.ax.title.get_text()
    explorer.preset.value = "SSD300 COCO"
    explorer.matching.value = "multi"
    check(SSD300_COCO, 0.3, 0.2, "multi")


@pytest.fixture(scope="module")
def loss_explorer(samples, astronaut):
    photo, record = astronaut
    batch = []
    for name in ("astronaut", "chelsea"):
        width, height = samples[name]["size"]
        boxes = samples[name]["boxes"] / np.array([width, height, width, height]) * 300
        batch.append(np.concatenate([np.ones((len(boxes), 1)), boxes], axis=1))
    y_true = SSDEncoder(SSD300_VOC)(batch)
    return LossExplorer(photo, y_true, SSD300_VOC, gt_boxes=record["boxes"]), y_true


def test_loss_explorer_every_control(loss_explorer, astronaut):
    from keras import ops

    from ssd_lib.losses import SSDLoss

    explorer, y_true = loss_explorer
    photo = astronaut[0]
    scale = np.array([photo.shape[1], photo.shape[0]] * 2)
    corners = centroids_to_corners(generate_anchors(SSD300_VOC)) * scale

    def check(ratio, quality, mining):
        loss = SSDLoss(neg_pos_ratio=ratio, mining=mining)
        y_pred = explorer.y_pred
        assert float(loss(y_true, y_pred)) == pytest.approx(explorer.loss, rel=1e-5)
        kept = ops.convert_to_numpy(loss.terms(y_true, y_pred)["kept_negative_mask"])[0] > 0
        np.testing.assert_allclose(drawn_corners(explorer.hard_negatives), corners[kept], atol=1e-3)
        np.testing.assert_allclose(drawn_corners(explorer.positives), corners[y_true[0, :, 0] > 0], atol=1e-3)
        class_loss = ops.convert_to_numpy(loss.terms(y_true, y_pred)["classification_per_anchor"])[0]
        sorted_negatives = np.sort(class_loss[y_true[0, :, 0] == 0])[::-1]
        ranks, values = explorer.kept_line.get_data()
        assert ranks[0] == 1 and ranks[-1] == kept.sum()
        np.testing.assert_allclose(values, sorted_negatives[ranks - 1], rtol=1e-6)
        ranks, values = explorer.rank_line.get_data()
        assert ranks[-1] == len(sorted_negatives)
        np.testing.assert_allclose(values, sorted_negatives[ranks - 1], rtol=1e-6)
        status = f"image 0: {int((y_true[0, :, 0] > 0).sum())} positives, {int(kept.sum())} negatives ({mining})"
        assert explorer.status.get_text().startswith(status)
        values = explorer.term_values
        assert values[3] == explorer.loss
        assert values[0] + values[1] + values[2] == pytest.approx(explorer.loss, rel=1e-4)  # alpha = 1
        widths = [bar.get_width() for bar in explorer.term_bars]
        np.testing.assert_allclose(widths, np.maximum(np.array(values) - explorer.BAR_START, 0), rtol=1e-6)
        assert [label.get_text() for label in explorer.term_labels] == [f" {value:.2f}" for value in values]
        return explorer.loss

    noisy = check(3, 0.5, "per_image")
    n_positives = int((y_true[..., 0] > 0).sum())
    assert explorer.terms["n_kept_negatives"].tolist() == (3 * (y_true[..., 0] > 0).sum(axis=1)).tolist()
    explorer.quality.value = 1.0
    assert check(3, 1.0, "per_image") < 0.1 * noisy  # a perfect prediction costs little
    explorer.quality.value = 0.0
    assert check(3, 0.0, "per_image") > noisy
    explorer.neg_pos_ratio.value = 6
    check(6, 0.0, "per_image")
    assert int(explorer.terms["n_kept_negatives"].sum()) == 6 * n_positives
    explorer.mining.value = "batch"
    check(6, 0.0, "batch")
    assert int(explorer.terms["n_kept_negatives"].sum()) == 6 * n_positives
    explorer.quality.value = 0.5
    explorer.neg_pos_ratio.value = 3
    explorer.mining.value = "per_image"
    assert check(3, 0.5, "per_image") == pytest.approx(noisy)


def test_displayed_explorers_carry_a_static_picture(loss_explorer, astronaut):
    photo, record = astronaut
    assert_static_picture(MatchingExplorer(photo, record["boxes"]))
    assert_static_picture(loss_explorer[0])
