"""Serving the local server's app with uvicorn: the listening socket and a clean stop.

    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(create_app(data_dir, token))
    await server.serve(sockets=[sock])

On SIGTERM or SIGINT the server stops taking connections, then stops every run
(:meth:`~vm0_notebook.local.web.state.LocalServer.stop_runs`), so each open event stream sends its
run's ``status``, ``error`` and ``complete`` and ends normally, and only then drains its
connections. A client sees why its stream ended instead of a connection cut mid-stream.

Slow or idle clients cannot take the server away from the others (uvicorn itself has no header
deadline): a request's headers must arrive within :data:`HEADER_TIMEOUT_S` of the moment the
connection waits for them, and past :data:`MAX_CONNECTIONS` open connections (fewer when the
open-files limit is low) each new one closes the connection that has waited longest for its
request headers, so the server never runs out of file descriptors and ``/health`` answers.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import resource
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn
    from starlette.applications import Starlette

logger = logging.getLogger(__name__)

# How long open connections (event streams that are ending) get once every run has stopped.
GRACEFUL_S = 5.0
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


def _quiet_out_of_files(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
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


def guarded_h11(header_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with a header deadline and a connection limit (see above)."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    warned = [-WARN_EVERY_S]

    class GuardedH11Protocol(H11Protocol):
        # Since when this connection waits for a request's headers (None: it is in a request).
        waiting_since: float | None = None
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._wait_for_headers()
            limit = connection_limit(max_connections)
            if len(self.connections) > limit:
                self._make_room(limit)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.waiting_since is not None and self.conn.their_state is not h11.IDLE:
                self._stop_waiting()  # the headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait_for_headers()

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
            waiting = [c for c in self.connections if isinstance(c, GuardedH11Protocol)
                       and c.waiting_since is not None and not c.transport.is_closing()]
            victim = min(waiting, key=lambda c: c.waiting_since or 0.0, default=self)
            victim.transport.close()
            now = time.monotonic()
            if now - warned[0] >= WARN_EVERY_S:
                warned[0] = now
                logger.warning("over %d open connections: closing those that wait longest "
                               "for their request headers", limit)

    return GuardedH11Protocol


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: any free one).

    Its protocol is named explicitly: asyncio sets TCP_NODELAY only on sockets whose ``proto``
    is IPPROTO_TCP, and without it every small keep-alive response waits ~40 ms for a delayed
    ACK (Nagle).
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_server(
    app: Starlette, *, header_timeout_s: float = HEADER_TIMEOUT_S,
    max_connections: int = MAX_CONNECTIONS, **config: Any,
) -> uvicorn.Server:
    """A uvicorn server for ``app`` (made by :func:`~vm0_notebook.local.web.app.create_app`) that
    stops the app's runs before it drains its connections, with a header deadline and a
    connection limit. ``config`` goes to ``uvicorn.Config``."""
    import uvicorn

    raise_open_files_limit()

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            asyncio.get_running_loop().set_exception_handler(_quiet_out_of_files)
            await super().startup(sockets)
            # asyncio re-listened with uvicorn's small ``backlog`` (how many connections it
            # accepts per wake-up, see below); the kernel's queue stays long.
            for sock in sockets or ():
                sock.listen(LISTEN_BACKLOG)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:  # no new request while the runs stop
                server.close()
            await app.state.local.stop_runs()
            await super().shutdown(sockets)

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # Stop listening now rather than at uvicorn's next tick (up to 0.1 s later), so a
            # caller looking for a live server is not handed one that is already going away.
            # call_soon_threadsafe is what may be called from a signal handler.
            for server in getattr(self, "servers", []):
                server.get_loop().call_soon_threadsafe(server.close)

    options: dict[str, Any] = {"log_level": "warning", "access_log": False, "lifespan": "on",
                               "timeout_graceful_shutdown": GRACEFUL_S,
                               "http": guarded_h11(header_timeout_s, max_connections),
                               # Accepted in small batches, each new connection makes room
                               # before the next batch takes more descriptors.
                               "backlog": ACCEPT_BATCH}
    return Server(uvicorn.Config(app, **{**options, **config}))
