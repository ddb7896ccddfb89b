"""Every endpoint of the local server, answered over real HTTP, against the contract's schemas.

The schemas in :mod:`tests.contract_schema` are written from ``shared/vm0-api.md``, not from the
server's code, so a response that drifts from the contract fails here.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest
from httpx_sse import connect_sse

from tests import contract_schema as schema

REQUEST_ID = re.compile(r"^req_[0-9a-f]{32}$")


def check(instance: Any, against: schema.Schema) -> None:
    """Validate with every error listed, not only the first."""
    errors = sorted(
        jsonschema.Draft202012Validator(against).iter_errors(instance), key=lambda e: e.path
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    ) + "\n" + json.dumps(instance, indent=1)[:3000]


@pytest.fixture(scope="module")
def http(local_server: Any) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=local_server.url,
        headers={"Authorization": f"Bearer {local_server.token}"},
        timeout=60,
    ) as client:
        yield client


def answer(response: httpx.Response, status: int, against: schema.Schema) -> Any:
    """The response's JSON, checked for its status, request id and schema."""
    assert response.status_code == status, response.text
    assert REQUEST_ID.match(response.headers.get("x-request-id", "")), response.headers
    body = response.json()
    check(body, against)
    return body


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def test_health(http: httpx.Client) -> None:
    answer(http.get("/health", headers={"Authorization": ""}), 200, schema.HEALTH)


def test_errors_have_the_envelope(http: httpx.Client) -> None:
    answer(http.get("/v1/agents/agt_missing"), 404, schema.ERROR)
    answer(http.get("/v1/runs", params={"limit": 0}), 400, schema.ERROR)
    answer(http.post("/v1/runs", json={"prompt": "hi"}), 400, schema.ERROR)
    answer(http.get("/v1/runs", headers={"Authorization": "Bearer wrong"}), 401, schema.ERROR)
    answer(http.post("/v1/agents", json={"name": "Not A Name", "config": {}}), 400, schema.ERROR)


def test_agents(http: httpx.Client) -> None:
    name = unique("contract-agent")
    created = answer(
        http.post("/v1/agents", json={"name": name, "config": {"command": ["cat"]},
                                      "description": "reads its prompt back"}),
        201, schema.AGENT_DETAIL,
    )
    answer(http.post("/v1/agents", json={"name": name, "config": {}}), 409, schema.ERROR)
    answer(http.get(f"/v1/agents/{created['id']}"), 200, schema.AGENT_DETAIL)
    answer(http.get("/v1/agents", params={"name": name}), 200, schema.page_of(schema.AGENT))
    answer(http.get("/v1/agents", params={"limit": 2}), 200, schema.page_of(schema.AGENT))
    answer(
        http.put(f"/v1/agents/{created['id']}", json={"config": {"command": ["cat", "-"]}}),
        200, schema.AGENT_DETAIL,
    )
    versions = answer(
        http.get(f"/v1/agents/{created['id']}/versions"), 200,
        schema.page_of(schema.AGENT_VERSION),
    )
    assert [v["version_number"] for v in versions["data"]] == [2, 1]
    assert http.delete(f"/v1/agents/{created['id']}").status_code == 204
    answer(http.get(f"/v1/agents/{created['id']}"), 404, schema.ERROR)


