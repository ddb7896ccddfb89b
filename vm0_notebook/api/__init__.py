"""The VM0 API client: ``Client``, ``AsyncClient``, the models and the errors.

No IPython, pandas or widgets here (pandas loads only for ``.to_pandas()`` and friends).
"""

from .client import AsyncClient, Client
from .errors import *  # noqa: F403
from .errors import __all__ as _errors
from .models import (
    Agent,
    AgentVersion,
    Artifact,
    Event,
    LogEntry,
    MetricPoint,
    Run,
    RunMetrics,
    StorageInfo,
    StorageVersion,
    Version,
    Volume,
)

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
    "RunMetrics",
    "StorageInfo",
    "StorageVersion",
    "Version",
    "Volume",
    *_errors,
]
