"""The ASGI middleware in front of every route: ``X-Request-Id`` on each response, the bearer token.

An exception no handler turned into an answer becomes a generic 500 that says nothing of it.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from vm0_notebook.local.errors import ApiError
from vm0_notebook.local.store.ids import request_id
from vm0_notebook.local.web.responses import ok

logger = logging.getLogger(__name__)


class RequestIdAndAuth:
    """Adds ``X-Request-Id`` to every response and checks the bearer token.

    Paths in ``public`` (``/health``) and under ``/storage/`` (signed URLs that carry their own
    signature) need no token. The token is compared in constant time.
    """

    def __init__(self, app: ASGIApp, token: str, public: tuple[str, ...] = ("/health",)) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self.public = public

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
