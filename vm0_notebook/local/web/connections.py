"""Connections that cannot take the local server away from the others.

uvicorn has no header deadline and accepts connections until the process runs out of file
descriptors. Here a request's headers must arrive within :data:`HEADER_TIMEOUT_S` of the moment
the connection waits for them, and past :data:`MAX_CONNECTIONS` open connections (fewer when
the open-files limit is low) each new one closes the connection that has waited longest for its
request headers, so the server never runs out of descriptors and ``/health`` answers. Each
connection's transport sends a response's head with its body (:class:`HeadWithBody`)::

    uvicorn.Config(app, http=guarded_protocol(HEADER_TIMEOUT_S, MAX_CONNECTIONS),
                   backlog=ACCEPT_BATCH)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import time
from typing import Any

logger = logging.getLogger(__name__)

# How long a connection may take to send a request's headers (as Apache's RequestReadTimeout).
HEADER_TIMEOUT_S = 20.0
MAX_CONNECTIONS = 4096
# File descriptors kept for everything but connections: the database, blobs, agents' pipes,
# and the few batches accepted before the connections over the limit are closed.
FD_RESERVE = 256
ACCEPT_BATCH = 32
LISTEN_BACKLOG = 2048
# At most one warning about the connection limit per this many seconds.
WARN_EVERY_S = 60.0
# Largest write held back to go out with the next (a response's head is well under this).
HOLD_BYTES = 16 * 1024


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit to its hard limit; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


_last_out_of_files = [-WARN_EVERY_S]


def quiet_out_of_files(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """The loop's error handler: running out of descriptors is one line a minute, not a
    traceback per attempt (asyncio retries the accept every second)."""
    exc = context.get("exception")
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        now = time.monotonic()
        if now - _last_out_of_files[0] >= WARN_EVERY_S:
            _last_out_of_files[0] = now
            logger.warning("out of file descriptors (%s): new connections wait", exc.strerror)
        return
    loop.default_exception_handler(context)


def connection_limit(configured: int) -> int:
    """``configured``, or fewer when the open-files limit leaves no room for that many."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(8, min(configured, soft - FD_RESERVE))


def guarded_protocol(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol with a header deadline and a connection limit (see above):
    httptools' (a C parser: a page of logs costs the server a fifth less CPU than with h11)
    where it is installed, else h11's."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools is missing (a platform without its wheel)
        return guarded_h11(header_timeout_s, max_connections)

    guard = _guard(header_timeout_s, max_connections)

    class GuardedHttpToolsProtocol(guard, HttpToolsProtocol):  # type: ignore[misc, valid-type]
        def on_headers_complete(self) -> None:
            self._stop_waiting()  # the headers are in
            super().on_headers_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # a pipelined request already queued had its headers in: nothing to wait for
            if not self.transport.is_closing() and not self.pipeline:
                self._wait_for_headers()

    return GuardedHttpToolsProtocol


def guarded_h11(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header deadline and a connection limit (see above)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    guard = _guard(header_timeout_s, max_connections)

    class GuardedH11Protocol(guard, H11Protocol):  # type: ignore[misc, valid-type]
        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.waiting_since is not None and self.conn.their_state is not h11.IDLE:
                self._stop_waiting()  # the headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait_for_headers()

    return GuardedH11Protocol


def _guard(header_timeout_s: float, max_connections: int) -> type:
    """The part of a guarded protocol that does not depend on its parser: the deadline's timer
    and the choice of the connection to close. A protocol class stops the wait when its parser
    has a request's headers and starts it again when a response is complete."""
    warned = [-WARN_EVERY_S]

    class Guard:
        # Since when this connection waits for a request's headers (None: it is in a request).
        waiting_since: float | None = None
        _deadline: asyncio.TimerHandle | None = None
        connections: set[Any]
        transport: asyncio.Transport
        loop: asyncio.AbstractEventLoop

        def connection_made(self, transport: asyncio.Transport) -> None:
            super().connection_made(HeadWithBody(transport, self.loop))  # type: ignore[misc]
            self._wait_for_headers()
            limit = connection_limit(max_connections)
            if len(self.connections) > limit:
                self._make_room(limit)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)  # type: ignore[misc]

        def _wait_for_headers(self) -> None:
            self._stop_waiting()
            self.waiting_since = time.monotonic()
            self._deadline = self.loop.call_later(header_timeout_s, self._too_slow)

        def _stop_waiting(self) -> None:
            self.waiting_since = None
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if self.waiting_since is not None and not self.transport.is_closing():
                self.transport.close()

        def _make_room(self, limit: int) -> None:
            waiting = [c for c in self.connections if isinstance(c, Guard)
                       and c.waiting_since is not None and not c.transport.is_closing()]
            victim = min(waiting, key=lambda c: c.waiting_since or 0.0, default=self)
            victim.transport.close()
            now = time.monotonic()
            if now - warned[0] >= WARN_EVERY_S:
                warned[0] = now
                logger.warning("over %d open connections: closing those that wait longest "
                               "for their request headers", limit)

    return Guard


class HeadWithBody:
    """A transport that holds a small write until the next write or the end of the event
    loop's turn, so a response's head goes out in the same send as its body.

    uvicorn writes the two separately, and each send wakes the reader: on a virtual machine a
    wake-up of another CPU costs more than the rest of serving a page of logs. At most one
    small write is ever held, and never past the turn it was made in, so a stream's head and
    events are not delayed.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + data)
        elif len(data) <= HOLD_BYTES:
            self._held = bytes(data)
            self._loop.call_soon(self._release)
        else:
            self._transport.write(data)

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
