"""An agent's raw stdout and stderr bytes -> output events and log lines, secrets masked.

stdout lines that are JSON objects with a string ``type`` pass through as output events as they
are; every other line becomes an ``assistant`` text event. stderr lines become agent logs, and
the last few are kept for the error of a failed run. Bytes arrive in pipe-sized chunks and are
split here, so a fast agent costs one call per chunk plus one per line, with no awaits.

    >>> from vm0_notebook.local.runtime.output import text_event
    >>> text_event("hello")
    {'type': 'assistant', 'message': {'content': [{'type': 'text', 'text': 'hello'}]}}
"""

from __future__ import annotations

import codecs
import json
from collections import deque
from typing import Any

from vm0_notebook.contract import RESULT_TRUNCATED, SecretMasker, event_text
from vm0_notebook.local.runtime.spec import RunHost

# A line longer than this is cut into pieces of this size, so an agent that never prints a
# newline cannot grow the server's memory without bound. JSON beyond it arrives as text.
MAX_LINE_CHARS = 8 * 1024 * 1024
# How much of the output's text a synthesized result keeps: its last lines. The whole text
# travels once, in the output events; the result, the ``complete`` frame and the run detail
# carry this tail, so they stay small however chatty the run (the client rebuilds the whole).
RESULT_TEXT_CHARS = 16 * 1024
STDERR_TAIL_LINES = 20
ERROR_CHARS = 2000


def text_event(text: str) -> dict[str, Any]:
    """The ``assistant`` event a plain (non stream-JSON) line of output becomes."""
    return {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}


class LineSplitter:
    """Incremental UTF-8 decoding and line splitting for one pipe, with no line-length limit
    beyond :data:`MAX_LINE_CHARS` (asyncio's 64 KiB ``readline`` limit does not apply)."""

    def __init__(self, max_line: int = MAX_LINE_CHARS) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._parts: list[str] = []  # the unfinished line, in pieces (joined once: linear)
        self._size = 0
        self._max = max_line

    def feed(self, data: bytes) -> list[str]:
        """Return the lines completed by ``data``, without their line endings."""
        text = self._decoder.decode(data)
        if "\n" not in text:
            if text:
                self._parts.append(text)
                self._size += len(text)
            return self._overflow()
        lines = text.split("\n")
        if self._parts:
            lines[0] = "".join(self._parts) + lines[0]
        rest = lines.pop()
        self._parts = [rest] if rest else []
        self._size = len(rest)
        return [_chomp(line) for line in lines]

    def close(self) -> list[str]:
        """Return what is left after the pipe closed (a last line without a newline)."""
        rest = "".join(self._parts) + self._decoder.decode(b"", final=True)
        self._parts, self._size = [], 0
        return [_chomp(rest)] if rest else []

    def _overflow(self) -> list[str]:
        if self._size <= self._max:
            return []
        text = "".join(self._parts)
        cut = len(text) - len(text) % self._max
        self._parts = [text[cut:]] if cut < len(text) else []
        self._size = len(text) - cut
        return [text[i : i + self._max] for i in range(0, cut, self._max)]


def _chomp(line: str) -> str:
    return line[:-1] if line.endswith("\r") else line


