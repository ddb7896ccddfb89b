"""Typed API objects as frozen dataclasses: agents, versions, volumes, artifacts, events, logs,
metrics, run details, and what a server says about itself.

Pure data: nothing here does I/O. Each is built by ``Model.from_api(dict)`` (see
:mod:`._parse`), which accepts snake_case and camelCase fields, prefixed (``run_...``) and plain
ids, and ignores fields it does not know. The live handle on a run, which talks to the server,
is :class:`~vm0_notebook.api.run.Run`; its data is a :class:`RunDetail`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from ._parse import ApiModel, is_snake, loads, normalize, parse_time

__all__ = [
    "Agent",
    "AgentVersion",
    "Artifact",
    "Event",
    "LogEntry",
    "MetricPoint",
    "RunDetail",
    "RunMetrics",
    "ServerInfo",
    "StorageFile",
    "StorageInfo",
    "StorageVersion",
    "Version",
    "Volume",
]

# the keys of the contract's event frames: a frame with only these needs no renaming
_FRAME_KEYS = frozenset(
    {"sequence", "type", "data", "timestamp", "status", "run_id", "output", "error", "message",
     "code", "output_truncated"}
)


# -- agents -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentVersion(ApiModel):
    """One saved config of an agent; ``version_number`` starts at 1."""

    id: str
    agent_id: str | None = None
    version_number: int | None = None
    message: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    config: dict[str, Any] | None = None


@dataclass(frozen=True)
class Agent(ApiModel):
    """An agent: its name, its config and its current version."""

    id: str
    name: str
    current_version_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    description: str | None = None
    config: dict[str, Any] | None = None
    current_version: AgentVersion | None = None
    #: Whether the server found the agent's executable, where it says (None: not reported).
    executable_found: bool | None = None

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        cur = src.get("current_version")
        return {"current_version": AgentVersion.from_api(cur) if isinstance(cur, Mapping) else None}


# -- storage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageFile(ApiModel):
    """One file of a storage version (``download_url`` only in download answers)."""

    path: str
    size: int | None = None
    hash: str | None = None
    download_url: str | None = None
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {"hash": ("sha256",), "download_url": ("url",)}


@dataclass(frozen=True)
class StorageVersion(ApiModel):
    """An immutable version of a volume or artifact; its id is the SHA-256 of its content."""

    id: str
    storage_id: str | None = None
    size: int | None = None
    file_count: int | None = None
    message: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    files: tuple[StorageFile, ...] = ()
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "storage_id": ("volume_id", "artifact_id"),
        "id": ("version_id",),
    }

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        files = tuple(
            StorageFile.from_api(f) for f in src.get("files") or () if isinstance(f, Mapping)
        )
        out: dict[str, Any] = {"files": files}
        if src.get("file_count") is None and files:
            out["file_count"] = len(files)
        if src.get("size") is None and files:
            out["size"] = sum(f.size or 0 for f in files)
        return out


Version = StorageVersion
"""The name DESIGN.md uses for what ``volumes.push`` returns."""


@dataclass(frozen=True)
class StorageInfo(ApiModel):
    """A volume (agent input) or an artifact (agent output): a name and its versions."""

    kind: ClassVar[str] = "storage"

    id: str
    name: str
    current_version_id: str | None = None
    size: int | None = None
    file_count: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    current_version: StorageVersion | None = None

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        cur = src.get("current_version")
        out: dict[str, Any] = {}
        if isinstance(cur, Mapping):
            out["current_version"] = StorageVersion.from_api(cur)
            if src.get("current_version_id") is None:
                out["current_version_id"] = out["current_version"].id
        return out


@dataclass(frozen=True)
class Volume(StorageInfo):
    """An input volume, mounted read-only into runs under ``volumes/<name>/``."""

    kind: ClassVar[str] = "volume"


@dataclass(frozen=True)
class Artifact(StorageInfo):
    """An output artifact: the files a run leaves in its ``artifact/`` folder."""

    kind: ClassVar[str] = "artifact"


# -- events, logs, metrics --------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One Server-Sent Event of a run.

    ``event`` is ``status``, ``output``, ``error``, ``heartbeat`` or ``complete`` (others may
    appear, e.g. ``gap`` when the client saw output sequences missing); ``data`` is the frame's
    JSON with top-level keys in snake_case; ``id`` is the SSE id (the output sequence).

        for ev in client.runs.events(run.id):
            if ev.event == "output" and ev.type == "assistant":
                print(ev.payload["message"]["content"])
    """

    event: str
    data: dict[str, Any]
    id: int | None = None

    @property
    def sequence(self) -> int | None:
        """The output sequence (1, 2, ...) of an ``output`` event, else None."""
        if self.event != "output":
            return None
        seq = self.data.get("sequence", self.id)
        try:
            return int(seq) if seq is not None else None
        except (TypeError, ValueError):
            return None

    @property
    def type(self) -> str | None:
        """The output type (``system``, ``assistant``, ``user``, ``result``...) or None."""
        if self.event != "output":
            return None
        kind = self.data.get("type")
        if kind is None and isinstance(self.data.get("data"), Mapping):
            kind = self.data["data"].get("type")
        return kind

    @property
    def payload(self) -> dict[str, Any]:
        """The output's stream-JSON object (``{}`` for other events)."""
        inner = self.data.get("data") if self.event == "output" else None
        return inner if isinstance(inner, dict) else {}

    @property
    def status(self) -> str | None:
        """The run status carried by a ``status`` or ``complete`` event."""
        return self.data.get("status") if self.event in ("status", "complete") else None

    @property
    def timestamp(self) -> datetime | None:
        """When the server recorded it, if it says."""
        return parse_time(self.data.get("timestamp"))

    @classmethod
    def from_sse(cls, event: str, data: str, id: str | None = None) -> Event:
        """From a raw SSE frame; non-JSON data is kept as ``{"text": data}``."""
        # hot path: a live run may send thousands of frames a second
        try:
            body = loads(data) if data else {}
        except ValueError:
            body = {"text": data}
        if type(body) is not dict:
            body = {"value": body}
        elif not _FRAME_KEYS.issuperset(body) and not is_snake(body):
            body = normalize(body)
        try:
            num = int(id) if id else None
        except (TypeError, ValueError):
            num = None
        if num is None and event == "output" and isinstance(body.get("sequence"), int):
            num = body["sequence"]
        # the frozen dataclass __init__ costs more than the rest of this method
        obj = object.__new__(cls)
        obj.__dict__.update(event=event or "message", data=body, id=num)
        return obj


