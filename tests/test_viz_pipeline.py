"""The pipeline diagram of notebook 00 (ssd_lib.viz.pipeline) states the configuration's numbers."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from ssd_lib import viz  # noqa: E402
from ssd_lib.config import SSD300_VOC, SSD_SMALL_SHAPES  # noqa: E402

SSD300_SOURCES = [("conv4_3_norm", 512), ("fc7", 1024), ("conv6_2", 512), ("conv7_2", 256), ("conv8_2", 256),
                  ("conv9_2", 256)]  # fmt: skip


def drawn_text(config, **kwargs):
    figure, ax = viz.new_figure((12, 5.4))
    texts = viz.draw_ssd_pipeline(ax, config, **kwargs)
    figure.canvas.draw()  # the diagram renders without errors
    return [text.get_text() for text in texts], ax


def test_ssd300_diagram_states_the_paper_numbers():
    texts, ax = drawn_text(SSD300_VOC, sources=SSD300_SOURCES)
    assert "image\n300×300 px" in texts
    per_layer = [(4, 5776), (6, 2166), (6, 600), (6, 150), (4, 36), (4, 4)]  # the paper's 8732 anchors
    for boxes, anchors in per_layer:
        assert f"{boxes} per cell\n= {anchors:,}" in texts
    assert "conv4_3_norm\n38×38×512" in texts and "conv9_2\n1×1×256" in texts
    assert any("8,732 anchors × (21 class scores + 4 box offsets)" in text for text in texts)
    assert len(ax.images) == SSD300_VOC.n_layers  # one checkerboard per source map, no input image given


def test_diagram_follows_another_configuration_and_draws_the_image():
    image = np.zeros((192, 192, 3), np.uint8)
    texts, ax = drawn_text(SSD_SMALL_SHAPES, image=image)
    assert "image\n192×192 px" in texts
    assert [text for text in texts if text.startswith("48×48")] == ["48×48"]  # no source names given
    assert any("18,414 anchors × (5 class scores + 4 box offsets)" in text for text in texts)
    assert any("5 of its maps are sources" in text for text in texts)
    assert len(ax.images) == SSD_SMALL_SHAPES.n_layers + 1


def test_sources_must_name_every_source_layer():
    figure, ax = viz.new_figure()
    with pytest.raises(ValueError, match="sources has 2 entries, config has 6 source layers"):
        viz.draw_ssd_pipeline(ax, SSD300_VOC, sources=SSD300_SOURCES[:2])
