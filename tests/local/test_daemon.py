"""``ensure_server`` / ``server_status`` / ``stop_server``: one detached server per data folder."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vm0_notebook.local.daemon import ensure_server, server_status, stop_server, write_state

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
