"""Every error this package raises, the client's and the notebook's.

    VM0Error                        anything raised by vm0_notebook on purpose
    ├── APIConnectionError          the server could not be reached (also a ConnectionError)
    │   └── APITimeoutError         it did not answer in time (also a TimeoutError)
    ├── APIStatusError              the server answered with an error status
    │   ├── InvalidRequestError     400 invalid_request_error (also a ValueError; raised
    │   │                               before any request for input the server would refuse)
    │   ├── AuthenticationError     401 authentication_error
    │   ├── AuthorizationError      403 authorization_error
    │   ├── NotFoundError           404 not_found_error (also a LookupError)
    │   ├── ConflictError           409 conflict_error
    │   ├── RateLimitError          429 rate_limit_error (``retry_after`` in seconds, if sent)
    │   └── InternalServerError     5xx api_error
    ├── InvalidResponseError        a success status with a body that is not the contract
    │   │                               (a download that is not the version it names, too)
    │   └── APINotServedError       the server does not speak the VM0 API v1 at /v1 at all (an
    │                                   HTML page, a 404 without the VM0 error envelope); not a
    │                                   NotFoundError: nothing is missing, the API is
    ├── FolderNotEmptyError         ``mount(to=DIR)`` found files it did not put there (also a
    │                                   FileExistsError; ``filename`` is the folder)
    ├── RunFailedError              a run ended failed, timeout or cancelled (``run`` attached)
    │   └── RunFailed               a ``%vm0`` cell's run did not complete (also interrupted)
    ├── WaitTimeoutError            ``run.wait(timeout=...)`` gave up (also a TimeoutError)
    ├── MapError                    ``client.map(..., raise_on_error=True)``: some runs did not
    │                                   complete (``frame`` and ``failures`` attached)
    └── MagicError                  a ``%vm0`` line is wrong, or the server refused it

    KeyboardInterrupt
    └── MapInterrupted              Ctrl-C stopped ``client.map``: its runs were cancelled;
                                        ``frame`` holds what finished (not a VM0Error, so
                                        ``except Exception`` does not swallow a Ctrl-C)

The two notebook errors show as one short paragraph instead of a traceback (IPython calls
``_render_traceback_``) and still fail the cell, so nbclient, papermill and "Run All" stop.

Status errors carry ``status``, ``type``, ``code``, ``message``, ``param`` and ``request_id``;
``str(error)`` is one short line that says what happened and, where it can, what to do.

    try:
        client.runs.create(agent="nope", prompt="hi")
    except vm0.NotFoundError as e:
        print(e.code, e.request_id)
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ..contract import ERROR_STATUS

__all__ = [
    "APIConnectionError",
    "APINotServedError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "AuthorizationError",
    "ConflictError",
    "FolderNotEmptyError",
    "InternalServerError",
    "InvalidRequestError",
    "InvalidResponseError",
    "MagicError",
    "MapError",
    "MapInterrupted",
    "NotFoundError",
    "RateLimitError",
    "RunFailed",
    "RunFailedError",
    "VM0Error",
    "WaitTimeoutError",
]


class VM0Error(Exception):
    """Base class of every error raised by vm0_notebook (client and notebook)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class APIConnectionError(VM0Error, ConnectionError):
    """The server could not be reached, or the connection broke mid-answer."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """The server did not answer within the client's timeout."""


class APIStatusError(VM0Error):
    """The server answered with an error status (4xx/5xx).

    Attributes: ``status`` (HTTP status, None when raised before any request), ``type``,
    ``code``, ``message`` (the server's own words), ``param``, ``request_id`` (the
    ``X-Request-Id`` header) and ``hint`` (what to do about it, shown after the message).
    """

    error_type = "api_error"
    default_hint: str | None = None

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        doc_url: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.hint = hint
        self.status = status
        self.type = type or self.error_type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.doc_url = doc_url

    def __str__(self) -> str:
        text = self.message
        if self.hint and self.hint not in text:
            text += f"; {self.hint}"
        return text + (f" (request {self.request_id})" if self.request_id else "")

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class InvalidRequestError(APIStatusError, ValueError):
    """400: a parameter is missing or invalid, or the resource is in the wrong state."""

    error_type = "invalid_request_error"


class AuthenticationError(APIStatusError):
    """401: the API key is missing, invalid, expired or revoked."""

    error_type = "authentication_error"
    default_hint = "check the key (VM0_API_KEY or Client(api_key=...)) and the server URL"


class AuthorizationError(APIStatusError):
    """403: the key may not do this (or a signed storage URL expired or was altered)."""

    error_type = "authorization_error"
    default_hint = "use a key allowed to do this; a signed URL may have expired: fetch a new one"


class NotFoundError(APIStatusError, LookupError):
    """404: no such agent, run, volume, artifact or version."""

    error_type = "not_found_error"
    default_hint = "check the id or name"


class ConflictError(APIStatusError):
    """409: a resource with that name already exists."""

    error_type = "conflict_error"
    default_hint = "pick another name, or use the existing one"


class RateLimitError(APIStatusError):
    """429: too many requests or too many concurrent runs; ``retry_after`` is in seconds."""

    error_type = "rate_limit_error"
    default_hint = "wait a little and try again"

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class InternalServerError(APIStatusError):
    """5xx: the server failed (``api_error``); retried automatically where safe."""

    error_type = "api_error"
    default_hint = "the server failed; try again later"


