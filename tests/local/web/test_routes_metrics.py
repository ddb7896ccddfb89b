"""``GET /v1/runs/{id}/metrics`` over real HTTP: both field sets, from the same samples."""

from __future__ import annotations

import pytest

SEED_SUMMARY = {"cpu_avg_percent", "memory_max_bytes", "network_rx_bytes", "network_tx_bytes"}
PLATFORM_SUMMARY = {"avg_cpu_percent", "max_memory_used_mb", "total_duration_ms"}
SEED_POINT = {"timestamp", "cpu_percent", "memory_bytes", "network_rx_bytes", "network_tx_bytes"}
PLATFORM_POINT = {"timestamp", "cpu_percent", "memory_used_mb", "memory_total_mb",
                  "disk_used_mb", "disk_total_mb"}


@pytest.fixture(scope="module")
def done(api):
    """A run long enough for several samples, holding 20 MB."""
    return api.run("python", "import time\nx = bytearray(20_000_000)\ntime.sleep(2.2)\n")


def test_both_shapes_from_the_same_samples(api, done):
    assert done.status == "completed"
    body = api.metrics(done.detail["id"])
    summary, points = body["summary"], body["data"]
    assert set(summary) >= SEED_SUMMARY | PLATFORM_SUMMARY
    assert points and all(set(p) >= SEED_POINT | PLATFORM_POINT for p in points)
    assert body["pagination"]["has_more"] is False
    assert summary["memory_max_bytes"] == max(p["memory_bytes"] for p in points)
    assert summary["memory_max_bytes"] >= 20_000_000
    assert summary["max_memory_used_mb"] == pytest.approx(summary["memory_max_bytes"] / 2**20,
                                                          abs=0.01)
    assert summary["cpu_avg_percent"] == summary["avg_cpu_percent"]
    assert summary["cpu_avg_percent"] == pytest.approx(
        sum(p["cpu_percent"] for p in points) / len(points), abs=0.01)
    assert summary["total_duration_ms"] == done.detail["execution_time_ms"]
    for p in points:
        assert p["memory_used_mb"] == pytest.approx(p["memory_bytes"] / 2**20, abs=0.01)
        assert p["memory_total_mb"] > 0 and p["disk_total_mb"] > 0


def test_every_run_has_a_sample_and_paging_works(api, done):
    all_points = api.metrics(done.detail["id"])["data"]
    assert len(all_points) >= 2
    first = api.http.get(f"/runs/{done.detail['id']}/metrics", params={"limit": 1}).json()
    assert first["data"] == all_points[:1] and first["pagination"]["has_more"] is True
    rest = api.http.get(f"/runs/{done.detail['id']}/metrics",
                        params={"cursor": first["pagination"]["next_cursor"]}).json()
    assert rest["data"] == all_points[1:]
    assert rest["summary"] == first["summary"]  # the summary covers the whole run
    quick = api.run("echo", "fast")
    assert len(api.metrics(quick.detail["id"])["data"]) >= 1
