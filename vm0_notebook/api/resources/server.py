"""``client.server``: what the server says about itself, and whether it speaks the API."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._ops import Op, Request, endpoint
from ..errors import APINotServedError, APIStatusError, InvalidResponseError
from ..models import ServerInfo
from ._resource import Resource


class Server(Resource):
    """The server behind the client.

        print(client.server.info())   # speaks the VM0 API v1 (version 0.1.0, sandbox bubblewrap)
    """

    @endpoint
    def info(self) -> Op[ServerInfo]:
        """Ask ``GET /health`` (a vm0-local answers its version and sandbox) and try one ``/v1``
        request; connection errors are raised, everything else is in the answer."""
        url = self._client.api_url
        health: Any = None
        try:
            health = yield Request("GET", url="health")
        except (APIStatusError, InvalidResponseError):  # not every v1 server has /health
            health = None
        health = health if isinstance(health, Mapping) else {}
        speaks, problem = True, None
        try:
            yield Request("GET", "/agents", params={"limit": 1})
        except APINotServedError as exc:
            speaks, problem = False, str(exc)
        except APIStatusError as exc:  # an answer in the API's envelope: a wrong key, say
            problem = str(exc)
        return ServerInfo(
            url=url, speaks_v1=speaks, version=_text(health.get("version")),
            sandbox=_text(health.get("sandbox")), problem=problem,
            sandbox_problem=_problem(health.get("sandbox_problem")),
        )


def _problem(value: Any) -> str | None:
    # a sentence saying what to do: longer than the other fields, still bounded
    return (value.strip()[:500] or None) if isinstance(value, str) else None


def _text(value: Any) -> str | None:
    return str(value)[:80] if isinstance(value, str | int | float) and value != "" else None
