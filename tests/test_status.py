"""The library reports through logging: no print outside the commands' entry points, and
show_status makes the status lines visible once, where asked."""

import ast
import contextlib
import logging
import runpy
import sys
import warnings
from pathlib import Path

import pytest

from ssd_lib.status import LIBRARY_LOGGER, show_status
from ssd_lib.training.loop import logger as loop_logger

LIBRARY = Path(__file__).resolve().parents[1] / "ssd_lib"
#: Functions that may print: the commands' entry points (their result and their one error line) and
#: the notebooks' helper whose output is the line it prints (how to get missing weights).
PRINTING_FUNCTIONS = {"main", "_end_this_process", "load_if_present"}


def _prints_outside_entry_points(source: str) -> list[int]:
    """Lines of the ``print(...)`` calls in ``source`` that are not inside an entry point."""
    found = []

    def visit(node, allowed):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            allowed = allowed or node.name in PRINTING_FUNCTIONS
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
                and not allowed):  # fmt: skip
            found.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, allowed)

    visit(ast.parse(source), False)
    return found


def test_the_library_prints_only_in_command_entry_points():
    found = [f"{path.relative_to(LIBRARY.parent)}:{line}" for path in sorted(LIBRARY.rglob("*.py"))
             for line in _prints_outside_entry_points(path.read_text())]  # fmt: skip
    assert found == [], f"status goes through logging, not print: {found}"


def test_the_print_check_finds_a_print_outside_main():
    source = "def helper():\n    print('x')\n\ndef main():\n    def inner():\n        print('ok')\n    print('ok')\n"
    assert _prints_outside_entry_points(source) == [2]


@contextlib.contextmanager
def program_without_logging():
    """A program that configured no logging: pytest's handlers are off the root logger inside,
    and the root and library loggers are as before afterwards."""
    root, library = logging.getLogger(), logging.getLogger(LIBRARY_LOGGER)
    saved = root.handlers[:], library.handlers[:], library.level
    root.handlers[:] = []
    try:
        yield library
    finally:
        root.handlers[:], library.handlers[:] = saved[:2]
        library.setLevel(saved[2])


@pytest.mark.parametrize("to", ["stdout", "stderr"])
def test_show_status_writes_plain_lines_once(capsys, to):
    with program_without_logging() as library:
        show_status(to)
        handler = show_status(to)  # again: replaces the first, so a line shows once
        assert handler is not None and library.level == logging.INFO
        loop_logger.info("%s: resuming after epoch %d", "runs/mine", 2)
        logging.getLogger("ssd_lib.anything").debug("not shown")
        logging.getLogger("keras").info("another library's status")  # only the library's lines
        shown = capsys.readouterr()
    assert getattr(shown, {"stdout": "out", "stderr": "err"}[to]) == "runs/mine: resuming after epoch 2\n"
    assert getattr(shown, {"stdout": "err", "stderr": "out"}[to]) == ""


def test_show_status_leaves_a_configured_program_its_handlers(caplog):
    # pytest's caplog is the program's configuration here: the root logger has handlers.
    assert show_status() is None
    loop_logger.info("shown by the program's handler")
    assert caplog.messages[-1] == "shown by the program's handler"


def test_show_status_names_a_bad_stream():
    with pytest.raises(ValueError, match="to must be one of \\('stderr', 'stdout'\\), got 'file'"):
        show_status("file")


def test_a_command_run_with_python_m_logs_under_its_module_name(tmp_path, monkeypatch, caplog):
    """Under ``python -m ssd_lib.train`` the module is ``__main__``; its status lines must still come
    from ``ssd_lib.train``, below the logger the commands show (and train.log records)."""
    from ssd_lib.datasets import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", 2, 1, 0, image_size=32)
    monkeypatch.setattr(sys, "argv", ["ssd_lib.train", "--model", "small", "--data", str(data), "--out",
                                      str(tmp_path / "run"), "--epochs", "0"])  # fmt: skip
    caplog.set_level(logging.INFO, logger=LIBRARY_LOGGER)
    with warnings.catch_warnings(), pytest.raises(SystemExit) as stopped:
        warnings.simplefilter("ignore", RuntimeWarning)  # runpy: "found in sys.modules" (imported above)
        runpy.run_module("ssd_lib.train", run_name="__main__")
    assert stopped.value.code == 1  # --epochs 0: refused after the dataset was read
    names = {record.name for record in caplog.records if "voc dataset, training split 'train'" in record.getMessage()}
    assert names == {"ssd_lib.train"}

