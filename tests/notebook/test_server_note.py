"""The once-per-kernel note about a server's sandbox, from what ``client.server.info()`` found."""

from __future__ import annotations

from typing import Any

from vm0_notebook.api.models import ServerInfo
from vm0_notebook.notebook.server import sandbox_note


def _info(**health: Any) -> ServerInfo:
    return ServerInfo(url="http://127.0.0.1:1", speaks_v1=True, **health)


def test_a_process_server_runs_agents_unsandboxed() -> None:
    note = sandbox_note(_info(sandbox="process"))
    assert note is not None and note.startswith("vm0: agents run unsandboxed on this server")


def test_no_sandbox_at_all_says_why_runs_fail() -> None:
    problem = "bwrap: setting up uid map: Permission denied; install bubblewrap or opt in"
    note = sandbox_note(_info(sandbox="unavailable", sandbox_problem=problem))
    assert note is not None and "runs fail" in note and problem in note


def test_a_sandboxed_or_silent_server_needs_no_note() -> None:
    assert sandbox_note(_info(sandbox="bubblewrap")) is None
    assert sandbox_note(_info()) is None  # the platform's /health says nothing of it
