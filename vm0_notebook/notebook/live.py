"""The live view of a run in a cell: one display area, updated in place, rate-limited.

    view = LiveView(agent="echo", run_id=run.id, tail_lines=100, max_updates_per_second=10)
    for event in run.stream():
        view.add(render_run_event(event))
        view.refresh()            # publishes only when an update is due
    view.finish(run, card=True)   # the summary, always published

However fast events arrive, the area is redrawn at most ``max_updates_per_second`` times a
second (ipykernel pays about a quarter of a millisecond per display message, so redrawing on
every event freezes a cell). The view keeps a bounded tail of lines and says how many earlier
ones are hidden; ``run.logs()`` keeps every line and ``run.output`` the final text. Each update
is a bundle with ``text/plain`` (papermill, nbconvert) and ``text/html`` (notebook frontends);
in a terminal, :class:`TerminalView` prints new lines instead of redrawing.
Everything shown passes through the kernel's :class:`~.masking.SecretMasker`, at drawing time:
only the lines on screen are masked, not each of the thousands that scroll past unseen.

The summary and the Run's card (the cell's value) do not repeat each other: after a completed
run the summary is the next commands and the card is the reference (versions, session,
checkpoint); when the run did not complete there is no card, so the summary names what it used.
"""

from __future__ import annotations

import html
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from ..cards import DIM_COLOR, NO_MATH, STATUS_CSS, VERSION_CHARS, format_duration, theme_color
from ..render import CLOSING_KINDS, Line, error_line
from .masking import SecretMasker

__all__ = ["LiveView", "TerminalView", "error_line", "ipython_publisher", "summary_lines"]

Bundle = dict[str, str]
Publisher = Callable[[Bundle, str, bool], None]

#: Seconds between redraws that only move the elapsed clock.
CLOCK_PERIOD = 1.0

_KIND_STYLES = {
    "error": f"color:{STATUS_CSS['failed']}",
    "failed": f"color:{STATUS_CSS['failed']};font-weight:bold",
    "ok": f"color:{STATUS_CSS['completed']}",
    "result": "font-weight:bold",
    "tool": f"color:{theme_color('--jp-info-color1', '#00838f')}",
    "stderr": f"color:{DIM_COLOR}",
    "info": f"color:{DIM_COLOR}",
}

