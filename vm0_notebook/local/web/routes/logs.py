"""``GET /v1/runs/{id}/logs``: a run's log entries, filtered and paged.

``type`` and ``level`` match exactly (``level=warn`` gives the warnings, not the errors too);
``since`` and ``until`` are inclusive; ``order=desc`` pages from the newest entry back.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.routing import Route

from vm0_notebook.local.errors import invalid
from vm0_notebook.local.web.requests import page_args, parse_time
from vm0_notebook.local.web.responses import ok, page

if TYPE_CHECKING:
    import sqlite3

    from starlette.requests import Request
    from starlette.responses import Response

    from vm0_notebook.local.web.app import LocalServer

TYPES = ("agent", "system", "network")
LEVELS = ("debug", "info", "warn", "error")


def log_json(row: sqlite3.Row) -> dict[str, Any]:
    """A log row as the API shows it (``metadata`` only when there is some)."""
    entry = {"timestamp": row["timestamp"], "type": row["type"], "level": row["level"],
             "message": row["message"]}
    if row["metadata"]:
        entry["metadata"] = json.loads(row["metadata"])
    return entry


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in allowed:
        raise invalid(f"'{name}' must be one of: {', '.join(allowed)}", name)
    return value


async def run_logs(request: Request) -> Response:
    """``GET /v1/runs/{id}/logs``: the run's log entries, one page."""
    server: LocalServer = request.app.state.local
    run_id = request.path_params["run_id"]
    server.runs.get(run_id)
    limit, cursor = page_args(request, shape=(int,))
    order = _choice(request, "order", ("asc", "desc")) or "asc"
    where, params = ["run_id = ?"], [run_id]
    kind = _choice(request, "type", (*TYPES, "all"))
    if kind and kind != "all":
        where.append("type = ?")
        params.append(kind)
    if level := _choice(request, "level", LEVELS):
        where.append("level = ?")
        params.append(level)
    for name, op in (("since", ">="), ("until", "<=")):
        if value := request.query_params.get(name):
            where.append(f"timestamp {op} ?")
            params.append(parse_time(value, name))
    if cursor:
        where.append("id > ?" if order == "asc" else "id < ?")
        params.append(cursor[0])
    server.records.flush()
    rows = server.db.all(
        f"SELECT * FROM run_logs WHERE {' AND '.join(where)}"
        f" ORDER BY id {order.upper()} LIMIT ?", (*params, limit + 1),
    )
    return ok(page(rows, limit, log_json, lambda r: (r["id"],)))


ROUTES = [Route("/v1/runs/{run_id}/logs", run_logs, methods=["GET"])]
