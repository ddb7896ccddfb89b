"""Hostile HTTP input against a real server: each answers 4xx (or is cut off) and /health holds.

Rebinding Host headers, slow clients, oversized streamed bodies, inputs that used to reach
Python's or SQLite's limits (deep JSON, integers over 2^63), NUL and control characters, a reused
Idempotency-Key, and uploads cut off midway.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import resource
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.local.agent_runs import Api

BIG = str(2**63)


@pytest.fixture(scope="module")
def http(local_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=60,
                      headers={"Authorization": f"Bearer {local_server.token}"}) as c:
        yield c


def error(response: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]


def address(server: Any) -> tuple[str, int]:
    parts = urlsplit(server.url)
    assert parts.hostname and parts.port
    return parts.hostname, parts.port


def health(server: Any) -> int:
    return httpx.get(server.url + "/health", timeout=60).status_code


def cursor_of(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


# -- Host header (DNS rebinding) -------------------------------------------------------------


@pytest.mark.parametrize("host", ["evil.example", "evil.example:80", "127.0.0.1.evil.example",
                                  "localhost.evil.example", "10.0.0.1", "[::2]:8888", ""])
@pytest.mark.parametrize("path", ["/health", "/v1/runs", "/storage/blobs/" + "0" * 64])
def test_foreign_host_is_403_on_every_path(http, host, path):
    e = error(http.get(path, headers={"Host": host}), 403)
    assert e["type"] == "authorization_error" and e["code"] == "host_not_allowed"
    assert "Host" in e["message"]


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST:1234", "127.0.0.1", "127.0.0.1:80",
                                  "127.1.2.3:9", "[::1]", "[::1]:8888"])
def test_loopback_hosts_are_served(http, host):
    assert http.get("/health", headers={"Host": host}).status_code == 200
    assert http.get("/v1/runs", headers={"Host": host}).status_code == 200


def test_configured_hosts_are_served(tmp_path):
    """The app factory takes the hosts a shared server is reached by."""
    import asyncio

    from vm0_notebook.local.web.app import create_app
    from vm0_notebook.local.web.serving import listen, uvicorn_server

    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(create_app(tmp_path / "data", "tok",
                                       allowed_hosts=["notebooks.example.org"]))
    thread = threading.Thread(target=asyncio.run, args=(server.serve(sockets=[sock]),))
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/health"
        for host, status in (("notebooks.example.org:8888", 200), ("NOTEBOOKS.example.org", 200),
                             ("localhost", 200), ("evil.example", 403),
                             ("notebooks.example.org.evil.example", 403)):
            assert httpx.get(url, headers={"Host": host}).status_code == status, host
    finally:
        server.should_exit = True
        thread.join(timeout=60)


# -- slow clients and connection limits ------------------------------------------------------


def _trickle(server: Any, count: int, stop: threading.Event) -> list[socket.socket]:
    """``count`` connections that send their request headers one byte at a time, until
    ``stop``; returns the sockets (closed by the caller)."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100_000
    socks = []
    for _ in range(count):
        s = socket.create_connection(address(server), timeout=60)
        socks.append(s)

    def run() -> None:
        sent = 0
        while not stop.is_set() and sent < len(request):
            for s in socks:
                with contextlib.suppress(OSError):  # the server closed it: that is allowed
                    s.send(request[sent:sent + 1])
            sent += 1
            time.sleep(0.01)

    threading.Thread(target=run, daemon=True).start()
    return socks


def test_slow_clients_do_not_starve_health_or_fill_the_log(start_server):
    server = start_server()
    log = server.data_dir / "server.stderr.log"
    # As on hosts whose open-files limit is 1024: fewer descriptors than slow sockets.
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (256, 256))
    stop = threading.Event()
    socks = _trickle(server, 300, stop)
    try:
        for _ in range(20):
            assert health(server) == 200
        assert log.stat().st_size < 20_000, log.read_text()[-3000:]
    finally:
        stop.set()
        for s in socks:
            s.close()
    assert health(server) == 200


def test_headers_that_never_end_are_cut_off(start_server):
    server = start_server("--header-timeout", "0.5")
    with socket.create_connection(address(server), timeout=60) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert s.recv(1024) == b""  # closed by the server, no answer
    # The deadline covers each request of a kept-alive connection, not only the first.
    with socket.create_connection(address(server), timeout=60) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = b""
        while not _whole(answer):
            answer += s.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200")
        s.sendall(b"GET /health HTTP/1.1\r\n")
        assert s.recv(1024) == b""


def _closed_by_server(s: socket.socket) -> bool:
    s.settimeout(0)
    try:
        return s.recv(1) == b""
    except BlockingIOError:  # still open
        return False
    except ConnectionResetError:
        return True


def test_past_the_connection_limit_the_longest_waiting_connection_goes(start_server):
    server = start_server("--max-connections", "20")
    stop = threading.Event()
    first = _trickle(server, 40, stop)
    try:
        assert health(server) == 200
        later = _trickle(server, 20, stop)
        assert health(server) == 200
    finally:
        stop.set()
    # The 40 that waited longest went (20 stay open at most); the newest are still there.
    assert sum(map(_closed_by_server, first)) >= 40
    assert not _closed_by_server(later[-1])
    for s in first + later:
        s.close()


