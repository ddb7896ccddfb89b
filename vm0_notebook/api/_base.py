"""What the sync and async clients share: configuration, request building, the retry policy,
and turning responses into data or errors. Only the I/O differs between the two clients.
"""

from __future__ import annotations

import email.utils
import json
import random
import threading
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from .. import config
from .._version import __version__
from ._ops import Reply, Request
from ._parse import iso, normalize
from .errors import (
    APIConnectionError,
    APINotServedError,
    APIStatusError,
    APITimeoutError,
    InvalidResponseError,
    RateLimitError,
    VM0Error,
    error_class,
    hide_userinfo,
)
from .run import Run

# (status, request id) of the latest answer in this thread/task, for errors found later while
# parsing it
LAST_RESPONSE: ContextVar[tuple[int, str | None] | None] = ContextVar("LAST_RESPONSE", default=None)


def blame_last_response(exc: InvalidResponseError) -> None:
    """Give a parsing error the status and request id of the answer it came from."""
    last = LAST_RESPONSE.get()
    if last is not None and exc.request_id is None:
        exc.status, exc.request_id = last


# sent with every request; set once on the connection pool, which is cheaper than per request
DEFAULT_HEADERS = {"User-Agent": f"vm0-notebook/{__version__}", "Accept": "application/json"}


class _Masked(str):
    """A header value that shows only a masked form when repr'd: tracebacks that print
    locals (IPython's ``%xmode Verbose``) and debug logs never see the key itself."""

    shown: str

    def __new__(cls, value: str, shown: str) -> _Masked:
        obj = super().__new__(cls, value)
        obj.shown = shown
        return obj

    def __repr__(self) -> str:
        return repr(self.shown)


# connection errors after which the request surely never reached the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Statuses after which a retry is safe for an idempotent request (event streams reconnect too).
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# ... and for any request: the server surely did not act on it
_UNPROCESSED_STATUSES = frozenset({429, 503})
# a VM0 server answers these with its error envelope; anything else there does not speak the API
_ROUTING_STATUSES = frozenset({404, 405})


