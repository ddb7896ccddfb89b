"""The app as a whole over real HTTP: /health, auth, request ids, error envelopes, paging."""

from __future__ import annotations

import re

import httpx
import pytest


@pytest.fixture(scope="module")
def http(local_server):
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


def auth(local_server) -> dict[str, str]:
    return {"Authorization": f"Bearer {local_server.token}"}


def test_health_needs_no_token(http):
    r = http.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert body["sandbox"] in ("bubblewrap", "process")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", body["version"])
    assert re.fullmatch(r"req_[0-9a-f]{32}", r.headers["x-request-id"])


@pytest.mark.parametrize("path", ["/v1/agents", "/v1/runs", "/v1/volumes", "/v1/artifacts"])
def test_missing_token_is_401(http, path):
    r = http.get(path)
    assert r.status_code == 401
    assert r.json()["error"]["type"] == "authentication_error"
    assert r.json()["error"]["code"] == "missing_api_key"
    assert r.headers["x-request-id"].startswith("req_")


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer", "Basic abc", "bearer x"])
def test_wrong_token_is_401(http, header, local_server):
    r = http.get("/v1/agents", headers={"Authorization": header})
    assert r.status_code == 401
    assert r.json()["error"] == {
        "type": "authentication_error", "code": "invalid_api_key", "message": "Invalid API key"}
    assert local_server.token not in r.text


def test_request_ids_are_unique(http, local_server):
    ids = {http.get("/v1/agents", headers=auth(local_server)).headers["x-request-id"]
           for _ in range(5)}
    assert len(ids) == 5


def test_unknown_route_and_method(http, local_server):
    r = http.get("/v1/nothing-here", headers=auth(local_server))
    assert r.status_code == 404
    assert r.json()["error"]["type"] == "not_found_error"
    assert "x-request-id" in r.headers
    r = http.patch("/v1/runs", headers=auth(local_server))
    assert r.status_code == 405
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("body, message", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"name": "\\ud800", "prompt": "\\udfff"}', "unpaired surrogate"),
])
def test_malformed_bodies(http, local_server, body, message):
    for path in ("/v1/agents", "/v1/runs"):
        r = http.post(path, content=body, headers=auth(local_server))
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["code"] == "invalid_parameter"
        assert message in error["message"]


def test_oversized_body(http, local_server):
    r = http.post("/v1/agents", content=b"{" + b" " * (9 * 1024 * 1024) + b"}",
                  headers=auth(local_server))
    assert r.status_code == 400
    assert "too large" in r.json()["error"]["message"]


@pytest.mark.parametrize("path", ["/v1/agents", "/v1/runs", "/v1/volumes"])
@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "1.5"])
def test_limit_out_of_range(http, local_server, path, limit):
    r = http.get(path, params={"limit": limit}, headers=auth(local_server))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_parameter"
    assert r.json()["error"]["param"] == "limit"


@pytest.mark.parametrize("cursor", ["garbage!", "WyJ4Il0", "e30"])  # WyJ4Il0 = ["x"], e30 = {}
def test_bad_cursor(http, local_server, cursor):
    for path in ("/v1/agents", "/v1/runs"):
        r = http.get(path, params={"cursor": cursor}, headers=auth(local_server))
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"]["param"] == "cursor"
