"""A shell run that cannot finish before its test says so: it prints ``tick 1`` to ``tick 40``,
then waits for a file named ``go`` in its working folder (bounded, should the test die first).

    run = client.runs.create(agent="shell", prompt=GATED)
    ...                                  # look at it while it runs
    release(local_server, run.id, client)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

GATED = (
    "for i in $(seq 40); do echo tick $i; done\n"
    "for i in $(seq 2400); do [ -e go ] && break; sleep 0.05; done\n"
    "[ -e go ] && echo released || echo gave up"
)


def release(local_server: Any, run_id: str, client: Any) -> None:
    """Let run ``run_id`` of GATED end: its working folder is its session's, in the data folder."""
    session = client.runs.get(run_id).session_id
    (Path(local_server.data_dir) / "sessions" / session / "go").write_text("")
