"""``python -m vm0_notebook.local``: serve, status, stop, and a restart after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.local.agent_runs import Api, marked_processes


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vm0_notebook.local", *args],
                          capture_output=True, text=True, timeout=60)


def test_serve_writes_its_state_and_stops_cleanly(start_server, tmp_path):
    server = start_server(data_dir=tmp_path / "d")
    state_file = tmp_path / "d" / "server.json"
    assert stat.S_IMODE(state_file.stat().st_mode) == 0o600
    assert json.loads(state_file.read_text()) == {"url": server.url, "token": server.token,
                                                  "pid": server.pid}
    assert server.url.startswith("http://127.0.0.1:")

    status = cli("status", "--data-dir", str(tmp_path / "d"))
    assert status.returncode == 0 and server.url in status.stdout
    assert "sandbox:" in status.stdout

    again = cli("serve", "--data-dir", str(tmp_path / "d"))
    assert again.returncode == 1 and "already using" in again.stderr

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=30) == 0
    assert not state_file.exists()
    status = cli("status", "--data-dir", str(tmp_path / "d"))
    assert status.returncode == 1 and "not running" in status.stdout


def test_console_script_status_and_stop(start_server, tmp_path):
    """The installed ``vm0-local`` command, as typed in a shell."""
    script = Path(sys.executable).with_name("vm0-local")
    assert script.exists(), "the package is installed with its console script"
    server = start_server(data_dir=tmp_path / "d")
    env = {**os.environ, "VM0_LOCAL_DIR": str(tmp_path / "d")}
    status = subprocess.run([str(script), "status"], capture_output=True, text=True, env=env,
                            timeout=60)
    assert status.returncode == 0 and server.url in status.stdout
    stopped = subprocess.run([str(script), "stop"], capture_output=True, text=True, env=env,
                             timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert server.process.wait(timeout=30) == 0
    assert "was not running" in cli("stop", "--data-dir", str(tmp_path / "d")).stdout


def test_bad_arguments():
    assert cli("serve", "--max-concurrent-runs", "0").returncode == 2
    assert cli("launch").returncode == 2


def test_sigkill_restart_keeps_what_was_committed(start_server, tmp_path):
    data = tmp_path / "d"
    first = start_server("--max-concurrent-runs", "1", data_dir=data)
    api = Api(first)
    agent = api.agent(["bash", "-c", "echo custom"])
    volume = api.volume({"a.txt": b"kept"})
    done = api.run("echo", "before the crash")
    made = api.run("shell", "echo kept > artifact/out.txt; echo notes > notes.txt",
                   artifact_name=f"a-{agent}")
    assert made.status == "completed", made.detail
    marker = f"vm0-crash-marker-{os.getpid()}-{id(api)}"
    running = api.start("shell", f"echo ready; exec -a {marker} sleep 60")
    api.frames(running, until="ready")
    pending = api.start("echo", "never started")
    assert api.http.delete("/agents/python").status_code == 204
    api.close()
    first.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30  # a bound on the wait, not a speed check
    while marked_processes(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marked_processes(marker) == []  # the agent died with its server

    second = start_server(data_dir=data)
    api = Api(second)
    try:
        assert api.http.get(f"/agents/{agent}").status_code == 200
        # Built-ins are created once: a deleted one stays deleted, the others are not doubled.
        assert api.http.get("/agents/python").status_code == 404
        assert len(api.http.get("/agents", params={"name": "echo"}).json()["data"]) == 1
        assert api.http.get(f"/volumes/{volume}").json()["file_count"] == 1
        again = api.finish(done.detail["id"])
        assert again.detail == done.detail
        assert again.outputs == done.outputs
        assert again.frames[-1] == done.frames[-1]  # the same complete frame
        for run_id, was in ((running, "running"), (pending, "pending")):
            detail = api.get(run_id)
            assert detail["status"] == "failed"
            assert detail["error"] == (f"The local server stopped before this run finished "
                                       f"(it was {was}); create it again to retry")
            frames = api.frames(run_id)
            assert frames[-1] == ("complete", {"status": "failed", "output": detail["error"],
                                               "error": detail["error"]})
            results = [d for e, d in frames if e == "output" and d["type"] == "result"]
            assert results and results[-1]["data"]["is_error"] is True
            outputs = [d["sequence"] for e, d in frames if e == "output"]
            assert outputs == list(range(1, len(outputs) + 1))
            assert any("stopped before" in e["message"] for e in api.logs(run_id))
        assert api.run(agent, "after the restart").texts == ["custom"]
        # The run's artifact version and its checkpoint survived too, files included.
        versions = api.http.get(f"/artifacts/a-{agent}/versions").json()["data"]
        assert [v["id"] for v in versions] == [made.detail["artifact_version"]]
        resumed = api.run("shell", "cat notes.txt artifact/out.txt",
                          checkpoint_id=made.detail["checkpoint_id"])
        assert resumed.texts == ["notes", "kept"]
    finally:
        api.close()


def test_server_log_rotates_at_its_bound(start_server, tmp_path):
    """A flood of bad requests (each one a warning in the log) leaves at most the current log
    and three old ones, none over the bound, and the server still answering."""
    bound = 4096
    log = tmp_path / "d" / "server.log"
    server = start_server("--log-file", str(log), "--log-bytes", str(bound),
                          data_dir=tmp_path / "d")
    host, port = server.url.removeprefix("http://").split(":")
    for _ in range(300):
        with socket.create_connection((host, int(port)), timeout=30) as sock:
            sock.sendall(b"\x00\x01 not http at all\r\n\r\n")
            sock.recv(1024)
    assert httpx.get(server.url + "/health", timeout=30).status_code == 200
    files = sorted(p.name for p in log.parent.glob("server.log*"))
    assert files == ["server.log", "server.log.1", "server.log.2", "server.log.3"]
    for name in files:
        assert (log.parent / name).stat().st_size <= bound
        assert stat.S_IMODE((log.parent / name).stat().st_mode) == 0o600
    assert "Invalid HTTP request received" in (log.parent / "server.log.1").read_text()
