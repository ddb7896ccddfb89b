"""Agents on a real local server that print a recorded stream, so the whole path (server,
client, renderer, card) runs on real events.

    name = claude_sample_agent(client)   # prints the real Claude Code run, line by line
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

#: The real output of Claude Code 2.1.197 (see /work/shared/samples/README.md).
CLAUDE_STREAM = Path(__file__).parent / "notebook" / "claude-code-stream.jsonl"


def claude_sample_agent(client: Any, stream: Path = CLAUDE_STREAM) -> str:
    """A new agent (its name returned) whose process prints ``stream``'s lines as they are.

    The lines travel inside the command (a Python one-liner), so the agent needs nothing from
    outside its sandbox."""
    name = "claude-sample-" + uuid.uuid4().hex[:8]
    program = f"import sys; sys.stdout.write({stream.read_text()!r})"
    client.agents.create(name, {"command": ["{python}", "-c", program], "timeout_s": 60})
    return name
