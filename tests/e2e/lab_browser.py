"""Drive JupyterLab in Chromium: start a server, open a notebook, run it, check what the user sees.

The browser test (``test_browser.py``) and its self-tests use exactly these functions, so a
self-test that sees a :class:`BrowserCheckError` shows that the real test would fail too.

What is checked is what a learner sees in JupyterLab and what headless nbval cannot see:

* every code cell ran (an execution count) and the kernel is idle;
* no error output and no traceback on stderr, in a cell or inside a widget (the explorers show
  exceptions raised while updating in an ``Output`` widget below the figure);
* every widget view rendered: no "Error displaying widget", "model not found" or a
  "Loading widget..." that never goes away;
* every explorer (a widget view holding an ``<img>``) redraws when one of its controls moves:
  the PNG behind the ``<img>`` changes within :data:`REDRAW_TIMEOUT_S`.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"  # git-ignored
CHROMIUM = Path(os.environ.get("SSD_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# A slider move must show a new plot within this time (the explorers redraw in tens of ms).
REDRAW_TIMEOUT_S = 1.0
# Widget views render asynchronously after their cell finished; give them this long.
WIDGET_RENDER_TIMEOUT_S = 30.0
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_ERROR_TEXTS = ("Error displaying widget", "model not found")
WIDGET_LOADING_TEXT = "Loading widget..."
# (test name, {phase: seconds}) of every notebook run, printed at the end (conftest.py).
TIMINGS: list[tuple[str, dict]] = []

# User settings of the fresh JupyterLab settings dir: render every cell (no windowing, so
# widget views outside the viewport exist in the DOM), never save the notebook, no news pop-up.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


class BrowserCheckError(AssertionError):
    """What a learner would see go wrong in JupyterLab (an error, a broken widget, a frozen plot)."""


# --------------------------------------------------------------------------------------------
# The JupyterLab server
# --------------------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class LabServer:
    """A running ``jupyter lab`` (its own process group) serving ``root_dir``."""

    process: subprocess.Popen
    url: str
    token: str
    root_dir: Path
    log_path: Path

    def api(self, method: str, path: str, timeout: float = 10.0):
        """Call the server's REST API; returns the decoded JSON (or None for an empty body)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_kernels(self) -> None:
        """Shut down every session and kernel of this server (after each notebook: frees memory)."""
        for session in self.api("GET", "/api/sessions"):
            with contextlib.suppress(urllib.error.URLError, OSError):
                self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30.0)
        for kernel in self.api("GET", "/api/kernels"):
            with contextlib.suppress(urllib.error.URLError, OSError):
                self.api("DELETE", f"/api/kernels/{kernel['id']}", timeout=30.0)

    def log_tail(self, n_chars: int = 3000) -> str:
        """The end of the server's log (for error messages)."""
        return self.log_path.read_text(errors="replace")[-n_chars:]


def start_lab(root_dir: Path, state_dir: Path, startup_timeout_s: float = 120.0) -> LabServer:
    """Start JupyterLab from this Python environment on 127.0.0.1 with a random port and token.

    ``state_dir`` receives fresh config, data, runtime, workspace and settings dirs, so nothing
    from the user's own Jupyter setup (kernelspecs, workspaces, settings) leaks into the test.
    Always pair with :func:`stop_lab` (also on failure).
    """
    bin_dir = Path(sys.executable).parent
    env = dict(os.environ)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    for name in ("config", "data", "runtime", "workspaces", "settings"):
        (state_dir / name).mkdir(parents=True, exist_ok=True)
    env["JUPYTER_CONFIG_DIR"] = str(state_dir / "config")
    env["JUPYTER_DATA_DIR"] = str(state_dir / "data")
    env["JUPYTER_RUNTIME_DIR"] = str(state_dir / "runtime")
    env["JUPYTERLAB_WORKSPACES_DIR"] = str(state_dir / "workspaces")
    env["JUPYTERLAB_SETTINGS_DIR"] = str(state_dir / "settings")
    for relative, settings in LAB_SETTINGS.items():
        path = state_dir / "settings" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings))
    port, token = free_port(), secrets.token_hex(16)
    log_path = state_dir / "jupyterlab.log"
    command = [
        str(bin_dir / "jupyter"), "lab", "--no-browser", "--allow-root", "--ip=127.0.0.1",
        f"--port={port}", "--ServerApp.port_retries=0", f"--ServerApp.token={token}",
        f"--ServerApp.root_dir={root_dir}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root_dir,
            start_new_session=True,  # its own process group: stop_lab kills the whole group
        )  # fmt: skip
    server = LabServer(process, f"http://127.0.0.1:{port}", token, root_dir, log_path)
    deadline = time.monotonic() + startup_timeout_s
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {process.returncode}:\n{server.log_tail()}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                server.api("GET", "/api/status", timeout=2.0)
                return server
            if time.monotonic() > deadline:
                log = server.log_tail()
                raise RuntimeError(f"no answer from jupyter lab in {startup_timeout_s} s:\n{log}")
            time.sleep(0.25)
    except BaseException:  # also KeyboardInterrupt: never leave a server behind
        stop_lab(server)
        raise


