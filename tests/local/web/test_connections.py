"""The server's connections: a response's head goes out with its body, and the header
deadline holds with either of uvicorn's HTTP parsers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.local.agent_runs import Api
from vm0_notebook.local.web.connections import HOLD_BYTES, HeadWithBody


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def _request(path: str, token: str = "") -> bytes:
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\n".encode()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    raise AssertionError(f"no Content-Length in {head!r}")


def test_a_page_of_logs_arrives_in_one_piece(local_server: Any) -> None:
    """Head and body in one send: the client wakes once per page, not twice."""
    api = Api(local_server)
    run = api.run("python", "for i in range(150):\n    print('row', i)\n")
    api.close()
    path = f"/v1/runs/{run.detail['id']}/logs?limit=100"
    with socket.create_connection(_address(local_server.url), timeout=60) as s:
        for _ in range(3):  # and again on the kept-alive connection
            s.sendall(_request(path, local_server.token))
            first = s.recv(1 << 20)  # what had arrived when the socket first became readable
            head, sep, body = first.partition(b"\r\n\r\n")
            assert sep and head.startswith(b"HTTP/1.1 200"), first[:200]
            assert len(body) == _content_length(head) > 10_000


class _Recorder(asyncio.Transport):
    """What a socket transport was asked to send, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.sent.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def test_a_held_write_goes_out_with_the_next_or_at_the_end_of_the_turn() -> None:
    async def scenario() -> list[list[bytes]]:
        loop = asyncio.get_running_loop()
        raw = _Recorder()
        transport = HeadWithBody(raw, loop)
        seen = []
        transport.write(b"head")
        transport.write(b"body")  # joined: one send
        seen.append(list(raw.sent))
        transport.write(b"event 1")  # a stream's next event: held only until the turn ends
        seen.append(list(raw.sent))
        await asyncio.sleep(0)
        seen.append(list(raw.sent))
        big = b"x" * (HOLD_BYTES + 1)
        transport.write(big)  # never held
        transport.write(b"last")
        transport.close()  # a close sends what is held first
        seen.append(list(raw.sent))
        assert raw.closed and transport.is_closing()  # the rest is the transport's own
        return seen

    joined, held, released, closed = asyncio.run(scenario())
    assert joined == [b"headbody"]
    assert held == [b"headbody"]
    assert released == [b"headbody", b"event 1"]
    assert closed == [b"headbody", b"event 1", b"x" * (HOLD_BYTES + 1), b"last"]


@pytest.fixture
def h11_server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The server on uvicorn's h11 parser (used where httptools has no wheel), with a short
    header deadline."""
    from vm0_notebook.local.web.app import create_app
    from vm0_notebook.local.web.connections import guarded_h11
    from vm0_notebook.local.web.serving import listen, uvicorn_server

    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(create_app(tmp_path / "data", "tok"), http=guarded_h11(0.5, 20))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def test_the_h11_parser_has_the_same_header_deadline_and_one_piece_answers(h11_server) -> None:
    with socket.create_connection(h11_server, timeout=60) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert s.recv(1024) == b""  # closed by the server, no answer
    with socket.create_connection(h11_server, timeout=60) as s:
        s.sendall(_request("/health"))
        head, _, body = s.recv(65536).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and len(body) == _content_length(head)
        s.sendall(b"GET /health HTTP/1.1\r\n")  # the next request of a kept-alive connection
        assert s.recv(1024) == b""
