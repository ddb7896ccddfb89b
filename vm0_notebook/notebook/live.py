"""The live view of a run in a cell: one display area, updated in place, rate-limited.

    view = LiveView(agent="echo", run_id=run.id, tail_lines=100, max_updates_per_second=10)
    for event in run.stream():
        view.add(render_run_event(event))
        view.refresh()            # publishes only when an update is due
    view.finish(run)              # the summary, always published

However fast events arrive, the area is redrawn at most ``max_updates_per_second`` times a
second (ipykernel pays about a quarter of a millisecond per display message, so redrawing on
every event freezes a cell). The view keeps a bounded tail of lines and says how many earlier
ones are hidden; ``run.logs()`` keeps every line and ``run.output`` the final text. Each update
is a bundle with ``text/plain`` (papermill, nbconvert) and ``text/html`` (notebook frontends);
in a terminal, :class:`TerminalView` prints new lines instead of redrawing.
Everything shown passes through the kernel's :class:`~.masking.SecretMasker`.
"""

from __future__ import annotations

import html
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from ..cards import STATUS_COLORS, VERSION_CHARS, format_duration
from .masking import SecretMasker
from .render import Line, shorten

Bundle = dict[str, str]
Publisher = Callable[[Bundle, str, bool], None]

#: Seconds between redraws that only move the elapsed clock.
CLOCK_PERIOD = 1.0

_KIND_STYLES = {
    "error": "color:#c62828",
    "ok": "color:#2e7d32",
    "result": "font-weight:bold",
    "tool": "color:#6a1b9a",
    "info": "opacity:0.7",
}


def ipython_publisher(bundle: Bundle, display_id: str, update: bool) -> None:
    """Show ``bundle`` in the cell's display area ``display_id`` (created on first call)."""
    from IPython.display import display, update_display

    if update:
        update_display(bundle, raw=True, display_id=display_id)
    else:
        display(bundle, raw=True, display_id=display_id)


