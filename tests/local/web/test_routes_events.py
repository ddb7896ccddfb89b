"""``GET /v1/runs/{id}/events`` over real HTTP: order, numbering, live push, resume, heartbeat."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.local.agent_runs import Api

# Prints lines, then waits (without a deadline of its own) for a file named ``go`` in its
# working folder, which only the test creates once it has seen ``ready`` arrive.
GATED = """
for i in 1 2 3 4 5; do echo "before $i"; done
echo ready
while [ ! -e go ]; do sleep 0.05; done
for i in 1 2 3 4 5; do echo "after $i"; done
"""


def read(
    api: Api, run_id: str, *, until: str | None = None, params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None, on_first: Callable[[], None] | None = None,
) -> list[tuple[str, int | None, dict[str, Any]]]:
    """``(event, id, data)`` frames up to ``complete``, or the first output mentioning ``until``
    (the connection is then cut); ``on_first`` is called once the first frame has arrived."""
    frames = []
    with connect_sse(api.http, "GET", f"/runs/{run_id}/events", params=params,
                     headers=dict(headers or {})) as source:
        for sse in source.iter_sse():
            frames.append((sse.event, int(sse.id) if sse.id else None, json.loads(sse.data)))
            if on_first is not None and len(frames) == 1:
                on_first()
            if sse.event == "complete":
                break
            if until is not None and sse.event == "output" and until in sse.data:
                break
    return frames


def texts(frames: list[tuple[str, int | None, dict[str, Any]]]) -> list[str]:
    return [b["text"] for e, _, d in frames if e == "output" and d["type"] == "assistant"
            for b in d["data"]["message"]["content"] if b.get("type") == "text"]


def release(server: Any, api: Api, run_id: str) -> None:
    workdir = Path(server.data_dir) / "sessions" / api.get(run_id)["session_id"]
    (workdir / "go").write_text("")


def test_finished_run_replays_everything_in_order(api):
    done = api.run("echo", "one two three")
    frames = read(api, done.detail["id"])
    events = [e for e, _, _ in frames if e != "heartbeat"]
    assert events[0] == "status" and frames[0][2] == {"status": "completed",
                                                      "run_id": done.detail["id"]}
    assert events[-1] == "complete"
    outputs = [(i, d) for e, i, d in frames if e == "output"]
    assert [i for i, _ in outputs] == list(range(1, len(outputs) + 1))
    assert all(d["sequence"] == i and d["timestamp"].endswith("Z") for i, d in outputs)
    assert outputs[0][1]["type"] == "system" and outputs[-1][1]["type"] == "result"
    assert frames[-1][2] == {"status": "completed", "output": done.detail["output"],
                             "error": None}


@pytest.mark.parametrize("how", ["last_event_id", "lastEventId", "Last-Event-ID"])
def test_finished_run_replays_from_a_position(api, how):
    done = api.run("echo", "resume me please")
    total = len(done.outputs)
    assert total >= 3
    params, headers = ({how: "2"}, None) if how != "Last-Event-ID" else (None, {how: "2"})
    frames = read(api, done.detail["id"], params=params, headers=headers)
    assert frames[0][0] == "status"
    assert [i for e, i, _ in frames if e == "output"] == list(range(3, total + 1))
    assert frames[-1][0] == "complete"
    past_end = read(api, done.detail["id"], params={"last_event_id": str(total + 5)})
    assert [e for e, _, _ in past_end] == ["status", "complete"]


def test_events_arrive_while_the_agent_still_runs_and_resume_after_a_cut(api, local_server):
    run_id = api.start("shell", GATED)
    first = read(api, run_id, until="before 3")
    assert first[0][0] == "status"
    last_id = max(i for _, i, _ in first if i is not None)
    # The connection is cut; the agent has not even printed "ready" necessarily. Resume.
    second = read(api, run_id, headers={"Last-Event-ID": str(last_id)}, until="ready")
    # "ready" arrived while the agent was still blocked waiting for us: pushed live.
    assert api.get(run_id)["status"] == "running"
    last_id = max(i for _, i, _ in second if i is not None)
    # Released only once the third stream is open, so it starts while the run still runs.
    third = read(api, run_id, params={"last_event_id": str(last_id)},
                 on_first=lambda: release(local_server, api, run_id))
    ids = [i for frames in (first, second, third) for e, i, _ in frames if e == "output"]
    assert ids == list(range(1, len(ids) + 1))  # no gap, no duplicate across three connections
    assert texts(first + second + third) == [
        *(f"before {i}" for i in range(1, 6)), "ready", *(f"after {i}" for i in range(1, 6))]
    assert third[-1][0] == "complete" and third[-1][2]["status"] == "completed"
    statuses = [d["status"] for e, _, d in third if e == "status"]
    assert statuses[0] == "running" and statuses[-1] == "completed"


def test_live_stream_follows_status_changes_to_the_end(api, local_server):
    run_id = api.start("shell", GATED)
    frames = []
    with connect_sse(api.http, "GET", f"/runs/{run_id}/events") as source:
        for sse in source.iter_sse():
            frames.append((sse.event, json.loads(sse.data)))
            if sse.event == "output" and "ready" in sse.data:
                release(local_server, api, run_id)
    # The loop ended because the server closed the stream, right after ``complete``.
    assert frames[0][0] == "status"
    assert ("status", {"status": "completed", "run_id": run_id}) in frames
    assert [e for e, _ in frames].index("complete") == len(frames) - 1


def test_failed_run_sends_error_then_complete(api):
    done = api.run("shell", "echo oops >&2; exit 3")
    assert done.status == "failed"
    frames = read(api, done.detail["id"])
    assert [e for e, _, _ in frames][-2:] == ["error", "complete"]
    assert frames[-2][2]["code"] == "run_failed" and "oops" in frames[-2][2]["message"]
    assert frames[-1][2]["status"] == "failed" and "oops" in frames[-1][2]["error"]


@pytest.mark.parametrize("value", ["abc", "-1", "1.5"])
def test_bad_last_event_id(api, value):
    done = api.run("echo", "x")
    r = api.http.get(f"/runs/{done.detail['id']}/events", params={"last_event_id": value})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "last_event_id"


def test_events_need_the_token(local_server, api):
    done = api.run("echo", "x")
    r = httpx.get(f"{local_server.url}/v1/runs/{done.detail['id']}/events")
    assert r.status_code == 401


def test_heartbeat_while_idle(start_server):
    server = start_server("--heartbeat", "0.2")
    api = Api(server)
    try:
        run_id = api.start("shell", "echo ready; sleep 60")
        seen = []
        with connect_sse(api.http, "GET", f"/runs/{run_id}/events") as source:
            for sse in source.iter_sse():
                seen.append(sse.event)
                if sse.event == "heartbeat":
                    stamp = json.loads(sse.data)["timestamp"]
                    assert time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
                    break
        assert "heartbeat" in seen
        api.http.post(f"/runs/{run_id}/cancel")
    finally:
        api.close()