class InvalidResponseError(VM0Error):
    """The server answered, but not in the shape of the VM0 API (HTML, truncated JSON...)."""

    def __init__(
        self, message: str, *, status: int | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.request_id = request_id

    def __str__(self) -> str:
        where = [f"HTTP {self.status}"] if self.status else []
        where += [f"request {self.request_id}"] if self.request_id else []
        return self.message + (f" ({', '.join(where)})" if where else "")


class APINotServedError(InvalidResponseError):
    """The server at ``api_url`` does not serve the VM0 API v1 at ``/v1``: it answered a web
    page, or a 404 without the VM0 error envelope. A wrong ``VM0_API_URL``, or the VM0 cloud,
    which retired its public v1 API in March 2026. ``tried`` is the request, as ``GET /v1/agents``.

    It is not a :class:`NotFoundError`: code that reads a 404 as "missing, so create it" must
    not try to create anything on such a server.
    """

    def __init__(
        self, api_url: str, tried: str, got: str, *, status: int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(not_served_message(api_url, tried, got), status=status,
                         request_id=request_id)
        self.api_url = api_url
        self.tried = tried


_USERINFO = re.compile(r"(?<=//)[^/@\s]+@")


def hide_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of any URL in it replaced by ``***@``."""
    return _USERINFO.sub("***@", text)


def is_vm0_cloud(api_url: str) -> bool:
    """Whether ``api_url`` is on the VM0 cloud (``api.vm0.ai`` and the rest of ``vm0.ai``)."""
    host = (urlsplit(api_url).hostname or "").lower()
    return host == "vm0.ai" or host.endswith(".vm0.ai")


def not_served_message(api_url: str, tried: str, got: str) -> str:
    """The one-line message of :class:`APINotServedError`: the server, what was tried and what
    came back, and what to do (for the VM0 cloud: that it retired the API, and where to go).

        not_served_message("https://api.vm0.ai", "GET /v1/agents", "a 404 without a VM0 error")
    """
    url = hide_userinfo(api_url)
    text = f"The server at {url} does not serve the VM0 API v1 at /v1 (tried {tried}, got {got})"
    if is_vm0_cloud(api_url):
        return (f"{text}: the VM0 cloud retired that API in March 2026 (vm0-ai/vm0 #3393). Point "
                "VM0_API_URL at a server that speaks it, such as a shared vm0-local, with its "
                "token in VM0_API_KEY; or unset both for the embedded local server")
    return f"{text}; point VM0_API_URL at a server that speaks it, such as a vm0-local"


class FolderNotEmptyError(VM0Error, FileExistsError):
    """``mount(to=DIR)`` would have written into a folder holding other files; nothing was
    touched. ``filename`` is the folder."""

    def __init__(self, message: str, folder: str) -> None:
        super().__init__(message)
        self.filename = folder


class RunFailedError(VM0Error):
    """A run ended ``failed``, ``timeout`` or ``cancelled``; the run is in ``.run``."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run


class WaitTimeoutError(VM0Error, TimeoutError):
    """``run.wait(timeout=...)`` returned before the run finished; the run keeps going."""

    def __init__(self, message: str, run: Any = None) -> None:
        super().__init__(message)
        self.run = run


class MapError(VM0Error):
    """Some runs of ``client.map(..., raise_on_error=True)`` did not complete.

    ``frame`` is the whole result (one row per input); ``failures`` its rows that did not
    complete. The message lists the first few.

        try:
            df = client.map("shell", cmds, raise_on_error=True)
        except vm0.MapError as e:
            e.failures[["prompt", "status", "error"]]
    """

    def __init__(self, message: str, frame: Any = None, failures: Any = None) -> None:
        super().__init__(message)
        self.frame = frame
        self.failures = failures


class MapInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped ``client.map``: runs still going and those not started were cancelled.

    ``frame`` holds one row per input: the finished runs as they ended, the rest
    ``cancelled``. In a notebook the interrupted cell's error is ``sys.last_value``.
    """

    def __init__(self, message: str, frame: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.frame = frame

    def __str__(self) -> str:
        return self.message


class _ShortTraceback:
    """Shown by IPython as ``Name: message``, one line instead of a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class RunFailed(_ShortTraceback, RunFailedError):
    """The run of a ``%vm0`` cell did not complete: failed, timeout, cancelled, or
    interrupted in the cell; the run is in ``.run``."""


class MagicError(_ShortTraceback, VM0Error):
    """The magic line cannot be run as written; the message says what to fix."""


# error type (from the response body) -> class; the status decides when the type is unknown.
ERROR_TYPES: dict[str, type[APIStatusError]] = {
    cls.error_type: cls
    for cls in (
        InvalidRequestError,
        AuthenticationError,
        AuthorizationError,
        NotFoundError,
        ConflictError,
        RateLimitError,
        InternalServerError,
    )
}
# the contract's status of each type below 500 (5xx is always api_error), and 422 as 400
STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    status: ERROR_TYPES[type_] for type_, status in ERROR_STATUS.items() if status < 500
} | {422: InvalidRequestError}


def error_class(status: int, type: str | None = None) -> type[APIStatusError]:
    """The exception class for an error response (type first, then status)."""
    if type in ERROR_TYPES:
        return ERROR_TYPES[type]
    if status >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status, APIStatusError)