class LiveView:
    """One run's display area: header, bounded tail of lines, and a summary at the end."""

    def __init__(
        self,
        *,
        agent: str | None,
        run_id: str,
        tail_lines: int = 100,
        max_updates_per_second: float = 10.0,
        masker: SecretMasker | None = None,
        handle: str = "run",
        started_at: datetime | None = None,
        publish: Publisher = ipython_publisher,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._masker = masker or SecretMasker()
        self.agent = self._masker.mask(agent or "-")
        self.run_id = self._masker.mask(run_id)
        self.status = "pending"
        self.handle = handle
        self.total = 0
        self.updates = 0
        self.summary: list[Line] = []
        self._tail: deque[Line] = deque(maxlen=max(1, tail_lines))
        self._period = 1.0 / max_updates_per_second if max_updates_per_second > 0 else 0.0
        self._publish = publish
        self._clock = clock
        self._opened = clock()
        self._started_at = started_at
        self._duration: float | None = None
        self._last = float("-inf")
        self._dirty = True
        self._display_id = uuid.uuid4().hex

    # -- feeding ------------------------------------------------------------------------------

    def add(self, lines: Iterable[Line]) -> None:
        """Append rendered lines (masked here, once) to the tail."""
        mask = self._masker.mask
        for line in lines:
            self._tail.append(Line(mask(line.text), line.kind))
            self.total += 1
            self._dirty = True

    def note(self, text: str, kind: str = "info") -> None:
        """Append a line of the view's own (interrupts, detaches, reconnects)."""
        self.add([Line(text, kind)])  # type: ignore[arg-type]

    def set_status(self, status: str | None, started_at: datetime | None = None) -> None:
        """Record the run's status (and start time, once known) for the header."""
        if status and status != self.status:
            self.status = status
            self._dirty = True
        if started_at and not self._started_at:
            self._started_at = started_at

    # -- publishing ---------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """True when something changed since the last update was published."""
        return self._dirty

    def due_in(self) -> float:
        """Seconds until the next update may be published (0 when one may go now)."""
        wait = self._period if self._dirty else max(self._period, CLOCK_PERIOD)
        return max(0.0, self._last + wait - self._clock())

    def refresh(self, force: bool = False) -> bool:
        """Publish the view if it changed and an update is due (or ``force``); True if sent."""
        if not force and self.due_in() > 0:
            return False
        self._last = self._clock()
        self._dirty = False
        self._publish(self.bundle(), self._display_id, self.updates > 0)
        self.updates += 1
        return True

    def finish(self, run: Any) -> None:
        """Show the final summary of ``run`` (a finished or detached ``Run``) at once."""
        self.set_status(getattr(run, "status", None))
        ms = getattr(run, "execution_time_ms", None)
        self._duration = ms / 1000 if isinstance(ms, int | float) else self.elapsed()
        mask = self._masker.mask
        lines = summary_lines(run, self.handle)
        self.summary = [Line(mask(line.text), line.kind) for line in lines]
        self.refresh(force=True)

    # -- content ------------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the run started (since the view opened, until the server says)."""
        if self._duration is not None:
            return self._duration
        if self._started_at is not None:
            return max(0.0, (datetime.now(UTC) - self._started_at).total_seconds())
        return self._clock() - self._opened

    def header(self) -> str:
        """``agent · run id · status · elapsed``."""
        return f"{self.agent} · {self.run_id} · {self.status} · {format_duration(self.elapsed())}"

    def hidden_note(self) -> str | None:
        """What the tail leaves out, and where to find it; None when nothing is hidden."""
        hidden = self.total - len(self._tail)
        if hidden <= 0:
            return None
        return (
            f"… {hidden:,} earlier line{'s' if hidden != 1 else ''} hidden; "
            f"{self.handle}.output has the final text and {self.handle}.logs() every line"
        )

    def text(self) -> str:
        """The view as plain text."""
        out = [self.header()]
        note = self.hidden_note()
        if note:
            out.append(note)
        out.extend(line.text for line in self._tail)
        if self.summary:
            out.append("")
            out.extend(line.text for line in self.summary)
        return "\n".join(out)

    def html(self) -> str:
        """The view as HTML (header, scrolling tail, summary)."""
        colour = STATUS_COLORS.get(self.status, STATUS_COLORS["pending"])
        esc = html.escape
        parts = [
            '<div class="vm0-live" style="font-family:var(--jp-code-font-family,monospace);'
            'font-size:12px;line-height:1.35">',
            f'<div style="font-weight:bold">{esc(self.agent)} · <code>{esc(self.run_id)}</code>'
            f' · <span style="color:{colour}">{esc(self.status)}</span>'
            f" · {esc(format_duration(self.elapsed()))}</div>",
        ]
        note = self.hidden_note()
        if note:
            parts.append(f'<div style="opacity:0.7">{esc(note)}</div>')
        if self._tail:
            parts.append(
                '<pre style="margin:2px 0;max-height:24em;overflow:auto;white-space:pre-wrap">'
                + "\n".join(_html_line(line) for line in self._tail)
                + "</pre>"
            )
        if self.summary:
            parts.append(
                "<div>" + "<br>".join(_html_line(line) for line in self.summary) + "</div>"
            )
        parts.append("</div>")
        return "".join(parts)

    def bundle(self) -> Bundle:
        """The display bundle: plain text and HTML."""
        return {"text/plain": self.text(), "text/html": self.html()}


def _html_line(line: Line) -> str:
    style = _KIND_STYLES.get(line.kind)
    text = html.escape(line.text)
    return f'<span style="{style}">{text}</span>' if style else text


def summary_lines(run: Any, handle: str = "run") -> list[Line]:
    """What a finished run did and used, and what to type next."""
    status = getattr(run, "status", None) or "-"
    ms = getattr(run, "execution_time_ms", None)
    first = [status]
    if isinstance(ms, int | float):
        first.append(f"in {format_duration(ms / 1000)}")
    if getattr(run, "session_id", None):
        first.append(f"· session {run.session_id}")
    if getattr(run, "checkpoint_id", None):
        first.append(f"· checkpoint {run.checkpoint_id}")
    kind = "result" if status == "completed" else "error" if status in _FAILED else "info"
    lines = [Line(" ".join(first), kind)]
    if getattr(run, "error", None):
        lines.append(Line(f"error: {error_line(run.error)}", "error"))
    used = []
    if getattr(run, "agent_version", None):
        used.append(f"agent version {run.agent_version}")
    for name, version in sorted((getattr(run, "volumes", None) or {}).items()):
        used.append(f"volume {name}@{_short(version)}")
    if getattr(run, "artifact_name", None):
        version = getattr(run, "artifact_version", None)
        used.append(f"artifact {run.artifact_name}" + (f"@{_short(version)}" if version else ""))
    if used:
        lines.append(Line("used: " + " · ".join(used), "info"))
    run_id = getattr(run, "id", "RUN")
    if status in ("pending", "running"):
        lines.append(Line(f"next: %vm0 attach {run_id}  ·  %vm0 cancel {run_id}", "info"))
    else:
        lines.append(
            Line(f'next: %vm0 logs {run_id}  ·  {handle}.follow_up("...")', "info")
        )
    return lines


_FAILED = frozenset({"failed", "timeout", "cancelled"})


def error_line(error: str) -> str:
    """A run's error on one line: its last line (where a traceback says what went wrong)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return shorten(lines[-1] if lines else str(error), 300)


def _short(version: Any) -> str:
    text = str(version)
    return text[:VERSION_CHARS] if len(text) == 64 else text


class TerminalView(LiveView):
    """The view for IPython in a terminal, where nothing can be redrawn in place.

    Prints the header once, then the new lines at each update (at most a tail's worth, with a
    note of what was skipped), then the summary. Same rate limit and masking as the live view.
    """

    def __init__(self, **options: Any) -> None:
        options["publish"] = self._print
        super().__init__(**options)
        self._printed = 0
        self._summary_printed = False

    def _print(self, bundle: Bundle, display_id: str, update: bool) -> None:
        out = [] if update else [self.header()]
        new = self.total - self._printed
        shown = min(new, len(self._tail))
        if new > shown:
            out.append(
                f"… {new - shown:,} line{'s' if new - shown != 1 else ''} skipped; "
                f"{self.handle}.output has the final text and {self.handle}.logs() every line"
            )
        if shown:
            out.extend(line.text for line in list(self._tail)[-shown:])
        self._printed = self.total
        if self.summary and not self._summary_printed:
            self._summary_printed = True
            out.append("")
            out.extend(line.text for line in self.summary)
        if out:
            print("\n".join(out), flush=True)
