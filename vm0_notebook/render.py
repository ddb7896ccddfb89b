"""Agent stream-JSON events as lines a person reads.

    >>> from vm0_notebook.render import render_event
    >>> [line.text for line in render_event({"type": "assistant", "message": {"content": [
    ...     {"type": "tool_use", "name": "Bash", "input": {"command": "ls data"}}]}})]
    ['→ Bash: ls data']

Assistant text shows as text, a tool call as its name and a short input, a tool result as ok or
error with a short excerpt, the result with duration, cost, turns and tokens. Anything else,
including shapes this module does not know, shows as compact JSON: a renderer never fails.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, NamedTuple

Kind = Literal["text", "tool", "ok", "error", "result", "failed", "stderr", "info"]
#: The kinds of a run's closing line (its ``result``), shown below the scrolling tail.
CLOSING_KINDS = frozenset({"result", "failed"})

#: Longest line kept from one excerpt (tool inputs, tool results, unknown JSON).
EXCERPT_CHARS = 160
#: Longest single line of assistant text; the whole text stays in ``run.output`` and the logs.
TEXT_LINE_CHARS = 2000

# The input field that says the most about a tool call, in order of preference.
_TOOL_KEYS = ("command", "file_path", "path", "pattern", "url", "query", "prompt", "description")


# A named tuple, not a dataclass: one is made per event, and a tuple is several times cheaper.
class Line(NamedTuple):
    """One rendered line; ``kind`` lets HTML give errors and results their colour."""

    text: str
    kind: Kind = "text"


def shorten(text: str, limit: int = EXCERPT_CHARS) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with '…'."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def error_line(error: str) -> str:
    """An error on one line: its last line (where a traceback says what went wrong); when
    that only says how the agent exited, the line before it too.

        >>> error_line("Traceback...\\nValueError: bad\\nAgent exited with code 3")
        'ValueError: bad (exit code 3)'
    """
    lines = [line for line in str(error).splitlines() if line.strip()]
    if not lines:
        return shorten(str(error), 300)
    exit_match = _EXIT_LINE.match(lines[-1].strip())
    if exit_match and len(lines) > 1:
        how = f"exit code {exit_match['code']}" if exit_match["code"] else exit_match["how"]
        return shorten(f"{lines[-2]} ({how})", 300)
    return shorten(lines[-1], 300)


# The local server's last line of a failed command's error: how the process ended.
_EXIT_LINE = re.compile(r"^Agent (?P<how>exited with code (?P<code>-?\d+)|killed by \S+)$")


def compact_json(value: Any, limit: int = EXCERPT_CHARS) -> str:
    """Compact JSON of ``value`` (``repr`` for what JSON cannot hold), cut to ``limit``."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return shorten(text, limit)


def render_event(event: Any) -> list[Line]:
    """The lines for one stream-JSON object (an output event's ``data``)."""
    if not isinstance(event, dict):
        return [Line(compact_json(event), "info")]
    lines: list[Line] = []
    try:
        _render(event, lines)
    except Exception:  # an odd shape must never break a live view: fall back to its JSON
        lines = []
    return lines or [Line(compact_json(event), "info")]


# JSON objects arrive as dicts: plain isinstance(dict) checks keep this path cheap, since it
# runs once per event and a run may send tens of thousands.
def _render(event: dict[str, Any], out: list[Line]) -> None:
    kind = event.get("type")
    if kind == "assistant" or kind == "user":
        message = event.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if isinstance(content, list):
            for block in content:
                _block(block, kind, out)
    elif kind == "system":
        _system(event, out)
    elif kind == "result":
        out.append(_result(event))


def _system(event: dict[str, Any], out: list[Line]) -> None:
    if event.get("subtype") == "stderr" and isinstance(event.get("text"), str):
        out.append(Line(_cut(event["text"]), "stderr"))  # shown dimmed
        return
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
    out.append(Line("started: " + " · ".join(parts) if parts else "started", "info"))