# -- bodies ----------------------------------------------------------------------------------


def _whole(answer: bytes) -> bool:
    """Whether ``answer`` holds a response's head and its Content-Length of body."""
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def _chunked(server: Any, method: str, path: str, total: int,
             headers: dict[str, str]) -> tuple[bytes, int]:
    """Stream up to ``total`` bytes as a chunked body until the server answers or closes.
    Returns the response head and how many body bytes were sent."""
    chunk = b"x" * (1 << 20)
    sent = 0
    with socket.create_connection(address(server), timeout=60) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        s.sendall(head.encode() + b"\r\n")

        def send() -> None:
            nonlocal sent
            try:
                while sent < total:
                    s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                    sent += len(chunk)
                s.sendall(b"0\r\n\r\n")
            except OSError:  # the server answered and closed: that is the point
                pass

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        answer = b""
        try:
            while not _whole(answer) and (part := s.recv(65536)):
                answer += part
        except ConnectionResetError:
            pass
        s.shutdown(socket.SHUT_RDWR)
        sender.join(timeout=60)
        return answer, sent


def test_a_chunked_200_mb_json_body_is_refused_at_8_mib(local_server, http):
    answer, sent = _chunked(local_server, "POST", "/v1/agents", 200 << 20,
                                   {"Authorization": f"Bearer {local_server.token}",
                                    "Content-Type": "application/json"})
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert b"invalid_request_error" in answer
    assert sent < 100 << 20
    assert health(local_server) == 200


def _upload_url(http: httpx.Client, size: int) -> tuple[str, str, str]:
    vol = http.post("/v1/volumes", json={"name": f"h-{secrets.token_hex(4)}"}).json()["id"]
    r = http.post(f"/v1/volumes/{vol}/upload", json={"files": [{"path": "f.bin", "size": size}]})
    assert r.status_code == 200, r.text
    return vol, r.json()["upload_session_id"], r.json()["files"][0]["upload_url"]


def _tmp_files(server: Any) -> list[str]:
    return sorted(p.name for p in (server.data_dir / "blobs" / "tmp").iterdir())


def test_an_upload_longer_than_announced_is_refused_while_it_streams(local_server, http):
    _, _, url = _upload_url(http, 10)
    parts = urlsplit(url)
    answer, sent = _chunked(local_server, "PUT", f"{parts.path}?{parts.query}", 200 << 20, {})
    assert answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert sent < 100 << 20
    # A declared length over the announced size is refused before any byte is read.
    r = httpx.put(url, content=b"y" * 11)
    assert error(r)["param"] == "size"
    assert _tmp_files(local_server) == []


def test_an_upload_cut_off_midway_leaves_no_temporary_file(local_server, http):
    size = 50 << 20
    _, _, url = _upload_url(http, size)
    parts = urlsplit(url)
    with socket.create_connection(address(local_server), timeout=60) as s:
        s.sendall(f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode() + b"z" * (1 << 20))
        while not _tmp_files(local_server):  # the server is writing it
            time.sleep(0.02)
    while _tmp_files(local_server):  # and drops it once the client is gone
        time.sleep(0.02)
    assert health(local_server) == 200


def test_temporary_files_left_by_a_killed_server_go_at_start(start_server, tmp_path):
    import signal

    data = tmp_path / "killed"
    server = start_server(data_dir=data)
    tmp = data / "blobs" / "tmp"
    (tmp / "in-leftover").write_bytes(b"half an upload")
    server.stop(signal.SIGKILL)
    start_server(data_dir=data)
    assert list(tmp.iterdir()) == []


# -- inputs at Python's and SQLite's limits --------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/agents", "/v1/runs", "/v1/volumes"])
def test_json_nested_200k_deep_is_400(http, path):
    e = error(http.post(path, content=b"[" * 200_000 + b"]" * 200_000))
    assert "nested" in e["message"]
    e = error(http.post(path, content=b'{"a":' * 200_000 + b"1" + b"}" * 200_000))
    assert "nested" in e["message"]


@pytest.mark.parametrize("path", ["/v1/agents", "/v1/runs", "/v1/agents/echo/versions",
                                  "/v1/volumes", "/v1/artifacts"])
@pytest.mark.parametrize("number", [2**63, -(2**63) - 1, 10**400])
def test_cursor_integers_past_64_bits_are_400(http, path, number):
    for position in ([number], [number, number], ["2026-01-01T00:00:00.000Z", number]):
        e = error(http.get(path, params={"cursor": cursor_of(position)}))
        assert e["param"] == "cursor"


@pytest.mark.parametrize("limit", ["1_0", " 10", "١٠", "10" + "0" * 5000])
def test_limit_is_plain_digits(http, limit):
    assert error(http.get("/v1/runs", params={"limit": limit}))["param"] == "limit"


