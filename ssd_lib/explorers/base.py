"""The explorers' base classes: controls, a figure rendered into an image widget, errors, and a
static picture of the figure for notebook viewers that do not run the notebook.

The update logic is plain Python: in a test (no kernel, no browser) setting
``explorer.some_slider.value = x`` runs ``update()`` synchronously and exceptions propagate.
``benchmarks/bench_widgets.py`` measures the redraw time of each explorer.
"""

from __future__ import annotations

import base64

import ipywidgets as widgets

from .. import viz


class Explorer(widgets.VBox):
    """Base class: controls on top, the rendered figure below, errors (if any) at the bottom.

    Subclasses build ``self.figure`` and their artists, call ``super().__init__(controls,
    figure)``, and implement :meth:`draw` (update the artists from the controls' values).

    Displayed in a notebook, an explorer gives the front end two representations in one output
    (:meth:`_repr_mimebundle_`): the live widget, which JupyterLab shows, and a PNG picture of
    the figure as drawn at that moment, which static renderers (GitHub, nbviewer, an HTML
    export) show instead of the widget's text.
    """

    def __init__(self, controls, figure, image_width: int | None = None):
        self.figure = figure
        self.controls = list(controls)
        width = image_width or int(figure.get_figwidth() * figure.dpi)
        self.image = widgets.Image(format="png", layout=widgets.Layout(width=f"{width}px"))
        self.errors = widgets.Output()
        for control in self.controls:
            control.observe(self._on_change, names="value")
        super().__init__(
            [widgets.HBox(self.controls, layout=widgets.Layout(flex_flow="row wrap")), self.image, self.errors]
        )
        self.update()

    def draw(self) -> None:
        """Update the figure's artists from the current control values (subclasses)."""
        raise NotImplementedError

    def update(self) -> None:
        """Redraw: :meth:`draw`, then render the figure into the image widget."""
        self.draw()
        self.image.value = viz.figure_to_png(self.figure)

    def static_picture(self) -> bytes:
        """PNG bytes of the figure as the explorer shows it now (its last render; nothing is
        redrawn), made small for storing in a notebook: 256 colours, compression level 9."""
        return viz.encode_canvas(self.figure, "png", compress_level=9, palette_colors=256)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The widget view (and its text) plus ``image/png``: :meth:`static_picture` in base64."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if "image/png" not in (kwargs.get("exclude") or ()):
            bundle["image/png"] = base64.b64encode(self.static_picture()).decode("ascii")
        return bundle

    def _on_change(self, change) -> None:
        # In a kernel, errors show under the figure; in plain Python (tests) they propagate.
        self.errors.clear_output()
        with self.errors:
            self.update()


class BlitExplorer(Explorer):
    """An :class:`Explorer` that re-renders only the artists its :meth:`animated_artists` lists
    (:class:`ssd_lib.viz.BlitRenderer`); everything else is drawn once. ``image_format`` is
    ``"png"`` or ``"jpeg"`` (for figures that show a photo)."""

    image_format = "png"

    def animated_artists(self) -> list:
        """The artists :meth:`draw` changes (subclasses)."""
        raise NotImplementedError

    def update(self) -> None:
        if getattr(self, "_renderer", None) is None:
            self._renderer = viz.BlitRenderer(self.figure, self.animated_artists(), self.image_format)
            self.image.format = self.image_format
        self.draw()
        self.image.value = self._renderer.render()
