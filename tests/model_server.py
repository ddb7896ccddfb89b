"""A scripted Anthropic Messages API on 127.0.0.1: the one test double for the model.

The real Claude Code CLI talks to it through ``ANTHROPIC_BASE_URL``. It answers
``POST /v1/messages`` (streaming SSE or plain JSON) from a script of replies, answers the side
requests the CLI makes (token counts, model lists, short title or summary calls) with something
sane, and records every request it received, headers included but the key, for assertions::

    with ModelServer([tool_use("Write", {"file_path": "artifact/report.md", "content": "# Hi"}),
                      text("Done.")]) as model:
        env = {"ANTHROPIC_BASE_URL": model.url, "ANTHROPIC_API_KEY": KEY}
        ...
        model.turns[0].messages      # what the CLI sent on its first main turn

Main turns are the requests that offer tools (the agent loop); each takes the next reply of the
script, and a reply may be a callable of the request, so a script can answer what it was asked.
Once the script runs out, every main turn answers :data:`DONE_TEXT`. Requests without tools
(a title, a summary, a quota probe) are side requests: they answer :data:`SIDE_TEXT` and never
consume the script.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DONE_TEXT = "Done."
SIDE_TEXT = "Scripted session"
KEY_HEADERS = frozenset({"x-api-key", "authorization"})

Block = dict[str, Any]
Reply = list[Block] | Callable[["Request"], list[Block]]


def text(value: str) -> list[Block]:
    """A reply of one text block."""
    return [{"type": "text", "text": value}]


def tool_use(name: str, tool_input: dict[str, Any], preface: str | None = None) -> list[Block]:
    """A reply calling tool ``name`` with ``tool_input`` (optionally after some text)."""
    blocks: list[Block] = [{"type": "text", "text": preface}] if preface else []
    blocks.append({"type": "tool_use", "name": name, "input": tool_input})
    return blocks


@dataclass
class Request:
    """One request the endpoint received (the key's headers left out, their presence kept)."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    had_key: bool = False

    @property
    def model(self) -> str | None:
        """The ``model`` the request asked for."""
        return self.body.get("model")

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The conversation the request carried."""
        return self.body.get("messages") or []

    @property
    def is_turn(self) -> bool:
        """A turn of the agent loop (a Messages call offering tools), not a side request."""
        return self.path.split("?")[0] == "/v1/messages" and bool(self.body.get("tools"))

    def system_text(self) -> str:
        """The system prompt as one string (it may arrive as a list of text blocks)."""
        system = self.body.get("system") or ""
        if isinstance(system, list):
            return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        return str(system)

    def text(self) -> str:
        """Every string in the conversation, joined: for "did the model see X" checks."""
        return "\n".join(_strings(self.messages))

    def tool_results(self) -> list[dict[str, Any]]:
        """The ``tool_result`` blocks of the last user message."""
        if not self.messages:
            return []
        content = self.messages[-1].get("content")
        if not isinstance(content, list):
            return []
        return [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass
class ModelServer:
    """The scripted endpoint; a context manager that serves on a free port of 127.0.0.1."""

    script: list[Reply] = field(default_factory=list)
    model_id: str = "claude-sonnet-4-5"
    requests: list[Request] = field(default_factory=list)
    # A hook to hold a turn back (e.g. until a test has cancelled the run).
    before_reply: Callable[[Request], None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._next = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL to give the CLI as ``ANTHROPIC_BASE_URL``."""
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def turns(self) -> list[Request]:
        """The agent-loop requests, in the order they arrived."""
        return [r for r in self.requests if r.is_turn]

    def add(self, *replies: Reply) -> None:
        """Append replies to the script (for the next run of a session)."""
        with self._lock:
            self.script.extend(replies)

    def clear(self) -> None:
        """Forget the recorded requests (the script's position stays)."""
        with self._lock:
            self.requests.clear()

    def reset(self, *replies: Reply) -> None:
        """A new script from its start, and no recorded requests: one endpoint, many tests."""
        with self._lock:
            self.script = list(replies)
            self._next = 0
            self.requests.clear()
            self.before_reply = None

    def start(self) -> ModelServer:
        """Serve in a daemon thread; returns self."""
        handler = type("Handler", (_Handler,), {"model": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="model-server")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- replies -----------------------------------------------------------------------------

    def record(self, request: Request) -> None:
        """Keep ``request`` for the test's assertions."""
        with self._lock:
            self.requests.append(request)

    def reply_for(self, request: Request) -> list[Block]:
        """The content blocks answering ``request``, with ids filled in for tool calls."""
        if not request.is_turn:
            return text(SIDE_TEXT)
        with self._lock:
            reply: Reply | None = None
            if self._next < len(self.script):
                reply = self.script[self._next]
                self._next += 1
        if self.before_reply is not None:
            self.before_reply(request)
        blocks = reply(request) if callable(reply) else (reply or text(DONE_TEXT))
        return [self._with_id(block) for block in blocks]

    def message(self, request: Request, blocks: list[Block]) -> dict[str, Any]:
        """The whole (non-streaming) Messages response for ``blocks``."""
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        return {
            "id": f"msg_{next(self._ids):04d}", "type": "message", "role": "assistant",
            "model": request.model or self.model_id, "content": blocks, "stop_reason": stop,
            "stop_sequence": None, "usage": self.usage(request, blocks),
        }

    def usage(self, request: Request, blocks: list[Block]) -> dict[str, int]:
        """Token counts that grow with what was sent and said (about 4 characters a token)."""
        sent = len(json.dumps(request.body.get("messages", []))) // 4 + 1
        said = len(json.dumps(blocks)) // 4 + 1
        return {"input_tokens": sent, "output_tokens": said,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}

    def _with_id(self, block: Block) -> Block:
        if block.get("type") == "tool_use" and "id" not in block:
            return {"type": "tool_use", "id": f"toolu_{next(self._ids):04d}", **block}
        return dict(block)


def sse_events(message: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The server-sent events that stream ``message`` as the Messages API does."""
    start = {**message, "content": [], "stop_reason": None,
             "usage": {**message["usage"], "output_tokens": 1}}
    yield "message_start", {"type": "message_start", "message": start}
    for index, block in enumerate(message["content"]):
        if block["type"] == "tool_use":
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": opening}
            raw = json.dumps(block["input"])
            # Arguments arrive as partial JSON in a few pieces, as they do from the real API.
            for piece in _pieces(raw, 3):
                yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "input_json_delta",
                                                        "partial_json": piece}}
        else:
            yield "content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": {"type": "text", "text": ""}}
            for piece in _pieces(block["text"], 2):
                yield "content_block_delta", {"type": "content_block_delta", "index": index,
                                              "delta": {"type": "text_delta", "text": piece}}
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": message["stop_reason"],
                                      "stop_sequence": None},
                            "usage": {"output_tokens": message["usage"]["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


def _pieces(value: str, count: int) -> list[str]:
    if not value:
        return [""]
    size = max(1, -(-len(value) // count))
    return [value[i : i + size] for i in range(0, len(value), size)]


class _Handler(BaseHTTPRequestHandler):
    model: ModelServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read requests
        pass

    def do_GET(self) -> None:
        request = self._request({})
        path = request.path.split("?")[0]
        if path.startswith("/v1/models"):
            model = {"type": "model", "id": self.model.model_id, "display_name": "Scripted",
                     "created_at": "2025-01-01T00:00:00Z"}
            if path == "/v1/models":
                self._json(200, {"data": [model], "has_more": False,
                                 "first_id": model["id"], "last_id": model["id"]})
            else:
                self._json(200, {**model, "id": path.rsplit("/", 1)[-1]})
            return
        self._json(404, _error("not_found_error", f"no route {path}"))

    def do_HEAD(self) -> None:
        self._request({})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        request = self._request(body if isinstance(body, dict) else {})
        path = request.path.split("?")[0]
        if path == "/v1/messages/count_tokens":
            self._json(200, {"input_tokens": len(raw) // 4 + 1})
        elif path == "/v1/messages":
            self._messages(request)
        else:
            self._json(404, _error("not_found_error", f"no route {path}"))

    def _request(self, body: dict[str, Any]) -> Request:
        headers = {k.lower(): v for k, v in self.headers.items()}
        had_key = any(k in headers for k in KEY_HEADERS)
        kept = {k: v for k, v in headers.items() if k not in KEY_HEADERS}
        request = Request(self.command, self.path, kept, body, had_key)
        self.model.record(request)
        return request

    def _messages(self, request: Request) -> None:
        if not request.had_key:
            self._json(401, _error("authentication_error", "x-api-key header is required"))
            return
        message = self.model.message(request, self.model.reply_for(request))
        if not request.body.get("stream"):
            self._json(200, message)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for event, data in sse_events(message):
                self.wfile.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _json(self, status: int, value: dict[str, Any]) -> None:
        data = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_scripted")
        self.end_headers()
        self.wfile.write(data)


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}
