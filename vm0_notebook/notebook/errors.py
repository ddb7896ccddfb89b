"""The two ways a ``%vm0`` cell fails: a bad magic line, or a run that did not complete.

Both show as one short paragraph instead of a traceback (IPython calls ``_render_traceback_``),
and both still fail the cell, so nbclient, papermill and "Run All" stop there.

    MagicError   the magic line is wrong, or the server refused it (unknown agent, no server)
    RunFailed    the run ended failed, timed out, was cancelled or interrupted; ``.run`` is it
"""

from __future__ import annotations

from typing import Any


class _ShortError(Exception):
    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class MagicError(_ShortError):
    """The magic line cannot be run as written; the message says what to fix."""


# Not a subclass of the client's RunFailedError: importing ``vm0_notebook.api`` loads httpx,
# and ``%load_ext vm0_notebook`` must stay light.
class RunFailed(_ShortError):
    """The run did not complete: failed, timeout, cancelled, or interrupted in the cell."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run
