"""Agent stream-JSON events as lines a person reads.

    >>> from vm0_notebook.notebook.render import render_event
    >>> [line.text for line in render_event({"type": "assistant", "message": {"content": [
    ...     {"type": "tool_use", "name": "Bash", "input": {"command": "ls data"}}]}})]
    ['→ Bash: ls data']

Assistant text shows as text, a tool call as its name and a short input, a tool result as ok or
error with a short excerpt, the result with duration, cost, turns and tokens. Anything else,
including shapes this module does not know, shows as compact JSON: a renderer never fails.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["text", "tool", "ok", "error", "result", "info"]

#: Longest line kept from one excerpt (tool inputs, tool results, unknown JSON).
EXCERPT_CHARS = 160
#: Longest single line of assistant text; the whole text stays in ``run.output`` and the logs.
TEXT_LINE_CHARS = 2000

# The input field that says the most about a tool call, in order of preference.
_TOOL_KEYS = ("command", "file_path", "path", "pattern", "url", "query", "prompt", "description")


@dataclass(frozen=True, slots=True)
class Line:
    """One rendered line; ``kind`` lets HTML give errors and results their colour."""

    text: str
    kind: Kind = "text"


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with '…'."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def compact_json(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """Compact JSON of ``value`` (``repr`` for what JSON cannot hold), cut to ``limit``."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text, limit)


def render_event(event: Any) -> list[Line]:
    """The lines for one stream-JSON object (an output event's ``data``)."""
    if not isinstance(event, Mapping):
        return [Line(compact_json(event), "info")]
    try:
        lines = list(_render(event))
    except Exception:  # an odd shape must never break a live view: fall back to its JSON
        lines = []
    return lines or [Line(compact_json(event), "info")]


def _render(event: Mapping[str, Any]) -> Iterator[Line]:
    kind = event.get("type")
    if kind == "system":
        yield from _system(event)
    elif kind in ("assistant", "user"):
        message = event.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        for block in content if isinstance(content, list) else ():
            yield from _block(block, speaker=kind)
    elif kind == "result":
        yield _result(event)


def _system(event: Mapping[str, Any]) -> Iterator[Line]:
    if event.get("subtype") != "init":
        return
    parts = []
    if event.get("model"):
        parts.append(f"model {event['model']}")
    if event.get("session_id"):
        parts.append(f"session {event['session_id']}")
    tools = event.get("tools")
    if isinstance(tools, list) and tools:
        parts.append("tools " + shorten(", ".join(str(t) for t in tools), 80))
    yield Line("started: " + " · ".join(parts) if parts else "started", "info")


def _block(block: Any, speaker: str) -> Iterator[Line]:
    if not isinstance(block, Mapping):
        yield Line(compact_json(block), "info")
        return
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        prefix = "" if speaker == "assistant" else "user: "
        for text in block["text"].splitlines() or [""]:
            yield Line(prefix + _cut(text), "text")
    elif kind == "tool_use":
        yield Line(f"→ {block.get('name') or 'tool'}: {_tool_input(block.get('input'))}", "tool")
    elif kind == "tool_result":
        failed = bool(block.get("is_error"))
        excerpt = shorten(_result_text(block.get("content")))
        yield Line(f"  {'✗ error' if failed else '✓ ok'}: {excerpt}", "error" if failed else "ok")
    elif kind == "thinking":
        return  # private reasoning: present in the logs, not worth the screen
    else:
        yield Line(compact_json(block), "info")


def _tool_input(value: Any) -> str:
    if isinstance(value, Mapping):
        for key in _TOOL_KEYS:
            if isinstance(value.get(key), str):
                return shorten(value[key])
    return compact_json(value)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, Mapping)]
        if all(isinstance(t, str) for t in texts) and texts:
            return " ".join(texts)
    return compact_json(content, limit=10_000)


def _result(event: Mapping[str, Any]) -> Line:
    failed = event.get("subtype") not in (None, "success") or bool(event.get("is_error"))
    parts = []
    if isinstance(event.get("duration_ms"), int | float):
        parts.append(f"{event['duration_ms'] / 1000:.1f} s")
    if isinstance(event.get("total_cost_usd"), int | float):
        parts.append(f"${event['total_cost_usd']:.4f}")
    if isinstance(event.get("num_turns"), int):
        parts.append(f"{event['num_turns']} turn{'s' if event['num_turns'] != 1 else ''}")
    usage = event.get("usage")
    if isinstance(usage, Mapping):
        tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
        if isinstance(tokens_in, int) and isinstance(tokens_out, int):
            parts.append(f"{tokens_in:,} in / {tokens_out:,} out tokens")
    head = "✗ failed" if failed else "✓ done"
    text = head + (" · " + " · ".join(parts) if parts else "")
    if failed and isinstance(event.get("result"), str) and event["result"]:
        text += ": " + shorten(event["result"])
    return Line(text, "error" if failed else "result")


def _cut(text: str) -> str:
    return text if len(text) <= TEXT_LINE_CHARS else text[: TEXT_LINE_CHARS - 1] + "…"


def render_run_event(event: Any) -> list[Line]:
    """The lines for one event of a run's stream (a client ``Event``).

    Output events render their stream-JSON object; error events and gaps say so; status,
    heartbeat and complete events are shown by the view's header, not as lines.
    """
    kind = getattr(event, "event", None)
    data = getattr(event, "data", {}) or {}
    if kind == "output":
        return render_event(event.payload or data)
    if kind == "error":
        return [Line(f"error: {shorten(str(data.get('message') or compact_json(data)))}", "error")]
    if kind in ("status", "heartbeat", "complete"):
        return []
    return [Line(f"{kind}: {compact_json(data)}", "info")]
