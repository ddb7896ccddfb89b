"""Frames from real runs of the local server: logs, metrics (both shapes), listings, empties."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.proxies import VariantProxy
from vm0_notebook import frames
from vm0_notebook.api.models import (
    Agent,
    AgentVersion,
    Artifact,
    RunMetrics,
    StorageVersion,
    Volume,
)
from vm0_notebook.api.run import Run

# the shared module_client fixture
pytest_plugins = ["tests.frames_support"]

LOG_DTYPES = {
    "timestamp": "datetime64[ns, UTC]",
    "type": "category",
    "level": "category",
    "text": "string",
    "message": "string",
    "sequence": "Int64",
    "event_type": "string",
    "method": "string",
    "url": "string",
    "status": "Int64",
    "duration_ms": "Float64",
}

# Prints lines, one stderr line, and a result event it marks as an error, then exits cleanly.
MIXED_PROGRAM = """
import json, sys

# the shared module_client fixture
pytest_plugins = ["tests.frames_support"]
for i in range(5):
    print(f"line {i}")
print("careful", file=sys.stderr)
print(json.dumps({"type": "result", "subtype": "error", "is_error": True, "result": "bad"}))
"""


def dtypes(frame: pd.DataFrame) -> dict[str, str]:
    return {name: str(dtype) for name, dtype in frame.dtypes.items()}


@pytest.fixture(scope="module")
def mixed_run(module_client):
    return module_client.runs.create(agent="python", prompt=MIXED_PROGRAM).wait(timeout=60)


@pytest.fixture(scope="module")
def busy_run(module_client):
    """A run long enough for several metric samples."""
    program = "import time\nx = bytearray(50_000_000)\nend = time.time() + 2.5\n" \
              "while time.time() < end:\n    sum(range(10_000))\nprint('done')\n"
    return module_client.runs.create(agent="python", prompt=program).wait(timeout=60)


# -- logs -------------------------------------------------------------------------------------


def test_logs_have_documented_columns_and_dtypes(mixed_run) -> None:
    df = mixed_run.logs(columns="all")
    assert list(df.columns) == list(frames.LOG_COLUMNS)
    assert dtypes(df) == LOG_DTYPES
    assert df["level"].cat.ordered
    assert list(df["level"].cat.categories) == ["debug", "info", "warn", "error"]
    assert {"agent", "system", "network"} <= set(df["type"].cat.categories)
    assert df["timestamp"].is_monotonic_increasing
    # every timestamp is within the run's lifetime
    assert df["timestamp"].min() >= pd.Timestamp(mixed_run.created_at) - pd.Timedelta("1s")


def test_agent_entries_flatten_their_metadata(mixed_run) -> None:
    agent = mixed_run.logs(type="agent")
    assert set(agent["type"].astype(str)) == {"agent"}
    outputs = agent[agent["sequence"].notna()]
    # one entry per output event, sequences from 1 without gaps
    assert outputs["sequence"].tolist() == list(range(1, len(outputs) + 1))
    texts = [json.loads(m) for m in outputs[outputs["event_type"] == "assistant"]["message"]]
    printed = [t["message"]["content"][0]["text"] for t in texts]
    assert printed == [f"line {i}" for i in range(5)]
    # the stderr line is an output event too (a system event), numbered in order
    stderr = [json.loads(m) for m in outputs[outputs["event_type"] == "system"]["message"]]
    assert stderr == [{"type": "system", "subtype": "stderr", "text": "careful"}]
    # entries without a sequence (the system's own lines) have NA, not 0 or NaN-as-float
    own = mixed_run.logs(type="system", columns="all")
    assert len(own) and own["sequence"].isna().all() and own["event_type"].isna().all()
    assert own["sequence"].iloc[0] is pd.NA and own["method"].isna().all()


def test_levels_compare_in_severity_order(mixed_run) -> None:
    df = mixed_run.logs()
    severe = df[df["level"] >= "warn"]
    assert len(severe) >= 1
    assert set(severe["level"].astype(str)) <= {"warn", "error"}
    errors = mixed_run.logs(level="error", columns="all")
    assert dtypes(errors) == LOG_DTYPES
    assert (errors["level"] == "error").all()
    assert any(json.loads(m).get("result") == "bad" for m in errors["message"] if m[0] == "{")


@pytest.mark.parametrize(
    "filters",
    [{"type": "network"}, {"since": "2100-01-01T00:00:00Z"}],
    ids=["no-network-entries", "since-the-future"],
)
def test_logs_that_match_nothing_are_an_empty_frame_with_the_same_dtypes(
    mixed_run, filters
) -> None:
    df = mixed_run.logs(**filters)
    assert df.empty
    assert list(df.columns) == list(frames.LOG_COLUMNS)
    assert dtypes(df) == LOG_DTYPES
    # empty and full frames concatenate without changing any dtype
    assert dtypes(pd.concat([df, mixed_run.logs(columns="all")])) == LOG_DTYPES


def test_the_default_view_has_what_the_user_saw_and_no_empty_columns(mixed_run) -> None:
    df = mixed_run.logs()
    # no network entries in this run: its columns are left out; all of them on request
    assert {"method", "url", "status", "duration_ms"}.isdisjoint(df.columns)
    assert list(df.columns[:5]) == ["timestamp", "type", "level", "text", "message"]
    agent = df[df["event_type"].notna()]
    texts = agent["text"].tolist()
    assert [f"line {i}" for i in range(5)] == [t for t in texts if t.startswith("line")]
    assert "careful" in texts  # the stderr line, as the live view showed it
    assert all(not t.startswith("{") for t in texts)  # never the raw stream-JSON
    own = df[df["type"] == "system"]
    assert (own["text"] == own["message"]).all()  # the server's own lines, as they are
    with pytest.raises(ValueError, match="columns"):
        mixed_run.logs(columns="some")


LONG_LOG_LINES = 20_000


@pytest.fixture(scope="module")
def long_run(module_client):
    """A run whose log is 200 pages long: one agent entry per printed line."""
    program = f"for i in range({LONG_LOG_LINES}):\n    print('row', i)\n"
    return module_client.runs.create(agent="python", prompt=program).wait(timeout=120)


@pytest.mark.slow
def test_a_long_log_is_built_whole_with_a_progress_bar(module_client, long_run, capfd) -> None:
    capfd.readouterr()
    df = frames.logs_frame(module_client.runs.logs(long_run.id, type="agent"), columns="all")
    bar = capfd.readouterr().err
    assert "entries" in bar  # tqdm wrote to stderr: more than a few pages of 100
    seq = df["sequence"].dropna()
    assert seq.tolist() == list(range(1, len(seq) + 1))
    assert len(seq) >= LONG_LOG_LINES
    assert dtypes(df) == LOG_DTYPES
    # a short log shows no bar
    frames.logs_frame(module_client.runs.logs(long_run.id, type="agent", limit=50))
    assert "entries" not in capfd.readouterr().err


@pytest.mark.slow
def test_a_long_log_costs_little_more_memory_than_its_frame(long_run) -> None:
    """Built column-wise as pages arrive: the entries never all sit in memory beside the frame.

    Collecting them first (``logs_frame(list(entries))``) peaks at about 2.4 times the frame,
    ``DataFrame(list_of_dicts)`` at about 1.7; column-wise it is about 1.0.
    """
    import tracemalloc

    tracemalloc.start()
    try:
        df = long_run.logs()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(df) >= LONG_LOG_LINES
    assert peak < 1.4 * df.memory_usage(deep=True).sum()


# -- metrics ----------------------------------------------------------------------------------


def check_metrics_frame(df: pd.DataFrame) -> None:
    assert list(df.columns) == list(frames.METRIC_COLUMNS)
    assert set(dtypes(df).values()) == {"float64"}
    assert str(df.index.dtype) == "datetime64[ns, UTC]"
    assert df.index.name == "timestamp"
    assert df.index.is_monotonic_increasing
    assert isinstance(df.attrs["summary"], dict)


def test_metrics_seed_shape_from_a_real_run(busy_run) -> None:
    df = busy_run.metrics()
    check_metrics_frame(df)
    assert len(df) >= 2
    assert (df["memory_used_mb"] > 0).all()
    assert df["cpu_percent"].max() > 0
    summary = df.attrs["summary"]
    assert summary["cpu_avg_percent"] >= 0
    # samples fall within the run
    assert df.index.min() >= pd.Timestamp(busy_run.created_at) - pd.Timedelta("1s")


class PlatformMetricsProxy(VariantProxy):
    """The camelCase variant, with metrics in the platform's own field set only."""

    SUMMARY = ("avgCpuPercent", "maxMemoryUsedMb", "totalDurationMs")
    POINT = ("timestamp", "cpuPercent", "memoryUsedMb", "memoryTotalMb", "diskUsedMb",
             "diskTotalMb")

    def rewrite_body(self, request, response, body: bytes) -> bytes:
        body = super().rewrite_body(request, response, body)
        if request.path.endswith("/metrics") and response.status_code == 200:
            data = json.loads(body)
            data["summary"] = {k: data["summary"][k] for k in self.SUMMARY}
            data["data"] = [{k: p[k] for k in self.POINT if k in p} for p in data["data"]]
            body = json.dumps(data).encode()
        return body


