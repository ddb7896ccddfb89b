"""Agent stream-JSON events as lines a person reads.

    >>> from vm0_notebook.render import render_event
    >>> [line.text for line in render_event({"type": "assistant", "message": {"content": [
    ...     {"type": "tool_use", "name": "Bash", "input": {"command": "ls data"}}]}})]
    ['→ Bash: ls data']

A start line (model and a few tools), assistant text as text, a tool call as its name and a short
input with its result beneath it (ok or error, folded to a few lines), and a closing line with
duration, turns, tokens and cost. Anything else, including shapes this module does not know,
shows as compact JSON: a renderer never fails. :class:`RunRenderer` follows one run's stream and
pairs each result with its call by ``tool_use_id``: when other lines came between the two, the
call is named again above its result, so a text-only frontend still reads them together.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, NamedTuple

from .api.usage import usage_from_result
from .cards import format_duration, format_usage

# "output": the lines of a tool result after its first (which carries ✓ or ✗); "failed": the
# closing line of a failed run; "stderr": a line the agent wrote to stderr (shown dimmed)
Kind = Literal["text", "tool", "ok", "output", "error", "result", "failed", "stderr", "info"]
#: The kinds of a run's closing line (its ``result``), shown below the scrolling tail.
CLOSING_KINDS = frozenset({"result", "failed"})

#: Longest line kept from one excerpt (tool inputs, tool results, unknown JSON).
EXCERPT_CHARS = 160
#: Longest single line of assistant text; the whole text stays in ``run.output`` and the logs.
TEXT_LINE_CHARS = 2000

#: Most lines of one tool result shown; a longer one shows one less and "… N more lines".
RESULT_LINES = 4
#: Tools named on the start line; the rest are counted ("+21").
START_TOOLS = 3

# The tools a reader most wants to know about, in the order the start line names them.
_KEY_TOOLS = ("Bash", "Read", "Write", "Edit", "Glob", "Grep", "WebFetch", "WebSearch")
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


class _Calls:
    """The tool calls of one stream awaiting their result: ``tool_use_id`` -> the call's line,
    and the call whose line was drawn last (its result needs no repeat of the call)."""

    __slots__ = ("last", "lines")

    def __init__(self) -> None:
        self.lines: dict[str, Line] = {}
        self.last: Line | None = None


def render_event(event: Any, *, _calls: _Calls | None = None) -> list[Line]:
    """The lines for one stream-JSON object (an output event's ``data``)."""
    if not isinstance(event, dict):
        return [Line(compact_json(event), "info")]
    lines: list[Line] = []
    try:
        _render(event, lines, _calls)
    except Exception:  # an odd shape must never break a live view: fall back to its JSON
        lines = []
    return lines or [Line(compact_json(event), "info")]


# One line of assistant text as the local server writes it (compact JSON, keys in this order)
# and with nothing to unescape: a long log is mostly these, and its rendering is the text.
_PLAIN_TEXT = re.compile(
    r'\{"type":"assistant","message":\{"content":\[\{"type":"text","text":"([^"\\]*)"\}\]\}\}'
)


def shown_text(message: str) -> str:
    """What a live view showed for one agent log entry: its message (an output event's JSON)
    rendered as lines joined by newlines; a message that is not JSON, as it is."""
    plain = _PLAIN_TEXT.fullmatch(message)
    if plain is not None and len(plain[1]) <= TEXT_LINE_CHARS:
        return plain[1]  # exactly what render_event gives, without decoding
    try:
        event = json.loads(message)
    except ValueError:  # a message cut short or not JSON
        return message
    return "\n".join(line.text for line in render_event(event))


# JSON objects arrive as dicts: plain isinstance(dict) checks keep this path cheap, since it
# runs once per event and a run may send tens of thousands.
def _render(event: dict[str, Any], out: list[Line], calls: _Calls | None) -> None:
    kind = event.get("type")
    if kind == "assistant" or kind == "user":
        message = event.get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        if isinstance(content, list):
            for block in content:
                _block(block, kind, out, calls)
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
        parts.append(str(event["model"]))
    tools = event.get("tools")
    if isinstance(tools, list) and tools:
        parts.append("tools: " + tool_list(tools))
    out.append(Line("started: " + " · ".join(parts) if parts else "started", "info"))


def tool_list(tools: list[Any], limit: int = START_TOOLS) -> str:
    """A few tools by name, the best known first, and how many more: ``Bash, Read, Write, +21``."""
    names = [str(t) for t in tools]
    shown = [t for t in _KEY_TOOLS if t in names][:limit]
    shown += [t for t in names if t not in shown][: limit - len(shown)]
    more = len(names) - len(shown)
    return ", ".join(shorten(t, 40) for t in shown) + (f", +{more}" if more > 0 else "")


def _block(block: Any, speaker: str, out: list[Line], calls: _Calls | None) -> None:
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
        line = Line(f"→ {block.get('name') or 'tool'}: {_tool_input(block.get('input'))}", "tool")
        out.append(line)
        if calls is not None and isinstance(block.get("id"), str):
            calls.lines[block["id"]] = line
    elif kind == "tool_result":
        call = calls.lines.pop(block.get("tool_use_id"), None) if calls is not None else None
        # something was drawn since the call: name it again, so the result sits beneath it
        if call is not None and calls is not None and not (calls.last is call and not out):
            out.append(Line("←" + call.text[1:], "tool"))
        _tool_result(block, out)
    elif kind != "thinking":  # private reasoning stays in the logs, not on screen
        out.append(Line(compact_json(block), "info"))


def _tool_input(value: Any) -> str:
    if isinstance(value, dict):
        for key in _TOOL_KEYS:
            if isinstance(value.get(key), str):
                return shorten(value[key])
    return compact_json(value)


def _tool_result(block: dict[str, Any], out: list[Line]) -> None:
    """``  ✓ first line`` (or ``  ✗ error: ...``), the next lines indented, folded."""
    failed = bool(block.get("is_error"))
    rows = [row.rstrip() for row in _result_text(block.get("content")).splitlines()]
    while rows and not rows[-1]:
        rows.pop()
    while rows and not rows[0]:
        rows.pop(0)
    more = 0
    if len(rows) > RESULT_LINES:  # one line fewer, so the note never hides a single line
        rows, more = rows[: RESULT_LINES - 1], len(rows) - RESULT_LINES + 1
    first = _excerpt(rows[0]) if rows else "(no output)"
    if failed:
        out.append(Line(f"  ✗ error: {first}", "error"))
    else:
        out.append(Line(f"  ✓ {first}", "ok"))
    out.extend(Line("    " + _excerpt(row), "error" if failed else "output") for row in rows[1:])
    if more:
        out.append(Line(f"    … {more:,} more lines", "info"))


def _excerpt(row: str) -> str:
    row = row.replace("\t", "    ")
    return row if len(row) <= EXCERPT_CHARS else row[: EXCERPT_CHARS - 1] + "…"


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list) and content:
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, dict) and part.get("type") == "image":
                parts.append("[image]")
            else:
                parts.append(compact_json(part))
        return "\n".join(parts)
    return "" if content is None else compact_json(content)


