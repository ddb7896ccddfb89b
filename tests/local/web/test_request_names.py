"""The platform's camelCase request names work as the seeds' snake_case ones, over real HTTP.

A client written against the platform's last public shape (2026-01-28) sends ``agentId``,
``lastEventId``...; the server reads them as ``agent_id``, ``last_event_id``... and still answers
in snake_case. One parameter under both names with different values is a 400.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse

from tests.local.agent_runs import Api, Finished

CAMEL = re.compile(r"[a-z][A-Z]")


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["x-request-id"].startswith("req_")
    return response.json()["error"]


def started(api: Api, body: dict[str, Any]) -> dict[str, Any]:
    r = api.http.post("/runs", json={"prompt": "names", **body})
    assert r.status_code == 202, r.text
    run = r.json()
    assert not [k for k in run if CAMEL.search(k)], run  # the answer stays snake_case
    return run


@pytest.fixture(scope="module")
def echo_run(api: Api) -> Finished:
    """One finished echo run: its session and checkpoint to continue from."""
    done = api.run("echo", "first of the names")
    assert done.status == "completed" and done.detail["checkpoint_id"], done.detail
    return done


@pytest.fixture(scope="module")
def versioned_agent(api: Api) -> str:
    """An agent whose v1 prints 'one' and whose latest prints 'two'."""
    name = api.agent(["bash", "-c", "echo one"])
    r = api.http.put(f"/agents/{name}", json={"config": {"command": ["bash", "-c", "echo two"]}})
    assert r.status_code == 200, r.text
    return name


# -- bodies ----------------------------------------------------------------------------------


def test_agent_id(api: Api) -> None:
    echo = api.http.get("/agents/echo").json()
    run = started(api, {"agentId": echo["id"]})
    assert run["agent_id"] == echo["id"] and run["agent_name"] == "echo"


def test_session_id(api: Api, echo_run: Finished) -> None:
    run = started(api, {"sessionId": echo_run.detail["session_id"]})
    assert run["session_id"] == echo_run.detail["session_id"]


def test_checkpoint_id(api: Api, echo_run: Finished) -> None:
    run = started(api, {"checkpointId": echo_run.detail["checkpoint_id"]})
    assert run["agent_id"] == echo_run.detail["agent_id"]
    assert run["session_id"] != echo_run.detail["session_id"]  # a new session from it
    assert api.finish(run["id"]).status == "completed"


def test_agent_version(api: Api, versioned_agent: str) -> None:
    run = started(api, {"agent": versioned_agent, "agentVersion": "v1"})
    assert api.finish(run["id"]).texts == ["one"]
    err = error(api.http.post("/runs", json={"agent": versioned_agent, "prompt": "p",
                                             "agentVersion": "v99"}), 404)
    assert err["param"] == "agent_version"


def test_artifact_name_and_version(api: Api) -> None:
    art = f"names-{secrets.token_hex(4)}"
    first = started(api, {"agent": "shell", "artifactName": art,
                          "prompt": "echo kept > artifact/kept.txt"})
    done = api.finish(first["id"])
    assert done.detail["artifact_name"] == art and done.detail["artifact_version"]
    again = started(api, {"agent": "shell", "artifactName": art,
                          "artifactVersion": done.detail["artifact_version"][:8],
                          "prompt": "cat artifact/kept.txt"})
    assert again["artifact_name"] == art
    assert again["artifact_version"] == done.detail["artifact_version"]
    assert api.finish(again["id"]).texts == ["kept"]
    err = error(api.http.post("/runs", json={"agent": "echo", "prompt": "p",
                                             "artifactVersion": "latest"}), 400)
    assert err["param"] == "artifact_version"


def test_upload_session_id(api: Api) -> None:
    created = api.http.post("/volumes", json={"name": f"names-{secrets.token_hex(4)}"}).json()
    data = b"camel case upload\n"
    announce = [{"path": "a.txt", "size": len(data), "hash": hashlib.sha256(data).hexdigest()}]
    upload = api.http.post(f"/volumes/{created['id']}/upload", json={"files": announce}).json()
    for item in upload["files"]:
        assert httpx.put(item["upload_url"], content=data).status_code == 200
    r = api.http.post(f"/volumes/{created['id']}/commit",
                      json={"uploadSessionId": upload["upload_session_id"]})
    assert r.status_code == 200, r.text
    assert r.json()["volume_id"] == created["id"]


def test_both_names_with_different_values_is_a_400(api: Api, echo_run: Finished) -> None:
    echo_id = echo_run.detail["agent_id"]
    err = error(api.http.post("/runs", json={"prompt": "p", "agent_id": echo_id,
                                             "agentId": "agt_other"}), 400)
    assert (err["type"], err["code"], err["param"]) == (
        "invalid_request_error", "invalid_parameter", "agent_id")
    assert "agentId" in err["message"] and "agent_id" in err["message"]
    # the same value under both names is one parameter
    run = started(api, {"agent_id": echo_id, "agentId": echo_id})
    assert run["agent_id"] == echo_id


# -- queries ---------------------------------------------------------------------------------


def test_agent_id_query(api: Api, echo_run: Finished, versioned_agent: str) -> None:
    started(api, {"agent": versioned_agent})
    echo_id = echo_run.detail["agent_id"]
    r = api.http.get("/runs", params={"agentId": echo_id, "limit": 100})
    assert r.status_code == 200, r.text
    runs = r.json()["data"]
    assert runs and {run["agent_id"] for run in runs} == {echo_id}
    snake = api.http.get("/runs", params={"agent_id": echo_id, "limit": 100}).json()["data"]
    assert [run["id"] for run in runs] == [run["id"] for run in snake]


def test_last_event_id(api: Api, echo_run: Finished) -> None:
    run_id = echo_run.detail["id"]
    sequences = []
    with connect_sse(api.http, "GET", f"/runs/{run_id}/events",
                     params={"lastEventId": 1}) as source:
        for sse in source.iter_sse():
            if sse.event == "output":
                sequences.append(json.loads(sse.data)["sequence"])
            if sse.event == "complete":
                break
    assert sequences and sequences[0] == 2
    err = error(api.http.get(f"/runs/{run_id}/events",
                             params={"lastEventId": 1, "last_event_id": 2}), 400)
    assert err["param"] == "last_event_id"


def test_version_id(api: Api) -> None:
    name = api.volume({"v.txt": b"version by camel case\n"})
    volume = api.http.get(f"/volumes/{name}").json()
    vid = volume["current_version_id"]
    r = api.http.get(f"/volumes/{name}/download", params={"versionId": vid[:8]})
    assert r.status_code == 200, r.text
    assert r.json()["version_id"] == vid
    assert error(api.http.get(f"/volumes/{name}/download", params={"versionId": "abc"}),
                 400)["param"] == "version_id"
    # the same value twice is fine; different values are not
    same = api.http.get(f"/volumes/{name}/download",
                        params={"versionId": vid, "version_id": vid})
    assert same.status_code == 200, same.text
    assert error(api.http.get(f"/volumes/{name}/download",
                              params={"versionId": vid, "version_id": "latest"}),
                 400)["param"] == "version_id"
