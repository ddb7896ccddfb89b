"""Serving the local server's app with uvicorn: the listening socket and a clean stop.

Connections go through :mod:`vm0_notebook.local.web.connections` (a header deadline and a
connection limit), so slow clients cannot take the server away from the others::

    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(create_app(data_dir, token))
    await server.serve(sockets=[sock])

On SIGTERM or SIGINT the server stops taking connections, then stops every run
(:meth:`~vm0_notebook.local.web.state.LocalServer.stop_runs`), so each open event stream sends its
run's ``status``, ``error`` and ``complete`` and ends normally, and only then drains its
connections. A client sees why its stream ended instead of a connection cut mid-stream.
"""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

from vm0_notebook.local.web.connections import (
    ACCEPT_BATCH,
    HEADER_TIMEOUT_S,
    LISTEN_BACKLOG,
    MAX_CONNECTIONS,
    guarded_protocol,
    quiet_out_of_files,
    raise_open_files_limit,
)

if TYPE_CHECKING:
    from types import FrameType

    import uvicorn
    from starlette.applications import Starlette

# How long open connections (event streams that are ending) get once every run has stopped.
GRACEFUL_S = 5.0


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
            asyncio.get_running_loop().set_exception_handler(quiet_out_of_files)
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
                               "http": guarded_protocol(header_timeout_s, max_connections),
                               # Accepted in small batches, each new connection makes room
                               # before the next batch takes more descriptors.
                               "backlog": ACCEPT_BATCH}
    return Server(uvicorn.Config(app, **{**options, **config}))