def stop_lab(server: LabServer, grace_s: float = 15.0) -> None:
    """Stop the server, its kernels and anything else it started; never raises."""
    process = server.process
    try:  # kernels run in sessions of their own: remember them before the server goes away
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if process.poll() is None:
        with contextlib.suppress(Exception):
            server.shutdown_kernels()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # stragglers left in the server's group
    for child in descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()


# --------------------------------------------------------------------------------------------
# A notebook in the browser
# --------------------------------------------------------------------------------------------

# Cell states read from JupyterLab's own models (not the DOM): execution counts, error outputs,
# stderr tracebacks. Cells tagged ``raises-exception`` may show an error (JupyterLab runs on).
_CELL_STATE_JS = """
() => {
  const panel = window.__ssdPanel;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const state = {
    kernel: kernel ? kernel.status : 'none',
    connection: kernel ? kernel.connectionStatus : 'none',
    runDone: window.__ssdRunDone === true,
    runError: window.__ssdRunError || null,
    nCode: 0, pending: [], errors: [],
  };
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    state.nCode += 1;
    if (cell.model.executionCount === null) state.pending.push(index);
    const tags = cell.model.getMetadata('tags') || [];
    if (tags.includes('raises-exception')) return;
    const outputs = cell.model.outputs;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs.get(i);
      if (output.type === 'error') {
        const json = output.toJSON();
        const traceback = (json.traceback || []).join('\\n').replace(/\\x1b\\[[0-9;]*m/g, '');
        state.errors.push(`cell ${index}: ${json.ename}: ${json.evalue}\\n${traceback.slice(-1500)}`);
      } else if (output.type === 'stream') {
        const json = output.toJSON();
        const text = Array.isArray(json.text) ? json.text.join('') : json.text;
        if (json.name === 'stderr' && text.includes('Traceback')) {
          state.errors.push(`cell ${index}: traceback on stderr:\\n${text.slice(-1500)}`);
        }
      }
    }
  });
  return state;
}
"""