@pytest.mark.parametrize("proxy_class", [VariantProxy, PlatformMetricsProxy],
                         ids=["camel-both-shapes", "platform-shape"])
def test_metrics_through_the_variant_proxy_give_the_same_frame(
    busy_run, local_server, proxy_class
) -> None:
    from vm0_notebook import Client

    proxy = proxy_class(local_server.url)
    try:
        with Client(api_url=proxy.start(), api_key=local_server.token) as variant:
            run = variant.runs.get(busy_run.id)  # answered with a plain id
            df = run.metrics()
    finally:
        proxy.stop()
    check_metrics_frame(df)
    seed = busy_run.metrics()
    assert df.index.equals(seed.index)
    pd.testing.assert_series_equal(df["cpu_percent"], seed["cpu_percent"])
    np.testing.assert_allclose(df["memory_used_mb"], seed["memory_used_mb"], rtol=1e-3)
    pd.testing.assert_series_equal(df["disk_total_mb"], seed["disk_total_mb"])
    summary = df.attrs["summary"]
    assert summary["avg_cpu_percent"] == pytest.approx(seed.attrs["summary"]["avg_cpu_percent"])
    if proxy_class is PlatformMetricsProxy:
        # the platform reports no network counters: NaN, not zero
        assert df["network_rx_bytes"].isna().all() and df["network_tx_bytes"].isna().all()
        assert set(summary) >= {"avg_cpu_percent", "max_memory_used_mb", "total_duration_ms"}
    else:
        pd.testing.assert_series_equal(df["network_rx_bytes"], seed["network_rx_bytes"])


