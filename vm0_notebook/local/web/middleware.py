"""The ASGI middleware in front of every route: ``X-Request-Id``, the Host check, the token,
the platform's query names.

The Host header must name this machine's loopback (``localhost``, ``127.0.0.1``, ``[::1]``,
any port) or a host the server was configured with, as Jupyter Server checks it: a web page
whose name was rebound to 127.0.0.1 sends its own name there, and gets a 403 on every path,
``/health`` and the signed ``/storage/`` URLs included. An exception no handler turned into an
answer becomes a generic 500 that says nothing of it.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from vm0_notebook.local.errors import ApiError
from vm0_notebook.local.store.ids import request_id
from vm0_notebook.local.web.requests import canonical_query
from vm0_notebook.local.web.responses import ok

logger = logging.getLogger(__name__)


def host_name(header: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets, lowercased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def host_allowed(header: str, allowed: frozenset[str]) -> bool:
    """Whether a Host header names a loopback address, ``localhost`` or one of ``allowed``."""
    name = host_name(header)
    if name == "localhost" or name in allowed:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class RequestIdAndAuth:
    """Adds ``X-Request-Id`` to every response, checks the Host header and the bearer token.

    ``allowed_hosts`` are the names besides loopback the server is reached by (a shared
    server's own name). Paths in ``public`` (``/health``) and under ``/storage/`` (signed URLs
    that carry their own signature) need no token. The token is compared in constant time.
    """

    def __init__(
        self, app: ASGIApp, token: str, public: tuple[str, ...] = ("/health",),
        allowed_hosts: Iterable[str] = (),
    ) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self.public = public
        self.allowed_hosts = frozenset(host_name(h) for h in allowed_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id().encode()

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid)]
            await send(message)

        path: str = scope["path"]
        host = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
        if not host_allowed(host, self.allowed_hosts):
            error = ApiError(
                "authorization_error", "host_not_allowed",
                f"Host {host[:100]!r} is not allowed: use localhost or 127.0.0.1, or start the "
                "server with this host among its allowed hosts",
            )
            await ok(error.body(), error.status)(scope, receive, send_with_id)
            return
        if path not in self.public and not path.startswith("/storage/"):
            auth = dict(scope["headers"]).get(b"authorization", b"")
            if not auth:
                error = ApiError(
                    "authentication_error", "missing_api_key",
                    "Missing API key: send 'Authorization: Bearer <token>'",
                )
                await ok(error.body(), error.status)(scope, receive, send_with_id)
                return
            if not hmac.compare_digest(auth, self._expected):
                error = ApiError("authentication_error", "invalid_api_key", "Invalid API key")
                await ok(error.body(), error.status)(scope, receive, send_with_id)
                return
        started = False

        async def send_tracked(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:
            if started:  # too late for an error response; the server logs it
                raise
            # The answer stays generic: an exception's text could carry anything, secrets too.
            logger.exception("%s %s failed", scope.get("method"), path)
            error = ApiError("api_error", "internal_error", "Internal server error")
            await ok(error.body(), error.status)(scope, receive, send_with_id)


class CanonicalQuery:
    """Renames the platform's camelCase query names (``lastEventId``, ``versionId``,
    ``agentId``) to the seeds' ones before any route reads them; both names with different
    values: 400 (see :func:`~vm0_notebook.local.web.requests.canonical_names`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            try:
                scope = {**scope, "query_string": canonical_query(scope["query_string"])}
            except ApiError as error:
                await ok(error.body(), error.status)(scope, receive, send)
                return
        await self.app(scope, receive, send)