# What the DOM shows: rendered tracebacks (also inside the Output widgets of explorers) and
# widget views that failed or are still loading. Widget views are found through the cell models
# (their output nodes carry no mime type) and marked with ``data-ssd-widget-view``. Cells tagged
# ``raises-exception`` may show an error on purpose.
_DOM_STATE_JS = """
([widgetMime, errorTexts, loadingText]) => {
  const panel = window.__ssdPanel;
  const problems = [];
  panel.content.widgets.forEach((cell, cellIndex) => {
    if (cell.model.type !== 'code') return;
    if ((cell.model.getMetadata('tags') || []).includes('raises-exception')) return;
    for (const node of cell.node.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')) {
      const text = node.textContent || '';
      if (text.includes('Traceback') || /(^|\\n)\\w*(Error|Exception)\\b/.test(text)) {
        problems.push(`cell ${cellIndex}, error output shown: ${text.slice(-1500)}`);
      }
    }
  });
  let views = 0, loading = 0;
  panel.content.widgets.forEach((cell, cellIndex) => {
    if (cell.model.type !== 'code') return;
    const outputs = cell.model.outputs;
    const children = cell.outputArea.widgets;
    for (let i = 0; i < outputs.length; i++) {
      const view = (outputs.get(i).data || {})[widgetMime];
      if (!view || !view.model_id) continue;  // an empty model id: a closed widget, hidden
      views += 1;
      const child = children[i];
      const node = child && (child.node.querySelector('.jp-OutputArea-output') || child.node);
      if (!node) { loading += 1; continue; }
      node.setAttribute('data-ssd-widget-view', `${cellIndex}-${i}`);
      const text = node.textContent || '';
      if (errorTexts.some((bad) => text.includes(bad))) {
        problems.push(`cell ${cellIndex}, widget view: ${text.slice(0, 500)}`);
      }
      // ipywidgets 8 shows a model or view that fails to load as an error icon (ErrorWidget).
      if (node.querySelector('.jupyter-widgets-error-widget')) {
        const console = (window.__ssdConsoleErrors || []).slice(-2).join(' | ');
        problems.push(`cell ${cellIndex}, widget view: Error displaying widget (console: ${console})`);
      }
      const rendered = node.classList.contains('jupyter-widgets') || node.querySelector('.jupyter-widgets');
      if (text.includes(loadingText) || !rendered) loading += 1;
    }
  });
  return {problems, loading, views};
}
"""
_DOM_STATE_ARGS = [WIDGET_VIEW_MIME, list(WIDGET_ERROR_TEXTS), WIDGET_LOADING_TEXT]

_OPEN_JS = """
async (path) => {
  const app = window.jupyterapp;
  await app.restored;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  window.__ssdPanel = panel;
  window.__ssdRunDone = false;
  window.__ssdRunError = null;
  await panel.context.ready;
  await panel.sessionContext.ready;
  app.shell.activateById(panel.id);
  return panel.content.widgets.length;
}
"""

_CLOSE_JS = """
async () => {
  const panel = window.__ssdPanel;
  if (!panel || panel.isDisposed) return;
  window.__ssdPanel = null;
  await panel.sessionContext.shutdown();
  panel.context.model.dirty = false;
  panel.dispose();
}
"""

_RUN_ALL_JS = """
() => {
  const app = window.jupyterapp;
  app.shell.activateById(window.__ssdPanel.id);
  app.commands.execute('notebook:run-all-cells').then(
    () => { window.__ssdRunDone = true; },
    (error) => { window.__ssdRunDone = true; window.__ssdRunError = String(error); });
}
"""

# Bytes of the PNG behind an <img src="blob:..."> (ipywidgets' Image view), as a hash.
_IMAGE_DIGEST_JS = """
async (img) => {
  if (!img.src) return null;
  const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
  let hash = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) { hash = Math.imul(hash ^ bytes[i], 0x01000193) >>> 0; }
  return {src: img.src, size: bytes.length, hash};
}
"""


# Keep the browser console's errors (the first line of each) to explain broken widgets.
_CONSOLE_ERRORS_JS = """
window.__ssdConsoleErrors = [];
const ssdConsoleError = console.error.bind(console);
console.error = (...args) => {
  window.__ssdConsoleErrors.push(args.map((arg) => String(arg).split('\\n')[0]).join(' '));
  ssdConsoleError(...args);
};
"""


def open_lab(page, server: LabServer, timeout_s: float = 120.0) -> None:
    """Load JupyterLab (fresh workspace) in ``page`` and wait until the app has started."""
    page.add_init_script(_CONSOLE_ERRORS_JS)
    page.goto(f"{server.url}/lab?reset&token={server.token}", timeout=timeout_s * 1000)
    page.wait_for_function("() => window.jupyterapp !== undefined", timeout=timeout_s * 1000)
    page.evaluate("async () => { await window.jupyterapp.restored; }")


def open_notebook(page, server: LabServer, path: str, timeout_s: float = 120.0) -> None:
    """Open the notebook ``path`` (relative to the server's root) and wait for an idle kernel.

    Loads JupyterLab first unless ``page`` already shows it (a page is reused across notebooks:
    loading JupyterLab costs seconds; :func:`close_notebook` closes the previous one).
    """
    if not page.url.startswith(server.url) or not page.evaluate("() => window.jupyterapp !== undefined"):
        open_lab(page, server, timeout_s)
    page.evaluate(_OPEN_JS, path)
    wait_for_kernel_idle(page, timeout_s)


