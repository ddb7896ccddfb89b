"""The agents of a server as a user picks one: its framework, and whether it can start here.

    rows = agent_rows(client)    # [{"name": "claude", "framework": "claude-code", ...}, ...]
    agent_label(rows[0])         # 'claude · claude-code · claude not found'

``%vm0 agents`` shows the rows as a table and the launcher labels its choices with them. For a
``claude-code`` agent, ``found`` says whether its executable (config ``executable``, default
``claude``) exists: as the server reports it (the agent's ``executable_found``), else checked on
this machine when the server is the local one, else unknown (None).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from typing import Any

from .server import is_local

__all__ = ["CLAUDE_CODE", "agent_label", "agent_rows", "framework_of"]

#: The framework that runs the Claude Code CLI.
CLAUDE_CODE = "claude-code"
_DEFAULT_EXECUTABLE = "claude"


def framework_of(config: Mapping[str, Any] | None) -> str:
    """``config["framework"]``, ``"command"`` for a command agent, else ``"-"``."""
    config = config or {}
    framework = config.get("framework")
    if isinstance(framework, str) and framework:
        return framework
    return "command" if config.get("command") else "-"


def _executable(agent: Any, local: bool) -> tuple[str | None, bool | None]:
    config = agent.config or {}
    if framework_of(config) != CLAUDE_CODE:
        return None, None
    executable = config.get("executable")
    executable = executable if isinstance(executable, str) and executable else _DEFAULT_EXECUTABLE
    found = getattr(agent, "executable_found", None)
    if found is None and local:  # the server's own machine: look where it would
        found = shutil.which(executable) is not None
    return executable, found


def agent_rows(client: Any) -> list[dict[str, Any]]:
    """One row per agent (by name): name, framework, executable, found, description,
    version, id. Each agent's config comes from its detail (lists do not carry it)."""
    from ..api.errors import NotFoundError

    local = is_local(client)
    rows = []
    for listed in client.agents.list():
        try:
            agent = client.agents.get(listed.id)
        except NotFoundError:  # deleted since the list was read
            continue
        executable, found = _executable(agent, local)
        version = agent.current_version.version_number if agent.current_version else None
        rows.append({
            "name": agent.name, "framework": framework_of(agent.config),
            "executable": executable, "found": found, "description": agent.description,
            "version": version, "id": agent.id,
        })
    return sorted(rows, key=lambda row: row["name"])


def agent_label(row: Mapping[str, Any]) -> str:
    """``name · framework`` and, for a missing executable, ``· <executable> not found``."""
    label = f"{row['name']} · {row['framework']}"
    if row.get("found") is False:
        label += f" · {row['executable']} not found"
    return label
