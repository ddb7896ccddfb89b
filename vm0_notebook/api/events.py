"""A run's Server-Sent Events as an iterator that survives dropped connections.

The stream reconnects by itself after a dropped connection or ``stream_idle_timeout`` (45 s)
without a byte, resuming after the last output sequence seen (sent as the ``last_event_id``
query, the ``lastEventId`` query and the ``Last-Event-ID`` header, so every server variant
understands it), as often as it takes while connections bring something new. Outputs already
seen are dropped; a jump in sequences is reported as a ``gap`` event. It ends after
``complete``.

Two cases read the run's agent logs instead (each entry holds one output event's JSON and its
sequence): a server that sends only ``complete`` for a finished run, and a connection that
breaks before it delivers one new output, as when a frame is larger than what a connection
carries between drops. Then the missing outputs come from the logs, in order, none twice; and
once the run has ended (its detail, read before the logs, says so), ``complete`` is made from
its detail.

    for event in client.runs.events(run.id):
        ...
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx
import httpx_sse

from ..contract import FINAL_STATUSES, OUTPUT_TRUNCATED
from ._base import RETRY_STATUSES
from ._ops import Op, Request
from ._parse import iso
from .errors import APIConnectionError, APIStatusError, InvalidResponseError
from .models import Event, LogEntry, RunDetail
from .pagination import MAX_PAGE, split_page

log = logging.getLogger("vm0_notebook")

Observer = Callable[[Event], Any]


class _Tracker:
    """The sync and async streams' shared state: resume point, duplicates, gaps, fallback."""

    def __init__(self, run_id: str, last_event_id: int | None, observer: Observer | None):
        self.run_id = run_id
        self.last_seq = int(last_event_id or 0)
        self.observer = observer
        self.last_status: str | None = None
        self.complete: Event | None = None
        self.failures = 0
        self.since: str | None = None  # the timestamp of the last output seen
        self._conn_progress = False
        self._conn_outputs = 0
        self._conn_live = False
        self._conn_opened = False
        self._logs_read = False  # the logs were read to their end after the run ended

    @property
    def run_path(self) -> str:
        """The run's ``/runs/{id}`` path, the id URL-quoted."""
        return f"/runs/{quote(self.run_id, safe='')}"

    @property
    def path(self) -> str:
        """The run's ``/runs/{id}/events`` path."""
        return self.run_path + "/events"

    def connection(self) -> tuple[dict[str, Any], dict[str, str]]:
        """Query and headers of the next connection (resuming after the last sequence)."""
        self._conn_progress = False
        self._conn_outputs = 0
        self._conn_live = False
        self._conn_opened = False
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if not self.last_seq:
            return {}, headers
        n = str(self.last_seq)
        return {"last_event_id": n, "lastEventId": n}, {**headers, "Last-Event-ID": n}

    def accept(self, sse: httpx_sse.ServerSentEvent) -> Sequence[Event]:
        """The events to hand on for one frame (none for a duplicate)."""
        event = Event.from_sse(sse.event, sse.data, sse.id)
        if event.event == "output" and event.id == self.last_seq + 1:
            # the usual case, kept short: the next output, in order
            self.last_seq = event.id
            self.since = event.data.get("timestamp")
            self._conn_outputs += 1
            self._conn_progress = True
            self.failures = 0
            if self.observer is not None:
                self.observer(event)
            return (event,)
        return self.accept_event(event)

    def accept_event(self, event: Event) -> list[Event]:
        """The events to hand on for one event: none for a duplicate, a ``gap`` before a jump."""
        out: list[Event] = []
        if event.event == "output":
            seq = event.sequence
            if seq is not None:
                if seq <= self.last_seq:
                    return []
                if seq > self.last_seq + 1:
                    missing = seq - self.last_seq - 1
                    log.warning("run %s: %d output event(s) missing before sequence %d",
                                self.run_id, missing, seq)
                    out.append(Event("gap", {"after": self.last_seq, "next": seq,
                                             "missing": missing}))
                self.last_seq = seq
                self.since = event.data.get("timestamp") or self.since
            self._conn_outputs += 1
        elif event.event == "status":
            if event.status not in FINAL_STATUSES:
                self._conn_live = True
            if event.status == self.last_status:
                return []
            self.last_status = event.status
        elif event.event == "complete":
            self.complete = event
            return []  # handed on by finish(), after any output recovered from logs
        out.append(event)
        self._conn_progress = True
        self.failures = 0
        return self._observed(out)

    def _observed(self, events: list[Event]) -> list[Event]:
        if self.observer is not None:
            for event in events:
                self.observer(event)
        return events

    def opened(self) -> None:
        """The connection answered with an event stream."""
        self._conn_opened = True

    @property
    def stuck(self) -> bool:
        """True when the connection opened and ended before one new output or ``complete``:
        what comes next may be a frame larger than a connection carries, so read the logs."""
        return self._conn_opened and not self._conn_outputs and self.complete is None

    @property
    def needs_logs(self) -> bool:
        """True when ``complete`` came on a connection to an already finished run that
        replayed nothing: the server may not replay, so the logs hold the output."""
        return (self.complete is not None and not self._conn_outputs and not self._conn_live
                and not self._logs_read)

    def recover_op(self) -> Op[list[Event]]:
        """The outputs after the last one seen, read from the run's agent logs; then, if the
        run had already ended, its ``complete`` (made from its detail). Errors are left to the
        stream's next connection."""
        out: list[Event] = []
        try:
            detail = RunDetail.from_api((yield Request("GET", self.run_path)))
            params: dict[str, Any] = {"type": "agent", "limit": MAX_PAGE}
            if self.since:
                params["since"] = self.since  # inclusive: the entries before it are all seen
            seen_cursors: set[str] = set()
            while True:
                page = yield Request("GET", self.run_path + "/logs", params=dict(params))
                items, cursor = split_page(page)
                for raw in items:
                    entry = LogEntry.from_api(raw)
                    if entry.sequence:
                        out += self.accept_event(event_from_log(entry))
                if cursor is None or cursor in seen_cursors:
                    break
                seen_cursors.add(cursor)
                params["cursor"] = cursor
        except (APIConnectionError, APIStatusError, InvalidResponseError) as exc:
            log.info("run %s: could not read the missing events from the logs: %s",
                     self.run_id, exc)
            return out
        if detail.status in FINAL_STATUSES:  # the logs were read after it ended: all there
            self._logs_read = True
            data: dict[str, Any] = {"status": detail.status, "output": detail.output,
                                    "error": detail.error}
            if detail.output_truncated:
                data[OUTPUT_TRUNCATED] = True
            self.accept_event(Event("complete", data))
        return out

    def from_logs(self, entries: list[LogEntry]) -> list[Event]:
        """The output events recovered from log entries, in sequence order, duplicates dropped."""
        out: list[Event] = []
        for entry in sorted((e for e in entries if e.sequence), key=lambda e: e.sequence or 0):
            out += self.accept_event(event_from_log(entry))
        return out

    def finish(self) -> list[Event]:
        """The held ``complete`` event, handed on last (after any output recovered from logs)."""
        assert self.complete is not None
        return self._observed([self.complete])

    def dropped(self, client: Any, error: Exception | None) -> float:
        """Seconds to wait before reconnecting, or raise when it is time to give up.

        Only drops in a row that brought nothing new count towards giving up: a stream that
        keeps making progress resumes through any number of them, at once."""
        if isinstance(error, APIStatusError) and error.status not in RETRY_STATUSES:
            raise error
        if isinstance(error, httpx_sse.SSEError):
            raise InvalidResponseError(
                f"The events endpoint did not answer with an event stream: {error}"
            )
        if isinstance(error, httpx.RequestError) and not isinstance(error, httpx.TransportError):
            raise client.request_error(Request("GET", self.path), error)
        if self._conn_progress:
            self.failures = 0
            return 0.0
        self.failures += 1
        if self.failures >= max(client.retry.attempts, 3):
            if isinstance(error, APIStatusError):
                raise error
            if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                raise client.request_error(Request("GET", self.path), error)  # no server there
            detail = f": {type(error).__name__}" if error is not None else ""
            # not chained to httpx's error: that one holds the request and its Authorization
            raise APIConnectionError(
                f"The event stream of run {self.run_id} kept dropping ({self.failures} tries"
                f"{detail}); resume with runs.events({self.run_id!r}, "
                f"last_event_id={self.last_seq})"
            )
        retry_after = getattr(error, "retry_after", None)
        # the first reconnect is immediate: a dropped stream is normal
        return 0.0 if self.failures == 1 and retry_after is None \
            else client.retry.delay(self.failures - 1, retry_after)


