"""Checks every explorer's tests share: what a notebook stores when it displays an explorer."""

from __future__ import annotations

import base64
import io

import numpy as np
from IPython.core.formatters import DisplayFormatter
from PIL import Image

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def assert_static_picture(explorer) -> np.ndarray:
    """Display ``explorer`` as IPython does and check the output bundle: the widget view, its
    text, and an ``image/png`` that decodes to the figure: its size, and, up to its 256-colour
    palette, the pixels the image widget shows (PNG or JPEG).

    Returns the picture as an ``(H, W, 3)`` uint8 array.
    """
    data, _ = DisplayFormatter().format(explorer)
    assert {WIDGET_VIEW, "text/plain", "image/png"} <= set(data), sorted(data)
    assert data[WIDGET_VIEW]["model_id"] == explorer.model_id
    png = base64.b64decode(data["image/png"], validate=True)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    figure = explorer.figure
    expected_size = (round(figure.get_figheight() * figure.dpi), round(figure.get_figwidth() * figure.dpi))
    assert picture.shape == (*expected_size, 3), (picture.shape, expected_size)
    # The canvas holds the last render: exactly what the image widget shows ...
    canvas = np.asarray(figure.canvas.buffer_rgba())[..., :3]
    if explorer.image.format == "png":
        shown = np.asarray(Image.open(io.BytesIO(explorer.image.value)).convert("RGB"))
        np.testing.assert_array_equal(canvas, shown, err_msg="the canvas is not what the widget shows")
    else:  # the widget's JPEG encodes exactly these pixels (quality 90, as ssd_lib.viz.encode_canvas)
        buffer = io.BytesIO()
        Image.fromarray(canvas).save(buffer, format="jpeg", quality=90)
        assert buffer.getvalue() == explorer.image.value, "the canvas is not what the widget shows"
    # ... and the picture is the canvas in 256 colours.
    in_256_colours = Image.fromarray(canvas).quantize(256, method=Image.Quantize.FASTOCTREE).convert("RGB")
    np.testing.assert_array_equal(picture, np.asarray(in_256_colours), err_msg="the picture is not the canvas")
    assert picture.std() > 5, "the picture is blank"
    return picture
