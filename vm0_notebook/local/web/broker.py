"""In-memory fan-out of live run events to the SSE streams watching each run.

Everything happens on the server's event loop: :meth:`Broker.publish` puts the frame in the
queue of every current subscriber of the run at once, so a stream sends an event the moment it
happens, with no polling. The queues are unbounded; a stream that falls behind holds only the
frames it has not sent yet.

    queue = broker.subscribe(run_id)
    broker.publish(run_id, Frame("output", frame_json, 3))
    frame = await queue.get()
    broker.unsubscribe(run_id, queue)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, NamedTuple

from vm0_notebook.contract import OUTPUT_TRUNCATED
from vm0_notebook.local.store.records import compact


class Frame(NamedTuple):
    """One SSE frame: its event name, its ``data`` (compact JSON) and its ``id`` if any."""

    event: str
    data: str
    id: int | None = None

    def encode(self) -> bytes:
        """The frame as SSE wire bytes: ``id`` (if any), ``event`` and ``data`` lines."""
        head = f"id: {self.id}\n" if self.id is not None else ""
        return f"{head}event: {self.event}\ndata: {self.data}\n\n".encode()


def status_frame(run_id: str, status: str) -> Frame:
    """A ``status`` frame telling subscribers the run's new status."""
    return Frame("status", compact({"status": status, "run_id": run_id}))


def end_frames(run: Mapping[str, Any]) -> list[Frame]:
    """The last frames of a finished run (its stored row): ``error`` when it failed or timed
    out, then ``complete``, whose ``output`` is the run's final answer (for a plain process,
    the tail of its text: ``output_truncated`` says so; the output events hold the whole)."""
    status, error = run["status"], run["error"]
    frames = []
    if status in ("failed", "timeout"):
        frames.append(Frame("error", compact({"message": error or f"Run {status}",
                                               "code": f"run_{status}"})))
    complete = {"status": status, "output": run["output"], "error": error}
    if run["output_truncated"]:
        complete[OUTPUT_TRUNCATED] = True
    frames.append(Frame("complete", compact(complete)))
    return frames


class Broker:
    """Per-run subscriber queues."""

    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Frame]]] = {}

    def subscribe(self, run_id: str) -> asyncio.Queue[Frame]:
        """A new queue that receives every frame published for the run from now on."""
        queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._subscribers.setdefault(run_id, set()).add(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[Frame]) -> None:
        """Stop feeding ``queue``; the run's set goes once it has no queue left."""
        queues = self._subscribers.get(run_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._subscribers[run_id]

    def publish(self, run_id: str, frame: Frame) -> None:
        """Put a frame on every queue of the run; after ``complete`` the run's set is dropped."""
        for queue in self._subscribers.get(run_id, ()):
            queue.put_nowait(frame)
        if frame.event == "complete":
            # Nothing follows ``complete``: the queues already hold it, the set can go, and
            # with it any queue whose stream never started.
            self._subscribers.pop(run_id, None)
