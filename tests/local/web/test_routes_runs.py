"""``/v1/runs`` over real HTTP: create, get, list and its filters, cancel, idempotency, errors."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx
import pytest

from tests.local.agent_runs import Api


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


RUN_FIELDS = {"id", "agent_id", "agent_name", "status", "prompt", "created_at", "started_at",
              "completed_at"}
DETAIL_FIELDS = RUN_FIELDS | {"error", "execution_time_ms", "checkpoint_id", "session_id",
                              "artifact_name", "artifact_version", "volumes"}


def test_create_is_202_and_runs_to_completion(api):
    r = api.http.post("/runs", json={"agent": "echo", "prompt": "hello there"})
    assert r.status_code == 202
    run = r.json()
    assert set(run) >= DETAIL_FIELDS
    assert run["id"].startswith("run_") and run["session_id"].startswith("ses_")
    assert run["status"] in ("pending", "running")
    assert run["agent_name"] == "echo" and run["prompt"] == "hello there"
    done = api.finish(run["id"])
    assert done.status == "completed"
    detail = done.detail
    assert detail["started_at"] and detail["completed_at"] and detail["error"] is None
    assert detail["execution_time_ms"] >= 0
    assert detail["checkpoint_id"].startswith("chk_")
    assert "hello there" in detail["output"]
    assert api.http.get(f"/runs/{run['id']}").json() == detail


def test_agent_by_id_and_version(api):
    name = api.agent(["bash", "-c", "echo one"])
    agent = api.http.get(f"/agents/{name}").json()
    api.http.put(f"/agents/{name}", json={"config": {"command": ["bash", "-c", "echo two"]}})
    for body, text in [({"agent_id": agent["id"]}, "two"),
                       ({"agent": name, "agent_version": "v1"}, "one"),
                       ({"agent": name, "agent_version": agent["current_version_id"]}, "one"),
                       ({"agent": name, "agent_version": "latest"}, "two")]:
        done = api.finish(api.http.post("/runs", json={"prompt": "p", **body}).json()["id"])
        assert done.texts == [text], body


@pytest.mark.parametrize("body, status, param, code", [
    ({"agent": "echo"}, 400, "prompt", "missing_parameter"),
    ({"agent": "echo", "prompt": ""}, 400, "prompt", "missing_parameter"),
    ({"agent": "echo", "prompt": 5}, 400, "prompt", "invalid_parameter"),
    ({"prompt": "x"}, 400, "agent", "missing_parameter"),
    ({"agent": "no-such-agent", "prompt": "x"}, 404, "agent", "resource_not_found"),
    ({"agent_id": "agt_000000000000000000000000", "prompt": "x"}, 404, "agent_id",
     "resource_not_found"),
    ({"session_id": "ses_000000000000000000000000", "prompt": "x"}, 404, "session_id",
     "resource_not_found"),
    ({"checkpoint_id": "chk_000000000000000000000000", "prompt": "x"}, 404, "checkpoint_id",
     "resource_not_found"),
    ({"agent": "echo", "prompt": "x", "agent_version": "v99"}, 404, "agent_version",
     "resource_not_found"),
    ({"agent": 3, "prompt": "x"}, 400, "agent", "invalid_parameter"),
    ({"agent": "Bad_Name", "prompt": "x"}, 400, "agent", "invalid_parameter"),
    ({"agent": "agt_000000000000000000000000", "prompt": "x"}, 400, "agent",
     "invalid_parameter"),
    ({"agent": "e" * 101, "prompt": "x"}, 400, "agent", "invalid_parameter"),
    ({"session_id": "ses_000000000000000000000000", "agent": "Echo", "prompt": "x"}, 400,
     "agent", "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "volumes": {"-lead": "latest"}}, 400, "volumes",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "volumes": {"data": 3}}, 400, "volumes.data",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "artifact_name": "a_b"}, 400, "artifact_name",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "artifact_name": 3}, 400, "artifact_name",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "agent_version": 2}, 400, "agent_version",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "session_id": "s", "checkpoint_id": "c"}, 400,
     "checkpoint_id", "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "variables": ["A"]}, 400, "variables", "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "variables": {"A": 1}}, 400, "variables",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "variables": {"1A": "v"}}, 400, "variables",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "variables": {"VM0_RUN_ID": "v"}}, 400, "variables",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "secrets": {"A": None, "B": 2}}, 400, "secrets",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "volumes": "data"}, 400, "volumes", "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "volumes": {"Bad Name": "latest"}}, 400, "volumes",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "volumes": {"no-such-volume": "latest"}}, 404,
     "volumes.no-such-volume", "resource_not_found"),
    ({"agent": "echo", "prompt": "x", "artifact_version": "latest"}, 400, "artifact_version",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "artifact_name": "Bad"}, 400, "artifact_name",
     "invalid_parameter"),
    ({"agent": "echo", "prompt": "x", "artifact_name": "no-such-art", "artifact_version": "abc"},
     404, "artifact_version", "resource_not_found"),
])
def test_bad_create_bodies(api, body, status, param, code):
    before = api.http.get("/runs", params={"limit": 1}).json()["data"]
    err = error(api.http.post("/runs", json=body), status)
    assert (err["param"], err["code"]) == (param, code)
    assert api.http.get("/runs", params={"limit": 1}).json()["data"] == before  # nothing made


def test_none_of_the_four_message(api):
    err = error(api.http.post("/runs", json={"prompt": "x"}), 400)
    assert err["message"] == ("Must provide one of: agent, agent_id, session_id, or "
                              "checkpoint_id")


def test_prompt_size_limit(api):
    over = "x" * (1024 * 1024 + 1)
    err = error(api.http.post("/runs", json={"agent": "echo", "prompt": over}), 400)
    assert err["param"] == "prompt" and "1 MiB" in err["message"]
    # Multi-byte characters count as bytes: 349,526 * 3 bytes > 1 MiB.
    err = error(api.http.post("/runs", json={"agent": "echo", "prompt": "€" * 349_526}), 400)
    assert err["param"] == "prompt"


def test_a_prompt_too_big_for_the_environment_still_runs(api):
    # Over Linux's 128 KiB limit for one environment string, under the 1 MiB prompt limit.
    prompt = "data = '" + "a" * 300_000 + "'\nprint(len(data))\n"
    done = api.run("python", prompt)
    assert done.status == "completed", done.detail
    assert done.texts == ["300000"]
    assert any("VM0_PROMPT" in e["message"] for e in done.logs if e["type"] == "system")


def test_unknown_run(api):
    err = error(api.http.get("/runs/run_000000000000000000000000"), 404)
    assert err == {"type": "not_found_error", "code": "resource_not_found",
                   "message": "No such run: 'run_000000000000000000000000'"}
    error(api.http.post("/runs/run_000000000000000000000000/cancel"), 404)
    for sub in ("events", "logs", "metrics"):
        error(api.http.get(f"/runs/run_000000000000000000000000/{sub}"), 404)


def test_environment_is_scrubbed(api):
    done = api.run("python", "import json, os; print(json.dumps(dict(os.environ)))",
                   variables={"GREETING": "hi"})
    env = json.loads(done.texts[0])
    assert env["GREETING"] == "hi"
    assert env["VM0_RUN_ID"] == done.detail["id"]
    assert env["VM0_SESSION_ID"] == done.detail["session_id"]
    assert env["VM0_PROMPT"].startswith("import json")
    assert env["VM0_WORKDIR"] == env["HOME"]
    assert "VM0_LOCAL_DIR" not in env  # the server's own environment stays out
    assert set(env) <= {"GREETING", "VM0_RUN_ID", "VM0_SESSION_ID", "VM0_PROMPT", "VM0_WORKDIR",
                        "PATH", "HOME", "LANG", "PWD", "SHLVL", "_", "LC_CTYPE"}


def test_list_newest_first_with_filters(api):
    agent = api.agent(["bash", "-c", "true"])
    agent_id = api.http.get(f"/agents/{agent}").json()["id"]
    since = api.http.get("/health").json() and time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime(time.time() - 1))
    ids = [api.start(agent, f"p{i}") for i in range(3)]
    for run_id in ids:
        api.finish(run_id)
    listed = api.http.get("/runs", params={"agent_id": agent_id}).json()["data"]
    assert [r["id"] for r in listed] == ids[::-1]
    by_name = api.http.get("/runs", params={"agent_id": agent}).json()["data"]
    assert [r["id"] for r in by_name] == ids[::-1]
    assert all(set(r) >= RUN_FIELDS for r in listed)

    pages, cursor = [], None
    while True:
        params = {"agent_id": agent_id, "limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.http.get("/runs", params=params).json()
        pages.append([r["id"] for r in body["data"]])
        cursor = body["pagination"]["next_cursor"]
        if not body["pagination"]["has_more"]:
            break
    assert pages == [ids[::-1][:2], ids[::-1][2:]]

    completed = api.http.get("/runs", params={"agent_id": agent_id, "status": "completed"})
    assert len(completed.json()["data"]) == 3
    assert api.http.get("/runs", params={"agent_id": agent_id, "status": "failed"}).json()[
        "data"] == []
    recent = api.http.get("/runs", params={"agent_id": agent_id, "since": since}).json()["data"]
    assert len(recent) == 3
    future = api.http.get("/runs", params={"since": "2999-01-01T00:00:00Z"}).json()["data"]
    assert future == []


@pytest.mark.parametrize("params, param", [
    ({"status": "done"}, "status"), ({"since": "yesterday"}, "since"), ({"limit": 0}, "limit"),
])
def test_list_bad_filters(api, params, param):
    assert error(api.http.get("/runs", params=params), 400)["param"] == param


def test_idempotency_key(api):
    key = secrets.token_hex(8)
    body = {"agent": "echo", "prompt": "once"}
    first = api.http.post("/runs", json=body, headers={"Idempotency-Key": key})
    second = api.http.post("/runs", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    other = api.http.post("/runs", json=body, headers={"Idempotency-Key": key + "x"})
    assert other.json()["id"] != first.json()["id"]
    api.finish(first.json()["id"])
    again = api.http.post("/runs", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"] and again.json()["status"] == "completed"
    listed = api.http.get("/runs", params={"limit": 100}).json()["data"]
    assert sum(r["prompt"] == "once" and r["id"] == first.json()["id"] for r in listed) == 1
    err = error(api.http.post("/runs", json=body, headers={"Idempotency-Key": "k" * 300}), 400)
    assert err["param"] == "Idempotency-Key"


def test_cancel_running_then_again(api):
    run_id = api.start("shell", "echo ready; sleep 60")
    api.frames(run_id, until="ready")
    r = api.http.post(f"/runs/{run_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["completed_at"]
    assert api.get(run_id)["status"] == "cancelled"
    err = error(api.http.post(f"/runs/{run_id}/cancel"), 400)
    assert err["code"] == "invalid_state"
    assert err["message"] == "Run cannot be cancelled: current status is 'cancelled'"
    frames = api.frames(run_id)
    assert frames[-1] == ("complete", {"status": "cancelled", "output": frames[-1][1]["output"],
                                       "error": "Run cancelled"})


def test_cancel_finished_run_is_invalid_state(api):
    done = api.run("echo", "quick")
    err = error(api.http.post(f"/runs/{done.detail['id']}/cancel"), 400)
    assert err["message"] == "Run cannot be cancelled: current status is 'completed'"


def test_cancel_pending_run(start_server):
    server = start_server("--max-concurrent-runs", "1")
    api = Api(server)
    try:
        blocker = api.start("shell", "echo ready; sleep 60")
        queued = api.start("echo", "never runs")
        api.frames(blocker, until="ready")
        assert api.get(queued)["status"] == "pending"
        r = api.http.post(f"/runs/{queued}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "cancelled" and r.json()["started_at"] is None
        assert api.frames(queued)[-1][1]["status"] == "cancelled"
        assert api.http.post(f"/runs/{blocker}/cancel").json()["status"] == "cancelled"
    finally:
        api.close()