# Runs in the browser after each redraw of a trusted output: the frontend replaces the whole
# HTML, so this puts the previous tail box back (the same element, updated in place) and keeps
# it at the newest line unless the user scrolled up, where it stays. Without scripts (a saved,
# untrusted notebook) the box's column-reverse layout still opens at the newest line.
_KEEP_SCROLL = """<script>(function () {
  var view = document.currentScript && document.currentScript.previousElementSibling;
  var box = view && view.querySelector && view.querySelector(".vm0-live-tail");
  if (!box) return;
  var id = view.getAttribute("data-vm0-view");
  var boxes = window.vm0LiveBoxes || (window.vm0LiveBoxes = {});
  var old = boxes[id];
  if (old && old !== box) {
    old.replaceChildren.apply(old, Array.prototype.slice.call(box.childNodes));
    box.replaceWith(old);
    box = old;
  }
  boxes[id] = box;
  if (!box.vm0Watched) {
    box.vm0Watched = true;
    box.vm0Stuck = true;
    box.addEventListener("scroll", function () {
      // column-reverse: scrollTop is 0 at the newest line and negative above it
      box.vm0Stuck = box.scrollTop > -4;
      box.vm0FromTop = box.scrollHeight - box.clientHeight + box.scrollTop;
    });
  }
  box.scrollTop = box.vm0Stuck ? 0 : box.vm0FromTop - (box.scrollHeight - box.clientHeight);
  if (view.getAttribute("data-vm0-final")) delete boxes[id];
})();</script>"""


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
        handle: str | None = None,
        started_at: datetime | None = None,
        publish: Publisher = ipython_publisher,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._masker = masker if masker is not None else SecretMasker()
        self.agent = self._masker.mask(agent or "-")
        self.run_id = self._masker.mask(run_id)
        self.status = "pending"
        self.handle = handle
        self.total = 0
        self.updates = 0
        self.summary: list[Line] = []
        self.closing: list[Line] = []
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
        # lines may come from a thread reading the stream while the cell's thread draws
        self._lock = threading.Lock()

    @classmethod
    def for_run(cls, run: Any, **options: Any) -> LiveView:
        """A view of ``run`` (its agent, id and start time); ``options`` as for the class."""
        return cls(agent=run.agent_name, run_id=run.id, started_at=run.started_at, **options)

    # -- feeding ------------------------------------------------------------------------------

    def add(self, lines: Sequence[Line]) -> None:
        """Append rendered lines to the tail (they are masked when drawn); thread-safe."""
        if lines:
            with self._lock:
                for line in lines:
                    if line.kind in CLOSING_KINDS:  # the run's result: drawn below the box
                        self.closing.append(line)
                    else:
                        self._tail.append(line)
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

    def finish(self, run: Any, *, card: bool = False) -> None:
        """Show the final summary of ``run`` (a finished or detached ``Run``) at once.

        ``card``: the Run's card is shown right below (the cell's value), so the summary leaves
        the reference facts to it.
        """
        self.set_status(getattr(run, "status", None))
        if self.status in ("cancelled", "timeout"):  # the agent's result says "failed"
            with self._lock:
                self.closing = [_restate(line, self.status) for line in self.closing]
        ms = getattr(run, "execution_time_ms", None)
        self._duration = ms / 1000 if isinstance(ms, int | float) else self.elapsed()
        mask = self._masker.mask
        lines = summary_lines(run, self.handle, card=card)
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

    def shown(self) -> tuple[int, list[Line]]:
        """How many lines came so far, and the tail as it is drawn (secrets masked)."""
        with self._lock:
            total, tail = self.total, list(self._tail)
        mask = self._masker.mask
        return total, [Line(mask(text), kind) for text, kind in tail]

    def closing_lines(self) -> list[Line]:
        """The run's closing lines (its result), masked."""
        with self._lock:
            closing = list(self.closing)
        mask = self._masker.mask
        return [Line(mask(text), kind) for text, kind in closing]

    def where_all(self) -> str:
        """Where the whole output is, naming only what exists (the -o variable, or the id)."""
        if self.handle:
            return f"{self.handle}.output has the final text and {self.handle}.logs() every line"
        return f"%vm0 logs {self.run_id} has every line"

    def attach_line(self) -> Line | None:
        """While the run is not finished: how to follow it again (also from a new kernel)."""
        if self.summary or self._duration is not None:
            return None
        return Line(f"to follow it again (after a kernel restart too): %vm0 attach {self.run_id}",
                    "info")

    def hidden_note(self, shown: tuple[int, list[Line]] | None = None) -> str | None:
        """What the tail leaves out, and where to find it; None when nothing is hidden."""
        total, lines = self.shown() if shown is None else shown
        hidden = total - len(lines)
        if hidden <= 0:
            return None
        return f"… {hidden:,} earlier line{'s' if hidden != 1 else ''} hidden; {self.where_all()}"

    def text(self, shown: tuple[int, list[Line]] | None = None) -> str:
        """The view as plain text."""
        shown = self.shown() if shown is None else shown
        out = [self.header()]
        note = self.hidden_note(shown)
        if note:
            out.append(note)
        out.extend(line.text for line in shown[1])
        out.extend(line.text for line in self.closing_lines())
        attach = self.attach_line()
        if attach:
            out.append(attach.text)
        if self.summary:
            out.append("")
            out.extend(line.text for line in self.summary)
        return "\n".join(out)

    def html(self, shown: tuple[int, list[Line]] | None = None) -> str:
        """The view as HTML: header, a tail box scrolled to its newest line, closing lines,
        the attach line (while running) and the summary; never typeset as maths."""
        shown = self.shown() if shown is None else shown
        colour = STATUS_CSS.get(self.status, STATUS_CSS["pending"])
        esc = html.escape
        final = ' data-vm0-final="1"' if self.summary else ""
        parts = [
            f'<div class="vm0-live {NO_MATH}" data-vm0-view="{self._display_id}"{final}'
            ' style="font-family:var(--jp-code-font-family,monospace);'
            'font-size:12px;line-height:1.35">',
            f'<div class="vm0-live-header" style="font-weight:bold">{esc(self.agent)} · '
            f'<code>{esc(self.run_id)}</code>'
            f' · <span style="color:{colour}">{esc(self.status)}</span>'
            f" · {esc(format_duration(self.elapsed()))}</div>",
        ]
        note = self.hidden_note(shown)
        if note:
            parts.append(f'<div style="color:{DIM_COLOR}">{esc(note)}</div>')
        if shown[1]:
            # column-reverse: the box opens at its newest line, even where no script runs
            parts.append(
                '<div class="vm0-live-tail" style="margin:2px 0;max-height:24em;overflow:auto;'
                'display:flex;flex-direction:column-reverse">'
                '<pre style="margin:0;flex:none;overflow:visible;white-space:pre-wrap">'
                + "\n".join(_html_line(line) for line in shown[1])
                + "</pre></div>"
            )
        closing = self.closing_lines()
        attach = self.attach_line()
        if attach:
            closing.append(attach)
        if closing:
            parts.append(
                '<div class="vm0-live-closing">'
                + "<br>".join(_html_line(line) for line in closing) + "</div>"
            )
        if self.summary:
            parts.append(
                '<div class="vm0-live-summary">'
                + "<br>".join(_html_line(line) for line in self.summary) + "</div>"
            )
        parts.append("</div>")
        if shown[1]:
            parts.append(_KEEP_SCROLL)
        return "".join(parts)

    def bundle(self) -> Bundle:
        """The display bundle: plain text and HTML."""
        shown = self.shown()
        return {"text/plain": self.text(shown), "text/html": self.html(shown)}


