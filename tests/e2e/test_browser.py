"""Every notebook in a real browser: JupyterLab + Chromium, run all cells, move every explorer.

For each ``notebooks/*.ipynb`` (collected at run time, so new notebooks are covered without
editing this file) the test opens the notebook in JupyterLab, runs all cells, waits for the
kernel to go idle, checks that no error shows and every widget rendered, then moves one control
of every explorer with the keyboard and checks that the plot changes within a second. A
screenshot of each explorer goes to ``tests/e2e/screenshots/`` (git-ignored).

The self-tests at the bottom run the same checking functions on notebooks broken on purpose
(a widget whose front-end model does not exist, a widget from an unknown module, a plot that does
not follow its slider, an explorer that raises, a cell that raises, a kernel that dies) and
assert that each is reported: the real test would fail on such a notebook.

Environment variables:
    SSD_E2E_NOTEBOOK_TIMEOUT   seconds allowed for "run all cells" of one notebook (default 900)
    SSD_UPDATE_SCREENSHOT=1    also write docs/explorer.png (first explorer of notebook 01)
    CI                         when set, a missing Chromium fails instead of skipping
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import nbformat
import pytest

from lab_browser import (
    REPO,
    SCREENSHOTS,
    TIMINGS,
    BrowserCheckError,
    check_control_redraws,
    check_no_errors,
    explorers,
    open_notebook,
    run_all_cells,
)

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
README_SCREENSHOT = REPO / "docs" / "explorer.png"
README_SCREENSHOT_NOTEBOOK = "01_"  # the explorer shown in the README comes from notebook 01
README_SCREENSHOT_MAX_BYTES = 150_000
NOTEBOOK_TIMEOUT_S = float(os.environ.get("SSD_E2E_NOTEBOOK_TIMEOUT", "900"))


# The region of an explorer that holds something (its VBox spans the notebook's whole width).
_CONTENT_CLIP_JS = """
(view) => {
  const box = view.querySelector('.widget-vbox') || view;
  const rects = [...box.querySelectorAll('.widget-hbox > *, img, .widget-output > *')]
    .map((element) => element.getBoundingClientRect())
    .filter((rect) => rect.width > 0 && rect.height > 0);
  if (!rects.length) return null;
  const left = Math.min(...rects.map((r) => r.left)) - 4;
  const top = Math.min(...rects.map((r) => r.top));
  const right = Math.max(...rects.map((r) => r.right)) + 4;
  const bottom = Math.max(...rects.map((r) => r.bottom)) + 4;
  return {x: left + window.scrollX, y: top + window.scrollY, width: right - left, height: bottom - top};
}
"""


def screenshot_explorer(page, explorer, path: Path) -> bytes:
    """PNG screenshot of the explorer cropped to its controls and plot; also written to ``path``."""
    explorer.scroll_into_view_if_needed()
    clip = explorer.evaluate(_CONTENT_CLIP_JS)
    if clip is None:
        return explorer.screenshot(path=str(path))
    return page.screenshot(path=str(path), clip=clip)


def save_readme_screenshot(png: bytes, path: Path = README_SCREENSHOT) -> int:
    """Write ``png`` as a small PNG (at most 1000 px wide; fewer colours only if too large).

    Returns the file's size in bytes.
    """
    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    if image.width > 1000:
        image = image.resize((1000, round(image.height * 1000 / image.width)), Image.LANCZOS)
    for colours in (None, 256, 128):
        buffer = io.BytesIO()
        reduced = image if colours is None else image.quantize(colours, method=Image.Quantize.FASTOCTREE)
        reduced.save(buffer, "PNG", optimize=True)
        if buffer.tell() <= README_SCREENSHOT_MAX_BYTES:
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return buffer.tell()


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_in_jupyterlab(notebook, page, lab_server):
    start = time.monotonic()
    open_notebook(page, lab_server, f"notebooks/{notebook.name}")
    opened = time.monotonic()
    run_all_cells(page, timeout_s=NOTEBOOK_TIMEOUT_S)
    ran = time.monotonic()
    check_no_errors(page)
    found = explorers(page)
    assert found, f"{notebook.name}: no explorer (a widget view with a plot) rendered in JupyterLab"
    SCREENSHOTS.mkdir(exist_ok=True)
    redraws = []
    for index, explorer in enumerate(found):
        png = screenshot_explorer(page, explorer, SCREENSHOTS / f"{notebook.stem}_explorer{index}.png")
        if index == 0 and notebook.name.startswith(README_SCREENSHOT_NOTEBOOK) and os.environ.get(
            "SSD_UPDATE_SCREENSHOT"
        ):
            save_readme_screenshot(png)
        try:
            redraws.append(check_control_redraws(page, explorer))
        except BrowserCheckError as error:
            raise BrowserCheckError(f"{notebook.name}, explorer {index}: {error}") from None
    check_no_errors(page, wait_for_widgets_s=0)  # nothing broke while moving the controls
    TIMINGS.append(
        (
            notebook.stem,
            {
                "open": opened - start,
                "run": ran - opened,
                "explorers": len(found),
                "redraw_max": max(redraws),
                "total": time.monotonic() - start,
            },
        )
    )


# --------------------------------------------------------------------------------------------
# Self-tests: the same checks on notebooks broken on purpose
# --------------------------------------------------------------------------------------------

_EXPLORER_CELL = '''\
import ipywidgets as widgets
import numpy as np

from ssd_lib import viz
from ssd_lib.explorers.base import Explorer


class WaveExplorer(Explorer):
    """A sine wave whose frequency follows a slider (frozen: ignores it; failing: raises)."""

    def __init__(self, mode="working"):
        self.mode = mode
        self.frequency = widgets.IntSlider(value=1, min=1, max=5, description="frequency")
        figure, axes = viz.new_figure(figsize=(3, 2))
        axes.set_xlim(0, 1)
        axes.set_ylim(-1.1, 1.1)
        (self.line,) = axes.plot([], [])
        self.draws = 0
        super().__init__([self.frequency], figure)

    def draw(self):
        self.draws += 1
        if self.mode == "failing" and self.draws > 1:
            raise ValueError("this explorer is broken on purpose")
        frequency = 1 if self.mode == "frozen" else self.frequency.value
        x = np.linspace(0, 1, 200)
        self.line.set_data(x, np.sin(2 * np.pi * frequency * x))
'''

_MISSING_MODEL_CELL = """\
from IPython.display import display