def _block(block: Any, speaker: str, out: list[Line]) -> None:
    if not isinstance(block, dict):
        out.append(Line(compact_json(block), "info"))
        return
    kind = block.get("type")
    text = block.get("text")
    if kind == "text" and isinstance(text, str):
        prefix = "" if speaker == "assistant" else "user: "
        if "\n" not in text and len(text) <= TEXT_LINE_CHARS and not prefix:
            out.append(Line(text))
            return
        for part in text.splitlines() or [""]:
            out.append(Line(prefix + _cut(part), "text"))
    elif kind == "tool_use":
        out.append(
            Line(f"→ {block.get('name') or 'tool'}: {_tool_input(block.get('input'))}", "tool")
        )
    elif kind == "tool_result":
        failed = bool(block.get("is_error"))
        excerpt = shorten(_result_text(block.get("content")))
        out.append(
            Line(f"  {'✗ error' if failed else '✓ ok'}: {excerpt}", "error" if failed else "ok")
        )
    elif kind != "thinking":  # private reasoning stays in the logs, not on screen
        out.append(Line(compact_json(block), "info"))


def _tool_input(value: Any) -> str:
    if isinstance(value, dict):
        for key in _TOOL_KEYS:
            if isinstance(value.get(key), str):
                return shorten(value[key])
    return compact_json(value)


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [b.get("text") for b in content if isinstance(b, dict)]
        if all(isinstance(t, str) for t in texts) and texts:
            return " ".join(texts)
    return compact_json(content, limit=10_000)


def _result(event: dict[str, Any]) -> Line:
    failed = event.get("subtype") not in (None, "success") or bool(event.get("is_error"))
    # no duration here: the view's header shows the run's, and two figures would disagree
    parts = []
    cost = event.get("total_cost_usd")
    usage = event.get("usage")
    # cost and tokens only when the agent reported some: a local command has neither; turns
    # only from a model (a command's output is not a conversation)
    from_model = isinstance(usage, dict) or isinstance(cost, int | float)
    if isinstance(cost, int | float) and cost > 0:
        parts.append(f"${cost:.4f}")
    turns = event.get("num_turns")
    if from_model and isinstance(turns, int) and turns > 0:
        parts.append(f"{turns} turn{'s' if turns != 1 else ''}")
    if isinstance(usage, dict):
        tokens_in, tokens_out = usage.get("input_tokens"), usage.get("output_tokens")
        if isinstance(tokens_in, int) and isinstance(tokens_out, int) and tokens_in + tokens_out:
            parts.append(f"{tokens_in:,} in / {tokens_out:,} out tokens")
    head = "✗ failed" if failed else "✓ done"
    text = head + (" · " + " · ".join(parts) if parts else "")
    if failed and isinstance(event.get("result"), str) and event["result"].strip():
        text += ": " + error_line(event["result"])
    return Line(text, "failed" if failed else "result")


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
        message = data.get("message") or compact_json(data)
        return [Line(f"error: {error_line(str(message))}", "error")]
    if kind in ("status", "heartbeat", "complete"):
        return []
    return [Line(f"{kind}: {compact_json(data)}", "info")]


class RunRenderer:
    """:func:`render_run_event` for one run's stream, which says a failure once.

    When the agent's result event already reported an error, the server's ``error`` event with
    the same message adds nothing, so it is left out.

        render = RunRenderer()
        lines = [line for event in run.stream() for line in render(event)]
    """

    def __init__(self) -> None:
        self._reported: str | None = None

    def __call__(self, event: Any) -> list[Line]:
        kind = getattr(event, "event", None)
        if kind == "output":  # the hot path: once per event, tens of thousands in a chatty run
            payload = event.payload or event.data
            if payload.get("type") == "result":
                result = payload.get("result")
                if isinstance(result, str) and result.strip():
                    self._reported = error_line(result)
            return render_event(payload)
        if kind == "error" and self._reported is not None:
            message = (getattr(event, "data", None) or {}).get("message")
            if message and error_line(str(message)) == self._reported:
                return []
        return render_run_event(event)
