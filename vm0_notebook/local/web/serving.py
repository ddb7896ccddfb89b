"""Serving the local server's app with uvicorn: the listening socket and a clean stop.

    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(create_app(data_dir, token))
    await server.serve(sockets=[sock])

On SIGTERM or SIGINT the server stops taking connections, then stops every run
(:meth:`~vm0_notebook.local.web.state.LocalServer.stop_runs`), so each open event stream sends its
run's ``status``, ``error`` and ``complete`` and ends normally, and only then drains its
connections. A client sees why its stream ended instead of a connection cut mid-stream.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

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
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def uvicorn_server(app: Starlette, **config: Any) -> uvicorn.Server:
    """A uvicorn server for ``app`` (made by :func:`~vm0_notebook.local.web.app.create_app`) that
    stops the app's runs before it drains its connections. ``config`` goes to
    ``uvicorn.Config``."""
    import uvicorn

    class Server(uvicorn.Server):
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
                               "timeout_graceful_shutdown": GRACEFUL_S}
    return Server(uvicorn.Config(app, **{**options, **config}))
