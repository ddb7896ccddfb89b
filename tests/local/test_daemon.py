"""``ensure_server`` / ``server_status`` / ``stop_server``: one detached server per data folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import psutil
import pytest

import vm0_notebook
from tests.local.agent_runs import Api
from vm0_notebook.local.daemon import (
    LocalServerVersionWarning,
    ensure_server,
    read_state,
    server_status,
    stop_server,
    write_state,
)

# A real server whose package reports another version: what still runs after an upgrade (the
# old code stays in memory). Only the version string differs; nothing in the product fakes it.
OLD_SERVER = ("import sys, vm0_notebook._version as v\n"
              "v.__version__ = '0.0.0-old'\n"
              "from vm0_notebook.local.__main__ import main\n"
              "sys.exit(main(['serve', '--data-dir', sys.argv[1]]))\n")
ENSURE = ("import json, sys\n"
          "from vm0_notebook.local.daemon import ensure_server\n"
          "print(json.dumps(ensure_server(sys.argv[1])))\n")


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "local"
    stop_server(tmp_path / "local")


def test_two_processes_at_once_end_with_one_server_that_outlives_them(data_dir):
    callers = [subprocess.Popen([sys.executable, "-c", ENSURE, str(data_dir)],
                                stdout=subprocess.PIPE, text=True) for _ in range(2)]
    answers = [json.loads(p.communicate(timeout=90)[0]) for p in callers]
    assert all(p.returncode == 0 for p in callers)  # both callers have exited...
    assert answers[0] == answers[1]
    url, token = answers[0]
    health = httpx.get(f"{url}/health", timeout=10).json()  # ...and their server still runs
    state = json.loads((data_dir / "server.json").read_text())
    assert state == {"url": url, "token": token, "pid": health["pid"]}
    agents = httpx.get(f"{url}/v1/agents", headers={"Authorization": f"Bearer {token}"})
    assert agents.status_code == 200
    assert token.startswith("vm0_local_") and len(token) == len("vm0_local_") + 32

    assert ensure_server(data_dir) == (url, token)  # found, not started again
    status = server_status(data_dir)
    assert status is not None
    assert status["url"] == url and status["pid"] == health["pid"]
    assert status["sandbox"] in ("bubblewrap", "process")


def test_a_stale_state_file_is_replaced(data_dir):
    data_dir.mkdir(parents=True)
    write_state(data_dir, "http://127.0.0.1:9", "vm0_local_stale", 999_999)
    assert server_status(data_dir) is None
    url, token = ensure_server(data_dir)
    assert token != "vm0_local_stale"
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200
    assert json.loads((data_dir / "server.json").read_text())["token"] == token


def test_a_state_file_naming_a_live_unrelated_process_is_replaced(data_dir, local_server):
    """The pid is alive and the url even answers, but the server there is another one: the
    file is stale. Neither ``status`` nor ``stop`` may touch that process or that server."""
    unrelated = subprocess.Popen(["sleep", "300"])
    try:
        data_dir.mkdir(parents=True)
        write_state(data_dir, local_server.url, "vm0_local_stale", unrelated.pid)
        assert server_status(data_dir) is None
        assert stop_server(data_dir) is False
        assert unrelated.poll() is None
        assert not (data_dir / "server.json").exists()

        write_state(data_dir, local_server.url, "vm0_local_stale", unrelated.pid)
        url, token = ensure_server(data_dir)
        assert (url, token) != (local_server.url, "vm0_local_stale")
        assert httpx.get(f"{url}/health", timeout=10).json()["pid"] != unrelated.pid
        assert unrelated.poll() is None
        assert httpx.get(f"{local_server.url}/health", timeout=10).status_code == 200
    finally:
        unrelated.kill()
        unrelated.wait()


def test_stop(data_dir):
    url, _ = ensure_server(data_dir)
    assert stop_server(data_dir) is True
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{url}/health", timeout=2)
    assert server_status(data_dir) is None
    assert not (data_dir / "server.json").exists()
    assert stop_server(data_dir) is False


def _servers_using(data_dir: Path) -> list[int]:
    """Pids of the live processes started with ``data_dir`` as an argument: its servers."""
    return [p.pid for p in psutil.process_iter(["cmdline", "status"])
            if p.info["status"] != psutil.STATUS_ZOMBIE
            and str(data_dir) in (p.info["cmdline"] or [])]


def test_a_server_still_shutting_down_is_waited_for(data_dir):
    url, token = ensure_server(data_dir)
    old = psutil.Process(read_state(data_dir)["pid"])
    api = Api(SimpleNamespace(url=url, token=token))
    try:
        # An agent that ignores SIGTERM keeps its server shutting down for the kill grace.
        run_id = api.start("python", "import signal, time\n"
                                     "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                                     "print('ready', flush=True)\ntime.sleep(300)\n")
        api.frames(run_id, until="ready")
    finally:
        api.close()
    old.send_signal(signal.SIGTERM)

    new_url, new_token = ensure_server(data_dir)

    # It finishes its own shutdown, undisturbed. Its exit status is not ours to read: the
    # start of the new server may already have reaped it (subprocess collects finished
    # children), so its log is the witness instead.
    old.wait(timeout=60)
    assert not old.is_running()
    assert "Traceback" not in (data_dir / "server.log").read_text()
    new = httpx.get(f"{new_url}/health", timeout=10).json()
    assert new["pid"] != old.pid and new_token != token
    servers = _servers_using(data_dir)
    assert servers == [new["pid"]], [psutil.Process(p).cmdline() for p in servers]
    api = Api(SimpleNamespace(url=new_url, token=new_token))
    try:
        run = api.run("echo", "after the restart")
        assert run.status == "completed" and run.texts == ["after the restart"]
        assert api.get(run_id)["status"] == "failed"  # the old server's run, as it left it
    finally:
        api.close()


def test_a_server_that_never_lets_go_is_a_clear_error(data_dir, monkeypatch):
    """A ``serve`` that holds the folder but no longer answers (here: stopped with SIGSTOP)."""
    ensure_server(data_dir)
    pid = read_state(data_dir)["pid"]
    os.kill(pid, signal.SIGSTOP)
    try:
        monkeypatch.setattr("vm0_notebook.local.daemon.RELEASE_TIMEOUT_S", 0.5)
        with pytest.raises(RuntimeError, match=rf"pid {pid}\) still holds .* `kill {pid}`"):
            ensure_server(data_dir)
        assert _servers_using(data_dir) == [pid]  # no second server was started
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_server_of_another_version_is_kept_with_one_warning(data_dir):
    old = subprocess.Popen([sys.executable, "-c", OLD_SERVER, str(data_dir)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while server_status(data_dir) is None and old.poll() is None:
            assert time.monotonic() < deadline, "the old-version server did not start"
            time.sleep(0.05)
        state = read_state(data_dir)
        api = Api(SimpleNamespace(url=state["url"], token=state["token"]))
        try:
            run_id = api.start("python", "import time\nprint('ready', flush=True)\n"
                                         "time.sleep(1)\nprint('done')\n")
            api.frames(run_id, until="ready")
            with pytest.warns(LocalServerVersionWarning) as caught:
                assert ensure_server(data_dir) == (state["url"], state["token"])
            assert len(caught) == 1
            text = str(caught[0].message)
            assert "0.0.0-old" in text and vm0_notebook.__version__ in text
            assert "%vm0 local stop" in text and "vm0-local stop" in text
            with warnings.catch_warnings():
                warnings.simplefilter("error", LocalServerVersionWarning)  # not said twice
                assert ensure_server(data_dir) == (state["url"], state["token"])
            run = api.finish(run_id)  # the run in flight was left alone
            assert run.status == "completed" and run.texts == ["ready", "done"]
        finally:
            api.close()
        assert old.poll() is None and _servers_using(data_dir) == [old.pid]
    finally:
        old.terminate()
        old.wait(timeout=30)