class AgentOutput:
    """Reports one run's stdout as output events and its stderr as logs, through ``host``.

    It remembers what a synthesized ``result`` needs: whether the agent printed one, its
    assistant turns, the tail of its text (at most :data:`RESULT_TEXT_CHARS`, counting what
    was left out), and the last stderr lines.
    """

    def __init__(self, host: RunHost, run_id: str, masker: SecretMasker) -> None:
        self.host = host
        self.run_id = run_id
        self.masker = masker
        self.saw_result = False
        # The agent's own result text when its result event says ``is_error: true``.
        self.result_error: str | None = None
        self.turns = 0
        self._plain_turn = False
        self._texts: deque[str] = deque()  # the tail of the assistant texts, one per event
        self._texts_chars = 0
        self._dropped_chars = 0  # of the joined text, left out of the tail
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL_LINES)
        self._splitters = {1: LineSplitter(), 2: LineSplitter()}

    def feed(self, fd: int, data: bytes) -> None:
        """Take a chunk of bytes from the agent's stdout (``fd`` 1) or stderr (2)."""
        lines = self._splitters[fd].feed(data)
        if lines:
            (self.stdout_lines if fd == 1 else self.stderr_lines)(lines)

    def close(self, fd: int) -> None:
        """The pipe ``fd`` reached its end: flush its last, unterminated line."""
        lines = self._splitters[fd].close()
        if lines:
            (self.stdout_lines if fd == 1 else self.stderr_lines)(lines)

    def stdout_lines(self, lines: list[str]) -> None:
        """Report complete stdout lines as output events."""
        output, mask = self.host.output, self.masker
        for line in lines:
            event = _stream_json(line)
            if event is not None:
                if mask:
                    event = mask.mask_value(event)
                kind = event["type"]
                if kind == "result":
                    self.saw_result = True
                    if event.get("is_error") is True:
                        self.result_error = _error_text(event)
                elif kind == "assistant":
                    self.turns += 1
                    text = event_text(event)
                    if text is not None:
                        self._keep(text)
                output(self.run_id, kind, event)
                continue
            line = mask.mask(line)
            if not self._plain_turn:
                self._plain_turn = True
                self.turns += 1
            self._keep(line)
            output(self.run_id, "assistant", text_event(line))

    def stderr_lines(self, lines: list[str]) -> None:
        """Report complete stderr lines as ``system`` events of subtype ``stderr`` (blank ones
        are skipped)."""
        output, mask = self.host.output, self.masker
        for line in lines:
            if not line.strip():
                continue
            line = mask.mask(line)
            self.stderr_tail.append(line)
            # an output event (so live views show it in place; other readers skip system
            # subtypes they do not know), which is also the run's agent log entry
            output(self.run_id, "system", {"type": "system", "subtype": "stderr", "text": line})

    def stderr_error(self) -> str | None:
        """The last stderr lines, as the error of a failed run (None if there were none)."""
        if not self.stderr_tail:
            return None
        text = "\n".join(self.stderr_tail)
        return text if len(text) <= ERROR_CHARS else "…" + text[-ERROR_CHARS:]

    def result_event(
        self, *, is_error: bool, error: str | None, duration_ms: int, session_id: str | None
    ) -> dict[str, Any]:
        """A ``result`` event for an agent that printed none, shaped like Claude Code's.

        Its ``result`` is the text of the assistant events joined by newlines, followed for a
        failed run by its error: whole when it fits :data:`RESULT_TEXT_CHARS`, else its last lines
        after a note, with ``result_truncated: true`` (the output events hold the whole).
        It has no ``total_cost_usd`` and no ``usage``: a local process reports neither, and a
        made-up zero would read as a real figure."""
        truncated = False
        text, dropped = "\n".join(self._texts), self._dropped_chars
        if is_error:  # what it printed stays the run's output; the error is its last lines
            failure = error or "The run failed"
            text = f"{text}\n{failure}" if text else failure
        if len(text) > RESULT_TEXT_CHARS:  # one line longer than the whole budget
            dropped += len(text) - RESULT_TEXT_CHARS
            text = text[-RESULT_TEXT_CHARS:]
        if dropped:
            truncated = True
            text = (f"[… the first {dropped:,} characters are in the run's output events"
                    f" and logs]\n{text}")
        event: dict[str, Any] = {
            "type": "result",
            "subtype": "error" if is_error else "success",
            "is_error": is_error,
            "result": self.masker.mask(text),
            "duration_ms": duration_ms,
            "num_turns": self.turns,
        }
        if truncated:
            event[RESULT_TRUNCATED] = True
        if session_id:
            event["session_id"] = session_id
        return event

    def _keep(self, text: str) -> None:
        """Add one event's text to the tail; whole texts beyond the budget leave its front."""
        self._texts.append(text)
        self._texts_chars += len(text) + 1
        while self._texts_chars > RESULT_TEXT_CHARS + 1 and len(self._texts) > 1:
            gone = len(self._texts.popleft()) + 1  # the text and the newline after it
            self._texts_chars -= gone
            self._dropped_chars += gone


def _error_text(result: dict[str, Any]) -> str:
    """What a failed ``result`` event says went wrong, cut to :data:`ERROR_CHARS`."""
    text = result.get("result")
    if not isinstance(text, str) or not text.strip():
        errors = result.get("errors")
        text = "; ".join(map(str, errors)) if isinstance(errors, list) and errors else ""
    text = text.strip() or f"The agent reported an error ({result.get('subtype') or 'error'})"
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS] + "…"


def _stream_json(line: str) -> dict[str, Any] | None:
    """The stream-JSON object on ``line``, or None if it is plain text."""
    stripped = line.strip()
    if not stripped.startswith("{") or not stripped.endswith("}"):
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    if isinstance(value, dict) and isinstance(value.get("type"), str) and value["type"]:
        return value
    return None
