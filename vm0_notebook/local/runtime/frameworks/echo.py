"""The ``echo`` agent: streams its prompt back as Claude Code style stream-JSON events.

Reads the prompt from stdin (else ``$VM0_PROMPT``) and prints one JSON object a line: a
``system``/``init`` event, the prompt in a few ``assistant`` text chunks (joined, they give the
prompt back), and a ``result`` event whose ``result`` is the whole prompt.

    $ echo "hello there" | python -m vm0_notebook.local.runtime.frameworks.echo
    {"type": "system", "subtype": "init", ...}
    {"type": "assistant", "message": {"content": [{"type": "text", "text": "hello there"}]}, ...}
    {"type": "result", "subtype": "success", "result": "hello there", ...}
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator
from typing import Any

WORDS_PER_CHUNK = 8


def chunks(prompt: str, words: int = WORDS_PER_CHUNK) -> list[str]:
    """Split ``prompt`` into pieces of up to ``words`` words that join back to it exactly.

    >>> chunks("a b c", words=2)
    ['a b ', 'c']
    """
    tokens = re.findall(r"\s*\S+\s*", prompt) or ([prompt] if prompt else [])
    return ["".join(tokens[i : i + words]) for i in range(0, len(tokens), words)]


def events(prompt: str, session_id: str | None, cwd: str) -> Iterator[dict[str, Any]]:
    """The stream-JSON events echoing ``prompt``."""
    started = time.monotonic()
    yield {"type": "system", "subtype": "init", "session_id": session_id, "model": "echo",
           "cwd": cwd, "tools": []}
    pieces = chunks(prompt)
    for i, piece in enumerate(pieces):
        message = {"id": f"msg_{i + 1:02d}", "role": "assistant",
                   "content": [{"type": "text", "text": piece}]}
        yield {"type": "assistant", "message": message, "session_id": session_id}
    words = len(prompt.split())
    yield {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": prompt,
        "duration_ms": int((time.monotonic() - started) * 1000),
        "num_turns": 1,
        "total_cost_usd": 0.0,
        "usage": {"input_tokens": words, "output_tokens": words},
        "session_id": session_id,
    }


def main() -> int:
    """Print the events for the prompt on stdin (else ``$VM0_PROMPT``), one per line; returns 0."""
    prompt = sys.stdin.read() if not sys.stdin.isatty() else ""
    prompt = prompt or os.environ.get("VM0_PROMPT", "")
    for event in events(prompt, os.environ.get("VM0_SESSION_ID"), os.getcwd()):
        # One line per event, flushed: a reader sees each as it is produced.
        sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