def _result(event: dict[str, Any], seconds: float | None = None) -> Line:
    """The closing line; ``seconds``: the run's time at its result, else the agent's own."""
    failed = event.get("subtype") not in (None, "success") or bool(event.get("is_error"))
    usage = usage_from_result(event) or {}
    if seconds is None and usage.get("duration_ms") is not None:
        seconds = usage["duration_ms"] / 1000
    parts = [format_duration(seconds)] if seconds is not None else []
    figures = format_usage(usage)
    if figures:
        parts.append(figures)
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
    """:func:`render_run_event` for one run's stream: each tool result beneath its call, the
    closing line's duration on the run's clock, and a failure said once.

    A result whose call is not the line just drawn comes with its call named again (``← Bash:
    ...``). The closing line's duration is the run's time when its result arrived, as the
    header and the card count it: from ``started_at`` (a datetime, or a function asked when the
    result arrives) to the result's server timestamp, else from the ``running`` status event to
    the result, else the agent's own ``duration_ms``. When the agent's result event already
    reported an error, the server's ``error`` event with the same message adds nothing, so it
    is left out.

        render = RunRenderer(started_at=run.started_at)
        lines = [line for event in run.stream() for line in render(event)]
    """

    def __init__(
        self,
        *,
        started_at: datetime | Callable[[], datetime | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reported: str | None = None
        self._calls = _Calls()
        self._started_at = started_at
        self._clock = clock
        self._running_since: float | None = None

    def __call__(self, event: Any) -> list[Line]:
        kind = getattr(event, "event", None)
        if kind == "output":  # the hot path: once per event, tens of thousands in a chatty run
            payload = event.payload or event.data
            if payload.get("type") == "result":
                return self._closing(event, payload)
            lines = render_event(payload, _calls=self._calls)
            self._calls.last = lines[-1]
            return lines
        if kind == "status":
            if self._running_since is None and getattr(event, "status", None) == "running":
                self._running_since = self._clock()
            return []
        if kind == "error" and self._reported is not None:
            message = (getattr(event, "data", None) or {}).get("message")
            if message and error_line(str(message)) == self._reported:
                return []
        lines = render_run_event(event)
        if lines:
            self._calls.last = lines[-1]
        return lines

    def _closing(self, event: Any, payload: dict[str, Any]) -> list[Line]:
        result = payload.get("result")
        if isinstance(result, str) and result.strip():
            self._reported = error_line(result)
        self._calls.last = None
        try:
            return [_result(payload, self._seconds(event))]
        except Exception:  # never fail on an odd shape
            return render_event(payload)

    def _seconds(self, event: Any) -> float | None:
        started = self._started_at() if callable(self._started_at) else self._started_at
        stamp = getattr(event, "timestamp", None) if started is not None else None
        if started is not None and stamp is not None:
            return max(0.0, (stamp - started).total_seconds())
        if self._running_since is not None:
            return self._clock() - self._running_since
        return None
