"""Follow a run: events in, live view out, Ctrl-C and timeouts handled, the summary drawn.

    outcome = follow(run, view, on_interrupt="cancel", timeout=None)
    if outcome.problem:           # the run did not complete: what to tell the user
        ...

``%%vm0 run``, ``%vm0 attach`` and the widgets (the launcher, the runs browser) all follow runs
with :func:`follow`; :func:`watch` is its streaming part (no summary). A widget follows from a
background thread and hands in a ``stop`` event, to let go of a run the user no longer looks at.

A background thread reads the run's event stream and renders each event into the view's tail
as it arrives; the cell's own thread only redraws the view when an update is due. So display
messages always come from the cell's thread, Ctrl-C (which Python delivers to that thread)
never lands inside the HTTP stream, and an event is dropped as soon as it is rendered: a fast
replay of thousands of events never piles them up in memory, where the garbage collector would
walk them again and again.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from ..render import RunRenderer, error_line
from .live import LiveView

OnInterrupt = Literal["cancel", "detach"]

#: Seconds to wait for the stream to end after a cancel was sent.
CANCEL_GRACE = 15.0
#: Seconds between looks at a ``stop`` event (nothing else wakes the redraw loop for it).
STOP_POLL = 0.1


@dataclass
class Outcome:
    """How watching ended: ``finished`` (the stream completed), ``cancelled`` or ``detached``
    (after Ctrl-C or ``timeout``), or ``lost`` (the stream failed; ``error`` says why)."""

    how: Literal["finished", "cancelled", "detached", "lost"]
    reason: str = ""
    error: BaseException | None = None
    #: Set by :func:`follow` when the run did not complete: one line saying what happened and
    #: what to type next (not masked: the caller masks it where it shows it).
    problem: str | None = None


class _Reader(threading.Thread):
    """Renders the events of a stream into ``view`` until the end or ``stop``.

    ``wake`` is set when the view goes from drawn to changed (and at the end), so the cell's
    thread sleeps between redraws instead of waking for every event.
    """

    def __init__(
        self, events: Iterator[Any], view: LiveView, render: RunRenderer | None = None
    ) -> None:
        super().__init__(name="vm0-events", daemon=True)
        self.events = events
        self.view = view
        self.render = render or RunRenderer()
        self.stop = threading.Event()
        self.ended = threading.Event()
        self.wake = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        """Render each event into the view until the stream ends or ``stop`` is set."""
        view, wake, stop, render = self.view, self.wake, self.stop, self.render
        try:
            for event in self.events:
                if stop.is_set():
                    break
                drawn = not view.dirty
                if event.event != "output":  # only status and complete events carry a status
                    view.set_status(event.status)
                view.add(render(event))
                if drawn:
                    wake.set()
        except BaseException as exc:  # handed to the cell's thread, which reports it
            self.failure = exc
        finally:
            self.ended.set()
            wake.set()
            close = getattr(self.events, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def _pump(
    view: LiveView, reader: _Reader, deadline: float | None,
    stop: threading.Event | None = None,
) -> Outcome | None:
    """Redraw the view until the stream ends (an Outcome), ``deadline`` passes or ``stop`` is
    set (None)."""
    while not reader.ended.is_set():
        if stop is not None and stop.is_set():
            return None
        wait = view.due_in()
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            wait = min(wait, left)
        if stop is not None:
            wait = min(wait, STOP_POLL)
        if wait > 0:
            reader.wake.wait(wait)
            reader.wake.clear()
        else:
            view.refresh()
    if reader.failure is not None:
        return Outcome("lost", reason=str(reader.failure), error=reader.failure)
    return Outcome("finished")


def watch(
    run: Any,
    view: LiveView,
    *,
    on_interrupt: OnInterrupt = "cancel",
    timeout: float | None = None,
    stop: threading.Event | None = None,
) -> Outcome:
    """Stream ``run`` into ``view`` until it finishes, Ctrl-C, ``timeout`` seconds pass or
    ``stop`` is set.

    On Ctrl-C or timeout the run is cancelled (``on_interrupt="cancel"``, then the stream is
    followed to its end) or left running (``"detach"``). ``stop`` always leaves it running: the
    caller stopped looking, nobody asked to cancel. The view's summary is not drawn here.
    """
    # the closing line's duration from the run's start, as the header and the card count it
    render = RunRenderer(started_at=lambda: _started_at(run))
    reader = _Reader(run.stream(), view, render)
    view.refresh(force=True)
    reader.start()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        outcome = _pump(view, reader, deadline, stop)
        if outcome is not None:
            return outcome
        if stop is not None and stop.is_set():
            reader.stop.set()
            return Outcome("detached", reason="stopped following")
        reason = f"gave up after {timeout:g} s (--timeout)"
    except KeyboardInterrupt:
        reason = "interrupted"
    if on_interrupt == "detach":  # the cell's error says so, with the %vm0 attach line
        reader.stop.set()
        return Outcome("detached", reason=reason)
    view.note(f"{reason}: cancelling {run.id}…")
    view.refresh(force=True)
    try:
        _cancel(run)
        # the server ends the stream with `complete` once the process is gone
        if _pump(view, reader, time.monotonic() + CANCEL_GRACE) is None:
            reader.stop.set()
    except KeyboardInterrupt:  # a second Ctrl-C: stop waiting, the cancel was sent
        reader.stop.set()
    return Outcome("cancelled", reason=reason)


def _started_at(run: Any) -> Any:
    """When the server started ``run`` (asked once if the handle does not know it yet)."""
    if run.started_at is None:
        with contextlib.suppress(Exception):  # the closing line can do with the agent's figure
            run.refresh()
    return run.started_at


def _cancel(run: Any) -> None:
    from ..api.errors import InvalidRequestError

    # it may have finished on its own in the meantime: then there is nothing to cancel
    with contextlib.suppress(InvalidRequestError):
        run.cancel()


def follow(
    run: Any,
    view: LiveView,
    *,
    on_interrupt: OnInterrupt = "cancel",
    timeout: float | None = None,
    card: bool = False,
    stop: threading.Event | None = None,
) -> Outcome:
    """Stream ``run`` into ``view``, then draw the summary; the Outcome says how it ended.

    ``card``: a completed run's card is shown right below the view (the cell's value), so the
    summary leaves the reference facts to it. ``outcome.problem`` is None when the run completed.
    ``stop``: as for :func:`watch`.
    """
    outcome = watch(run, view, on_interrupt=on_interrupt, timeout=timeout, stop=stop)
    with contextlib.suppress(Exception):  # the summary can do with what the stream said
        run.refresh()
    view.finish(run, card=card and outcome.how == "finished" and run.ok)
    outcome.problem = problem(run, outcome)
    return outcome


def problem(run: Any, outcome: Outcome) -> str | None:
    """What to tell the user about a run that did not complete (None when it did)."""
    if outcome.how == "detached":
        return (
            f"{outcome.reason}: {run.id} keeps running ({run.status}). "
            f"Follow it again with: %vm0 attach {run.id}"
        )
    if outcome.how == "lost":
        return (
            f"lost the event stream of {run.id} ({outcome.reason}); it may still be "
            f"running. Follow it again with: %vm0 attach {run.id}"
        )
    if outcome.how == "cancelled":
        return f"{outcome.reason}: {run.id} is {run.status}"
    if not run.ok:
        detail = f": {error_line(run.error)}" if run.error else ""
        return f"run {run.id} {run.status}{detail}. Its logs: %vm0 logs {run.id}"
    return None
