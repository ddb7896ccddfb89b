"""What every route of the local server shares: errors, JSON, ids, auth, pagination, checks.

Handlers raise :class:`ApiError` (or call the short helpers below) and return :func:`ok`; the
app turns an ``ApiError`` into the contract's error envelope. Every JSON response carries
``X-Request-Id``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
MAX_NAME = 100
# Room for a 1 MiB prompt with plenty of variables; bulk data goes through storage uploads.
MAX_JSON_BODY = 8 * 1024 * 1024

_STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "authorization_error": 403,
    "not_found_error": 404,
    "conflict_error": 409,
    "rate_limit_error": 429,
    "api_error": 500,
}


class ApiError(Exception):
    """An error the contract names: ``{"error": {"type", "code", "message", "param"?}}``."""

    def __init__(
        self,
        type: str,
        code: str,
        message: str,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.type, self.code, self.message, self.param = type, code, message, param
        self.status = _STATUS_OF_TYPE[type]
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body of the error response: ``{"error": {type, code, message, param?}}``."""
        error = {"type": self.type, "code": self.code, "message": self.message}
        if self.param is not None:
            error["param"] = self.param
        return {"error": error}


def invalid(message: str, param: str | None = None, code: str = "invalid_parameter") -> ApiError:
    """A 400 ``invalid_request_error`` for a bad parameter."""
    return ApiError("invalid_request_error", code, message, param)


def missing(param: str, message: str | None = None) -> ApiError:
    """A 400 ``missing_parameter`` error for a required parameter left out."""
    return invalid(message or f"Missing required parameter: '{param}'", param, "missing_parameter")


def invalid_state(message: str) -> ApiError:
    """A 400 ``invalid_state`` error: the request is valid but not in the resource's state."""
    return invalid(message, None, "invalid_state")


def not_found(what: str, key: str, param: str | None = None) -> ApiError:
    """A 404 ``resource_not_found`` error naming what was looked for."""
    return ApiError("not_found_error", "resource_not_found", f"No such {what}: '{key}'", param)


def conflict(message: str, param: str | None = None) -> ApiError:
    """A 409 ``resource_already_exists`` error."""
    return ApiError("conflict_error", "resource_already_exists", message, param)


def forbidden(message: str) -> ApiError:
    """A 403 ``permission_denied`` error."""
    return ApiError("authorization_error", "permission_denied", message)


# -- ids and times ---------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    """``agt_`` + 24 hex, and so on for every kind of object."""
    return f"{prefix}_{secrets.token_hex(12)}"


def request_id() -> str:
    """A fresh random ``req_...`` id for the ``X-Request-Id`` header."""
    return "req_" + secrets.token_hex(16)


def now_iso() -> str:
    """ISO-8601 UTC with millisecond precision; sorts as text in time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def parse_time(value: str, param: str) -> str:
    """A query timestamp, normalised to the stored ISO form so text comparison works."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"Invalid timestamp for '{param}': {value!r} (use ISO-8601)", param) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- requests and responses ------------------------------------------------------------------


def ok(data: Any, status: int = 200) -> JSONResponse:
    """A JSON response (200 unless ``status`` says otherwise)."""
    return JSONResponse(data, status_code=status)


def no_content() -> Response:
    """An empty 204 response, as deletes answer."""
    return Response(status_code=204)


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise invalid(f"Request body is too large (over {MAX_JSON_BODY // 2**20} MiB)")
    raw = await request.body()
    if len(raw) > MAX_JSON_BODY:
        raise invalid(f"Request body is too large (over {MAX_JSON_BODY // 2**20} MiB)")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    try:  # "\ud800" is valid JSON but no valid text: SQLite and the agent could not take it
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise invalid("Request body contains an unpaired surrogate (\\ud800-\\udfff)") from None
    return body


_KIND_NAMES = {"str": "a string", "dict": "an object", "list": "an array", "int": "an integer",
               "float": "a number", "bool": "a boolean"}


def field(
    body: dict[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False
) -> Any:
    """``body[name]`` checked against ``kind``; None when absent and not required."""
    value = body.get(name)
    if value is None:
        if required:
            raise missing(name)
        return None
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        kinds = (kind,) if isinstance(kind, type) else kind
        expected = " or ".join(_KIND_NAMES.get(k.__name__, k.__name__) for k in kinds)
        raise invalid(f"'{name}' must be {expected}", name)
    return value


def str_map(body: dict[str, Any], name: str) -> dict[str, str]:
    """An optional ``{str: str}`` object such as ``variables`` or ``secrets``."""
    value = field(body, name, dict) or {}
    for key, item in value.items():
        if not isinstance(item, str) or not key:
            raise invalid(f"'{name}' must map non-empty names to strings", name)
    return value


def check_name(name: Any, param: str = "name") -> str:
    """The name, checked: 1-100 lowercase letters, digits and hyphens, no hyphen at either end."""
    if not isinstance(name, str) or not name:
        raise missing(param) if not name else invalid(f"'{param}' must be a string", param)
    if len(name) > MAX_NAME or not NAME_RE.match(name):
        raise invalid(
            f"Invalid {param} {name!r}: use 1-100 lowercase letters, digits and hyphens, "
            "not starting or ending with a hyphen",
            param,
        )
    return name


# -- pagination ------------------------------------------------------------------------------


def page_args(
    request: Request, default: int = 20, shape: tuple[type, ...] | None = None
) -> tuple[int, tuple[Any, ...] | None]:
    """``limit`` (1..100) and the decoded ``cursor`` (a keyset position), from the query.

    With ``shape`` (such as ``(int,)``), a cursor whose position does not have those types is a
    400 too, so a hand-made cursor cannot reach the SQL as the wrong type.
    """
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        limit = default
    else:
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            raise invalid("'limit' must be an integer between 1 and 100", "limit")
    cursor = request.query_params.get("cursor")
    if not cursor:
        return limit, None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=="))
        if not isinstance(position, list) or not all(isinstance(p, str | int) for p in position):
            raise ValueError
        if shape is not None and (
            len(position) != len(shape) or not all(map(isinstance, position, shape))
        ):
            raise ValueError
    except (ValueError, binascii.Error):
        raise invalid("Invalid 'cursor'", "cursor") from None
    return limit, tuple(position)


def page(
    rows: Sequence[Any], limit: int, render: Callable[[Any], Any], key: Callable[[Any], tuple]
) -> dict[str, Any]:
    """The list body from ``limit + 1`` fetched rows: the extra row only says there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = None
    if more:
        raw = json.dumps(list(key(rows[-1])), separators=(",", ":")).encode()
        cursor = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return {
        "data": [render(r) for r in rows],
        "pagination": {"has_more": more, "next_cursor": cursor},
    }


# -- middleware ------------------------------------------------------------------------------


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


def error_response(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
