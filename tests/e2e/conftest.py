"""Fixtures of the browser test: a JupyterLab server over a copy of the notebooks, Chromium, pages.

The notebooks are COPIED into a temporary "repository" (``lab_root``): ``lab_root/notebooks``
holds the copies, every other top-level entry of the repository (``data``, ``ssd_lib``, ...) is
a symlink to the real one. Relative paths such as ``../data/samples`` resolve exactly as in the
repository, and running the test can never modify a committed notebook (JupyterLab's autosave is
off as well). Files the notebooks write through ``../data`` land in the real, git-ignored
download folders, as they do under nbval.

Where Chromium (``/usr/bin/chromium``) or Playwright is missing the tests are skipped with a
message that says how to install them, except when the ``CI`` environment variable is set:
there the browser test must run, so they fail.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from lab_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    REPO,
    SCREENSHOTS,
    TIMINGS,
    close_notebook,
    start_lab,
    stop_lab,
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """Path of the system Chromium; skips (outside CI) or fails (CI) when it cannot be used."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(f"Chromium not found at {CHROMIUM}; install it with: sudo apt-get install chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("Python package playwright missing; install it with: pip install -e '.[dev]'")
    if missing:
        if in_ci():
            pytest.fail("CI is set, so the browser test must run: " + "; ".join(missing), pytrace=False)
        pytest.skip("; ".join(missing))
    return CHROMIUM


@pytest.fixture(scope="session")
def lab_root(tmp_path_factory) -> Path:
    """A repository-like temporary folder: copied notebooks, symlinks to everything else."""
    root = tmp_path_factory.mktemp("lab_root")
    shutil.copytree(
        REPO / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    for entry in REPO.iterdir():
        if entry.name not in ("notebooks", ".git"):
            (root / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    (root / "e2e_selftest").mkdir()  # notebooks the self-tests generate
    return root


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session")
def lab_server(chromium_executable, lab_root, tmp_path_factory):
    """JupyterLab serving ``lab_root``; stopped (with its kernels) at the end, also on failure.

    While it runs, SIGTERM (a CI time limit, ``kill``) interrupts pytest like Ctrl-C does, so
    the finalizers still stop the server and the browser.
    """
    previous_handler = signal.signal(signal.SIGTERM, _interrupt)
    try:
        server = start_lab(lab_root, tmp_path_factory.mktemp("jupyter_state"))
        try:
            yield server
        finally:
            stop_lab(server)
    finally:
        signal.signal(signal.SIGTERM, previous_handler)


@pytest.fixture(scope="session")
def browser_context(chromium_executable, tmp_path_factory):
    """Headless Chromium with a fresh profile."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")),
            executable_path=str(chromium_executable),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()
    finally:
        playwright.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.ssd_call_failed = report.failed


@pytest.fixture(scope="session")
def _lab_tab():
    """Holds the browser tab that shows JupyterLab, reused by the tests until one fails."""
    for stale in SCREENSHOTS.glob("FAILED_*.png"):  # from an earlier run
        stale.unlink()
    return {}


@pytest.fixture
def page(request, browser_context, lab_server, _lab_tab):
    """A browser tab showing JupyterLab, for one notebook at a time.

    Afterwards (pass or fail) the notebook's kernel is shut down. After a failure a screenshot of
    the whole page goes to ``tests/e2e/screenshots/`` and the tab is closed, so the next test
    starts from a fresh one.
    """
    if "tab" not in _lab_tab:
        _lab_tab["tab"] = browser_context.new_page()
        _lab_tab["tab"].set_default_timeout(60_000)
    tab = _lab_tab["tab"]
    try:
        yield tab
    finally:
        try:
            if getattr(request.node, "ssd_call_failed", False):
                SCREENSHOTS.mkdir(exist_ok=True)
                safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
                tab.screenshot(path=str(SCREENSHOTS / f"FAILED_{safe_name}.png"), full_page=True)
                raise RuntimeError("start the next test from a fresh tab")
            close_notebook(tab)
        except Exception:
            del _lab_tab["tab"]
            tab.close()
        finally:
            lab_server.shutdown_kernels()


def pytest_terminal_summary(terminalreporter):
    if not TIMINGS:
        return
    terminalreporter.section("browser test: seconds per notebook")
    for name, times in TIMINGS:
        fields = (f"{key} {value:5.1f}" if isinstance(value, float) else f"{key} {value}"
                  for key, value in times.items())
        terminalreporter.write_line(f"{name:28s} " + "  ".join(fields))
    total = sum(times["total"] for _, times in TIMINGS)
    terminalreporter.write_line(f"{'all notebooks':28s} total {total:5.1f}")
