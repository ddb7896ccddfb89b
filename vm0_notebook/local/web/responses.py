"""Writing a response: JSON, the empty 204, a page of a list, the error envelope."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vm0_notebook.local.errors import ApiError


def ok(data: Any, status: int = 200) -> JSONResponse:
    """A JSON response (200 unless ``status`` says otherwise)."""
    return JSONResponse(data, status_code=status)


def no_content() -> Response:
    """An empty 204 response, as deletes answer."""
    return Response(status_code=204)


def _cursor(position: tuple) -> str:
    raw = json.dumps(list(position), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def page(
    rows: Sequence[Any], limit: int, render: Callable[[Any], Any], key: Callable[[Any], tuple]
) -> dict[str, Any]:
    """The list body from ``limit + 1`` fetched rows: the extra row only says there is more."""
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [render(r) for r in rows],
        "pagination": {"has_more": more, "next_cursor": _cursor(key(rows[-1])) if more else None},
    }


def page_of_json(items: Sequence[tuple[Any, str]], limit: int) -> Response:
    """A list response from ``limit + 1`` ``(position, item JSON)`` pairs whose items are
    already JSON text: the body is joined, not encoded again."""
    more = len(items) > limit
    items = items[:limit]
    cursor = json.dumps(_cursor((items[-1][0],))) if more else "null"
    body = (f'{{"data":[{",".join(item for _, item in items)}],'
            f'"pagination":{{"has_more":{"true" if more else "false"},"next_cursor":{cursor}}}}}')
    return Response(body.encode(), media_type="application/json")


def error_response(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)
