"""Reading a request: its JSON body, typed fields, pagination and time parameters, and the
platform's camelCase names for the seeds' snake_case ones.

Each reader raises the contract's 400 (:mod:`vm0_notebook.local.errors`) naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request

from vm0_notebook.contract import iso, parse_iso
from vm0_notebook.local.errors import invalid, missing

V = TypeVar("V")

# The platform's last public shape (camelCase, 2026-01-28) -> the seeds' names, which every
# handler reads. Answers stay snake_case.
BODY_NAMES = {
    "agentId": "agent_id", "sessionId": "session_id", "checkpointId": "checkpoint_id",
    "agentVersion": "agent_version", "artifactName": "artifact_name",
    "artifactVersion": "artifact_version", "uploadSessionId": "upload_session_id",
}
QUERY_NAMES = {"agentId": "agent_id", "lastEventId": "last_event_id", "versionId": "version_id"}


def canonical_names(
    items: Iterable[tuple[str, V]], names: Mapping[str, str]
) -> list[tuple[str, V]]:
    """``items`` with each alias in ``names`` renamed to its canonical name; one parameter
    given under both names with different values is a 400."""
    items = list(items)
    present = {key for key, _ in items}
    renamed = []
    for key, value in items:
        canonical = names.get(key)
        if canonical is None:
            renamed.append((key, value))
        elif canonical not in present:
            renamed.append((canonical, value))
        elif any(k == canonical and v != value for k, v in items):
            raise invalid(f"'{key}' and '{canonical}' are the same parameter with different "
                          "values: give one", canonical)
        # else: the same value under both names, carried by the canonical one
    return renamed


def canonical_query(query_string: bytes) -> bytes:
    """A raw query string with the platform's names (``lastEventId``...) made canonical."""
    text = query_string.decode("latin-1")
    pairs = parse_qsl(text, keep_blank_values=True)
    if not any(key in QUERY_NAMES for key, _ in pairs):
        return query_string  # untouched, byte for byte
    return urlencode(canonical_names(pairs, QUERY_NAMES)).encode("latin-1")


# Room for a 1 MiB prompt with plenty of variables; bulk data goes through storage uploads.
MAX_JSON_BODY = 8 * 1024 * 1024
# SQLite's INTEGER: a larger Python int raises OverflowError at the query.
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 that says what is wrong with it.

    The body is counted while it streams in: one over :data:`MAX_JSON_BODY` is refused as soon
    as it passes the limit, never held whole in memory.
    """
    too_large = invalid(f"Request body is too large (over {MAX_JSON_BODY // 2**20} MiB)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_JSON_BODY:
        raise too_large
    raw = await read_at_most(request, MAX_JSON_BODY, too_large)
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid("Request body is not valid JSON") from None
    except RecursionError:
        raise invalid("Request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise invalid("Request body must be a JSON object")
    body = dict(canonical_names(body.items(), BODY_NAMES))
    try:  # "\ud800" is valid JSON but no valid text: SQLite and the agent could not take it
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise invalid("Request body contains an unpaired surrogate (\\ud800-\\udfff)") from None
    except RecursionError:
        raise invalid("Request body is nested too deeply") from None
    return body


async def read_at_most(request: Request, limit: int, error: Exception) -> bytes:
    """The whole body, or ``error`` raised as soon as more than ``limit`` bytes have come."""
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise error
        chunks.append(chunk)
    return b"".join(chunks)


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
        limit = sequence_number(raw) or 0
        if not 1 <= limit <= 100:
            raise invalid("'limit' must be an integer between 1 and 100", "limit")
    cursor = request.query_params.get("cursor")
    if not cursor:
        return limit, None
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor.encode() + b"=="))
        if not isinstance(position, list) or not all(map(_cursor_part, position)):
            raise ValueError
        if shape is not None and (
            len(position) != len(shape) or not all(map(isinstance, position, shape))
        ):
            raise ValueError
    except (ValueError, binascii.Error, RecursionError):
        raise invalid("Invalid 'cursor'", "cursor") from None
    return limit, tuple(position)


def _cursor_part(value: Any) -> bool:
    """A string, or an integer SQLite can hold (64-bit signed)."""
    if isinstance(value, bool):
        return False
    return isinstance(value, str) or (isinstance(value, int) and INT64_MIN <= value <= INT64_MAX)


def sequence_number(value: str) -> int | None:
    """A non-negative decimal integer (ASCII digits only) SQLite can hold, else None."""
    # 19 digits hold every int64; longer text is refused before int() (which refuses 4300+).
    if not (value.isascii() and value.isdigit()) or len(value) > 19 or int(value) > INT64_MAX:
        return None
    return int(value)
