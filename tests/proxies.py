"""Small HTTP proxies put in front of the real local server by the API tests.

- :class:`Proxy`: passes everything through and records what it saw.
- :class:`VariantProxy`: plays the platform's other API shape: camelCase JSON, plain ids
  (storage ids excepted), ``lastEventId``/``versionId`` queries only, downloads as a 302 to a
  tar.gz, run lists that ignore ``agent_id``/``since``, and only ``complete`` on the events
  of a finished run.
- :class:`FaultProxy`: cuts event streams at random points, stalls them, answers a share of
  requests with 503 or 429, and loses the answer of some ``POST /v1/runs`` after forwarding.
- :class:`HostileStorage`: falsifies volume and artifact downloads (sizes, content, listings,
  archives) to show the client refuses them.

Each is an ASGI app served by uvicorn on 127.0.0.1 in a thread: ``url = proxy.start()``,
``proxy.stop()``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import re
import socket
import tarfile
import threading
from dataclasses import dataclass, field
from typing import Any

import httpx
import uvicorn

Send = Any
# The Host header is passed on, so the URLs the server signs point back through the proxy.
_HOP = {"content-length", "transfer-encoding", "connection", "keep-alive"}


@dataclass
class Incoming:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes


class Cut(Exception):
    """Raised inside a response to drop the connection mid-body."""


@dataclass
class Proxy:
    """A pass-through proxy to ``target``; ``seen`` lists ``(method, path)`` of each request."""

    target: str
    seen: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self._server = uvicorn.Server(
            uvicorn.Config(self, log_level="critical", lifespan="off", access_log=False,
                           timeout_graceful_shutdown=1)
        )
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        daemon=True)
        self._thread.start()
        while not self._server.started:
            threading.Event().wait(0.01)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self.url

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def count(self, method: str, pattern: str) -> int:
        return sum(1 for m, p in self.seen if m == method and re.search(pattern, p))

    # -- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = [
            (k, v) for k, v in httpx.QueryParams(scope["query_string"].decode()).multi_items()
        ]
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        request = Incoming(scope["method"], scope["path"], query, headers, body)
        self.seen.append((request.method, request.path))
        await self.handle(request, send)

    async def handle(self, request: Incoming, send: Send) -> None:
        await self.forward(request, send)

    # -- forwarding ---------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if getattr(self, "_client", None) is None:
            self._client = httpx.AsyncClient(timeout=None)
        return self._client

    async def upstream(self, request: Incoming) -> httpx.Response:
        """The server's full (non-streamed) answer."""
        return await self._http().request(
            request.method, self.target + request.path, params=request.query,
            headers={k: v for k, v in request.headers.items() if k not in _HOP},
            content=request.body,
        )

    async def forward(self, request: Incoming, send: Send) -> None:
        headers = {k: v for k, v in request.headers.items() if k not in _HOP}
        req = self._http().build_request(request.method, self.target + request.path,
                                         params=request.query, headers=headers,
                                         content=request.body)
        response = await self._http().send(req, stream=True)
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await self.start_response(send, response.status_code, response.headers)
                await self.stream_sse(request, response, send)
                await send({"type": "http.response.body", "body": b""})
                return
            body = await response.aread()
        finally:
            await response.aclose()
        await self.respond(send, response.status_code, response.headers,
                           self.rewrite_body(request, response, body))

    async def stream_sse(self, request: Incoming, response: httpx.Response, send: Send) -> None:
        """Pass an event stream's body on, line by line through :meth:`sse_line`."""
        async for line in response.aiter_lines():
            out = await self.sse_line(request, line)
            if out is not None:
                await send({"type": "http.response.body", "body": (out + "\n").encode(),
                            "more_body": True})

    async def sse_line(self, request: Incoming, line: str) -> str | None:
        """One line of an event stream on its way to the client (None drops it)."""
        return line

    def rewrite_body(self, request: Incoming, response: httpx.Response, body: bytes) -> bytes:
        return body

    async def start_response(self, send: Send, status: int, headers: Any) -> None:
        raw = [(k.encode(), v.encode()) for k, v in headers.items() if k.lower() not in _HOP]
        await send({"type": "http.response.start", "status": status, "headers": raw})

    async def respond(self, send: Send, status: int, headers: Any, body: bytes) -> None:
        await self.start_response(send, status, headers)
        await send({"type": "http.response.body", "body": body})

    async def respond_json(self, send: Send, status: int, data: Any,
                           headers: dict[str, str] | None = None) -> None:
        hdrs = {"content-type": "application/json", **(headers or {})}
        await self.respond(send, status, hdrs, json.dumps(data).encode())