def test_no_samples_is_an_empty_frame_with_the_same_dtypes(busy_run) -> None:
    full = busy_run.metrics()
    empty = frames.metrics_frame(RunMetrics.from_api({"summary": {}, "data": []}))
    check_metrics_frame(empty)
    assert empty.empty and dtypes(empty) == dtypes(full)
    assert empty.index.dtype == full.index.dtype


# -- one row per record -----------------------------------------------------------------------


def test_runs_frame_is_newest_first_with_typed_columns(module_client, mixed_run, busy_run) -> None:
    agent = module_client.agents.get("python")
    df = module_client.runs.list(agent_id=agent.id).to_pandas()
    ids = df["id"].tolist()
    newer, older = sorted([mixed_run, busy_run], key=lambda r: r.created_at, reverse=True)
    assert ids.index(newer.id) < ids.index(older.id)
    assert df["created_at"].is_monotonic_decreasing
    assert str(df["status"].dtype) == "category"
    assert list(df["status"].cat.categories)[:6] == list(frames.RUN_STATUSES)
    assert str(df["created_at"].dtype) == "datetime64[ns, UTC]"
    assert str(df["completed_at"].dtype) == "datetime64[ns, UTC]"
    assert str(df["duration"].dtype) == "timedelta64[ns]"
    assert str(df["id"].dtype) == "string"
    row = df.set_index("id").loc[busy_run.id]
    detail = module_client.runs.get(busy_run.id)
    assert row["status"] == "completed"
    if detail.execution_time_ms is not None:
        assert row["duration"] == pd.Timedelta(milliseconds=detail.execution_time_ms)
    assert row["duration"] >= pd.Timedelta(seconds=2)