def test_a_run_and_everything_it_serves(http: httpx.Client) -> None:
    run = answer(
        http.post("/v1/runs", json={"agent": "echo", "prompt": "contract check"}),
        202, schema.RUN_DETAIL,
    )
    frames = []
    with connect_sse(http, "GET", f"/v1/runs/{run['id']}/events") as source:
        for sse in source.iter_sse():
            frames.append(sse)
            if sse.event == "complete":
                break
    assert frames[0].event == "status"
    assert frames[-1].event == "complete"
    sequences = []
    for frame in frames:
        data = json.loads(frame.data)
        check(data, schema.EVENT_DATA[frame.event])
        if frame.event == "output":
            assert frame.id == str(data["sequence"])
            sequences.append(data["sequence"])
    assert sequences == list(range(1, len(sequences) + 1)) and sequences

    detail = answer(http.get(f"/v1/runs/{run['id']}"), 200, schema.RUN_DETAIL)
    assert detail["status"] == "completed"
    answer(http.get("/v1/runs", params={"limit": 5}), 200, schema.page_of(schema.RUN))
    answer(http.get("/v1/runs", params={"status": "completed", "agent_id": run["agent_id"]}),
           200, schema.page_of(schema.RUN))
    answer(http.post(f"/v1/runs/{run['id']}/cancel"), 400, schema.ERROR)

    logs = answer(http.get(f"/v1/runs/{run['id']}/logs"), 200, schema.page_of(schema.LOG_ENTRY))
    agent_logs = [e for e in logs["data"] if e["type"] == "agent"]
    assert agent_logs
    for entry in agent_logs:
        check(entry["metadata"], schema.AGENT_LOG_METADATA)
    answer(http.get(f"/v1/runs/{run['id']}/logs", params={"type": "system", "order": "desc"}),
           200, schema.page_of(schema.LOG_ENTRY))
    answer(http.get(f"/v1/runs/{run['id']}/metrics"), 200, schema.METRICS)


def test_a_cancelled_run(http: httpx.Client) -> None:
    run = answer(
        http.post("/v1/runs", json={"agent": "shell", "prompt": "sleep 30"}),
        202, schema.RUN_DETAIL,
    )
    cancelled = answer(http.post(f"/v1/runs/{run['id']}/cancel"), 200, schema.RUN_DETAIL)
    assert cancelled["status"] == "cancelled"


@pytest.mark.parametrize("kind", ["volume", "artifact"])
def test_storage(http: httpx.Client, kind: str) -> None:
    shapes = schema.storage_schemas(kind)
    base = f"/v1/{kind}s"
    created = answer(http.post(base, json={"name": unique(f"contract-{kind}")}), 201,
                     shapes["created"])
    answer(http.post(base, json={"name": created["name"]}), 409, schema.ERROR)
    # bytes no other test sent: the server skips files whose hash it already holds
    tag = secrets.token_hex(8).encode()
    files = {"data/a.csv": b"x,y\n1,2\n" + tag, "readme.md": b"# hi\n" + tag}
    announced = [
        {"path": p, "size": len(b), "hash": hashlib.sha256(b).hexdigest()}
        for p, b in files.items()
    ]
    upload = answer(
        http.post(f"{base}/{created['id']}/upload", json={"files": announced}), 200,
        shapes["upload"],
    )
    answer(
        http.post(f"{base}/{created['id']}/commit",
                  json={"upload_session_id": upload["upload_session_id"]}),
        400, schema.ERROR,
    )
    for item in upload["files"]:
        put = httpx.put(item["upload_url"], content=files[item["path"]],
                        headers={"Content-Type": "application/octet-stream"})
        assert put.status_code < 300, put.text
    commit = http.post(f"{base}/{created['id']}/commit",
                       json={"upload_session_id": upload["upload_session_id"], "message": "v1"})
    version = answer(commit, commit.status_code, shapes["commit"])
    assert commit.status_code in (200, 201)

    answer(http.get(f"{base}/{created['id']}"), 200, shapes["detail"])
    answer(http.get(base, params={"limit": 3}), 200, shapes["list"])
    versions = answer(http.get(f"{base}/{created['id']}/versions"), 200, shapes["versions"])
    assert versions["data"][0]["id"] == version["id"]
    download = answer(
        http.get(f"{base}/{created['id']}/download", params={"version_id": version["id"][:8]}),
        200, shapes["download"],
    )
    for item in download["files"]:
        got = httpx.get(item["download_url"])
        assert got.content == files[item["path"]]
    answer(http.get(f"{base}/{created['id']}/download", params={"version_id": "abc"}),
           400, schema.ERROR)
    assert http.delete(f"{base}/{created['id']}").status_code == 204
    answer(http.get(f"{base}/{created['id']}"), 404, schema.ERROR)
