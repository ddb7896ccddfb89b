"""Running agents on a real local server over raw HTTP, for the runner, sandbox and agent tests."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psutil
from httpx_sse import connect_sse


@dataclass
class Finished:
    """A run that ended: its detail and SSE frames as served; its logs fetched on first use."""

    api: Api
    detail: dict[str, Any]
    frames: list[tuple[str, dict[str, Any]]]

    @functools.cached_property
    def logs(self) -> list[dict[str, Any]]:
        return self.api.logs(self.detail["id"])

    @property
    def status(self) -> str:
        return self.detail["status"]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return [data for event, data in self.frames if event == "output"]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The stream-JSON objects, in order."""
        return [o["data"] for o in self.outputs]

    @property
    def texts(self) -> list[str]:
        """The text of every assistant text block, in order."""
        return [
            block["text"]
            for e in self.events
            if e["type"] == "assistant"
            for block in e["message"]["content"]
            if block.get("type") == "text"
        ]

    @property
    def result(self) -> dict[str, Any]:
        results = [e for e in self.events if e["type"] == "result"]
        assert len(results) == 1, self.events
        return results[0]

    def everything(self) -> str:
        """All the run's served text in one string, to look for what must never appear."""
        return json.dumps([self.detail, self.frames, self.logs])


class Api:
    """A thin raw-HTTP client with the session's bearer token."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.http = httpx.Client(
            base_url=server.url + "/v1",
            headers={"Authorization": f"Bearer {server.token}"},
            timeout=60,
        )

    def close(self) -> None:
        self.http.close()

    def agent(self, command: list[str], **config: Any) -> str:
        """Create an agent running ``command``; return its (unique) name."""
        name = f"t-{secrets.token_hex(5)}"
        r = self.http.post("/agents", json={"name": name, "config": {"command": command, **config}})
        assert r.status_code == 201, r.text
        return name

    def start(self, agent: str, prompt: str, **body: Any) -> str:
        r = self.http.post("/runs", json={"agent": agent, "prompt": prompt, **body})
        assert r.status_code == 202, r.text
        return r.json()["id"]

    def get(self, run_id: str) -> dict[str, Any]:
        r = self.http.get(f"/runs/{run_id}")
        assert r.status_code == 200, r.text
        return r.json()

    def frames(self, run_id: str, until: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """SSE frames up to ``complete`` (or the first output whose text contains ``until``)."""
        frames = []
        with connect_sse(self.http, "GET", f"/runs/{run_id}/events") as source:
            for sse in source.iter_sse():
                data = json.loads(sse.data)
                frames.append((sse.event, data))
                if sse.event == "complete":
                    break
                if until is not None and sse.event == "output" and until in json.dumps(data):
                    break
        return frames

    def finish(self, run_id: str) -> Finished:
        """Follow the run to its end over SSE, then fetch its detail."""
        frames = self.frames(run_id)
        return Finished(self, self.get(run_id), frames)

    def run(self, agent: str, prompt: str, **body: Any) -> Finished:
        return self.finish(self.start(agent, prompt, **body))

    def logs(self, run_id: str, **query: Any) -> list[dict[str, Any]]:
        entries, cursor = [], None
        while True:
            params = {**query, "limit": 100, **({"cursor": cursor} if cursor else {})}
            r = self.http.get(f"/runs/{run_id}/logs", params=params)
            assert r.status_code == 200, r.text
            entries += r.json()["data"]
            cursor = r.json()["pagination"]["next_cursor"]
            if not r.json()["pagination"]["has_more"]:
                return entries

    def metrics(self, run_id: str) -> dict[str, Any]:
        r = self.http.get(f"/runs/{run_id}/metrics")
        assert r.status_code == 200, r.text
        return r.json()

    def volume(self, files: dict[str, bytes]) -> str:
        """Create a volume holding ``files``; return its name."""
        name = f"v-{secrets.token_hex(5)}"
        r = self.http.post("/volumes", json={"name": name})
        assert r.status_code == 201, r.text
        volume_id = r.json()["id"]
        announced = [
            {"path": p, "size": len(b), "hash": hashlib.sha256(b).hexdigest()}
            for p, b in files.items()
        ]
        r = self.http.post(f"/volumes/{volume_id}/upload", json={"files": announced})
        assert r.status_code == 200, r.text
        upload = r.json()
        for f in upload["files"]:
            put = httpx.put(f["upload_url"], content=files[f["path"]],
                            headers={"Content-Type": "application/octet-stream"})
            assert put.status_code < 300, put.text
        r = self.http.post(f"/volumes/{volume_id}/commit",
                           json={"upload_session_id": upload["upload_session_id"]})
        assert r.status_code in (200, 201), r.text
        return name


def limits_of(server: Any) -> dict[str, str]:
    """How ``server`` bounds runs: memory, cpu, processes -> ``"cgroup"`` or ``"rlimit"``."""
    return httpx.get(server.url + "/health", timeout=30).json()["limits"]


def marked_processes(marker: str) -> list[psutil.Process]:
    """Live processes (zombies are dead) with ``marker`` in their command line."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if any(marker in part for part in cmdline) and proc.info["status"] != "zombie":
            found.append(proc)
    return found


def wait_until_gone(marker: str, bound_s: float = 30) -> list[psutil.Process]:
    """The processes marked ``marker`` still alive after waiting up to ``bound_s`` for them to
    go (a bound on the wait, not a speed check)."""
    deadline = time.monotonic() + bound_s
    while (left := marked_processes(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def cancel_and_check_tree_is_gone(api: Api) -> None:
    """Start a shell run with background processes, cancel it: none of them survives."""
    marker = f"vm0-cancel-marker-{time.time_ns()}"
    script = (
        f"bash -c 'exec -a {marker} sleep 300' &\n"
        # One that leaves the process group and holds none of the agent's pipes: only the
        # process tree leads to it.
        f"setsid bash -c 'exec -a {marker} sleep 300' </dev/null >/dev/null 2>&1 &\n"
        "echo ready\nwait\n"
    )
    run_id = api.start("shell", script)
    api.frames(run_id, until="ready")
    while len(marked_processes(marker)) < 2:  # both background processes exist before the cancel
        time.sleep(0.05)
    r = api.http.post(f"/runs/{run_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    run = api.finish(run_id)
    assert run.status == "cancelled"
    assert run.result["is_error"] is True
    assert marked_processes(marker) == []
    again = api.http.post(f"/runs/{run_id}/cancel")
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_state"


def exit_and_check_nothing_is_left(api: Api) -> None:
    """A run whose agent exits leaving background processes: none of them survives it."""
    marker = f"vm0-leftover-marker-{time.time_ns()}"
    script = (
        f"bash -c 'exec -a {marker} sleep 300' &\n"
        f"setsid bash -c 'exec -a {marker} sleep 300' &\n"
        f"setsid bash -c 'exec -a {marker} sleep 300' </dev/null >/dev/null 2>&1 &\n"
        f"while [ $(pgrep -c -f {marker}) -lt 3 ]; do sleep 0.05; done\n"
        "echo leaving\n"
    )
    run = api.run("shell", script)
    assert run.status == "completed"
    assert run.texts == ["leaving"]
    assert marked_processes(marker) == []