def _restate(line: Line, status: str) -> Line:
    """A closing ``✗ failed`` line of a run that was cancelled or timed out, saying so."""
    head = "✗ failed"
    if not line.text.startswith(head):
        return line
    rest = line.text[len(head):]
    if rest.lower() in (": run cancelled", ""):  # nothing left to say beyond the status
        rest = ""
    return Line(f"✗ {status}{rest}", line.kind)


def _html_line(line: Line) -> str:
    style = _KIND_STYLES.get(line.kind)
    text = html.escape(line.text)
    return f'<span style="{style}">{text}</span>' if style else text


def summary_lines(run: Any, handle: str | None = None, *, card: bool = False) -> list[Line]:
    """The end of a live view: what ``run`` used, and what to type next.

    The header above already says the status and the duration, and the cell's error (for a run
    that did not complete) says what went wrong and how to look into it. ``card``: the Run's
    card follows (a completed run is the cell's value) and names the versions, session and
    checkpoint, so only the next commands are left to say here. ``handle`` is the variable
    the Run is bound to (``-o VAR``), if any: hints name only what exists.
    """
    status = getattr(run, "status", None) or "-"
    if card:
        return [Line("next: " + "  ·  ".join(_next_steps(run, handle)), "info")]
    lines = []
    where = [
        f"{label} {value}"
        for label, value in (
            ("session", getattr(run, "session_id", None)),
            ("checkpoint", getattr(run, "checkpoint_id", None)),
        )
        if value
    ]
    if where:
        lines.append(Line(" · ".join(where), "info"))
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
    if status == "completed":  # shown without its card (a terminal, or the summary alone)
        lines.append(Line("next: " + "  ·  ".join(_next_steps(run, handle)), "info"))
    return lines


def _next_steps(run: Any, handle: str | None) -> list[str]:
    run_id = getattr(run, "id", "RUN")
    steps = [f"%vm0 logs {run_id}"]
    session = getattr(run, "session_id", None)
    if handle:
        steps.append(f'{handle}.follow_up("...")')
        if getattr(run, "artifact_name", None):
            steps.append(f"{handle}.artifact()")
    elif session:
        steps.append(f"%%vm0 run --session {session}")
    return steps


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

    def bundle(self) -> Bundle:
        """Nothing to redraw in a terminal: each update prints the new lines instead."""
        return {}

    def _print(self, bundle: Bundle, display_id: str, update: bool) -> None:
        out = [] if update else [self.header()]
        total, lines = self.shown()
        new = total - self._printed
        shown = min(new, len(lines))
        if new > shown:
            out.append(
                f"… {new - shown:,} line{'s' if new - shown != 1 else ''} skipped; "
                f"{self.where_all()}"
            )
        if shown:
            out.extend(line.text for line in lines[-shown:])
        self._printed = total
        if self.summary and not self._summary_printed:
            self._summary_printed = True
            out.extend(line.text for line in self.closing_lines())
            out.append("")
            out.extend(line.text for line in self.summary)
        if out:
            print("\n".join(out), flush=True)