_LOG_KEYS = frozenset({"timestamp", "type", "level", "message", "metadata"})
_LOG_META_KEYS = frozenset({"sequence", "event_type", "method", "url", "status", "duration_ms"})


def are_plain_logs(items: Sequence[Any]) -> bool:
    """Whether log entries' JSON objects are all in the contract's own snake_case shape, whose
    fields are read as they are (no other case style or key to map). Checked a page at a
    time: the union of the keys is one C-level call however long the page."""
    if any(type(item) is not dict for item in items) or not set().union(*items) <= _LOG_KEYS:
        return False
    metas = [meta for item in items if (meta := item.get("metadata")) is not None]
    return (all(type(meta) is dict for meta in metas)
            and set().union(*metas) <= _LOG_META_KEYS)


@dataclass(frozen=True)
class LogEntry(ApiModel):
    """One log line of a run: ``type`` is agent/system/network, ``level`` debug..error.

    Agent entries carry ``metadata = {sequence, event_type}`` and the output event's JSON as
    ``message``; network entries carry ``{method, url, status, duration_ms}``.
    """

    timestamp: datetime | None = None
    type: str | None = None
    level: str | None = None
    message: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    _times: ClassVar[tuple[str, ...]] = ("timestamp",)

    @classmethod
    def from_api(cls, data: Mapping[str, Any], **extra: Any) -> Self:
        """Build from one log entry of the API (either case style, unknown keys ignored)."""
        # a long log is 100,000 of these: the contract's own snake_case shape skips the
        # general path, and gives the very same entry
        if not extra and are_plain_logs((data,)):
            return cls(parse_time(data.get("timestamp")), data.get("type"), data.get("level"),
                       data.get("message", ""), data.get("metadata") or {})
        return super().from_api(data, **extra)

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        meta = src.get("metadata")
        return {"metadata": normalize(meta) if isinstance(meta, Mapping) else {}}

    @property
    def sequence(self) -> int | None:
        """For agent entries, the output sequence it mirrors."""
        seq = self.metadata.get("sequence")
        return seq if isinstance(seq, int) else None


