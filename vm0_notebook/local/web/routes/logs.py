"""``GET /v1/runs/{id}/logs``: a run's log entries, filtered and paged.

``type`` and ``level`` match exactly (``level=warn`` gives the warnings, not the errors too);
``since`` and ``until`` are inclusive; ``order=desc`` pages from the newest entry back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route

from vm0_notebook.contract import LOG_LEVELS, LOG_TYPES
from vm0_notebook.local.errors import invalid
from vm0_notebook.local.web.requests import page_args, parse_time
from vm0_notebook.local.web.responses import page_of_json
from vm0_notebook.local.web.state import local_server

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response


def _choice(request: Request, name: str, allowed: tuple[str, ...]) -> str | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if value not in allowed:
        raise invalid(f"'{name}' must be one of: {', '.join(allowed)}", name)
    return value


def _time(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return parse_time(value, name) if value else None


async def run_logs(request: Request) -> Response:
    """``GET /v1/runs/{id}/logs``: the run's log entries, one page."""
    server = local_server(request)
    run_id = request.path_params["run_id"]
    server.runs.require(run_id)
    limit, cursor = page_args(request, shape=(int,))
    order = _choice(request, "order", ("asc", "desc")) or "asc"
    kind = _choice(request, "type", (*LOG_TYPES, "all"))
    level = _choice(request, "level", LOG_LEVELS)
    since, until = (_time(request, name) for name in ("since", "until"))
    rows = server.records.logs(
        run_id, type=None if kind == "all" else kind, level=level, since=since, until=until,
        order=order, after=cursor and cursor[0], limit=limit + 1,
    )
    return page_of_json(rows, limit)


ROUTES = [Route("/v1/runs/{run_id}/logs", run_logs, methods=["GET"])]
