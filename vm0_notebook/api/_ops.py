"""One definition per API operation, run by either the sync or the async client.

An operation is a generator that yields what it needs done (a :class:`Request`, a
:class:`Sleep`, a :class:`Download`, a :class:`Drain`, or a list of them to do concurrently) and
receives the result; the client it belongs to does the I/O. So ``client.runs.get`` and
``await aclient.runs.get`` share every line but the I/O, the way httpx shares request building
between its two clients.

    class Runs(Resource):
        @endpoint
        def get(self, run_id: str) -> Op[Run]:
            data = yield Request("GET", f"/runs/{run_id}")
            return self._client.run(data)
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar

T = TypeVar("T")
S = TypeVar("S")
P = ParamSpec("P")

Op = Generator[Any, Any, T]
"""An operation that returns ``T`` once its client has done the I/O it yields."""

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


@dataclass
class Request:
    """One HTTP request. ``path`` is under ``/v1``; ``url`` is a URL the server handed out."""

    method: str
    path: str = ""
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    url: str | None = None
    # None: retried when idempotent; True: safe to retry (e.g. an Idempotency-Key is sent)
    retry: bool | None = None
    # the reply as a :class:`Reply` (status, headers, JSON) instead of the JSON, 3xx included
    raw: bool = False
    # send this file as the body (uploads), calling progress(n) per chunk sent
    file: Path | None = None
    progress: Callable[[int], Any] | None = field(default=None, repr=False)

    @property
    def idempotent(self) -> bool:
        """Whether a retry is safe: ``retry`` when set, else True for the idempotent methods."""
        return self.retry if self.retry is not None else self.method in _IDEMPOTENT


@dataclass(frozen=True)
class Reply:
    """What a ``raw`` request returns."""

    status: int
    headers: dict[str, str]
    data: Any


@dataclass(frozen=True)
class Sleep:
    """Pause (``time.sleep`` or ``asyncio.sleep``)."""

    seconds: float


@dataclass
class Download:
    """Stream ``url`` (a server-given, possibly signed URL) into the file ``dest``; with a
    ``size``, a body longer than that is stopped there (``what`` names the file in the error),
    so a hostile server cannot fill the disk."""

    url: str
    dest: Path
    progress: Callable[[int], Any] | None = field(default=None, repr=False)
    size: int | None = None
    what: str = "a download"


@dataclass(frozen=True)
class Drain:
    """Read an event stream to its end (an iterator, or an async iterator on an async client)."""

    events: Any


def endpoint(fn: Callable[Concatenate[S, P], Op[T]]) -> Callable[Concatenate[S, P], T]:
    """Turn an operation method into a public method run by ``self._client``.

    On a sync client the call returns the result; on an async client it returns a coroutine.
    """

    @functools.wraps(fn)
    def call(self: S, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client.drive(fn(self, *args, **kwargs))  # type: ignore[attr-defined]

    return call