# A widget view whose model does not exist in the front end.
display(
    {"application/vnd.jupyter.widget-view+json":
        {"model_id": "0123456789abcdef0123456789abcdef", "version_major": 2, "version_minor": 0}},
    raw=True,
)
"""

_UNKNOWN_MODULE_CELL = """\
import ipywidgets as widgets
from traitlets import Unicode


class Unknown(widgets.DOMWidget):
    # A front-end model from a JavaScript module that is not installed.
    _model_module = Unicode("ssd-no-such-widget-module").tag(sync=True)
    _model_module_version = Unicode("1.0.0").tag(sync=True)
    _model_name = Unicode("NoSuchModel").tag(sync=True)
    _view_module = Unicode("ssd-no-such-widget-module").tag(sync=True)
    _view_module_version = Unicode("1.0.0").tag(sync=True)
    _view_name = Unicode("NoSuchView").tag(sync=True)


Unknown()
"""


def write_notebook(lab_root: Path, name: str, cells: list) -> str:
    """Write a notebook under ``lab_root/e2e_selftest``; returns its path for the server.

    ``cells``: sources of code cells, or (source, tags) pairs.
    """
    notebook = nbformat.v4.new_notebook()
    for cell in cells:
        source, tags = (cell, []) if isinstance(cell, str) else cell
        notebook.cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": tags}))
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, lab_root / "e2e_selftest" / name)
    return f"e2e_selftest/{name}"


def test_harness_accepts_working_explorer_and_rejects_frozen_and_failing_ones(page, lab_server, lab_root):
    path = write_notebook(
        lab_root,
        "explorers.ipynb",
        [
            _EXPLORER_CELL,
            'WaveExplorer("working")',
            'WaveExplorer("frozen")',
            'WaveExplorer("failing")',
        ],
    )
    open_notebook(page, lab_server, path)
    run_all_cells(page, timeout_s=120)
    assert check_no_errors(page) == 3  # nothing is wrong until a control moves
    working, frozen, failing = explorers(page)

    assert check_control_redraws(page, working) < 1.0
    with pytest.raises(BrowserCheckError, match="the plot did not change within .* after moving slider 0"):
        check_control_redraws(page, frozen)
    with pytest.raises(BrowserCheckError, match="this explorer is broken on purpose"):
        check_control_redraws(page, failing)
    with pytest.raises(BrowserCheckError, match="ValueError"):
        check_no_errors(page, wait_for_widgets_s=0)


@pytest.mark.parametrize(
    "name, cell, expected",
    [
        ("missing_model", _MISSING_MODEL_CELL, "Error displaying widget: model not found"),
        ("unknown_module", _UNKNOWN_MODULE_CELL, "Error displaying widget .*ssd-no-such-widget-module"),
    ],
    ids=["missing_model", "unknown_module"],
)
def test_harness_rejects_a_widget_that_cannot_display(page, lab_server, lab_root, name, cell, expected):
    path = write_notebook(lab_root, f"{name}.ipynb", [cell])
    open_notebook(page, lab_server, path)
    run_all_cells(page, timeout_s=120)
    with pytest.raises(BrowserCheckError, match=f"cell 0, widget view: {expected}"):
        check_no_errors(page)


def test_harness_rejects_a_cell_that_raises_unless_tagged(page, lab_server, lab_root):
    # A cell tagged raises-exception shows its error on purpose (as under nbval and nbconvert).
    path = write_notebook(
        lab_root, "cell_error.ipynb", [("int('one')", ["raises-exception"]), "x = 1", "1 / 0", "y = 2"]
    )
    open_notebook(page, lab_server, path)
    expected = "error output in the notebook:\ncell 2: ZeroDivisionError"
    with pytest.raises(BrowserCheckError, match=expected) as caught:
        run_all_cells(page, timeout_s=120)
    assert "cell 0" not in str(caught.value)
    with pytest.raises(BrowserCheckError, match="cell 2") as caught:
        check_no_errors(page, wait_for_widgets_s=0)
    assert "cell 0" not in str(caught.value)


def test_harness_rejects_a_kernel_that_dies(page, lab_server, lab_root):
    path = write_notebook(lab_root, "kernel_death.ipynb", ["import os\nos._exit(1)", "x = 1"])
    open_notebook(page, lab_server, path)
    with pytest.raises(BrowserCheckError, match="kernel died|run-all-cells stopped"):
        run_all_cells(page, timeout_s=120)