_MB = 1024 * 1024


@dataclass(frozen=True)
class MetricPoint(ApiModel):
    """One resource sample; both the seed and the platform field sets, derived where missing."""

    timestamp: datetime | None = None
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None
    memory_used_mb: float | None = None
    memory_total_mb: float | None = None
    disk_used_mb: float | None = None
    disk_total_mb: float | None = None
    _times: ClassVar[tuple[str, ...]] = ("timestamp",)

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if src.get("memory_bytes") is None and src.get("memory_used_mb") is not None:
            out["memory_bytes"] = int(src["memory_used_mb"] * _MB)
        if src.get("memory_used_mb") is None and src.get("memory_bytes") is not None:
            out["memory_used_mb"] = src["memory_bytes"] / _MB
        return out


@dataclass(frozen=True)
class RunMetrics:
    """A run's resource usage: ``summary`` (snake_case dict) and the sampled ``points``."""

    summary: dict[str, Any]
    points: list[MetricPoint]

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> RunMetrics:
        """Either the seed shape or the platform shape (or both merged)."""
        src = normalize(data)
        summary = normalize(src.get("summary") or {})
        # fill the seed names from the platform's, so one set of keys always works
        pairs = (("cpu_avg_percent", "avg_cpu_percent"),)
        for seed, platform in pairs:
            if summary.get(seed) is None and summary.get(platform) is not None:
                summary[seed] = summary[platform]
            if summary.get(platform) is None and summary.get(seed) is not None:
                summary[platform] = summary[seed]
        max_mb = summary.get("max_memory_used_mb")
        if summary.get("memory_max_bytes") is None and max_mb is not None:
            summary["memory_max_bytes"] = int(max_mb * _MB)
        points = [MetricPoint.from_api(p) for p in src.get("data") or () if isinstance(p, Mapping)]
        return cls(summary, points)


# -- runs -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunDetail(ApiModel):
    """What the server says of a run (``GET /runs/{id}``), as data; the handle is ``Run``."""

    id: str
    status: str = "pending"
    agent_id: str | None = None
    agent_name: str | None = None
    prompt: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    error: str | None = None
    execution_time_ms: int | None = None
    checkpoint_id: str | None = None
    session_id: str | None = None
    artifact_name: str | None = None
    artifact_version: str | None = None
    volumes: dict[str, str] = field(default_factory=dict)
    agent_version: str | None = None
    #: How the local server isolated it (``bubblewrap``, ``process``), where the detail says.
    sandbox: str | None = None
    # the final text, where the server's detail carries it (the local server's does)
    output: str | None = field(default=None, repr=False, compare=False)
    # True when ``output`` is only the tail of a plain process's text (the events hold it all)
    output_truncated: bool = field(default=False, repr=False, compare=False)
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "id": ("run_id",),
        "agent_version": ("agent_version_id",),
    }

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        vols = src.get("volumes")
        output = src.get("output")
        return {
            "volumes": dict(vols) if isinstance(vols, Mapping) else {},
            "output": output if isinstance(output, str) else None,
            "output_truncated": src.get("output_truncated") is True,
        }


# -- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerInfo:
    """What ``client.server.info()`` found: whether the server speaks the VM0 API v1 at ``/v1``
    and what its ``GET /health`` said (a vm0-local gives its version and sandbox).

    ``str(info)`` is one line, as ``%vm0 config`` shows it; it names the URL, never the key.
    """

    url: str
    speaks_v1: bool
    version: str | None = None
    sandbox: str | None = None
    #: Why no sandbox can run (a vm0-local whose ``sandbox`` is ``unavailable``), else None.
    sandbox_problem: str | None = None
    # why it does not speak v1, or what it refused (a wrong key); None when all is well
    problem: str | None = None

    def __str__(self) -> str:
        if not self.speaks_v1:
            return self.problem or f"{self.url} does not speak the VM0 API v1"
        about = [f"version {self.version}"] if self.version else []
        about += [f"sandbox {self.sandbox}"] if self.sandbox else []
        text = "speaks the VM0 API v1" + (
            f" ({', '.join(about)})" if about else " (no /health to say more)")
        return text + (f"; but: {self.problem}" if self.problem else "")
