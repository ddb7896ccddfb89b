"""``GET /v1/runs/{id}/events``: the run's Server-Sent Events, live and replayed.

The stream subscribes to the run's live frames *before* it reads anything stored, so nothing
falls between the replay and the live part; a live output already replayed is skipped by its
sequence. Order: ``status`` (the current one), every stored output after ``last_event_id``, then
live frames until ``complete``, after which the stream closes. ``heartbeat`` frames keep idle
connections open. Many frames that are ready at once go out in one write.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.routing import Route

from vm0_notebook.contract import FINAL_STATUSES, now_iso
from vm0_notebook.local.errors import invalid
from vm0_notebook.local.store.records import compact
from vm0_notebook.local.web.broker import Frame, end_frames, status_frame
from vm0_notebook.local.web.requests import sequence_number
from vm0_notebook.local.web.state import local_server

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from vm0_notebook.local.web.state import LocalServer

REPLAY_PAGE = 1000
SEND_TIMEOUT_S = 60.0
# Covers the runner's own shut-down wait (runner._SHUTDOWN_S) plus the connections' drain.
SHUTDOWN_GRACE_S = 25.0
# How many ready frames one write may carry.
BATCH = 512


def _last_event_id(request: Request) -> int:
    name, value = "last_event_id", request.query_params.get("last_event_id")
    if value in (None, ""):
        name, value = "Last-Event-ID", request.headers.get("last-event-id")
    if value in (None, ""):
        return 0
    number = sequence_number(value)
    if number is None:
        raise invalid(f"'{name}' must be a non-negative integer below 2^63 (an output "
                      "sequence)", "last_event_id")
    return number


async def run_events(request: Request) -> Response:
    """``GET /v1/runs/{id}/events``: the run's event stream (SSE), replayed then live."""
    from sse_starlette import EventSourceResponse, ServerSentEvent

    server = local_server(request)
    run_id = request.path_params["run_id"]
    server.runs.get(run_id)
    after = _last_event_id(request)
    queue = server.broker.subscribe(run_id)

    async def stream() -> AsyncIterator[bytes]:
        try:
            async for chunk in _frames(server, run_id, after, queue):
                yield chunk
        finally:
            server.broker.unsubscribe(run_id, queue)

    return EventSourceResponse(
        stream(),
        ping=server.heartbeat_s,
        ping_message_factory=lambda: ServerSentEvent(
            compact({"timestamp": now_iso()}), event="heartbeat"),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        # A client that stops reading but keeps the connection is dropped (it can resume).
        send_timeout=SEND_TIMEOUT_S,
        # When the server stops, its runs stop first (serving.py) and each stream ends by
        # itself after ``complete``: cut it only if that takes longer than this.
        shutdown_grace_period=SHUTDOWN_GRACE_S,
    )


async def _frames(
    server: LocalServer, run_id: str, after: int, queue: asyncio.Queue[Frame]
) -> AsyncIterator[bytes]:
    first = server.runs.get(run_id)["status"]
    yield status_frame(run_id, first).encode()
    # Replay what is stored, a page at a time; flushing first makes the store hold every
    # output numbered so far, and the live queue holds every one after.
    while True:
        rows = server.records.outputs(run_id, after, REPLAY_PAGE)
        if rows:
            after = rows[-1][0]
            yield b"".join(Frame("output", r[1], r[0]).encode() for r in rows)
        if len(rows) < REPLAY_PAGE:
            break
    run = server.runs.get(run_id)
    if run["status"] in FINAL_STATUSES:
        frames = end_frames(run)
        if run["status"] != first:  # it ended during the replay
            frames.insert(0, status_frame(run_id, run["status"]))
        yield b"".join(f.encode() for f in frames)
        return
    while True:
        frames = [await queue.get()]
        with contextlib.suppress(asyncio.QueueEmpty):
            while len(frames) < BATCH:
                frames.append(queue.get_nowait())
        chunk, done = [], False
        for frame in frames:
            if frame.event == "output" and frame.id is not None and frame.id <= after:
                continue
            if frame.id is not None:
                after = frame.id
            chunk.append(frame.encode())
            if frame.event == "complete":
                done = True
                break
        if chunk:
            yield b"".join(chunk)
        if done:
            return


ROUTES = [Route("/v1/runs/{run_id}/events", run_events, methods=["GET"])]
