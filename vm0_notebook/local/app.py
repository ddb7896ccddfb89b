"""The local server's ASGI app: the routes table, start-up and shut-down, error handling.

    app = create_app(Path("~/.vm0-notebook/local").expanduser(), token="vm0_local_...")
    # serve it with uvicorn; __main__.py does that

Start-up opens the database, creates the built-in agents that are missing, marks runs left
pending or running by a server that died as failed, and starts the runner. Shut-down
(:meth:`LocalServer.stop_runs`) stops every agent process and marks what was still queued as
failed; :mod:`vm0_notebook.local.serving` calls it before uvicorn drains its connections, so
open event streams end with their ``complete``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vm0_notebook._version import __version__
from vm0_notebook.local import (
    routes_agents,
    routes_events,
    routes_logs,
    routes_metrics,
    routes_runs,
)
from vm0_notebook.local.agent_users import AgentUsers
from vm0_notebook.local.agents_store import SCHEMA as AGENTS_SCHEMA
from vm0_notebook.local.agents_store import AgentStore
from vm0_notebook.local.broker import Broker
from vm0_notebook.local.db import Database
from vm0_notebook.local.host import Host
from vm0_notebook.local.http import ApiError, RequestIdAndAuth, error_response
from vm0_notebook.local.records import SCHEMA as RECORDS_SCHEMA
from vm0_notebook.local.records import Records
from vm0_notebook.local.runs_store import SCHEMA as RUNS_SCHEMA
from vm0_notebook.local.runs_store import RunStore
from vm0_notebook.local.sandbox import isolation, kill_leftovers
from vm0_notebook.local.storage import SCHEMA as STORAGE_SCHEMA
from vm0_notebook.local.storage import Storage

if TYPE_CHECKING:
    from vm0_notebook.local.spec import RunnerAPI

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 10.0


def default_max_concurrent() -> int:
    """Twice the CPU count."""
    return 2 * (os.cpu_count() or 1)


@dataclass
class LocalServer:
    """Everything the handlers share, as ``request.app.state.local``."""

    data_dir: Path
    db: Database
    storage: Storage
    agents: AgentStore
    runs: RunStore
    records: Records
    broker: Broker
    host: Host
    max_concurrent: int
    sandbox_choice: str | None = None
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    runner: RunnerAPI = field(init=False)
    _stopping: asyncio.Future[None] | None = field(default=None, init=False, repr=False)

    @property
    def sandbox(self) -> str:
        """The runner's sandbox, ``bubblewrap`` or ``process``, as ``/health`` reports it."""
        return self.runner.sandbox

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop_runs` has begun: no new run is accepted."""
        return self._stopping is not None

    async def stop_runs(self) -> None:
        """Stop every agent and fail every queued run, once, however often it is called.

        Every run is final afterwards, so every open event stream has had its ``complete``
        and ends by itself: the server can then close its connections cleanly.
        """
        if self._stopping is None:
            self._stopping = asyncio.ensure_future(self._stop_runs())
        await asyncio.shield(self._stopping)

    async def _stop_runs(self) -> None:
        await self.runner.shutdown()
        for run_id in self.host.fail_interrupted():
            logger.warning("run %s was still queued when the server stopped: marked failed",
                           run_id)


def create_app(
    data_dir: Path,
    token: str,
    *,
    max_concurrent: int | None = None,
    sandbox: str | None = None,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
) -> Starlette:
    """The app over the data folder ``data_dir``; every route but ``/health`` and the signed
    storage URLs needs ``Authorization: Bearer <token>``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(data_dir / "vm0.db", [AGENTS_SCHEMA, RUNS_SCHEMA, RECORDS_SCHEMA,
                                        STORAGE_SCHEMA])
    storage = Storage(db, data_dir)
    runs, records, broker = RunStore(db), Records(db), Broker()
    server = LocalServer(
        data_dir=data_dir, db=db, storage=storage, agents=AgentStore(db), runs=runs,
        records=records, broker=broker, host=Host(runs, records, storage, broker, data_dir, token),
        max_concurrent=max_concurrent or default_max_concurrent(), sandbox_choice=sandbox,
        heartbeat_s=heartbeat_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from vm0_notebook.local.agents import BUILTIN_AGENTS
        from vm0_notebook.local.runner import Runner

        server.agents.ensure_builtins(BUILTIN_AGENTS)
        users = AgentUsers(data_dir / "agents") if os.geteuid() == 0 else None
        if users is not None:
            for uid in await asyncio.to_thread(users.end_leftovers):
                logger.warning("killed what uid %d left running when the server stopped", uid)
        for run_id in server.host.fail_interrupted():
            logger.warning("run %s was in flight when the server stopped: marked failed", run_id)
            # Without a uid per run, what it left is found by the run id it inherited.
            await asyncio.to_thread(kill_leftovers, set(), f"VM0_RUN_ID={run_id}")
        server.runner = Runner(server.host, max_concurrent=server.max_concurrent,
                               sandbox=server.sandbox_choice, users=users)
        try:
            yield
        finally:
            await server.stop_runs()
            server.records.flush()
            db.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        *routes_agents.ROUTES,
        *routes_runs.ROUTES,
        *routes_events.ROUTES,
        *routes_logs.ROUTES,
        *routes_metrics.ROUTES,
        *storage.routes(),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdAndAuth, token=token)],
        exception_handlers={
            ApiError: error_response,
            HTTPException: _http_error,
        },
        lifespan=lifespan,
    )
    app.state.local = server
    return app


async def health(request: Request) -> Response:
    """``GET /health``: the server is up; its version, its sandbox and how runs are bounded."""
    server: LocalServer = request.app.state.local
    return JSONResponse({"status": "ok", "version": __version__, "pid": os.getpid(),
                         **isolation(server.sandbox, server.runner.users is not None)})


_HTTP_ERRORS: dict[int, tuple[str, str]] = {
    404: ("not_found_error", "resource_not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
}


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 (no such route or method) in the contract's envelope."""
    assert isinstance(exc, HTTPException)
    kind, code = _HTTP_ERRORS.get(exc.status_code, ("invalid_request_error", "invalid_request"))
    message = (f"No such endpoint: {request.method} {request.url.path}"
               if exc.status_code in (404, 405) else str(exc.detail))
    body: dict[str, Any] = {"error": {"type": kind, "code": code, "message": message}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