# -- the camelCase, plain-id platform variant ---------------------------------------------------

# Volume and artifact ids keep their prefix: a version id is a hash over the storage id, so a
# platform with plain storage ids hashes those, and rewriting them here would fake a mismatch.
_PREFIXED = re.compile(r"^(agt|run|ses|chk|upl|ver)_([0-9a-f]{24})$")
# maps whose keys are user data (names, variables), and opaque payloads: never rewritten
_OPAQUE = {"config", "variables", "secrets", "volumes"}


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


class VariantProxy(Proxy):
    """The API as the platform's later shape speaks it (see the module docstring)."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.plain: dict[str, str] = {}  # plain id -> the server's prefixed id

    def strip(self, value: Any) -> Any:
        if isinstance(value, str) and (m := _PREFIXED.match(value)):
            self.plain[m.group(2)] = value
            return m.group(2)
        return value

    def restore(self, value: str) -> str:
        return self.plain.get(value, value)

    def outward(self, value: Any, key: str = "") -> Any:
        """camelCase keys and plain ids, recursively, leaving user data alone."""
        if isinstance(value, dict):
            if key in _OPAQUE:
                return value
            return {camel(k): self.outward(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.outward(v, key) for v in value]
        return self.strip(value)

    async def handle(self, request: Incoming, send: Send) -> None:
        request.path = "/".join(self.restore(part) for part in request.path.split("/"))
        query = []
        for k, v in request.query:
            if k in ("last_event_id", "version_id"):
                continue  # this variant knows only the camelCase names
            if request.path == "/v1/runs" and k in ("agent_id", "since"):
                continue  # and its run list ignores these filters
            k = {"lastEventId": "last_event_id", "versionId": "version_id"}.get(k, k)
            query.append((k, self.restore(v)))
        request.query = query
        request.headers.pop("last-event-id", None)
        if request.body and request.headers.get("content-type", "").startswith("application/json"):
            body = json.loads(request.body)
            request.body = json.dumps(self.inward(body)).encode()
        if re.fullmatch(r"/v1/(volumes|artifacts)/[^/]+/download", request.path):
            request.query.append(("format", "tar.gz"))
        events = re.fullmatch(r"/v1/runs/([^/]+)/events", request.path)
        if events and request.method == "GET":
            run = await self.upstream(Incoming("GET", f"/v1/runs/{events.group(1)}", [],
                                               request.headers, b""))
            if run.status_code == 200 and run.json()["status"] in (
                "completed", "failed", "timeout", "cancelled"
            ):
                request.query = []  # replay all, keep only `complete` (see sse_line)
                request.headers["x-only-complete"] = "1"
        await self.forward(request, send)

    def inward(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: self.inward(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.inward(v) for v in value]
        return self.restore(value) if isinstance(value, str) else value

    def rewrite_body(self, request: Incoming, response: httpx.Response, body: bytes) -> bytes:
        if not response.headers.get("content-type", "").startswith("application/json"):
            return body
        return json.dumps(self.outward(json.loads(body))).encode()

    async def sse_line(self, request: Incoming, line: str) -> str | None:
        only_complete = request.headers.get("x-only-complete") == "1"
        if line.startswith("event:"):
            request.headers["x-current-event"] = line[6:].strip()
        current = request.headers.get("x-current-event")
        if only_complete and current not in ("complete", None):
            if line == "":
                request.headers.pop("x-current-event", None)
            return None
        if line == "":
            request.headers.pop("x-current-event", None)
        if line.startswith("data:"):
            data = json.loads(line[5:])
            inner = data.pop("data", None) if current == "output" else None
            data = self.outward(data)
            if inner is not None:
                data["data"] = inner  # the agent's own stream-JSON stays as the agent wrote it
            return "data: " + json.dumps(data)
        if line.startswith("id:") and only_complete:
            return None
        return line


# -- faults -------------------------------------------------------------------------------------


class FaultProxy(Proxy):
    """Injects faults with a seeded RNG; ``faults`` counts what it did, by kind.

    ``error_rate``: share of requests (event streams included) answered 503 or 429
    (``Retry-After: <retry_after>``, code ``concurrent_run_limit_exceeded`` on ``POST /v1/runs``,
    else ``rate_limited``) without reaching the server. ``lose_rate``: share of
    ``POST /v1/runs`` forwarded, then answered 503 (the run exists, the client does not know).
    ``cut_rate``: chance per line of an event stream (a frame is about four lines) that the
    stream is cut there, mid-frame included; ``cut_at`` lists the last event id sent before
    each cut. ``stall_after``: stop sending (without closing) after this many frames on the
    first connection of each stream. ``cut_bytes=(low, high)``: cut every event stream after
    a number of bytes drawn between the two (wherever that falls); ``sse_bytes`` counts the
    bytes of event streams passed on.
    """

    def __init__(self, target: str, *, seed: int = 7, error_rate: float = 0.0,
                 lose_rate: float = 0.0, cut_rate: float = 0.0,
                 stall_after: int | None = None, broken: dict[str, tuple[int, str, bytes]]
                 | None = None, cut_bytes: tuple[int, int] | None = None,
                 retry_after: str = "0") -> None:
        super().__init__(target)
        self.rng = random.Random(seed)
        self.error_rate, self.lose_rate, self.cut_rate = error_rate, lose_rate, cut_rate
        self.stall_after = stall_after
        self.retry_after = retry_after
        self.cut_bytes = cut_bytes
        self.sse_bytes = 0
        self.broken = broken or {}  # path regex -> (status, content type, body) answered as is
        self.faults: dict[str, int] = {}
        self.cut_at: list[int] = []
        self._stalled: set[str] = set()

    def _fault(self, kind: str) -> None:
        self.faults[kind] = self.faults.get(kind, 0) + 1

    async def handle(self, request: Incoming, send: Send) -> None:
        for pattern, (status, ctype, body) in self.broken.items():
            if re.search(pattern, request.path):
                self._fault("broken")
                await self.respond(send, status, {"content-type": ctype,
                                                  "x-request-id": "req_" + "b" * 32}, body)
                return
        if self.rng.random() < self.error_rate:
            if self.rng.random() < 0.5:
                self._fault("503")
                await self.respond(send, 503, {"content-type": "text/html"},
                                   b"<html><body>Service Unavailable</body></html>")
            else:
                self._fault("429")
                code = "concurrent_run_limit_exceeded" if request.method == "POST" \
                    and request.path == "/v1/runs" else "rate_limited"
                await self.respond_json(send, 429, {"error": {
                    "type": "rate_limit_error", "code": code, "message": "Slow down"}},
                    {"retry-after": self.retry_after})
            return
        if request.method == "POST" and request.path == "/v1/runs" \
                and self.rng.random() < self.lose_rate:
            await self.upstream(request)
            self._fault("lost")
            await self.respond(send, 503, {"content-type": "text/plain"}, b"upstream hiccup")
            return
        await self.forward(request, send)

    async def forward(self, request: Incoming, send: Send) -> None:
        request.headers["x-frames"] = "0"
        await super().forward(request, send)

    async def stream_sse(self, request: Incoming, response: httpx.Response, send: Send) -> None:
        if self.cut_bytes is None:
            await super().stream_sse(request, response, send)
            return
        budget = self.rng.randint(*self.cut_bytes)
        async for chunk in response.aiter_raw():
            part = chunk[:budget]
            budget -= len(part)
            self.sse_bytes += len(part)
            await send({"type": "http.response.body", "body": part, "more_body": True})
            if budget <= 0:
                self._fault("cut bytes")
                raise Cut("cut after the drawn number of bytes")

    async def sse_line(self, request: Incoming, line: str) -> str | None:
        if line.startswith("id:"):
            request.headers["x-last-id"] = line[3:].strip()
        if line == "":
            frames = int(request.headers["x-frames"]) + 1
            request.headers["x-frames"] = str(frames)
            run = request.path
            if self.stall_after is not None and frames >= self.stall_after \
                    and run not in self._stalled:
                self._stalled.add(run)
                self._fault("stall")
                await asyncio.sleep(60)
        if self.rng.random() < self.cut_rate:
            self._fault("cut" if line == "" else "cut mid-frame")
            self.cut_at.append(int(request.headers.get("x-last-id") or 0))
            raise Cut(f"cut after event {self.cut_at[-1]}")
        return line


# -- a storage server that lies -------------------------------------------------------------

_DOWNLOAD = re.compile(r"/v1/(volumes|artifacts)/[^/]+/download")


def forged(size: int) -> bytes:
    """Other bytes of the same length, the same every time (so a listing can carry their hash)."""
    return (b"forged," * (size // 7 + 1))[:size]


class HostileStorage(Proxy):
    """The real server's storage, with downloads falsified as ``mode`` says (None: honest).

    - ``size``: each file's body is 990 bytes longer than its listing says.
    - ``endless``: each file's body goes on past its listing's size, up to 256 MiB (a disk
      filler; a client that stops at the listed size never sees more than a chunk of it).
    - ``content``: each file's bytes are replaced by others of the same size, and the listing's
      hashes by theirs, so only the version id gives it away (a cache-poisoning attempt).
    - ``listing``: the listing leaves out a file (every file sent is honest).
    - ``version``: the listing names another version than the one asked for.
    - ``tar``: a 302 to a tar.gz of the version with one file changed and one added.
    - ``tar-escape``: a 302 to a tar.gz of the version plus a member ``../../escape.txt``.
    """

    MODES = ("size", "endless", "content", "listing", "version", "tar", "tar-escape")

    def __init__(self, target: str, mode: str | None = None) -> None:
        super().__init__(target)
        self.mode = mode
        self.archives: dict[str, bytes] = {}

    async def handle(self, request: Incoming, send: Send) -> None:
        if request.path.startswith("/hostile/"):
            await self.respond(send, 200, {"content-type": "application/gzip"},
                               self.archives[request.path.rsplit("/", 1)[1]])
            return
        if self.mode in ("tar", "tar-escape") and _DOWNLOAD.fullmatch(request.path):
            listing = await self.upstream(request)
            name = f"{len(self.archives)}.tar.gz"
            self.archives[name] = await self._archive(listing.json()["files"])
            location = f"http://{request.headers['host']}/hostile/{name}"
            await self.respond(send, 302, {"location": location}, b"")
            return
        if self.mode == "endless" and request.path.startswith("/storage/blobs/"):
            await self.start_response(send, 200, {"content-type": "application/octet-stream"})
            await send({"type": "http.response.body", "more_body": True,
                        "body": (await self.upstream(request)).content})
            filler = b"!" * (1 << 20)
            for _ in range(256):
                await send({"type": "http.response.body", "body": filler, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if self.mode in ("size", "content") and request.path.startswith("/storage/blobs/"):
            body = (await self.upstream(request)).content
            body = body + b"!" * 990 if self.mode == "size" else forged(len(body))
            await self.respond(send, 200, {"content-type": "application/octet-stream"}, body)
            return
        await self.forward(request, send)

    def rewrite_body(self, request: Incoming, response: httpx.Response, body: bytes) -> bytes:
        if self.mode not in ("content", "listing", "version") \
                or not _DOWNLOAD.fullmatch(request.path) \
                or response.status_code != 200:
            return body
        data = json.loads(body)
        if self.mode == "content":
            for f in data["files"]:
                f["hash"] = hashlib.sha256(forged(f["size"])).hexdigest()
        elif self.mode == "listing":
            data["files"] = data["files"][:-1]
        else:
            data["version_id"] = "0" * 64
        return json.dumps(data).encode()

    async def _archive(self, files: list[dict[str, Any]]) -> bytes:
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w:gz") as tar:
            for i, f in enumerate(files):
                url = httpx.URL(f["download_url"])
                data = (await self._http().get(self.target + url.raw_path.decode())).content
                if self.mode == "tar" and i == 0:
                    data = forged(len(data))
                _add(tar, f["path"], data)
            _add(tar, "extra.txt" if self.mode == "tar" else "../../escape.txt", b"extra")
        return out.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