def close_notebook(page) -> None:
    """Shut down the open notebook's kernel and close it without saving.

    Raises RuntimeError when JupyterLab shows a dialog (e.g. "Kernel Restarting"): it would
    catch the key presses of the next notebook, so the caller should load a fresh tab.
    """
    page.evaluate(_CLOSE_JS)
    if page.locator(".jp-Dialog").count():
        dialog = page.locator(".jp-Dialog").first.inner_text()[:200]
        raise RuntimeError(f"JupyterLab shows a dialog: {dialog}")


def wait_for_kernel_idle(page, timeout_s: float) -> dict:
    """Wait until the open notebook's kernel is connected and idle; returns the cell state."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = page.evaluate(_CELL_STATE_JS)
        if state["kernel"] == "idle" and state["connection"] == "connected":
            return state
        if state["kernel"] == "dead":
            raise BrowserCheckError("the kernel died")
        if time.monotonic() > deadline:
            raise BrowserCheckError(f"kernel not idle after {timeout_s} s: {state['kernel']}")
        time.sleep(0.2)


def run_all_cells(page, timeout_s: float) -> None:
    """Run all cells; return when the kernel is idle and every code cell has an execution count.

    Raises :class:`BrowserCheckError` as soon as a cell shows an error (JupyterLab stops running
    there), when the kernel dies, or after ``timeout_s``.
    """
    page.evaluate(_RUN_ALL_JS)
    deadline = time.monotonic() + timeout_s
    stopped_since = None
    while True:
        time.sleep(0.5)
        state = page.evaluate(_CELL_STATE_JS)
        if state["errors"]:
            raise BrowserCheckError("error output in the notebook:\n" + "\n".join(state["errors"]))
        if state["runError"]:
            raise BrowserCheckError(f"run-all-cells failed: {state['runError']}")
        if state["kernel"] in ("dead", "restarting", "autorestarting"):
            raise BrowserCheckError(f"the kernel died while running the notebook ({state['kernel']})")
        if state["runDone"] and state["kernel"] == "idle":
            if not state["pending"]:
                return
            # Finished with cells that never ran (the kernel restarted, or execution stopped).
            stopped_since = stopped_since or time.monotonic()
            if time.monotonic() - stopped_since > 5.0:
                dialogs = page.locator(".jp-Dialog")
                shown = dialogs.first.inner_text()[:300] if dialogs.count() else "no dialog"
                raise BrowserCheckError(
                    f"run-all-cells stopped: cells {state['pending'][:5]} have no execution count "
                    f"(JupyterLab shows: {shown})"
                )
        if time.monotonic() > deadline:
            raise BrowserCheckError(
                f"not finished after {timeout_s} s: kernel {state['kernel']}, "
                f"{len(state['pending'])} of {state['nCode']} code cells without execution count "
                f"(first: cell {state['pending'][:1]})"
            )


def check_no_errors(page, wait_for_widgets_s: float = WIDGET_RENDER_TIMEOUT_S) -> int:
    """Assert no error output and that every widget view rendered; returns the number of views.

    Waits up to ``wait_for_widgets_s`` for views still showing "Loading widget..." (they render
    asynchronously), then fails on any of them, on "Error displaying widget" / "model not found"
    and on tracebacks anywhere in the notebook (also inside widgets).
    """
    deadline = time.monotonic() + wait_for_widgets_s
    while True:
        cells = page.evaluate(_CELL_STATE_JS)
        dom = page.evaluate(_DOM_STATE_JS, _DOM_STATE_ARGS)
        problems = cells["errors"] + dom["problems"]
        if problems:
            raise BrowserCheckError("what the user sees is broken:\n" + "\n".join(problems))
        if not dom["loading"]:
            return dom["views"]
        if time.monotonic() > deadline:
            raise BrowserCheckError(
                f'{dom["loading"]} of {dom["views"]} widget views still show "{WIDGET_LOADING_TEXT}" '
                f"(or nothing) after {wait_for_widgets_s} s"
            )
        time.sleep(0.2)


def explorers(page):
    """Locators of the explorers: rendered widget views that hold an image (the plot)."""
    page.evaluate(_DOM_STATE_JS, _DOM_STATE_ARGS)  # marks the widget views
    panel_id = page.evaluate("() => window.__ssdPanel.id")
    views = page.locator(f"[id='{panel_id}'] [data-ssd-widget-view]")
    return [view for view in views.all() if view.locator("img").count() > 0]


def image_digest(explorer) -> dict | None:
    """Source URL, byte size and hash of the PNG the explorer shows now."""
    return explorer.locator("img").first.evaluate(_IMAGE_DIGEST_JS)


def control_moves(page, explorer, limit: int = 3) -> list:
    """Up to ``limit`` ways to move a control of ``explorer`` as a user does: (label, action).

    Sliders first (focus the handle, press ArrowRight; ArrowLeft at the maximum), then toggle
    buttons that are not selected, then checkboxes.
    """
    moves = []
    handles = explorer.locator(".widget-slider .noUi-handle")
    for index in range(handles.count()):
        handle = handles.nth(index)
        if not handle.is_visible():
            continue
        now, maximum = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
        key = "ArrowLeft" if now is not None and now == maximum else "ArrowRight"

        def press(handle=handle, key=key):
            handle.scroll_into_view_if_needed()
            handle.focus()
            page.keyboard.press(key)

        moves.append((f"slider {index} ({key} from {now})", press))
    toggles = explorer.locator(".widget-toggle-button:not(.mod-active):not([disabled])")
    for index in range(toggles.count()):
        moves.append((f"toggle button {index}", toggles.nth(index).click))
    checkboxes = explorer.locator(".widget-checkbox input[type=checkbox]:not([disabled])")
    for index in range(checkboxes.count()):
        moves.append((f"checkbox {index}", checkboxes.nth(index).click))
    return moves[:limit]


def wait_for_new_image(page, explorer, before: dict, patience_s: float) -> float | None:
    """Seconds until the explorer's ``<img>`` shows a new source, or None after ``patience_s``.

    Raises :class:`BrowserCheckError` as soon as an error shows up (checked every 0.2 s).
    """
    img = explorer.locator("img").first
    start = last_check = time.monotonic()
    while time.monotonic() - start < patience_s:
        if img.get_attribute("src") != before["src"]:
            return time.monotonic() - start
        if time.monotonic() - last_check > 0.2:
            check_no_errors(page, wait_for_widgets_s=0)  # an exception in update() shows up here
            last_check = time.monotonic()
        time.sleep(0.02)
    return None


def check_control_redraws(
    page, explorer, timeout_s: float = REDRAW_TIMEOUT_S, patience_s: float = 3.0
) -> float:
    """Move a control and assert the plot's PNG bytes change within ``timeout_s``.

    Tries the controls of :func:`control_moves` in turn (a one-step move of one control may
    legitimately leave the picture unchanged) until one redraws. Returns the seconds from the
    key press or click to the new image. Raises :class:`BrowserCheckError` when an error shows
    up, when the new image comes later than ``timeout_s`` (a sluggish explorer), when it has the
    same bytes, or when no control changes the image within ``patience_s`` (a frozen plot).
    """
    moves = control_moves(page, explorer)
    if not moves:
        raise BrowserCheckError("the explorer has no slider, toggle button or checkbox to move")
    tried = []
    for label, move in moves:
        before = image_digest(explorer)
        if before is None:
            raise BrowserCheckError("the explorer's image is empty")
        move()
        elapsed = wait_for_new_image(page, explorer, before, max(patience_s, timeout_s))
        check_no_errors(page, wait_for_widgets_s=0)
        if elapsed is None:
            tried.append(label)
            continue
        after = image_digest(explorer)
        if after is None or (after["size"], after["hash"]) == (before["size"], before["hash"]):
            raise BrowserCheckError(f"after moving {label} the image was replaced by identical bytes")
        if elapsed > timeout_s:
            raise BrowserCheckError(
                f"after moving {label} the plot changed only after {elapsed:.2f} s (limit {timeout_s} s)"
            )
        return elapsed
    raise BrowserCheckError(f"the plot did not change within {patience_s} s after moving {', '.join(tried)}")
