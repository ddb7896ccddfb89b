"""Errors: every failure is a short ``VM0Error`` that says what to do, and the API key never
shows through one (text, repr, chained errors, the request behind it, logs, tracebacks)."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

import vm0_notebook as vm0
from tests.proxies import FaultProxy
from vm0_notebook import contract
from vm0_notebook.api._ops import Request

KEY = "vm0_live_" + "k3y" * 10
SHOWN = "vm0_live_…yk3y"  # what may be shown of it


def key_leaks(exc: BaseException) -> list[str]:
    """Where KEY shows through ``exc`` or anything chained to it (empty when it does not)."""
    found: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        err = stack.pop()
        if err is None or id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, httpx.HTTPError):
            # httpx errors hold the request, and with it the Authorization header
            found.append(f"chained {type(err).__name__}")
        for label, text in (("str", str(err)), ("repr", repr(err)), ("vars", repr(vars(err)))):
            if KEY in text:
                found.append(f"{label} of {type(err).__name__}")
        stack += [err.__cause__, err.__context__]
    return found


def verbose_traceback(exc: BaseException) -> str:
    """The traceback IPython prints under ``%xmode Verbose``: it shows frame locals."""
    from IPython.core.ultratb import VerboseTB

    return VerboseTB(theme_name="nocolor").text(type(exc), exc, exc.__traceback__)


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@contextmanager
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers (a hung server)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        s.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(s.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{s.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        s.close()


def fails(call: Callable[[], Any]) -> vm0.VM0Error:
    with pytest.raises(vm0.VM0Error) as exc:
        call()
    return exc.value


def assert_hidden(exc: BaseException) -> None:
    assert key_leaks(exc) == []
    assert KEY not in verbose_traceback(exc)


# -- the key never shows ------------------------------------------------------------------------


def test_connection_refused_hides_the_key_and_says_what_to_do() -> None:
    port = closed_port()
    client = vm0.Client(api_url=f"http://127.0.0.1:{port}", api_key=KEY, max_attempts=2,
                        retry_backoff=0.01)
    for call in (lambda: client.agents.get("echo"),
                 lambda: client.runs.create(agent="echo", prompt="hi"),
                 lambda: list(client.runs.events("run_" + "0" * 24)),
                 lambda: list(client.runs.list())):
        err = fails(call)
        assert isinstance(err, vm0.APIConnectionError)
        assert f"127.0.0.1:{port}" in str(err) and "check that the server is running" in str(err)
        assert_hidden(err)


def test_timeouts_hide_the_key() -> None:
    with silent_server() as url:
        client = vm0.Client(api_url=url, api_key=KEY, timeout=0.2, max_attempts=1,
                            stream_idle_timeout=0.2, retry_backoff=0.01)
        err = fails(lambda: client.runs.get("run_" + "0" * 24))
        assert isinstance(err, vm0.APITimeoutError) and "timeout" in str(err)
        assert_hidden(err)
        err = fails(lambda: list(client.runs.events("run_" + "0" * 24)))
        assert isinstance(err, vm0.APIConnectionError) and "last_event_id=0" in str(err)
        assert_hidden(err)


def test_async_errors_hide_the_key() -> None:
    async def main() -> list[vm0.VM0Error]:
        errors = []
        async with vm0.AsyncClient(api_url=f"http://127.0.0.1:{closed_port()}", api_key=KEY,
                                   max_attempts=1) as aclient:
            for call in (lambda: aclient.agents.get("echo"),
                         lambda: aclient.runs.events("run_x").__anext__()):
                try:
                    await call()
                except vm0.VM0Error as exc:
                    errors.append(exc)
        return errors

    errors = asyncio.run(main())
    assert len(errors) == 2
    for err in errors:
        assert isinstance(err, vm0.APIConnectionError)
        assert_hidden(err)


def test_http_errors_hide_the_key_even_when_the_server_echoes_it(
    local_server: Any, proxy: Any
) -> None:
    wrong = vm0.Client(api_url=local_server.url, api_key=KEY)
    err = fails(lambda: wrong.agents.get("echo"))
    assert isinstance(err, vm0.AuthenticationError) and "VM0_API_KEY" in str(err)
    assert_hidden(err)

    echo = f'{{"error": {{"type": "invalid_request_error", "message": "bad key {KEY}"}}}}'
    broken = proxy(FaultProxy, broken={r"^/v1/agents": (400, "application/json", echo.encode())})
    client = vm0.Client(api_url=broken.url, api_key=KEY)
    err = fails(lambda: client.agents.get("echo"))
    assert isinstance(err, vm0.InvalidRequestError) and SHOWN in str(err)
    assert_hidden(err)

    storm = proxy(FaultProxy, error_rate=1.0)
    client = vm0.Client(api_url=storm.url, api_key=KEY, max_attempts=2, retry_backoff=0.01)
    for call in (lambda: client.agents.get("echo"), lambda: list(client.agents.list())):
        err = fails(call)
        assert isinstance(err, vm0.InternalServerError | vm0.RateLimitError)
        assert_hidden(err)


def test_a_proxy_failure_hides_the_key_and_the_proxy_password(
    local_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "pr0xy-pa55word"
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ALL_PROXY", f"http://user:{password}@127.0.0.1:{closed_port()}")
    client = vm0.Client(api_url=local_server.url, api_key=KEY, max_attempts=1)
    err = fails(lambda: client.agents.get("echo"))
    assert isinstance(err, vm0.APIConnectionError)
    assert password not in str(err)
    assert_hidden(err)


def test_debug_logs_never_carry_the_key(
    local_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at DEBUG
    client = vm0.Client(api_url=local_server.url, api_key=local_server.token)
    run = client.runs.create(agent="echo", prompt="logged").wait(timeout=60)
    list(client.runs.events(run.id))
    fails(lambda: vm0.Client(api_url=local_server.url, api_key=KEY).agents.get("echo"))
    fails(lambda: vm0.Client(api_url=f"http://127.0.0.1:{closed_port()}", api_key=KEY,
                             max_attempts=1).agents.get("echo"))
    assert any(r.name.startswith("httpcore") for r in caplog.records)  # logging was on
    for record in caplog.records:
        text = record.getMessage() + repr(record.args)
        assert local_server.token not in text and KEY not in text, record.name


def test_request_locals_show_a_masked_key() -> None:
    """What a traceback with locals prints of a request in flight (Ctrl-C mid-request)."""
    client = vm0.Client(api_url="http://127.0.0.1:1", api_key=KEY)
    kwargs = client.build(Request("GET", "/agents"))
    assert kwargs["headers"]["Authorization"] == f"Bearer {KEY}"  # what is sent
    assert KEY not in repr(kwargs) and SHOWN in repr(kwargs)


def test_the_masking_hook(local_server: Any) -> None:
    client = vm0.Client(api_url=local_server.url, api_key=local_server.token)
    assert client.secret_values() == (local_server.token,)
    assert client.masked_key.endswith(local_server.token[-4:])
    assert local_server.token not in client.masked_key
    assert client.scrub(f"x {local_server.token} y") == f"x {client.masked_key} y"
    assert vm0.Client(api_url=local_server.url).secret_values() == ()


# -- answers that are not the contract ----------------------------------------------------------

HTML = b"<html><body><h1>502 Bad Gateway</h1></body></html>"
REQUEST_ID = "req_" + "b" * 32


@pytest.mark.parametrize(
    ("pattern", "status", "ctype", "body", "call"),
    [
        (r"/events$", 200, "text/html", HTML, lambda c: list(c.runs.events("run_" + "0" * 24))),
        (r"^/v1/runs$", 200, "text/html", HTML, lambda c: list(c.runs.list())),
        (r"^/v1/runs$", 200, "application/json", b'{"data": [{"id": "run_1", "sta',
         lambda c: list(c.runs.list())),
        (r"^/v1/runs$", 200, "application/json", b'{"items": []}', lambda c: list(c.runs.list())),
        (r"^/v1/runs$", 200, "application/json", b'{"data": [{"status": "running"}]}',
         lambda c: list(c.runs.list())),
        (r"^/v1/runs$", 201, "application/json", b'{"no": "id"}',
         lambda c: c.runs.create(agent="echo", prompt="x")),
    ],
    ids=["events-html", "list-html", "list-truncated", "list-shape", "list-item", "create"],
)
def test_off_contract_answers_name_status_and_request_id(
    local_server: Any, proxy: Any, pattern: str, status: int, ctype: str, body: bytes,
    call: Callable[[Any], Any],
) -> None:
    broken = proxy(FaultProxy, broken={pattern: (status, ctype, body)})
    client = vm0.Client(api_url=broken.url, api_key=local_server.token, max_attempts=1)
    err = fails(lambda: call(client))
    assert isinstance(err, vm0.InvalidResponseError)
    assert err.status == status and err.request_id == REQUEST_ID
    assert f"HTTP {status}" in str(err) and REQUEST_ID in str(err)
    assert "\n" not in str(err) and len(str(err)) < 300


def test_an_html_error_page_is_a_status_error(local_server: Any, proxy: Any) -> None:
    broken = proxy(FaultProxy, broken={r"^/v1/agents": (503, "text/html", HTML)})
    client = vm0.Client(api_url=broken.url, api_key=local_server.token, max_attempts=2,
                        retry_backoff=0.01)
    err = fails(lambda: client.agents.get("echo"))
    assert isinstance(err, vm0.InternalServerError) and err.status == 503
    assert "try again later" in str(err) and REQUEST_ID in str(err)
    assert "<html>" not in str(err)


# -- each error says what to do -----------------------------------------------------------------


def test_errors_say_what_to_do(client: Any) -> None:
    err = fails(lambda: client.runs.get("run_" + "0" * 24))
    assert isinstance(err, vm0.NotFoundError) and "check the id" in str(err)
    err = fails(lambda: client.agents.get("no-such-agent-here"))
    assert "Existing agents:" in str(err) and "echo" in str(err)
    name = f"dup-{uuid.uuid4().hex[:10]}"
    client.volumes.create(name)
    err = fails(lambda: client.volumes.create(name))
    assert isinstance(err, vm0.ConflictError) and "another name" in str(err)
    run = client.runs.create(agent="python", prompt="import time; time.sleep(30)")
    err = fails(lambda: run.wait(timeout=0.1))
    assert isinstance(err, vm0.WaitTimeoutError) and "cancel" in str(err)
    run.cancel()


def test_the_tree_in_the_docstring_names_every_error() -> None:
    from vm0_notebook.api import errors

    drawn = errors.__doc__ or ""
    for name in errors.__all__:
        assert f" {name} " in drawn, f"{name} is missing from the tree in errors.py"
        cls = getattr(errors, name)
        # a Ctrl-C stays a KeyboardInterrupt, so that `except Exception` lets it through
        base = KeyboardInterrupt if name == "MapInterrupted" else errors.VM0Error
        assert issubclass(cls, base) and getattr(vm0, name) is cls
    assert not issubclass(errors.MapInterrupted, Exception)
    assert issubclass(errors.RunFailed, errors.RunFailedError)
    assert errors.ERROR_TYPES.keys() == contract.ERROR_STATUS.keys()
    assert errors.STATUS_ERRORS[404] is errors.NotFoundError
    assert errors.error_class(418) is errors.APIStatusError
    assert errors.error_class(502) is errors.InternalServerError


def test_the_notebook_errors_render_as_one_line() -> None:
    from vm0_notebook.notebook.errors import MagicError, RunFailed

    failed = RunFailed("run run_1 failed: boom", run="the run")
    assert failed.run == "the run" and isinstance(failed, vm0.RunFailedError)
    assert failed._render_traceback_() == ["RunFailed: run run_1 failed: boom"]
    assert MagicError("bad line")._render_traceback_() == ["MagicError: bad line"]


def test_importing_the_errors_loads_no_client() -> None:
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vm0_notebook.api.errors import RunFailed, NotFoundError\n"
        "import vm0_notebook.api, vm0_notebook\n"
        "loaded = [m for m in ('httpx', 'httpx_sse', 'vm0_notebook.api.client',"
        " 'vm0_notebook.api.run', 'vm0_notebook.api.models') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "assert vm0_notebook.api.RunFailed is RunFailed\n"
        "assert 'RunFailed' in vm0_notebook.__all__ and 'Run' in vm0_notebook.api.__all__\n"
        "assert set(vm0_notebook.api.__all__) == set(vm0_notebook.api._LAZY)\n"
        "assert 'RunDetail' in dir(vm0_notebook.api)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
