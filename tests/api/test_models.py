"""Parsing: snake_case and camelCase, prefixed and plain ids, unknown fields, both metric shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

import vm0_notebook as vm0
from vm0_notebook.api.models import (
    Agent,
    Event,
    LogEntry,
    RunDetail,
    RunMetrics,
    StorageVersion,
    Volume,
)

SNAKE_RUN = {
    "id": "run_0123456789abcdef01234567", "agent_id": "agt_0123456789abcdef01234567",
    "agent_name": "echo", "status": "completed", "prompt": "hi",
    "created_at": "2024-01-01T00:00:00Z", "started_at": "2024-01-01T00:00:01Z",
    "completed_at": None, "error": None, "execution_time_ms": 59000, "checkpoint_id": "chk_1",
    "session_id": "ses_1", "artifact_name": "out", "artifact_version": "ab" * 32,
    "volumes": {"input-data": "cd" * 32}, "brand_new_field": {"x": 1},
}


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p.title() for p in rest)


def test_run_detail_parses_both_case_styles_alike() -> None:
    snake = RunDetail.from_api(SNAKE_RUN)
    camel_run = RunDetail.from_api({camel(k): v for k, v in SNAKE_RUN.items()})
    assert snake == camel_run
    assert snake.created_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert snake.volumes == {"input-data": "cd" * 32} and snake.execution_time_ms == 59000


def test_plain_ids_and_unknown_fields() -> None:
    run = RunDetail.from_api({"id": "6f1c2b7e-1d2a-4c3b-9e8f-0a1b2c3d4e5f", "status": "running",
                              "somethingElse": [1, 2]})
    assert run.id.startswith("6f1c") and run.status == "running"


def test_a_run_detail_is_frozen_data() -> None:
    detail = RunDetail.from_api({"runId": "r1", "output": "text"})
    assert detail.id == "r1" and detail.output == "text" and "text" not in repr(detail)
    with pytest.raises(AttributeError):
        detail.status = "running"  # type: ignore[misc]


def test_a_response_without_an_id_is_a_clear_error() -> None:
    with pytest.raises(vm0.InvalidResponseError, match="lacks id"):
        RunDetail.from_api({"status": "running"})
    with pytest.raises(vm0.InvalidResponseError):
        Agent.from_api(["not", "an", "object"])  # type: ignore[arg-type]


def test_agent_with_current_version() -> None:
    agent = Agent.from_api({"id": "a1", "name": "x", "currentVersion": {
        "id": "ver_1", "agentId": "a1", "versionNumber": 2}})
    assert agent.current_version is not None and agent.current_version.version_number == 2


def test_storage_models() -> None:
    vol = Volume.from_api({"id": "vol_1", "name": "data", "fileCount": 2, "currentVersion": {
        "id": "ef" * 32, "volumeId": "vol_1", "size": 10}})
    assert vol.current_version_id == "ef" * 32 and vol.current_version.storage_id == "vol_1"
    files = [{"path": "a", "size": 3}, {"path": "b", "size": 4}]
    version = StorageVersion.from_api({"id": "ab" * 32, "artifact_id": "art_1", "files": files})
    assert version.storage_id == "art_1" and version.file_count == 2 and version.size == 7


def test_both_metric_shapes() -> None:
    seed = RunMetrics.from_api({
        "summary": {"cpu_avg_percent": 45.2, "memory_max_bytes": 2048},
        "data": [{"timestamp": "2024-01-01T00:00:00Z", "cpu_percent": 45.2,
                  "memory_bytes": 1048576}]})
    platform = RunMetrics.from_api({
        "summary": {"avgCpuPercent": 45.2, "maxMemoryUsedMb": 1},
        "data": [{"timestamp": "2024-01-01T00:00:00Z", "cpuPercent": 45.2, "memoryUsedMb": 1.0,
                  "diskUsedMb": 5}]})
    for m in (seed, platform):
        assert m.summary["cpu_avg_percent"] == 45.2
        assert m.points[0].memory_bytes == 1048576 and m.points[0].memory_used_mb == 1.0
    assert platform.points[0].disk_used_mb == 5


def test_event_properties() -> None:
    out = Event.from_sse("output", '{"sequence": 4, "type": "result", "data": '
                                   '{"type": "result", "result": "done"}}', "4")
    assert (out.sequence, out.type, out.payload["result"], out.status) == (4, "result", "done",
                                                                          None)
    done = Event.from_sse("complete", '{"status": "completed", "output": "done"}')
    assert done.status == "completed" and done.sequence is None and done.payload == {}
    odd = Event.from_sse("mystery", "not json")
    assert odd.data == {"text": "not json"}
    camel_event = Event.from_sse("status", '{"status": "running", "runId": "r1"}')
    assert camel_event.data == {"status": "running", "run_id": "r1"}


def test_log_entry() -> None:
    entry = LogEntry.from_api({"timestamp": "2024-01-01T00:00:00Z", "type": "agent",
                               "level": "info", "message": "{}",
                               "metadata": {"sequence": 3, "eventType": "assistant"}})
    assert entry.sequence == 3 and entry.metadata["event_type"] == "assistant"