def test_a_listing_with_no_rows_keeps_columns_and_dtypes(module_client, mixed_run) -> None:
    name = "frames-empty-" + datetime.now(UTC).strftime("%H%M%S%f")
    agent = module_client.agents.create(name, {"command": ["true"]})
    empty = module_client.runs.list(agent_id=agent.id).to_pandas()
    full = frames.records_frame(Run, [mixed_run])
    assert empty.empty and list(empty.columns) == list(full.columns)
    assert dtypes(empty) == dtypes(full)
    module_client.agents.delete(agent.id)


def test_agents_and_versions_frames(module_client) -> None:
    name = "frames-agent-" + datetime.now(UTC).strftime("%H%M%S%f")
    agent = module_client.agents.create(name, {"command": ["true"]}, description="first")
    module_client.agents.update(agent.id, {"command": ["false"]})
    agents = module_client.agents.list(name=name).to_pandas()
    assert agents["name"].tolist() == [name]
    assert str(agents["created_at"].dtype) == "datetime64[ns, UTC]"
    versions = module_client.agents.versions(agent.id).to_pandas()
    assert versions["version_number"].tolist() == [2, 1]  # newest first
    assert str(versions["version_number"].dtype) == "Int64"
    assert dtypes(frames.records_frame(AgentVersion, [])) == dtypes(versions)
    assert dtypes(frames.records_frame(Agent, [])) == dtypes(agents)
    module_client.agents.delete(agent.id)


def test_volumes_and_versions_frames(module_client, tmp_path) -> None:
    name = "frames-vol-" + datetime.now(UTC).strftime("%H%M%S%f")
    volume = module_client.volumes.create(name)
    none_yet = module_client.volumes.versions(volume.id).to_pandas()
    assert none_yet.empty
    assert dtypes(none_yet) == dtypes(frames.records_frame(StorageVersion, []))
    (tmp_path / "a.txt").write_text("one")
    first = module_client.volumes.push(tmp_path, name, message="first")
    (tmp_path / "b.txt").write_text("two, longer")
    second = module_client.volumes.push(tmp_path, name, message="second")
    versions = module_client.volumes.versions(volume.id).to_pandas()
    assert versions["id"].tolist()[:2] == [second.id, first.id]
    assert versions["file_count"].tolist()[:2] == [2, 1]
    assert str(versions["size"].dtype) == "Int64"
    vols = module_client.volumes.list().to_pandas()
    row = vols.set_index("name").loc[name]
    assert row["current_version_id"] == second.id and row["file_count"] == 2
    assert dtypes(vols) == dtypes(frames.records_frame(Volume, []))
    assert dtypes(frames.records_frame(Artifact, [])) == dtypes(vols)


def test_records_frame_refuses_an_unknown_model() -> None:
    with pytest.raises(TypeError, match="no frame layout for 'dict'"):
        frames.records_frame(dict, [])


