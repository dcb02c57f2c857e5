"""Interactive explorers of the notebooks (ipywidgets), one class per explorer.

Every explorer is an :class:`Explorer`: a ``VBox`` holding its controls (sliders, toggles), an
``ipywidgets.Image`` that shows a matplotlib figure rendered to PNG, and an ``Output`` that
shows errors raised while updating. The figure's artists are made once; ``update()`` changes
them in place and re-renders, so a slider move costs one Agg render (tens of milliseconds), not
a new figure.

The update logic is plain Python: in a test (no kernel, no browser) setting
``explorer.some_slider.value = x`` runs ``update()`` synchronously and exceptions propagate.
``benchmarks/bench_widgets.py`` measures the redraw time of each explorer.
"""

from __future__ import annotations

import ipywidgets as widgets

from .viz import figure_to_png

__all__ = ["Explorer"]


class Explorer(widgets.VBox):
    """Base class: controls on top, the rendered figure below, errors (if any) at the bottom.

    Subclasses build ``self.figure`` and their artists, call ``super().__init__(controls,
    figure)``, and implement :meth:`draw` (update the artists from the controls' values).
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
        self.image.value = figure_to_png(self.figure)

    def _on_change(self, change) -> None:
        # In a kernel, errors show under the figure; in plain Python (tests) they propagate.
        self.errors.clear_output()
        with self.errors:
            self.update()
