"""Figures for explorers and notebooks: making, rendering (also blitted) and showing images."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from .palette import ERROR_COLOR


def new_figure(figsize=(6.0, 6.0), dpi: int = 80, **subplot_kw) -> tuple[Figure, object]:
    """A figure detached from pyplot (for explorers): ``(figure, axes)``.

    It is drawn by :func:`figure_to_png`, never shown inline by the notebook backend.
    ``subplot_kw`` goes to ``Figure.subplots`` (``nrows``, ``ncols``, ``gridspec_kw`` ...).
    """
    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(**subplot_kw)
    return figure, axes


def figure_to_png(figure: Figure, freeze_layout: bool = True) -> bytes:
    """Render a figure with Agg and encode it as PNG bytes (fast compression).

    With ``freeze_layout`` the layout computed by this first render is kept for later renders
    (constrained layout costs as much as the drawing itself), as explorers want.
    """
    figure.canvas.draw()
    if freeze_layout and figure.get_layout_engine() is not None:
        figure.set_layout_engine("none")
    return encode_canvas(figure)


def encode_canvas(figure: Figure, image_format: str = "png", compress_level: int = 1,
                  palette_colors: int | None = None) -> bytes:  # fmt: skip
    """The figure's canvas as last rendered (no new drawing), encoded as PNG or JPEG bytes.

    Args:
        figure: a figure with an Agg canvas (:func:`new_figure`).
        image_format: ``"png"`` (lossless) or ``"jpeg"`` (quality 90; faster and smaller for
            figures showing a photo).
        compress_level: PNG compression, 1 (fast, for redraws) to 9 (small, for stored pictures).
        palette_colors: PNG only: reduce the image to a palette of this many colours (2..256;
            a photo's PNG shrinks about 4 times at 256 colours, with no difference a reader sees).
    """
    if image_format not in ("png", "jpeg"):
        raise ValueError(f"encode_canvas: image_format must be 'png' or 'jpeg', got {image_format!r}")
    rgb = Image.fromarray(np.asarray(figure.canvas.buffer_rgba())[..., :3])
    buffer = io.BytesIO()
    if image_format == "jpeg":
        rgb.save(buffer, format="jpeg", quality=90)
    else:
        if palette_colors is not None:
            rgb = rgb.quantize(palette_colors, method=Image.Quantize.FASTOCTREE)
        rgb.save(buffer, format="png", compress_level=compress_level)
    return buffer.getvalue()


def show_image(ax, image, title: str | None = None, fade: float = 0.0):
    """Show an ``(H, W, 3)`` image with pixel coordinates (origin top-left); return the artist.

    ``fade`` in [0, 1) blends the image towards white by that share, so that many thin boxes
    drawn over it stay readable (matching figures fade the photo by 0.45).
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8) if image.max() > 1.0 else image
    if not 0.0 <= fade < 1.0:
        raise ValueError(f"show_image: fade must be in [0, 1), got {fade}")
    if fade:
        white = 255 if image.dtype == np.uint8 else 1.0
        image = (image * (1.0 - fade) + white * fade).astype(image.dtype)
    artist = ax.imshow(image, interpolation="antialiased")
    ax.set_xlim(-0.5, image.shape[1] - 0.5)
    ax.set_ylim(image.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title)
    return artist


def figure_message(figure: Figure):
    """A hidden, centred text box on ``figure`` for explorers to show errors in (``set_text``,
    ``set_visible``); it is drawn above every axes."""
    return figure.text(
        0.5, 0.5, "", ha="center", va="center", fontsize=12, color=ERROR_COLOR, wrap=True,
        visible=False, zorder=10,
        bbox=dict(boxstyle="round,pad=0.6", facecolor="#fff4f4", edgecolor=ERROR_COLOR),
    )  # fmt: skip


class BlitRenderer:
    """Renders a figure to PNG, redrawing only the artists that change after the first render.

    The first :meth:`render` draws the whole figure without the ``animated_artists`` and keeps
    that image (axes, ticks, labels, photos) as the background; every render then restores the
    background and draws only the animated artists on top (matplotlib's "blitting"). Text and
    tick drawing dominates a full render, so this is several times faster for explorers.
    Only the animated artists may change between renders; the layout is frozen after the first.

    Args:
        figure: a figure from :func:`new_figure`.
        animated_artists: the artists the explorer updates (collections, texts, titles ...).
        image_format: ``"png"`` (lossless; small and fast for plots) or ``"jpeg"`` (quality
            90; several times faster to encode and smaller for figures showing a photo).
    """

    def __init__(self, figure: Figure, animated_artists, image_format: str = "png"):
        if image_format not in ("png", "jpeg"):
            raise ValueError(f"BlitRenderer: image_format must be 'png' or 'jpeg', got {image_format!r}")
        self.figure = figure
        self.image_format = image_format
        self.animated_artists = list(animated_artists)
        for artist in self.animated_artists:
            artist.set_animated(True)
        self._background = None

    def render(self) -> bytes:
        """PNG or JPEG bytes of the figure with the animated artists' current state."""
        canvas = self.figure.canvas
        if self._background is None:
            canvas.draw()
            if self.figure.get_layout_engine() is not None:
                self.figure.set_layout_engine("none")
            self._background = canvas.copy_from_bbox(self.figure.bbox)
        else:
            canvas.restore_region(self._background)
        renderer = canvas.get_renderer()
        for artist in self.animated_artists:
            if artist.get_visible():
                artist.draw(renderer)
        return encode_canvas(self.figure, self.image_format)


class PixelImage(matplotlib.artist.Artist):
    """An RGB image that fills its axes, resized by Pillow to the axes' size in pixels at draw
    time and drawn without matplotlib's resampling pipeline (several times faster than
    ``imshow`` for explorers that redraw photos). The axes limits must be the image extent
    (as :func:`show_image` sets them).
    """

    def __init__(self, ax, image):
        super().__init__()
        self.axes = ax
        self.set_figure(ax.figure)
        self.set_data(image)
        ax.add_artist(self)

    def set_data(self, image) -> None:
        """The ``(H, W, 3)`` uint8 pixels to show."""
        self._pixels = np.asarray(image)
        self.stale = True

    def get_array(self) -> np.ndarray:
        return self._pixels

    def draw(self, renderer) -> None:
        if not self.get_visible():
            return
        x0, y0, x1, y1 = (int(round(v)) for v in self.axes.bbox.extents)  # display pixels
        if x1 <= x0 or y1 <= y0:
            return
        shown = Image.fromarray(self._pixels).resize((x1 - x0, y1 - y0), Image.Resampling.BILINEAR)
        rgba = np.array(shown.transpose(Image.Transpose.FLIP_TOP_BOTTOM).convert("RGBA"))  # rows bottom-up
        context = renderer.new_gc()
        renderer.draw_image(context, x0, y0, rgba)
        context.restore()
        self.stale = False
