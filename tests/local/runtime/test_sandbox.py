"""Sandbox isolation over real HTTP: writes, network, volumes, processes; and the fallback."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.local.agent_runs import (
    Api,
    cancel_and_check_tree_is_gone,
    exit_and_check_nothing_is_left,
    limits_of,
    marked_processes,
    wait_until_gone,
)
from vm0_notebook.local.runtime.sandbox import bwrap_problem


def _python_closed_to_others() -> bool:
    """True when the server runs as root and other users cannot reach its Python (a pyenv
    under /root): process-mode agents, which run as their own uid, may not start it."""
    if os.geteuid() != 0:
        return False
    path = Path(os.path.realpath(sys.executable))
    return any(not folder.stat().st_mode & 0o001 for folder in path.parents)


def _sandbox_of(server) -> str:
    return httpx.get(server.url + "/health", timeout=30).json()["sandbox"]


@pytest.fixture
def api(local_server) -> Iterator[Api]:
    if _sandbox_of(local_server) != "bubblewrap":
        pytest.skip(f"no sandbox to check: {bwrap_problem()} (the server runs agents as "
                    "plain processes)")
    client = Api(local_server)
    yield client
    client.close()


def test_only_the_working_folder_and_a_private_tmp_are_writable(api: Api, tmp_path) -> None:
    outside = tmp_path / "outside.txt"
    data_dir = api.server.data_dir
    private = f"vm0-private-{secrets.token_hex(4)}"
    script = (
        "echo inside > here.txt && echo wrote-here\n"
        f"echo x > /tmp/{private} && echo wrote-tmp\n"
        f"echo pwn > {outside} 2>/dev/null && echo wrote-outside\n"
        # Under a data dir in /tmp this lands in the private /tmp: either way not on the host.
        f"echo pwn > {data_dir}/escape.txt 2>/dev/null\n"
        f"cat {data_dir}/server.json >/dev/null 2>&1 && echo read-server-state\n"
        f"ls {data_dir}\n"
        "echo done\n"
    )
    run = api.run("shell", script)
    assert run.status == "completed"
    texts = [t for t in run.texts if t != "escape.txt"]
    # Of the server's data folder only the way down to the working folder exists.
    assert texts == ["wrote-here", "wrote-tmp", "sessions", "done"]
    assert not outside.exists()
    assert not (data_dir / "escape.txt").exists()
    assert not (Path("/tmp") / private).exists()


def test_no_network_unless_the_agent_asks_for_it(api: Api) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    port = listener.getsockname()[1]
    program = (
        "import socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
        "    print('connected')\n"
        "except OSError as exc:\n"
        "    print('blocked', type(exc).__name__)\n"
    )
    try:
        closed = api.run("python", program)
        assert closed.status == "completed"
        assert closed.texts[0].startswith("blocked")
        with pytest.raises(BlockingIOError):
            listener.accept()

        networked = api.agent(["{python}", "-u", "-"], network=True)
        opened = api.run(networked, program)
        assert opened.texts == ["connected"]
        listener.setblocking(True)
        listener.settimeout(10)
        conn, _ = listener.accept()
        conn.close()
    finally:
        listener.close()


def test_volumes_are_mounted_read_only(api: Api) -> None:
    volume = api.volume({"data.txt": b"volume data\n"})
    folder = f"volumes/{volume}"
    script = (
        f"cat {folder}/data.txt\n"
        f"echo changed > {folder}/data.txt 2>/dev/null || echo write-refused\n"
        f"rm {folder}/data.txt 2>/dev/null || echo remove-refused\n"
        f"touch {folder}/new.txt 2>/dev/null || echo create-refused\n"
        f"cat {folder}/data.txt\n"
    )
    run = api.run("shell", script, volumes={volume: "latest"})
    assert run.status == "completed"
    assert run.texts == ["volume data", "write-refused", "remove-refused", "create-refused",
                         "volume data"]
    assert any(volume in entry["message"] for entry in run.logs)


def test_agent_has_its_own_process_namespace(api: Api) -> None:
    run = api.run("shell", "ls /proc | grep -c '^[0-9][0-9]*$'\necho $$")
    count, own_pid = (int(text) for text in run.texts)
    # The host has many processes; the sandbox only bwrap's init, the shell and ls/grep.
    assert count < 10
    assert own_pid < 10


@pytest.mark.slow
def test_process_fallback(start_server, monkeypatch) -> None:
    monkeypatch.setenv("SERVER_ONLY_SENTINEL", "must-not-reach-agents")
    server = start_server("--sandbox", "process")
    assert _sandbox_of(server) == "process"
    api = Api(server)
    try:
        echoed = api.run("echo", "still works")
        if _python_closed_to_others():
            # As root agents run as a uid of their own, for whom this Python's files are out of
            # reach: the run says so, and its error says it again if it fails.
            warned = [e["message"] for e in echoed.logs if e["level"] == "warn"]
            assert any("is closed to other users" in m for m in warned), warned
            if echoed.status != "completed":
                assert "closed to other users" in echoed.detail["error"]
        else:
            assert echoed.result["result"] == "still works"

        agent = api.agent(["bash", "-c", 'eval "$(cat)"'], resources={"memory": "512Mi"})
        run = api.run(agent, "env\nulimit -v\nulimit -c", variables={"GREETING": "hello"})
        assert run.status == "completed"
        env = dict(line.split("=", 1) for line in run.texts[:-2] if "=" in line)
        assert "SERVER_ONLY_SENTINEL" not in env
        assert env["GREETING"] == "hello"
        # A memory cgroup bounds the run without an address-space limit (which breaks Node).
        cgroup = limits_of(server)["memory"] == "cgroup"
        assert run.texts[-2:] == ["unlimited" if cgroup else str(512 * 1024), "0"]

        program = "import os\nprint(os.getpgid(0) == os.getpid(), os.getsid(0) == os.getpid())"
        if not _python_closed_to_others():
            assert api.run("python", program).texts == ["True True"]
        shell = "[ $(ps -o pgid= $$) = $$ ] && [ $(ps -o sid= $$) = $$ ] && echo leads"
        assert api.run("shell", shell).texts == ["leads"]

        cancel_and_check_tree_is_gone(api)
        exit_and_check_nothing_is_left(api)

        # The agent dies with a server killed outright (no chance to stop its runs).
        marker = f"vm0-orphan-marker-{secrets.token_hex(4)}"
        api.start("shell", f"echo ready >&2; exec -a {marker} sleep 300")
        while not marked_processes(marker):
            time.sleep(0.05)
        server.stop(signal.SIGKILL)
        assert wait_until_gone(marker) == []
    finally:
        api.close()
