"""The two ways a ``%vm0`` cell fails; both live in the one exception tree, ``api/errors.py``.

    MagicError   the magic line is wrong, or the server refused it (unknown agent, no server)
    RunFailed    the run ended failed, timed out, was cancelled or interrupted; ``.run`` is it
"""

from __future__ import annotations

from ..api.errors import MagicError, RunFailed

__all__ = ["MagicError", "RunFailed"]
