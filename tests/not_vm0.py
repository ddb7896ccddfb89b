"""Web servers that do not speak the VM0 API, for the client's "not a VM0 server" error.

Each is a plain Starlette app served by uvicorn on 127.0.0.1 in a thread:

    with not_vm0_server("html") as server:     # 404 with an HTML page for every path
        vm0.Client(api_url=server.url, api_key="vm0_test_x").agents.list()

Kinds: ``html`` (a 404 page, as a static site or a web app answers an unknown path), ``json``
(a 404 ``{"detail": "Not Found"}``, as FastAPI does: JSON, but not the VM0 error envelope),
``page`` (200 with an HTML page for every path, as a single-page app's fallback does).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

PAGE = "<!doctype html><html><body><h1>404: This page could not be found.</h1></body></html>"


@dataclass
class NotVM0:
    """A started server: its ``url`` and the ``(method, path)`` of every request it saw."""

    url: str
    seen: list[tuple[str, str]] = field(default_factory=list)


def _app(kind: str, seen: list[tuple[str, str]]) -> Starlette:
    async def anything(request: Request) -> Response:
        seen.append((request.method, request.url.path))
        if kind == "json":
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return HTMLResponse(PAGE, status_code=200 if kind == "page" else 404)

    methods = ["GET", "POST", "PUT", "DELETE"]
    return Starlette(routes=[Route("/{path:path}", anything, methods=methods)])


@contextmanager
def not_vm0_server(kind: str) -> Iterator[NotVM0]:
    """A running server of ``kind`` (see the module docstring), stopped on exit."""
    seen: list[tuple[str, str]] = []
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(_app(kind, seen), log_level="critical",
                                           lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.01)
    try:
        yield NotVM0(f"http://127.0.0.1:{sock.getsockname()[1]}", seen)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
