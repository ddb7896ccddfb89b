"""The local server's ASGI app: the routes table, start-up and shut-down, error handling.

    app = create_app(Path("~/.vm0-notebook/local").expanduser(), token="vm0_local_...")
    # serve it with uvicorn; __main__.py does that

Start-up opens the database, creates the built-in agents that are missing, marks runs left
pending or running by a server that died as failed, and starts the runner. Shut-down
(:meth:`LocalServer.stop_runs`) stops every agent process and marks what was still queued as
failed; :mod:`vm0_notebook.local.web.serving` calls it before uvicorn drains its connections, so
open event streams end with their ``complete``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vm0_notebook._version import __version__
from vm0_notebook.local.errors import ApiError
from vm0_notebook.local.runtime.agent_users import AgentUsers, passable_sessions_dir
from vm0_notebook.local.runtime.cgroups import RunCgroups, group_name
from vm0_notebook.local.runtime.sandbox import isolation, kill_leftovers
from vm0_notebook.local.store.agents import SCHEMA as AGENTS_SCHEMA
from vm0_notebook.local.store.agents import AgentStore
from vm0_notebook.local.store.db import Database
from vm0_notebook.local.store.records import SCHEMA as RECORDS_SCHEMA
from vm0_notebook.local.store.records import Records
from vm0_notebook.local.store.runs import SCHEMA as RUNS_SCHEMA
from vm0_notebook.local.store.runs import RunStore
from vm0_notebook.local.store.signing import Signer
from vm0_notebook.local.store.storages import SCHEMA as STORAGE_SCHEMA
from vm0_notebook.local.store.storages import Storage
from vm0_notebook.local.web.broker import Broker
from vm0_notebook.local.web.middleware import CanonicalQuery, RequestIdAndAuth
from vm0_notebook.local.web.responses import error_response
from vm0_notebook.local.web.routes import agents as agent_routes
from vm0_notebook.local.web.routes import events as event_routes
from vm0_notebook.local.web.routes import files as file_routes
from vm0_notebook.local.web.routes import logs as log_routes
from vm0_notebook.local.web.routes import metrics as metric_routes
from vm0_notebook.local.web.routes import runs as run_routes
from vm0_notebook.local.web.routes import storage as storage_routes
from vm0_notebook.local.web.run_host import Host
from vm0_notebook.local.web.state import DEFAULT_HEARTBEAT_S, LocalServer, local_server

logger = logging.getLogger(__name__)


def default_max_concurrent() -> int:
    """Twice the CPU count."""
    return 2 * (os.cpu_count() or 1)


def create_app(
    data_dir: Path,
    token: str,
    *,
    max_concurrent: int | None = None,
    sandbox: str | None = None,
    heartbeat_s: float = DEFAULT_HEARTBEAT_S,
    allowed_hosts: Iterable[str] = (),
) -> Starlette:
    """The app over the data folder ``data_dir``; every route but ``/health`` and the signed
    storage URLs needs ``Authorization: Bearer <token>``.

    Requests must name a loopback host (``localhost``, ``127.0.0.1``, ``[::1]``) or one of
    ``allowed_hosts`` (``--host``, ``--allow-host``; kept as ``LocalServer.allowed_hosts``) in
    their Host header (against DNS rebinding); others get a 403.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(data_dir / "vm0.db", [AGENTS_SCHEMA, RUNS_SCHEMA, RECORDS_SCHEMA,
                                        STORAGE_SCHEMA])
    storage = Storage(db, data_dir)
    runs, records, broker, agents = RunStore(db), Records(db), Broker(), AgentStore(db)
    server = LocalServer(
        data_dir=data_dir, db=db, storage=storage, agents=agents, runs=runs,
        records=records, broker=broker,
        host=Host(runs, records, storage, broker, agents, data_dir, token), signer=Signer(data_dir),
        max_concurrent=max_concurrent or default_max_concurrent(), sandbox_choice=sandbox,
        heartbeat_s=heartbeat_s, allowed_hosts=frozenset(h.lower() for h in allowed_hosts),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from vm0_notebook.local.runtime.frameworks import BUILTIN_AGENTS
        from vm0_notebook.local.runtime.runner import Runner

        server.agents.ensure_builtins(BUILTIN_AGENTS)
        # What runs of a killed server left: first by their cgroups, then by their uids.
        cgroups = await asyncio.to_thread(RunCgroups.detect, group_name(data_dir))
        for run_id in await asyncio.to_thread(cgroups.end_leftovers):
            logger.warning("killed what run %s left in its cgroup when the server stopped", run_id)
        users = AgentUsers(data_dir / "agents") if os.geteuid() == 0 else None
        if users is not None:
            for uid in await asyncio.to_thread(users.end_leftovers):
                logger.warning("killed what uid %d left running when the server stopped", uid)
        for run_id in server.host.fail_interrupted():
            logger.warning("run %s was in flight when the server stopped: marked failed", run_id)
            # Without a uid per run, what it left is found by the run id it inherited.
            await asyncio.to_thread(kill_leftovers, set(), f"VM0_RUN_ID={run_id}")
        server.runner = Runner(server.host, max_concurrent=server.max_concurrent,
                               sandbox=server.sandbox_choice, users=users, cgroups=cgroups)
        if users is not None and server.runner.sandbox == "process":
            # The run's uid must reach its working folder (its HOME) by its path, and the data
            # folder is closed to it: process-mode sessions live where it can pass.
            passable = await asyncio.to_thread(passable_sessions_dir, group_name(data_dir))
            if passable is None:
                logger.warning("agents run as their own uids but cannot reach %s: their HOME "
                               "and VM0_WORKDIR work only as the current folder",
                               server.host.sessions_dir)
            else:
                server.host.sessions_dir = passable
        try:
            yield
        finally:
            await server.stop_runs()
            await asyncio.to_thread(cgroups.close)
            server.records.flush()
            db.close()

    routes = [
        Route("/health", health, methods=["GET"]),
        *agent_routes.ROUTES,
        *run_routes.ROUTES,
        *event_routes.ROUTES,
        *log_routes.ROUTES,
        *metric_routes.ROUTES,
        *storage_routes.ROUTES,
        *file_routes.ROUTES,
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdAndAuth, token=token,
                               allowed_hosts=server.allowed_hosts),
                    Middleware(CanonicalQuery)],
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
    server = local_server(request)
    runner = server.runner
    return JSONResponse({"status": "ok", "version": __version__, "pid": os.getpid(),
                         **isolation(server.sandbox, runner.users is not None,
                                     runner.cgroups.limits(), runner.cgroups.problem)})


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
