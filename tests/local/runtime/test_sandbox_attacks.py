"""Attacks from inside real runs, in both sandbox modes, against a server that may run as root.

Each test is something an agent (untrusted code) tried in a security review; each asserts that
it now fails. Writes that might succeed only write back what is already there, so a sandbox
that did not hold would still leave the machine as it was.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import ServerInfo, spawn_server
from tests.local.agent_runs import (
    Api,
    exit_and_check_nothing_is_left,
    limits_of,
    marked_processes,
    wait_until_gone,
)

AS_ROOT = os.geteuid() == 0


@pytest.fixture(scope="module")
def api(server: ServerInfo) -> Iterator[Api]:
    client = Api(server)
    yield client
    client.close()


def _python_prefix() -> str:
    return os.path.realpath(sys.base_prefix)


def test_agent_runs_without_capabilities_and_not_as_root(api: Api, mode: str) -> None:
    run = api.run("shell", "grep CapEff /proc/self/status\nid -u\nid -G")
    assert run.status == "completed", run.everything()
    cap_eff, uid, groups = run.texts
    assert cap_eff.split() == ["CapEff:", "0000000000000000"]
    if AS_ROOT:
        assert uid != "0"
        assert "0" not in groups.split()


def test_agent_cannot_remount_umount_or_write_the_system(api: Api, mode: str) -> None:
    prefix = _python_prefix()
    script = (
        f"mount -o remount,bind,rw {prefix} 2>/dev/null && echo remounted-prefix\n"
        "mount -o remount,bind,rw /usr 2>/dev/null && echo remounted-usr\n"
        "mount -o remount,bind,rw /etc 2>/dev/null && echo remounted-etc\n"
        "umount /etc/shadow 2>/dev/null && echo unmounted-shadow\n"
        "umount /etc 2>/dev/null && echo unmounted-etc\n"
        # A write of what is already there: harmless even where it is allowed.
        "cat /proc/sys/kernel/core_pattern > /proc/sys/kernel/core_pattern 2>/dev/null"
        " && echo wrote-proc-sys\n"
        "cat /proc/sys/vm/overcommit_memory > /proc/sys/vm/overcommit_memory 2>/dev/null"
        " && echo wrote-proc-sys-vm\n"
        "touch /etc/hostname 2>/dev/null && echo touched-etc\n"
        f"touch {prefix}/bin 2>/dev/null && echo touched-prefix\n"
        "touch /usr/bin 2>/dev/null && echo touched-usr\n"
        "echo done\n"
    )
    run = api.run("shell", script)
    assert run.status == "completed", run.everything()
    assert run.texts == ["done"]


def test_agent_cannot_read_the_data_folder(api: Api, server: ServerInfo) -> None:
    data = server.data_dir
    first = api.run("shell", "echo private > mine.txt\necho $VM0_SESSION_ID")
    other_session = first.texts[-1]
    script = "".join(
        f"cat {data}/{name} >/dev/null 2>&1 && echo read-{name}\n"
        for name in ("server.json", "signing.key", "vm0.db", "server.stderr.log")
    ) + (
        f"cat {data}/sessions/{other_session}/mine.txt 2>/dev/null && echo read-other-session\n"
        f"ls {data}/sessions 2>/dev/null | grep -q {other_session} && echo listed-sessions\n"
        # Where this run's own working folder is, in case it is not in the data folder.
        'here=$(dirname "$VM0_WORKDIR")\n'
        f'cat "$here/{other_session}/mine.txt" 2>/dev/null && echo read-other-session-here\n'
        f'ls "$here" 2>/dev/null | grep -q {other_session} && echo listed-sessions-here\n'
        "echo done\n"
    )
    run = api.run("shell", script)
    assert run.status == "completed", run.everything()
    assert run.texts == ["done"]


def test_the_agent_reaches_its_home_and_working_folder_by_their_paths(api: Api) -> None:
    script = ('cd / && cd "$HOME" && echo mine > "$VM0_WORKDIR/mine.txt"\n'
              'cat "$HOME/mine.txt"\n[ "$HOME" = "$VM0_WORKDIR" ] && echo same\n')
    run = api.run("shell", script)
    assert run.status == "completed", run.everything()
    assert run.texts == ["mine", "same"]


def test_agent_cannot_read_the_server_or_another_run(api: Api, server: ServerInfo) -> None:
    secret = "vm0-other-secret-" + secrets.token_hex(8)
    victim = api.start("shell", "echo ready\nsleep 300", secrets={"OTHER": secret})
    api.frames(victim, until="ready")
    try:
        script = (
            f"cat /proc/{server.pid}/environ >/dev/null 2>&1 && echo read-server-environ\n"
            f"grep -a -q {server.token} /proc/{server.pid}/cmdline 2>/dev/null"
            " && echo token-on-cmdline\n"
            # Put together here: the whole secret in this run's own environment would match.
            'grep -a -l "$HALF1$HALF2" /proc/[0-9]*/environ 2>/dev/null | wc -l\n'
            f"kill -9 {server.pid} 2>/dev/null && echo killed-server\n"
            "echo done\n"
        )
        run = api.run("shell", script, variables={"HALF1": secret[:12], "HALF2": secret[12:]})
        assert run.status == "completed", run.everything()
        assert run.texts == ["0", "done"]
        assert httpx.get(server.url + "/health", timeout=30).status_code == 200
    finally:
        api.http.post(f"/runs/{victim}/cancel")
        api.finish(victim)


def test_encoded_secrets_and_the_server_token_are_masked(api: Api, server: ServerInfo) -> None:
    secret = "vm0-masked-" + secrets.token_hex(8)
    script = (
        'echo "$SECRET" | tr -d "\\n" | base64\n'
        'echo "$SECRET" | tr -d "\\n" | od -An -tx1 | tr -d " \\n"; echo\n'
        'echo "plain $SECRET"\n'
        'echo "token $LEAKED"\n'
    )
    run = api.run("shell", script, secrets={"SECRET": secret},
                  variables={"LEAKED": server.token})
    assert run.status == "completed", run.everything()
    assert run.texts == ["***", "***", "plain ***", "token ***"]
    everything = run.everything()
    for form in (secret, base64.b64encode(secret.encode()).decode(), secret.encode().hex(),
                 server.token):
        assert form not in everything


def test_nothing_is_left_when_a_run_ends(api: Api) -> None:
    exit_and_check_nothing_is_left(api)


def test_tmp_is_bounded(api: Api, mode: str, server: ServerInfo) -> None:
    if mode != "bubblewrap":
        pytest.skip("only the sandbox has a private /tmp")
    small = api.agent(["bash", "-c", 'eval "$(cat)"'], resources={"memory": "64Mi"})
    script = ("head -c 100M /dev/zero > /tmp/fill 2>/dev/null || echo refused\n"
              "rm -f /tmp/fill\necho done\n")
    run = api.run(small, script)
    if limits_of(server)["memory"] == "cgroup":
        # /tmp's pages are the run's memory: the kernel kills the run before the tmpfs is full.
        assert run.status == "failed", run.everything()
        assert "went over its memory limit of 64 MiB" in run.detail["error"]
    else:
        assert run.status == "completed", run.everything()
        assert run.texts == ["refused", "done"]


def test_a_sparse_terabyte_fails_the_run_instead_of_becoming_a_blob(api: Api) -> None:
    run = api.run("shell", "truncate -s 1T huge.bin\necho made")
    assert run.status == "failed", run.everything()
    assert "checkpoint" in run.detail["error"].lower()
    assert "limit" in run.detail["error"].lower()
    assert run.detail.get("checkpoint_id") is None
    # The session goes on: the next run of it can clean up.
    again = api.run("shell", "rm huge.bin\necho cleaned", session_id=run.detail["session_id"])
    assert again.status == "completed", again.everything()


def test_leftovers_are_killed_after_a_server_sigkill_and_restart(
    mode: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = tmp_path_factory.mktemp(f"restart-{mode}")
    first = spawn_server(data, "--sandbox", mode)
    api = Api(first)
    cgroup = limits_of(first)["processes"] == "cgroup"
    marker = f"vm0-survivor-{secrets.token_hex(4)}"
    try:
        api.start("shell", f"setsid bash -c 'exec -a {marker} sleep 300' </dev/null "
                           ">/dev/null 2>&1 &\necho ready\nsleep 300")
        while not marked_processes(marker):
            time.sleep(0.05)
        first.stop(signal.SIGKILL)
    finally:
        api.close()
    second = spawn_server(data, "--sandbox", mode)
    try:
        assert wait_until_gone(marker) == []
        if cgroup and mode == "process":  # a sandbox's died with its PID namespace already
            log = (data / "server.stderr.log").read_text()
            assert "left in its cgroup when the server stopped" in log
    finally:
        second.stop()
        for proc in marked_processes(marker):
            proc.kill()
