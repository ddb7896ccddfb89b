"""What the notebook learns of the server it talks to: is it this machine's, how does it isolate.

    if is_local(client): ...                        # the embedded server, or a loopback one
    note = sandbox_note(client.server.info())       # "agents run unsandboxed ..." or None
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from ..cards import UNSANDBOXED, unsandboxed

__all__ = ["is_local", "sandbox_note"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_local(client: Any) -> bool:
    """True for the embedded server (neither VM0_API_URL nor VM0_API_KEY set) or a loopback URL."""
    if not (os.environ.get("VM0_API_URL") or os.environ.get("VM0_API_KEY")):
        return True
    return urlsplit(client.api_url).hostname in _LOOPBACK


def sandbox_note(info: Any) -> str | None:
    """The line to say once per kernel when agents do not run in a sandbox, else None;
    ``info`` is what ``client.server.info()`` found."""
    sandbox = getattr(info, "sandbox", None)
    if unsandboxed(sandbox):
        return (
            f"vm0: {UNSANDBOXED} on this server (sandbox: {sandbox}): an agent can read and "
            "change what the server's user can (for a sandbox: bubblewrap installed, "
            "VM0_LOCAL_SANDBOX not set to process)"
        )
    if sandbox == "unavailable":
        problem = getattr(info, "sandbox_problem", None) or "no sandbox can run here"
        return (
            f"vm0: no sandbox on this server, so runs fail: {problem} "
            "(VM0_LOCAL_SANDBOX=process on the server lets agents run unsandboxed)"
        )
    return None
