"""Random ids: ``agt_`` + 24 hex for stored objects, ``req_`` + 32 hex for requests."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``agt_`` + 24 hex, and so on for every kind of object."""
    return f"{prefix}_{secrets.token_hex(12)}"


def request_id() -> str:
    """A fresh random ``req_...`` id for the ``X-Request-Id`` header."""
    return "req_" + secrets.token_hex(16)