def event_from_log(entry: LogEntry) -> Event:
    """The ``output`` event an agent log entry mirrors (its message is the output's JSON)."""
    kind = entry.metadata.get("event_type")
    try:
        payload = json.loads(entry.message)
    except ValueError:
        payload = {"type": kind or "assistant", "text": entry.message}
    if not isinstance(payload, dict):
        payload = {"type": kind or "assistant", "value": payload}
    data = {
        "sequence": entry.sequence,
        "type": kind or payload.get("type"),
        "data": payload,
        "timestamp": iso(entry.timestamp),
    }
    return Event("output", data, entry.sequence)


def stream(
    client: Any, run_id: str, last_event_id: int | None = None, *, _observer: Observer | None = None
) -> Any:
    """The run's events: an iterator on a sync client, an async iterator on an async one."""
    tracker = _Tracker(run_id, last_event_id, _observer)
    return _sync(client, tracker) if client.is_sync else _async(client, tracker)


def _sync(client: Any, t: _Tracker) -> Iterator[Event]:
    while t.complete is None:
        params, headers = t.connection()
        error: Exception | None = None
        try:
            with client.sse(t.path, params, headers) as source:
                t.opened()
                for sse in source.iter_sse():
                    yield from t.accept(sse)
                    if t.complete is not None:
                        break
        except (httpx.RequestError, APIStatusError) as exc:
            error = exc  # judged by dropped(), out of this block, so nothing chains to it
        if t.stuck:
            yield from client.drive(t.recover_op())
        if t.complete is None:
            client.sleep(t.dropped(client, error))
    if t.needs_logs:
        yield from t.from_logs(list(client.runs.logs(t.run_id, type="agent")))
    yield from t.finish()


async def _async(client: Any, t: _Tracker) -> AsyncIterator[Event]:
    while t.complete is None:
        params, headers = t.connection()
        error: Exception | None = None
        try:
            async with client.sse(t.path, params, headers) as source:
                t.opened()
                async for sse in source.aiter_sse():
                    for event in t.accept(sse):
                        yield event
                    if t.complete is not None:
                        break
        except (httpx.RequestError, APIStatusError) as exc:
            error = exc  # judged by dropped(), out of this block, so nothing chains to it
        if t.stuck:
            for event in await client.drive(t.recover_op()):
                yield event
        if t.complete is None:
            await client.sleep(t.dropped(client, error))
    if t.needs_logs:
        for event in t.from_logs(await client.runs.logs(t.run_id, type="agent").to_list()):
            yield event
    for event in t.finish():
        yield event