@pytest.fixture(scope="module")
def finished_run(local_server: Any) -> str:
    api = Api(local_server)
    try:
        run_id = api.start("echo", "hello")
        api.finish(run_id)
        return run_id
    finally:
        api.close()


@pytest.mark.parametrize("value", [BIG, str(10**30), "9" * 5000, "0" * 30 + "1", "-1", "1.5",
                                   "1e3", "abc", "1_0", " 1", "٣"])
def test_bad_last_event_id_is_400_not_a_cut_stream(http, finished_run, value):
    url = f"/v1/runs/{finished_run}/events"
    tries: list[dict[str, Any]] = [{"params": {"last_event_id": value}},
                                   {"params": {"lastEventId": value}}]
    if value.isascii() and value == value.strip():  # what a header can carry as is
        tries.append({"headers": {"Last-Event-ID": value}})
    for kwargs in tries:
        e = error(http.get(url, **kwargs))
        assert e["param"] == "last_event_id", e
    for path in ("logs", "metrics"):
        error(http.get(f"/v1/runs/{finished_run}/{path}",
                       params={"cursor": cursor_of([2**63])}))


def test_good_last_event_id_still_works(http, finished_run):
    r = http.get(f"/v1/runs/{finished_run}/events", params={"last_event_id": str(2**63 - 1)})
    assert r.status_code == 200 and "event: complete" in r.text


@pytest.mark.parametrize("prompt", ["hello\0world", "\0"])
def test_a_prompt_with_nul_is_400_at_create(http, prompt):
    e = error(http.post("/v1/runs", json={"agent": "echo", "prompt": prompt}))
    assert e["param"] == "prompt" and "NUL" in e["message"]


CONTROL = ["a\nb", "a\rb", "tab\there", "bell\x07", "esc\x1b[31m", "del\x7f", "c1\x85",
           "c1\x9b", "dir/new\nline"]


@pytest.mark.parametrize("path", CONTROL)
def test_paths_with_control_characters_are_400(http, path):
    vol = http.post("/v1/volumes", json={"name": f"c-{secrets.token_hex(4)}"}).json()["id"]
    e = error(http.post(f"/v1/volumes/{vol}/upload",
                        json={"files": [{"path": path, "size": 1}]}))
    assert e["param"] == "files[0].path" and "control character" in e["message"]


def test_two_different_uploads_never_share_a_version_id(http):
    """With a newline a path could forge the id rule's line break: ``a`` holding X plus
    ``b:<sha>`` versus one file named ``a:X\\nb``."""
    vol = http.post("/v1/volumes", json={"name": f"c-{secrets.token_hex(4)}"}).json()["id"]
    x, y = b"x", b"y"
    hx, hy = hashlib.sha256(x).hexdigest(), hashlib.sha256(y).hexdigest()
    forged = [{"path": f"a:{hx}\nb", "size": 1, "hash": hy}]
    assert error(http.post(f"/v1/volumes/{vol}/upload", json={"files": forged}))
    plain = [{"path": "a", "size": 1, "hash": hx}, {"path": "b", "size": 1, "hash": hy}]
    assert http.post(f"/v1/volumes/{vol}/upload", json={"files": plain}).status_code == 200


# -- Idempotency-Key -------------------------------------------------------------------------


def test_idempotency_key_with_another_body_is_400(http):
    key = "k-" + secrets.token_hex(8)
    body = {"agent": "echo", "prompt": "first", "variables": {"A": "1", "B": "2"}}
    first = http.post("/v1/runs", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 202, first.text
    # The same body (keys in another order, other spacing) is the same request.
    same = json.dumps({"variables": {"B": "2", "A": "1"}, "prompt": "first", "agent": "echo"},
                      indent=2)
    again = http.post("/v1/runs", content=same, headers={"Idempotency-Key": key})
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other = http.post("/v1/runs", json={**body, "prompt": "second"},
                      headers={"Idempotency-Key": key})
    e = error(other)
    assert e["type"] == "invalid_request_error" and e["code"] == "idempotency_key_reused"
    assert e["param"] == "Idempotency-Key" and "different" in e["message"]
    assert health_ok(http)


def health_ok(http: httpx.Client) -> bool:
    return http.get("/health").status_code == 200


@pytest.mark.parametrize("config, param", [
    ({"resources": {"memory": "inf"}}, "config.resources.memory"),
    ({"resources": {"memory": "1e400Gi"}}, "config.resources.memory"),
    ({"resources": {"memory": "1e18Gi"}}, "config.resources.memory"),
    ({"resources": {"memory": 10**30}}, "config.resources.memory"),
    ({"resources": {"cpu": 1e308}}, "config.resources.cpu"),
    ({"timeout_s": 1e308}, "config.timeout_s"),
])
def test_agent_limits_past_what_the_os_takes_are_400(http, config, param):
    """They used to be a 500 at create, or a run that always failed."""
    body = {"name": f"a-{secrets.token_hex(4)}", "config": {"command": ["true"], **config}}
    assert error(http.post("/v1/agents", json=body))["param"] == param
