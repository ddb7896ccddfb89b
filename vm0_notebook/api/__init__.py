"""The VM0 API client: ``Client``, ``AsyncClient``, the ``Run`` handle, the models and the errors.

Importing this package loads only the error module (standard library only): each other name
is imported on first use (PEP 562), so ``from vm0_notebook.api.errors import RunFailed`` does
not bring in httpx. No IPython, pandas
or widgets here (pandas loads only for ``.to_pandas()`` and friends).

    api/
      client.py     Client and AsyncClient: the I/O, one retry loop each
      _base.py      what both share: configuration, request building, the retry policy, errors
      _ops.py       operations as generators, run by either client
      resources/    client.agents, .runs, .volumes, .artifacts, .server
      run.py        the Run handle: refresh, wait, stream, cancel, logs, metrics...
      models.py     the API's objects as frozen dataclasses
      _parse.py     reading the API's JSON (case styles, aliases, times, ids)
      _validate.py  argument checks made before any request
      events.py     a run's event stream, resumed after drops
      pagination.py lazy pagers over list endpoints
      storage.py    upload plans, verified downloads, the content cache
      errors.py     the exception tree
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports
from .errors import __all__ as _errors

if TYPE_CHECKING:  # pragma: no cover
    from .client import AsyncClient, Client
    from .errors import *  # noqa: F403
    from .models import (
        Agent,
        AgentVersion,
        Artifact,
        Event,
        LogEntry,
        MetricPoint,
        RunDetail,
        RunMetrics,
        ServerInfo,
        StorageInfo,
        StorageVersion,
        Version,
        Volume,
    )
    from .run import Run

# name -> module that defines it, imported on first attribute access
_LAZY = {
    "AsyncClient": ".client",
    "Client": ".client",
    "Run": ".run",
    **dict.fromkeys(
        ("Agent", "AgentVersion", "Artifact", "Event", "LogEntry", "MetricPoint", "RunDetail",
         "RunMetrics", "ServerInfo", "StorageInfo", "StorageVersion", "Version", "Volume"),
        ".models",
    ),
    **dict.fromkeys(_errors, ".errors"),
}

__all__ = [
    "Agent",
    "AgentVersion",
    "Artifact",
    "AsyncClient",
    "Client",
    "Event",
    "LogEntry",
    "MetricPoint",
    "Run",
    "RunDetail",
    "RunMetrics",
    "ServerInfo",
    "StorageInfo",
    "StorageVersion",
    "Version",
    "Volume",
    *_errors,
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)
