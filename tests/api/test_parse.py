"""Reading the API's JSON: case styles, times in every shape, ids with or without prefixes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from vm0_notebook.api._parse import iso, normalize, parse_time, plain_id, snake


def test_keys_become_snake_case_whatever_the_server_wrote() -> None:
    assert snake("executionTimeMs") == "execution_time_ms" and snake("run_id") == "run_id"
    assert normalize({"runId": 1, "agent_name": 2}) == {"run_id": 1, "agent_name": 2}


def test_times_in_every_shape_become_aware_datetimes() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    for value in ("2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00",
                  1704067200, 1704067200000, moment.replace(tzinfo=None)):
        parsed = parse_time(value)
        assert parsed == moment and parsed.tzinfo is not None, value
    east = datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert parse_time(east) == moment
    assert parse_time(None) is None and parse_time("") is None and parse_time("soon") is None
    assert iso(moment) == "2024-01-01T00:00:00.000Z" and iso(None) is None
    assert parse_time(iso(moment)) == moment


def test_ids_compare_without_their_prefix() -> None:
    assert plain_id("run_0123abcd") == plain_id("0123abcd") == "0123abcd"
    assert plain_id("agt_x") == plain_id("ag_x") == "x"
