"""How the library says what it does: Python's :mod:`logging`, never ``print``.

Every module logs to its own logger (``logging.getLogger(__name__)``, so all of them sit under
the logger ``ssd_lib``) and the library adds no handler, as a library should: a program that
imports ``ssd_lib`` routes or silences the lines with the standard configuration, e.g.
``logging.getLogger("ssd_lib").setLevel(logging.WARNING)``. Status lines are ``INFO``, so
nothing shows them until something asks; the commands (``python -m ssd_lib.train`` ...) call
:func:`show_status`, and a notebook can too (``show_status("stdout")``). Warnings show without
it: where no handler is configured at all, Python's last-resort handler writes them to stderr.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["LIBRARY_LOGGER", "show_status"]

#: The logger above every module logger of the library.
LIBRARY_LOGGER = "ssd_lib"

STREAMS = ("stderr", "stdout")


class _PlainLines(logging.Handler):
    """Writes each record's message as one line to ``sys.stderr`` or ``sys.stdout`` as they are at
    that moment (so a redirection made later, a notebook's or a test's capture, gets them)."""

    def __init__(self, to: str):
        super().__init__(logging.INFO)
        self.to = to
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = getattr(sys, self.to)
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # noqa: BLE001  (logging's own rule: a failing handler reports, never raises)
            self.handleError(record)


def show_status(to: str = "stderr") -> logging.Handler | None:
    """Show the library's status lines (``INFO`` and up, loggers ``ssd_lib.*``) as plain lines.

    Sets the level of the logger ``ssd_lib`` to ``INFO``. If the program configured logging
    already (the root logger has a handler), its handlers show the lines and none is added;
    otherwise one handler writes them to ``to``. Calling it again replaces that handler, so a line
    never shows twice.

    Args:
        to: ``"stderr"`` (the commands) or ``"stdout"`` (a notebook: its stderr shows in red).

    Returns:
        The handler added, or ``None`` when the program's own handlers show the lines.

    Raises:
        ValueError: ``to`` is neither ``"stderr"`` nor ``"stdout"``.
    """
    if to not in STREAMS:
        raise ValueError(f"show_status: to must be one of {STREAMS}, got {to!r}")
    library = logging.getLogger(LIBRARY_LOGGER)
    library.setLevel(logging.INFO)
    for handler in [handler for handler in library.handlers if isinstance(handler, _PlainLines)]:
        library.removeHandler(handler)
    if logging.getLogger().handlers:
        return None
    handler = _PlainLines(to)
    library.addHandler(handler)
    return handler