@dataclass(frozen=True)
class Again:
    """An attempt's outcome that calls for another attempt after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class RetryPolicy:
    """When to retry and how long to wait: the one place retries are decided.

    Idempotent requests (and POSTs that carry an Idempotency-Key) are retried on connection
    errors, 429 and 502/503/504; other POSTs only when they surely were not processed (connect
    errors, 429, 503). Waits grow exponentially with jitter; ``Retry-After`` wins when sent.
    """

    attempts: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1``."""
        if retry_after is not None:
            return max(0.0, min(retry_after, self.max_retry_after))
        base = min(self.backoff * 2 ** (attempt - 1), self.max_backoff)
        return base / 2 + random.uniform(0, base / 2)

    def next_delay(
        self,
        request: Request,
        attempt: int,
        *,
        response: httpx.Response | None = None,
        error: Exception | None = None,
    ) -> float | None:
        """The wait before retrying, or None when this outcome is final."""
        if attempt >= self.attempts:
            return None
        if error is not None:
            if isinstance(error, _NOT_SENT) or (
                request.idempotent and isinstance(error, httpx.TransportError)
            ):
                return self.delay(attempt)
            return None
        assert response is not None
        status = response.status_code
        retryable = RETRY_STATUSES if request.idempotent else _UNPROCESSED_STATUSES
        if status not in retryable:
            return None
        return self.delay(attempt, retry_after(response.headers))

    def again(self, request: Request, attempt: int, response: httpx.Response) -> Again | None:
        """:class:`Again` when ``response`` calls for another attempt, else None."""
        wait = self.next_delay(request, attempt, response=response)
        return None if wait is None else Again(wait)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` as seconds (either delta-seconds or an HTTP date), or None."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class BaseClient:
    """Configuration and request/response handling shared by ``Client`` and ``AsyncClient``."""

    is_sync = True

    def __init__(
        self,
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        timeout: float = 30.0,
        max_attempts: int = 3,
        retry_backoff: float = 0.5,
        stream_idle_timeout: float = 45.0,
        cache_dir: str | Path | None = None,
    ) -> None:
        self._explicit = (api_url, api_key)
        self._root: str | None = config.normalize_url(api_url) if api_url else None
        self._key = api_key
        self._resolved = False
        self._lock = threading.Lock()
        self.timeout = timeout
        self.retry = RetryPolicy(attempts=max(1, max_attempts), backoff=retry_backoff)
        self.stream_idle_timeout = stream_idle_timeout
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._attach_resources()

    def _attach_resources(self) -> None:
        from .cache import Cache
        from .resources.agents import Agents
        from .resources.runs import Runs
        from .resources.server import Server
        from .resources.storage import Artifacts, Volumes

        self.agents = Agents(self)
        self.runs = Runs(self)
        self.volumes = Volumes(self)
        self.artifacts = Artifacts(self)
        self.cache = Cache(self)
        self.server = Server(self)

    # -- configuration ------------------------------------------------------------------------

    def _resolve(self) -> None:
        """Find the server on first use (this may start the local one)."""
        if self._resolved:
            return
        with self._lock:
            if not self._resolved:
                self._root, self._key = config.resolve(*self._explicit)
                self._resolved = True

    @property
    def api_url(self) -> str:
        """The server root, e.g. ``http://127.0.0.1:8765`` (``/v1`` is added per request)."""
        self._resolve()
        assert self._root is not None
        return self._root

    @property
    def base_url(self) -> str:
        """The root every ``Request.path`` is joined to: ``api_url`` plus ``/v1``."""
        return self.api_url + "/v1"

    def __repr__(self) -> str:
        url = self._root or "<not resolved yet>"
        return f"{type(self).__name__}(api_url={url!r}, api_key={config.mask_key(self._key)!r})"

    # -- keeping the key out of sight -------------------------------------------------------

    @property
    def masked_key(self) -> str:
        """The API key as it may be shown: prefix and last 4 characters at most.

            Client(api_key="vm0_live_abcdefghijkl1234").masked_key   # 'vm0_live_…1234'
        """
        self._resolve()
        return config.mask_key(self._key)

    def secret_values(self) -> tuple[str, ...]:
        """The secrets this client holds (its API key, if any), for code that masks output.

        Finds the server first (this may start the local one). A masker hides each value::

            for secret in client.secret_values():
                text = text.replace(secret, "***")
        """
        self._resolve()
        return (str(self._key),) if self._key else ()

    def scrub(self, text: str) -> str:
        """``text`` with the API key replaced by its masked form, should it appear."""
        if self._key and self._key in text:
            text = text.replace(self._key, config.mask_key(self._key))
        return text

    def get_cache_dir(self) -> Path:
        """Where downloaded versions are kept: ``cache_dir`` if given, else the configured one."""
        return self.cache_dir or config.cache_dir()

    # -- requests -----------------------------------------------------------------------------

    def url_for(self, request: Request) -> str:
        """The full URL of a request: a server-given ``url`` as is, else ``base_url + path``."""
        if request.url is not None:
            return urljoin(self.api_url + "/", request.url)
        return self.base_url + request.path

    def headers_for(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers of one request on top of :data:`DEFAULT_HEADERS` (set on the pool)."""
        headers = {}
        # the key goes only to our own server: signed storage URLs elsewhere carry their own
        if self._key and _same_origin(url, self.api_url):
            headers["Authorization"] = self._authorization()
        if extra:
            headers.update(extra)
        return headers

    def _authorization(self) -> str:
        auth = getattr(self, "_auth", None)
        if auth is None or auth != f"Bearer {self._key}":
            auth = self._auth = _Masked(f"Bearer {self._key}",
                                        f"Bearer {config.mask_key(self._key)}")
        return auth

    def build(self, request: Request) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client.request`` (minus the body of a file upload)."""
        url = self.url_for(request)
        kwargs: dict[str, Any] = {
            "method": request.method,
            "url": url,
            "headers": self.headers_for(url, request.headers),
        }
        if request.params:
            kwargs["params"] = {
                k: _query_value(v) for k, v in request.params.items() if v is not None
            }
        if request.json is not None:
            kwargs["json"] = request.json
        return kwargs

    # -- responses ----------------------------------------------------------------------------

    def handle(self, request: Request, response: httpx.Response) -> Any:
        """The JSON of a success, a :class:`Reply` for raw requests, else the right error."""
        status = response.status_code
        LAST_RESPONSE.set((status, response.headers.get("x-request-id")))
        if status >= 400:
            raise self.status_error(response)
        if request.raw:
            data = self._json(response) if status < 300 and status != 204 else None
            return Reply(status, dict(response.headers), data)
        if status == 204 or not response.content:
            return None
        return self._json(response)

    def _json(self, response: httpx.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            kind = response.headers.get("content-type", "unknown content").split(";")[0]
            if "json" not in kind and (not_served := self.not_served(response)):
                raise not_served from None
            raise InvalidResponseError(
                f"The server answered {kind} that is not valid JSON to"
                f" {response.request.method} {response.request.url.path}; is {self.api_url}"
                " a VM0 API server?",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from None

    def check_stream(self, response: httpx.Response) -> None:
        """Raise unless a successful answer is an event stream (an HTML page, say)."""
        kind = response.headers.get("content-type", "").partition(";")[0].strip()
        if kind == "text/html" and (not_served := self.not_served(response)):
            raise not_served
        if kind != "text/event-stream":
            raise InvalidResponseError(
                f"The events endpoint answered {kind or 'no content type'}, not an event"
                f" stream; is {self.api_url} a VM0 API server?",
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            )

    def status_error(self, response: httpx.Response) -> APIStatusError | APINotServedError:
        """The exception for an error response, whatever its body looks like: a 404 or 405
        without the VM0 error envelope to a ``/v1`` path says the server does not speak the API
        (:class:`APINotServedError`)."""
        status = response.status_code
        body: Any = None
        try:
            body = json.loads(response.content) if response.content else None
        except ValueError:
            body = None
        err = body.get("error") if isinstance(body, dict) else None
        routing = status in _ROUTING_STATUSES and not isinstance(err, dict)
        if routing and (not_served := self.not_served(response, body)):
            return not_served
        if isinstance(err, str):
            err = {"message": err}
        if not isinstance(err, dict) and isinstance(body, dict) and "message" in body:
            err = body
        fields = normalize(err) if isinstance(err, dict) else {}
        message = fields.get("message")
        if not isinstance(message, str) or not message:
            path = response.request.url.path if response.request else ""
            message = f"HTTP {status} from {path} that is not a VM0 API error"
        cls = error_class(status, fields.get("type"))
        kwargs: dict[str, Any] = {
            "status": status,
            "type": fields.get("type"),
            "code": fields.get("code"),
            "param": fields.get("param"),
            "request_id": response.headers.get("x-request-id"),
            "doc_url": fields.get("doc_url"),
            "hint": cls.default_hint,
        }
        if issubclass(cls, RateLimitError):
            kwargs["retry_after"] = retry_after(response.headers)
        return cls(self.scrub(message), **kwargs)

    def not_served(
        self, response: httpx.Response, body: Any = None
    ) -> APINotServedError | None:
        """:class:`APINotServedError` for an answer (parsed as ``body``) that shows the server
        does not speak the VM0 API, if it answered one of our ``/v1`` requests; else None."""
        try:
            request = response.request
        except RuntimeError:  # a response built by hand
            return None
        v1, path = urlsplit(self.base_url).path, request.url.path
        if not _same_origin(str(request.url), self.api_url) or not (
            path == v1 or path.startswith(v1 + "/")
        ):
            return None  # a signed storage URL, say
        kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
        if kind == "text/html" or response.content.lstrip()[:1] == b"<":
            got = "an HTML page"
        elif not response.content:
            got = "an empty answer"
        elif body is not None:
            got = "an answer without the VM0 error envelope"
        else:
            got = f"{kind or 'an answer'} that is not JSON"
        return APINotServedError(
            self.api_url, f"{request.method} {path}", got, status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        )

    def request_error(self, request: Request, exc: Exception) -> VM0Error:
        """Our error for an httpx request error. It quotes the httpx error's text but does not
        chain it: that error holds the request, and so its Authorization header."""
        where = f"{request.method} {urlsplit(self.url_for(request)).path}"
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"Timed out waiting for {self.api_url} ({where}); try again, or give the client"
                " a longer timeout=..."
            )
        detail = hide_userinfo(self.scrub(str(exc)))
        detail = f"{type(exc).__name__}" + (f": {detail}" if detail else "")
        if isinstance(exc, httpx.DecodingError | httpx.TooManyRedirects):
            return InvalidResponseError(
                f"The answer to {where} could not be read ({detail}); is {self.api_url}"
                " a VM0 API server?"
            )
        return APIConnectionError(
            f"Could not talk to the VM0 API at {self.api_url} ({where}): {detail}; check that"
            " the server is running and the URL is right"
        )

    # -- models -------------------------------------------------------------------------------

    def run(self, data: Any) -> Run:
        """A :class:`Run` bound to this client, from a run (detail) object."""
        if not isinstance(data, Mapping):
            raise InvalidResponseError(f"Expected a run object, got {type(data).__name__}")
        return Run.from_api(data, self)


def _same_origin(url: str, root: str) -> bool:
    a, b = urlsplit(url), urlsplit(root)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _query_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    return value
