"""Every committed notebook was executed top to bottom in one clean run.

nbval only compares the outputs a notebook has stored; a cell that was never executed (or a
notebook saved half-run) passes ``--nbval`` unchecked. So every notebook in notebooks/ must have
code cells numbered exactly 1..n in order, no error or stderr outputs, and no saved widget state
(it holds rendered images and changes on every run).
"""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def code_cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return notebook, [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_was_executed_top_to_bottom(path):
    _, cells = code_cells(path)
    assert cells, f"{path.name} has no code cells"
    counts = [cell.get("execution_count") for cell in cells]
    expected = list(range(1, len(cells) + 1))
    assert counts == expected, (
        f"{path.name}: execution counts {counts} are not 1..{len(cells)}; re-run it from a fresh "
        "kernel with jupyter nbconvert --execute --inplace"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_no_errors_or_stderr(path):
    _, cells = code_cells(path)
    for number, cell in enumerate(cells, start=1):
        for output in cell.get("outputs", []):
            assert output["output_type"] != "error", (
                f"{path.name}, code cell {number}: stored error {output.get('ename')}: {output.get('evalue')}"
            )
            if output["output_type"] == "stream":
                assert output["name"] != "stderr", (
                    f"{path.name}, code cell {number}: stored stderr output: {''.join(output['text'])[:200]!r}"
                )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebook_has_no_widget_state(path):
    notebook, _ = code_cells(path)
    assert "widgets" not in notebook.get("metadata", {}), (
        f"{path.name}: remove metadata.widgets (saved widget state) before committing"
    )
