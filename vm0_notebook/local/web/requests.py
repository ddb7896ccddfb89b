"""Reading a request: its JSON body, typed fields, pagination and time parameters.

Each reader raises the contract's 400 (:mod:`vm0_notebook.local.errors`) naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from starlette.requests import Request

from vm0_notebook.contract import iso, parse_iso
from vm0_notebook.local.errors import invalid, missing

# Room for a 1 MiB prompt with plenty of variables; bulk data goes through storage uploads.
MAX_JSON_BODY = 8 * 1024 * 1024


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


def parse_time(value: str, param: str) -> str:
    """A query timestamp, normalised to the stored ISO form so text comparison works."""
    try:
        return iso(parse_iso(value))
    except ValueError:
        raise invalid(f"Invalid timestamp for '{param}': {value!r} (use ISO-8601)", param) from None


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
