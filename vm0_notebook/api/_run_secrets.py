"""The secrets each run was created with in this process, so ``run.follow_up(...)`` and
``run.resume(...)`` can pass them on (a follow-up keeps its model key).

Held in memory only: never written, never shown, forgotten with the process. Bounded to the
most recent :data:`KEEP` runs.

    remember("run_1", {"ANTHROPIC_API_KEY": "sk-..."})
    recall("run_1")      # {"ANTHROPIC_API_KEY": "sk-..."}
"""

from __future__ import annotations

import threading
from collections import OrderedDict

KEEP = 1000

_secrets: OrderedDict[str, dict[str, str]] = OrderedDict()
_lock = threading.Lock()


def remember(run_id: str, secrets: dict[str, str] | None) -> None:
    """Keep the secrets ``run_id`` was created with (nothing for a run without any)."""
    if not secrets:
        return
    with _lock:
        _secrets[run_id] = dict(secrets)
        _secrets.move_to_end(run_id)
        while len(_secrets) > KEEP:
            _secrets.popitem(last=False)


def recall(run_id: str) -> dict[str, str] | None:
    """The secrets ``run_id`` was created with in this process, or None."""
    with _lock:
        found = _secrets.get(run_id)
        return dict(found) if found is not None else None
