"""``GET /v1/runs/{id}/metrics``: resource samples in both field sets of the contract.

Each sample carries the seed fields (``cpu_percent``, ``memory_bytes``, ``network_rx_bytes``,
``network_tx_bytes``) and the platform's (``memory_used_mb``, ``memory_total_mb``,
``disk_used_mb``, ``disk_total_mb``); the summary, over every sample of the run, likewise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from vm0_notebook.local.store.runs import run_json
from vm0_notebook.local.web.requests import page_args
from vm0_notebook.local.web.responses import ok, page
from vm0_notebook.local.web.state import local_server

if TYPE_CHECKING:
    import sqlite3

    from starlette.requests import Request
    from starlette.responses import Response


MB = 1024 * 1024


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / MB, 3)


def sample_json(row: sqlite3.Row) -> dict[str, Any]:
    """A metric row as the API shows it, bytes also given in MB."""
    return {
        "timestamp": row["timestamp"],
        "cpu_percent": row["cpu_percent"],
        "memory_bytes": row["memory_bytes"],
        "network_rx_bytes": row["network_rx_bytes"],
        "network_tx_bytes": row["network_tx_bytes"],
        "disk_used_bytes": row["disk_used_bytes"],
        "memory_used_mb": _mb(row["memory_bytes"]),
        "memory_total_mb": _mb(row["memory_total_bytes"]),
        "disk_used_mb": _mb(row["disk_used_bytes"]),
        "disk_total_mb": _mb(row["disk_total_bytes"]),
    }


async def run_metrics(request: Request) -> Response:
    """``GET /v1/runs/{id}/metrics``: the run's resource samples and their summary."""
    server = local_server(request)
    run = server.runs.get(request.path_params["run_id"])
    limit, cursor = page_args(request, shape=(int,))
    totals = server.records.metric_totals(run["id"])
    cpu = None if totals["cpu"] is None else round(totals["cpu"], 2)
    summary = {
        "cpu_avg_percent": cpu,
        "memory_max_bytes": totals["memory"],
        "network_rx_bytes": totals["rx"],
        "network_tx_bytes": totals["tx"],
        "avg_cpu_percent": cpu,
        "max_memory_used_mb": _mb(totals["memory"]),
        "total_duration_ms": run_json(run)["execution_time_ms"],
        "sample_count": totals["n"],
    }
    rows = server.records.metrics(run["id"], after=cursor and cursor[0], limit=limit + 1)
    return ok({"summary": summary, **page(rows, limit, sample_json, lambda r: (r["id"],))})


ROUTES = [Route("/v1/runs/{run_id}/metrics", run_metrics, methods=["GET"])]
