"""``/v1/agents`` over real HTTP: built-ins, CRUD, versions, filters, paging, bad input."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

CONFIG = {"command": ["{python}", "-c", "print('hi')"], "timeout_s": 30}


@pytest.fixture(scope="module")
def api(local_server):
    with httpx.Client(base_url=local_server.url + "/v1", timeout=30,
                      headers={"Authorization": f"Bearer {local_server.token}"}) as client:
        yield client


def unique(prefix: str = "a") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    return r.json()["error"]


def test_builtin_agents_exist(api):
    for name in ("echo", "python", "shell"):
        r = api.get("/agents", params={"name": name})
        assert r.status_code == 200
        [agent] = r.json()["data"]
        assert agent["name"] == name
        assert agent["id"].startswith("agt_") and len(agent["id"]) == 28
        detail = api.get(f"/agents/{agent['id']}").json()
        assert detail["config"]["command"]
        assert detail["description"]
        assert detail["current_version"]["version_number"] == 1


def test_create_get_update_delete(api):
    name = unique()
    r = api.post("/agents", json={"name": name, "config": CONFIG, "description": "d"})
    assert r.status_code == 201, r.text
    agent = r.json()
    assert set(agent) >= {"id", "name", "current_version_id", "created_at", "updated_at",
                          "description", "config", "current_version"}
    assert agent["config"] == CONFIG
    version = agent["current_version"]
    assert version["id"] == agent["current_version_id"] and version["id"].startswith("ver_")
    assert version["agent_id"] == agent["id"] and version["version_number"] == 1
    assert agent["created_at"].endswith("Z")

    assert api.get(f"/agents/{agent['id']}").json() == agent
    assert api.get(f"/agents/{name}").json()["id"] == agent["id"]  # a name works too

    same = api.put(f"/agents/{agent['id']}", json={"config": CONFIG})
    assert same.status_code == 200
    assert same.json()["current_version_id"] == agent["current_version_id"]

    changed = api.put(f"/agents/{agent['id']}", json={"config": {**CONFIG, "timeout_s": 5}})
    assert changed.status_code == 200
    assert changed.json()["current_version"]["version_number"] == 2
    assert changed.json()["config"]["timeout_s"] == 5

    versions = api.get(f"/agents/{agent['id']}/versions").json()["data"]
    assert [v["version_number"] for v in versions] == [2, 1]  # newest first

    assert api.delete(f"/agents/{agent['id']}").status_code == 204
    assert error(api.get(f"/agents/{agent['id']}"), 404)["message"] == (
        f"No such agent: '{agent['id']}'")
    error(api.delete(f"/agents/{agent['id']}"), 404)


def test_duplicate_name_is_409(api):
    name = unique()
    assert api.post("/agents", json={"name": name, "config": CONFIG}).status_code == 201
    err = error(api.post("/agents", json={"name": name, "config": CONFIG}), 409)
    assert err["type"] == "conflict_error" and err["code"] == "resource_already_exists"


@pytest.mark.parametrize("body, param, code", [
    ({"config": CONFIG}, "name", "missing_parameter"),
    ({"name": "x"}, "config", "missing_parameter"),
    ({"name": "Bad_Name", "config": CONFIG}, "name", "invalid_parameter"),
    ({"name": "-lead", "config": CONFIG}, "name", "invalid_parameter"),
    ({"name": "a" * 101, "config": CONFIG}, "name", "invalid_parameter"),
    ({"name": 5, "config": CONFIG}, "name", "invalid_parameter"),
    ({"name": "x", "config": [1]}, "config", "invalid_parameter"),
    ({"name": "x", "config": {"command": "echo hi"}}, "config.command", "invalid_parameter"),
    ({"name": "x", "config": {"command": []}}, "config.command", "invalid_parameter"),
    ({"name": "x", "config": {"timeout_s": -1}}, "config.timeout_s", "invalid_parameter"),
    ({"name": "x", "config": {"network": "yes"}}, "config.network", "invalid_parameter"),
    ({"name": "x", "config": {"resources": {"memory": "lots"}}}, "config.resources.memory",
     "invalid_parameter"),
    ({"name": "x", "config": CONFIG, "description": 3}, "description", "invalid_parameter"),
])
def test_bad_agent_bodies(api, body, param, code):
    err = error(api.post("/agents", json=body), 400)
    assert err["type"] == "invalid_request_error"
    assert (err["param"], err["code"]) == (param, code)


def test_update_errors(api):
    error(api.put("/agents/agt_000000000000000000000000", json={"config": CONFIG}), 404)
    name = unique()
    api.post("/agents", json={"name": name, "config": CONFIG})
    assert error(api.put(f"/agents/{name}", json={}), 400)["param"] == "config"
    error(api.get("/agents/nope-nope/versions"), 404)


def test_name_filter_and_paging(api):
    names = [unique("p") for _ in range(3)]
    for name in names:
        api.post("/agents", json={"name": name, "config": CONFIG})
    assert [a["name"] for a in api.get("/agents", params={"name": names[1]}).json()["data"]] == [
        names[1]]
    assert api.get("/agents", params={"name": "no-such-agent"}).json()["data"] == []
    err = error(api.get("/agents", params={"name": "Bad_Name"}), 400)
    assert (err["param"], err["code"]) == ("name", "invalid_parameter")

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = api.get("/agents", params=params).json()
        assert len(body["data"]) <= 2
        seen += [a["name"] for a in body["data"]]
        cursor = body["pagination"]["next_cursor"]
        if not body["pagination"]["has_more"]:
            assert cursor is None
            break
    assert len(seen) == len(set(seen))
    assert set(names) <= set(seen)
    assert seen.index(names[0]) < seen.index(names[1]) < seen.index(names[2])


def test_versions_paging(api):
    name = unique()
    api.post("/agents", json={"name": name, "config": CONFIG})
    for timeout in (2, 3, 4):
        api.put(f"/agents/{name}", json={"config": {**CONFIG, "timeout_s": timeout}})
    first = api.get(f"/agents/{name}/versions", params={"limit": 3}).json()
    assert [v["version_number"] for v in first["data"]] == [4, 3, 2]
    rest = api.get(f"/agents/{name}/versions",
                   params={"limit": 3, "cursor": first["pagination"]["next_cursor"]}).json()
    assert [v["version_number"] for v in rest["data"]] == [1]
    assert rest["pagination"] == {"has_more": False, "next_cursor": None}
