"""The data folder is its owner's alone, whoever creates it; a server without a sandbox says so.

The folder is created the way notebooks create it, through ``ensure_server()``.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.local.agent_runs import Api, limits_of
from vm0_notebook.local.daemon import ensure_server, stop_server


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "local"
    stop_server(tmp_path / "local")


def _open_to_others(folder: Path) -> list[str]:
    """Everything under ``folder`` that a group or other users may use, volumes aside (the
    sandbox mounts them read-only; the 0700 folders above keep others out)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "volumes"]
        for name in [*dirs, *files]:
            path = Path(root, name)
            mode = path.lstat().st_mode
            if not stat.S_ISLNK(mode) and mode & 0o077:
                found.append(f"{path.relative_to(folder)} {stat.filemode(mode)}")
    return found


def test_a_new_data_folder_and_everything_in_it_are_private(data_dir: Path) -> None:
    url, token = ensure_server(data_dir)
    server = type("S", (), {"url": url, "token": token})()
    api = Api(server)
    try:
        volume = api.volume({"v.txt": b"volume\n"})
        run = api.run("shell", "echo made > made.txt; echo art > artifact/a.txt; echo ok",
                      volumes={volume: "latest"}, artifact_name=f"a-{volume}")
        assert run.status == "completed", run.everything()
    finally:
        api.close()
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    names = {p.name for p in data_dir.iterdir()}
    assert {"vm0.db", "vm0.db-wal", "vm0.db-shm", "server.log", "server.json",
            "sessions"} <= names
    assert _open_to_others(data_dir) == []


def test_an_open_data_folder_is_closed_at_start(data_dir: Path) -> None:
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    (data_dir / "sessions").mkdir(mode=0o755)
    os.chmod(data_dir / "sessions", 0o755)
    old_log = data_dir / "server.log"
    old_log.write_text("an old log\n")
    os.chmod(old_log, 0o644)
    ensure_server(data_dir)
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((data_dir / "sessions").stat().st_mode) == 0o700
    assert stat.S_IMODE(old_log.stat().st_mode) == 0o600
    assert _open_to_others(data_dir) == []


def test_without_a_sandbox_runs_fail_at_once_saying_what_to_do(
    start_server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")  # no bwrap to be found: no sandbox
    server = start_server()
    health = httpx.get(server.url + "/health", timeout=30).json()
    assert health["sandbox"] == "unavailable"
    assert "bwrap is not installed" in health["sandbox_problem"]
    api = Api(server)
    try:
        run = api.run("echo", "hello")
    finally:
        api.close()
    assert run.status == "failed"
    error = run.detail["error"]
    for advice in ("apt-get install bubblewrap", "user namespaces", "VM0_LOCAL_SANDBOX=process"):
        assert advice in error
    assert run.detail.get("started_at") is None  # nothing ran


def test_status_says_how_agents_are_isolated(start_server) -> None:
    server = start_server("--sandbox", "process")
    done = subprocess.run(
        [sys.executable, "-m", "vm0_notebook.local", "status", "--data-dir", str(server.data_dir)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "sandbox: process" in done.stdout
    assert "agents run unsandboxed" in done.stdout
    limits = limits_of(server)
    for how, says in (("rlimit", "limits only as rlimits, no cgroup: "),
                      ("cgroup", "limits per run in a cgroup: ")):
        names = sorted(name for name, kind in limits.items() if kind == how)
        if names:
            assert says + ", ".join(names) in done.stdout
    assert "shares the host's network, loopback included" in done.stdout
    if os.geteuid() == 0:
        assert "agents run as: own uid per run" in done.stdout