def test_run_duration_falls_back_to_start_and_end(mixed_run) -> None:
    """A server without execution_time_ms: the duration is completed minus started."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    run = Run.from_api({
        "id": mixed_run.id, "status": "failed", "startedAt": start.isoformat(),
        "completedAt": (start + timedelta(seconds=90)).isoformat(),
        "createdAt": start.isoformat(),
    })  # fmt: skip
    df = frames.records_frame(Run, [run])
    assert df["duration"].iloc[0] == pd.Timedelta(seconds=90)


def test_camel_case_answers_give_the_same_frames(local_server, mixed_run) -> None:
    from vm0_notebook import Client

    proxy = VariantProxy(local_server.url)
    try:
        with Client(api_url=proxy.start(), api_key=local_server.token) as variant:
            run = variant.runs.get(mixed_run.id)
            logs = run.logs(columns="all")
            runs = variant.runs.list(limit=5).to_pandas()
    finally:
        proxy.stop()
    direct = mixed_run.logs(columns="all")
    assert dtypes(logs) == LOG_DTYPES
    # metadata arrives as {"sequence", "eventType"} and still fills the documented columns
    pd.testing.assert_frame_equal(logs, direct)
    assert dtypes(runs) == dtypes(frames.records_frame(Run, []))
    assert run.id in runs["id"].tolist()


def test_levels_and_types_beyond_the_documented_ones() -> None:
    """Other servers' spellings map onto the four levels; an unknown type stays visible."""
    from vm0_notebook.api.models import LogEntry

    entries = [
        LogEntry.from_api({"timestamp": "2024-01-01T00:00:00Z", "type": t, "level": lv,
                           "message": "m"})
        for t, lv in [("agent", "WARNING"), ("audit", "fatal"), ("system", "verbose")]
    ]  # fmt: skip
    df = frames.logs_frame(entries)
    assert df["level"].astype(object).tolist()[:2] == ["warn", "error"]
    assert df["level"].isna().tolist() == [False, False, True]
    assert df["type"].tolist() == ["agent", "audit", "system"]
    assert list(df["type"].cat.categories) == ["agent", "system", "network", "audit"]


def test_the_api_json_and_log_entries_give_the_same_frame(module_client, mixed_run) -> None:
    """``run.logs()`` reads the pages' JSON objects column by column; the frame is the one
    that ``LogEntry`` objects give, whatever shape or spelling an entry comes in."""
    from vm0_notebook.api.models import LogEntry

    pager = module_client.runs.logs(mixed_run.id)
    served = list(pager.as_json())
    assert all(type(item) is dict for item in served)
    odd = [
        {"timestamp": "2024-01-01T00:00:00", "type": "system", "level": "info", "message": "naive"},
        {"timestamp": 1704067200123, "type": "system", "level": "warn", "message": "epoch ms"},
        {"timestamp": "2024-01-01t00:00:00z", "type": "agent", "level": "info", "message": "z"},
        {"timestamp": "2024-01-01T02:00:00+02:00", "type": "network", "level": "debug",
         "message": "GET", "metadata": {"method": "GET", "status": 200, "duration_ms": 1.5}},
        {"timestamp": "not a time", "type": "agent", "level": "error", "message": {"a": 1}},
        {"type": "agent", "level": "info", "metadata": {"sequence": "7", "event_type": 3}},
        {"createdAt": "2024-01-01T00:00:00Z", "type": "agent", "message": "other spelling",
         "metadata": {"eventType": "assistant", "sequence": 9}},
        {"timestamp": None, "type": None, "level": None, "message": None, "metadata": None},
    ]  # fmt: skip
    for items in (served, odd, served + odd):
        entries = [LogEntry.from_api(item) for item in items]
        for columns in ("default", "all"):
            pd.testing.assert_frame_equal(frames.logs_frame(items, columns=columns),
                                          frames.logs_frame(entries, columns=columns))
    pd.testing.assert_frame_equal(mixed_run.logs(), frames.logs_frame(served))
