"""``GET /v1/runs/{id}/logs`` over real HTTP: the agent log per output, filters, order, paging."""

from __future__ import annotations

import json

import pytest

from tests.local.agent_runs import Finished


@pytest.fixture(scope="module")
def failed(api) -> Finished:
    return api.run("shell", "echo out; echo problem >&2; exit 2")


def test_one_agent_log_per_output(api):
    done = api.run("echo", "log me")
    agent = [e for e in api.logs(done.detail["id"], type="agent")]
    by_sequence = {e["metadata"]["sequence"]: e for e in agent if "sequence" in e["metadata"]}
    assert sorted(by_sequence) == [o["sequence"] for o in done.outputs]
    for output in done.outputs:
        entry = by_sequence[output["sequence"]]
        assert entry["metadata"] == {"sequence": output["sequence"],
                                     "event_type": output["type"]}
        assert json.loads(entry["message"]) == output["data"]
        assert ": " not in entry["message"] and ", " not in entry["message"]  # compact JSON
        assert entry["level"] == "info"


def test_failed_result_is_an_error_entry(api, failed):
    assert failed.status == "failed"
    [result] = [o for o in failed.outputs if o["type"] == "result"]
    [entry] = [e for e in failed.logs
               if e.get("metadata", {}).get("sequence") == result["sequence"]]
    assert entry["level"] == "error"


def test_lifecycle_logs_name_the_versions(api, failed):
    system = [e["message"] for e in failed.logs if e["type"] == "system"]
    version = api.http.get("/agents/shell").json()["current_version"]
    assert any(version["id"] in m and "shell" in m for m in system)
    assert any("exit" in m and "2" in m for m in system)
    assert any(m.startswith("Checkpoint chk_") for m in system)


def test_filters(api, failed):
    run_id = failed.detail["id"]
    everything = api.logs(run_id)
    assert {e["type"] for e in everything} == {"agent", "system"}
    assert api.logs(run_id, type="all") == everything
    assert all(e["type"] == "system" for e in api.logs(run_id, type="system"))
    assert api.logs(run_id, type="network") == []
    errors = api.logs(run_id, level="error")
    assert errors and all(e["level"] == "error" for e in errors)
    stamps = [e["timestamp"] for e in everything]
    assert stamps == sorted(stamps)
    middle = stamps[len(stamps) // 2]
    assert all(e["timestamp"] >= middle for e in api.logs(run_id, since=middle))
    assert all(e["timestamp"] <= middle for e in api.logs(run_id, until=middle))
    assert len(api.logs(run_id, since=middle)) + len(api.logs(run_id, until=middle)) >= len(
        everything)
    assert api.logs(run_id, since="2999-01-01T00:00:00Z") == []


def test_order_and_paging(api, failed):
    run_id = failed.detail["id"]
    ascending = api.logs(run_id)
    assert api.logs(run_id, order="desc") == ascending[::-1]
    pages, cursor = [], None
    while True:
        params = {"order": "desc", "limit": 3, **({"cursor": cursor} if cursor else {})}
        body = api.http.get(f"/runs/{run_id}/logs", params=params).json()
        pages += body["data"]
        cursor = body["pagination"]["next_cursor"]
        if not body["pagination"]["has_more"]:
            break
    assert pages == ascending[::-1]


@pytest.mark.parametrize("params, param", [
    ({"type": "everything"}, "type"), ({"level": "loud"}, "level"), ({"order": "up"}, "order"),
    ({"since": "tuesday"}, "since"), ({"until": "2024-13-45"}, "until"), ({"limit": 101}, "limit"),
])
def test_bad_queries(api, failed, params, param):
    r = api.http.get(f"/runs/{failed.detail['id']}/logs", params=params)
    assert r.status_code == 400
    assert r.json()["error"]["param"] == param


def test_entries_with_quotes_newlines_and_unicode_come_back_as_printed(api):
    text = 'say "hi"\\tback\\\\slash ünï 😀 </script>'
    done = api.run("shell", f"printf '%s\\n' '{text}' >&2; echo ok")
    messages = [e["message"] for e in api.logs(done.detail["id"], type="agent")]
    # the stderr line is an output event (system/stderr), its log entry that event's JSON:
    # the text comes back exactly as printed, and the message stays one line
    events = [json.loads(m) for m in messages]
    assert {"type": "system", "subtype": "stderr", "text": text} in events
    assert all("\n" not in m for m in messages)


def test_a_data_folder_from_before_stored_entries_serves_its_logs(start_server, tmp_path):
    """Log rows written before the ``entry`` column existed are rendered when read."""
    import sqlite3

    from tests.local.agent_runs import Api

    data_dir = tmp_path / "old"
    server = start_server(data_dir=data_dir)
    api = Api(server)
    done = api.run("echo", "from an older version")
    before = api.logs(done.detail["id"])
    api.close()
    server.stop()
    with sqlite3.connect(data_dir / "vm0.db") as db:  # what an older version left behind
        db.execute("ALTER TABLE run_logs DROP COLUMN entry")
    server = start_server(data_dir=data_dir)
    api = Api(server)
    assert api.logs(done.detail["id"]) == before
    api.close()
