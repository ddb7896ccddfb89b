"""A run's memory, processes and CPU are its own: attacks on them from inside real runs, in
both sandbox modes.

Where the server can make cgroups (as root on this project's machines and CI) the kernel
enforces each limit per run; elsewhere some are rlimits only, and ``/health`` says so.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerInfo
from tests.local.agent_runs import Api, limits_of, wait_until_gone
from vm0_notebook.local.runtime.sandbox import MAX_PROCESSES

# Forks until the kernel refuses, keeping every child alive, then reports how many it made.
FORK_BOMB = """
import os, sys, time
made = 0
try:
    while made < 3 * int(sys.argv[1]):
        if os.fork() == 0:
            time.sleep(600)
            os._exit(0)
        made += 1
except OSError as exc:
    print("refused after", made, exc.errno, flush=True)
time.sleep(600)
"""

# Two busy processes for ``seconds``; prints the CPU they used over the wall time, in percent.
TWO_BUSY_LOOPS = """
import os, sys, time
seconds = float(sys.argv[1])
start = time.monotonic()
children = []
for _ in range(2):
    pid = os.fork()
    if pid == 0:
        while time.monotonic() - start < seconds:
            pass
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
used = os.times().children_user + os.times().children_system
print(round(100 * used / (time.monotonic() - start)), flush=True)
"""


@pytest.fixture(scope="module")
def api(server: ServerInfo) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


def test_a_fork_bomb_is_capped_and_a_concurrent_run_still_works(
    api: Api, server: ServerInfo
) -> None:
    marker = f"vm0-fork-bomb-{secrets.token_hex(4)}"
    bomb = api.agent(["python3", "-c", FORK_BOMB, str(MAX_PROCESSES), marker])
    run_id = api.start(bomb, "fork")
    try:
        frames = api.frames(run_id, until="refused after")
        said = [d for kind, d in frames if kind == "output" and "refused after" in str(d)]
        made = int(str(said[-1]).split("refused after ")[1].split()[0])
        # Its own cap, per run: with the bomb and all its children still alive, another run
        # starts, forks and ends as usual, and the server answers.
        other = api.run("shell", "sleep 0.1 & wait\necho alive")
        assert other.status == "completed", other.everything()
        assert other.texts == ["alive"]
        assert httpx.get(server.url + "/health", timeout=30).status_code == 200
        assert made < MAX_PROCESSES
        if limits_of(server)["processes"] == "cgroup":
            # The kernel's count is the run's own: nearly all of it went to the bomb.
            assert made >= MAX_PROCESSES - 16
    finally:
        api.http.post(f"/runs/{run_id}/cancel")
        api.finish(run_id)
    assert wait_until_gone(marker) == []


def test_memory_over_the_limit_fails_the_run_with_a_clear_message(
    api: Api, server: ServerInfo
) -> None:
    hungry = api.agent(["python3", "-c", "b = bytearray(400 * 2**20)\nb[::4096] = b'x' * "
                        "len(b[::4096])\nprint('allocated')"], resources={"memory": "128Mi"})
    run = api.run(hungry, "eat")
    assert run.status == "failed", run.everything()
    assert "allocated" not in run.texts
    if limits_of(server)["memory"] == "cgroup":
        assert run.detail["error"].startswith("The run went over its memory limit of 128 MiB")
    else:
        assert "MemoryError" in run.detail["error"]


def test_cpu_1_holds_two_busy_processes_to_one_core(api: Api, server: ServerInfo) -> None:
    if limits_of(server)["cpu"] != "cgroup":
        pytest.skip("no CPU cgroup here: cpu is only an rlimit on CPU time")
    busy = api.agent(["python3", "-c", TWO_BUSY_LOOPS, "3"], resources={"cpu": 1})
    run = api.run(busy, "spin")
    assert run.status == "completed", run.everything()
    # Two processes spinning for the whole run use at most one core between them (plus a
    # little for the quota's granularity), not two.
    assert int(run.texts[-1]) < 130
