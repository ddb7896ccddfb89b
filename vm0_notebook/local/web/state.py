"""What every handler shares, as ``request.app.state.local``: the stores, the run host, the runner.

    server = local_server(request)
    server.runs.get(run_id)
"""

from __future__ import annotations

import asyncio
import getpass
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from vm0_notebook.local.store.agents import AgentStore
from vm0_notebook.local.store.db import Database
from vm0_notebook.local.store.records import Records
from vm0_notebook.local.store.runs import RunStore
from vm0_notebook.local.store.signing import Signer
from vm0_notebook.local.store.storages import Storage
from vm0_notebook.local.web.broker import Broker
from vm0_notebook.local.web.run_host import Host

if TYPE_CHECKING:
    from starlette.requests import Request

    from vm0_notebook.local.runtime.spec import RunnerAPI

logger = logging.getLogger(__name__)

DEFAULT_HEARTBEAT_S = 10.0


def local_user() -> str:
    """The name of the user the server runs as (``created_by`` of uploaded versions), or
    ``local`` where the system has no name for it (a container's bare uid)."""
    try:
        return getpass.getuser() or "local"
    except (KeyError, OSError):
        return "local"


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
    signer: Signer
    max_concurrent: int
    sandbox_choice: str | None = None
    heartbeat_s: float = DEFAULT_HEARTBEAT_S
    # who uploads through this server, as versions' created_by
    user: str = field(default_factory=local_user)
    # the host names this server answers to (the bind address and any --allow-host), for the
    # Host-header check; loopback names are always allowed
    allowed_hosts: frozenset[str] = frozenset()
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


def local_server(request: Request) -> LocalServer:
    """The :class:`LocalServer` behind the app that ``request`` came to."""
    return request.app.state.local
