"""One real local server per test session, on a temporary data folder, over real HTTP.

Fixtures:
- ``local_server``: a :class:`ServerInfo` (url, token, data_dir, pid) for the session's server.
- ``client``: a ``vm0_notebook.Client`` connected to it.
- ``start_server``: a factory for tests that need a server of their own (restarts, limits).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

URL_RE = re.compile(r"https?://[^\s]+")
# Every data folder a server of this session used: tidied at the end (see _tidy_machine).
_SPAWNED: list[Path] = []


@dataclass
class ServerInfo:
    url: str
    token: str
    data_dir: Path
    process: subprocess.Popen[str]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def spawn_server(
    data_dir: Path, *extra: str, token: str | None = None, env: dict[str, str] | None = None
) -> ServerInfo:
    """Start ``python -m vm0_notebook.local serve`` and wait for its URL line (``env``: extra
    variables for the server's own environment, such as a PATH holding ``claude``)."""
    token = token or "vm0_test_" + secrets.token_hex(16)
    data_dir.mkdir(parents=True, exist_ok=True)
    _SPAWNED.append(data_dir)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VM0_")}, **(env or {})}
    env["VM0_LOCAL_DIR"] = str(data_dir)
    env["VM0_LOCAL_TOKEN"] = token  # not on the command line, where an agent could read it
    proc = subprocess.Popen(
        [sys.executable, "-m", "vm0_notebook.local", "serve", "--port", "0",
         "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=open(data_dir / "server.stderr.log", "a"),  # noqa: SIM115
        text=True,
        env=env,
    )
    deadline = time.monotonic() + 30
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        match = URL_RE.search(line)
        if match:
            return ServerInfo(match.group(0).rstrip("/"), token, data_dir, proc)
    proc.kill()
    log = (data_dir / "server.stderr.log").read_text()
    raise RuntimeError(f"local server did not start:\n{log[-3000:]}")


@pytest.fixture(scope="session", autouse=True)
def _isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep every test away from the user's ~/.vm0-notebook, ~/.cache and any real VM0 key."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("VM0_")}
    os.environ["VM0_LOCAL_DIR"] = str(tmp_path_factory.mktemp("vm0-default-local"))
    os.environ["VM0_CACHE_DIR"] = str(tmp_path_factory.mktemp("vm0-cache"))
    yield
    _tidy_machine(_SPAWNED)
    for key in ("VM0_LOCAL_DIR", "VM0_CACHE_DIR"):
        os.environ.pop(key, None)
    os.environ.update(saved)


def _tidy_machine(data_dirs: list[Path]) -> None:
    """Remove what this session's servers kept outside their data folders: process-mode
    working folders under /var/lib/vm0-local and their (empty) cgroup folders."""
    from vm0_notebook.local.runtime.agent_users import PASSABLE_DIR
    from vm0_notebook.local.runtime.cgroups import RunCgroups, group_name

    for data_dir in dict.fromkeys(data_dirs):
        name = group_name(data_dir)
        shutil.rmtree(PASSABLE_DIR / name, ignore_errors=True)
        if os.geteuid() == 0:
            cgroups = RunCgroups.detect(name)
            cgroups.end_leftovers()
            cgroups.close()


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    server = spawn_server(tmp_path_factory.mktemp("vm0-local"))
    yield server
    server.stop()


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[object]:
    """Factory: ``start_server(*cli_args)`` starts a private server, stopped after the test."""
    started: list[ServerInfo] = []

    def start(*extra: str, data_dir: Path | None = None, token: str | None = None) -> ServerInfo:
        server = spawn_server(data_dir or tmp_path / f"server{len(started)}", *extra, token=token)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(signal.SIGKILL)


@pytest.fixture
def client(local_server: ServerInfo):
    from vm0_notebook import Client

    c = Client(api_url=local_server.url, api_key=local_server.token)
    yield c
    c.close()
