"""Follow a run in a cell: events in, live view out, Ctrl-C and timeouts handled.

    outcome = watch(run, view, on_interrupt="cancel", timeout=None)

A background thread reads the run's event stream into a queue; the cell's own thread renders
what arrived and redraws the view when an update is due. So display messages always come from
the cell's thread, Ctrl-C (which Python delivers to that thread) never lands inside the HTTP
stream, and a burst of events followed by silence is still drawn within one update period.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from .live import LiveView
from .render import render_run_event

OnInterrupt = Literal["cancel", "detach"]

#: Seconds to wait for the stream to end after a cancel was sent.
CANCEL_GRACE = 15.0
# Events handled between two chances to redraw, so a flood still shows progress.
_BATCH = 2000
_END = object()


@dataclass
class Outcome:
    """How watching ended: ``finished`` (the stream completed), ``cancelled`` or ``detached``
    (after Ctrl-C or ``timeout``), or ``lost`` (the stream failed; ``error`` says why)."""

    how: Literal["finished", "cancelled", "detached", "lost"]
    reason: str = ""
    error: BaseException | None = None


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class _Reader(threading.Thread):
    """Moves events from the stream iterator to a queue until the end or ``stop``."""

    def __init__(self, events: Iterator[Any]) -> None:
        super().__init__(name="vm0-events", daemon=True)
        self.events = events
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.stop = threading.Event()
        self.ended = threading.Event()

    def run(self) -> None:
        try:
            for event in self.events:
                if self.stop.is_set():
                    break
                self.queue.put(event)
        except BaseException as exc:  # handed to the cell's thread, which reports it
            self.queue.put(_Failure(exc))
        finally:
            self.queue.put(_END)
            self.ended.set()
            close = getattr(self.events, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def _pump(view: LiveView, reader: _Reader, deadline: float | None) -> Outcome | None:
    """Feed events to the view until the stream ends (an Outcome) or ``deadline`` (None)."""
    while True:
        wait = max(view.due_in(), 0.005)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            wait = min(wait, left)
        item = None
        if view.dirty:
            # lines wait for the next redraw anyway: let events pile up until then rather than
            # waking this thread for each one (or until the stream ends)
            reader.ended.wait(wait)
        else:
            with contextlib.suppress(queue.Empty):
                item = reader.queue.get(timeout=wait)
        if item is None:
            with contextlib.suppress(queue.Empty):
                item = reader.queue.get_nowait()
        handled = 0
        while item is not None:
            if item is _END:
                return Outcome("finished")
            if isinstance(item, _Failure):
                return Outcome("lost", reason=str(item.exc), error=item.exc)
            view.set_status(getattr(item, "status", None))
            view.add(render_run_event(item))
            handled += 1
            if handled >= _BATCH:
                break
            try:
                item = reader.queue.get_nowait()
            except queue.Empty:
                item = None
        view.refresh()


def watch(
    run: Any,
    view: LiveView,
    *,
    on_interrupt: OnInterrupt = "cancel",
    timeout: float | None = None,
) -> Outcome:
    """Stream ``run`` into ``view`` until it finishes, Ctrl-C, or ``timeout`` seconds pass.

    On Ctrl-C or timeout the run is cancelled (``on_interrupt="cancel"``, then the stream is
    followed to its end) or left running (``"detach"``). The view's summary is not drawn here.
    """
    reader = _Reader(run.stream())
    reader.start()
    view.refresh(force=True)
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        outcome = _pump(view, reader, deadline)
        if outcome is not None:
            return outcome
        reason = f"gave up after {timeout:g} s (--timeout)"
    except KeyboardInterrupt:
        reason = "interrupted"
    if on_interrupt == "detach":
        reader.stop.set()
        view.note(f"{reason}: detached; {run.id} keeps running · %vm0 attach {run.id}")
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


def _cancel(run: Any) -> None:
    from ..api.errors import InvalidRequestError

    # it may have finished on its own in the meantime: then there is nothing to cancel
    with contextlib.suppress(InvalidRequestError):
        run.cancel()
