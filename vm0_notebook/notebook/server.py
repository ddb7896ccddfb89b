"""What the notebook learns of the server it talks to: is it this machine's, how does it isolate.

    if is_local(client): ...             # the embedded server, or one on a loopback address
    note = sandbox_note(health(client))  # "agents run unsandboxed ..." or None
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from ..cards import UNSANDBOXED, unsandboxed

__all__ = ["health", "is_local", "sandbox_note"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_local(client: Any) -> bool:
    """True for the embedded server (neither VM0_API_URL nor VM0_API_KEY set) or a loopback URL."""
    if not (os.environ.get("VM0_API_URL") or os.environ.get("VM0_API_KEY")):
        return True
    return urlsplit(client.api_url).hostname in _LOOPBACK


def health(client: Any) -> dict[str, Any] | None:
    """The server's ``GET /health`` answer, or None where it has none (the platform)."""
    from ..api._ops import Request
    from ..api.errors import VM0Error

    try:
        answer = client.drive_one(Request("GET", url="/health"))
    except VM0Error:
        return None
    return answer if isinstance(answer, dict) else None


def sandbox_note(info: dict[str, Any] | None) -> str | None:
    """The line to say once per kernel when agents do not run in a sandbox, else None."""
    if not info:
        return None
    sandbox = info.get("sandbox")
    if unsandboxed(sandbox):
        return (
            f"vm0: {UNSANDBOXED} on this server (sandbox: {sandbox}): an agent can read and "
            "change what the server's user can. Install bubblewrap for a sandbox."
        )
    if sandbox == "unavailable":
        problem = str(info.get("sandbox_problem") or "no sandbox can run here").strip()
        return (
            f"vm0: no sandbox on this server, so runs fail: {problem} "
            "(VM0_LOCAL_SANDBOX=process on the server lets agents run unsandboxed)"
        )
    return None
