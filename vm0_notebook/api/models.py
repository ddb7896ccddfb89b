"""Typed API objects: agents, versions, runs, events, logs, metrics, volumes and artifacts.

Every model is a frozen dataclass built by ``Model.from_api(dict)``, which accepts snake_case and
camelCase fields, prefixed (``run_...``) and plain ids, and ignores fields it does not know, so
a newer server does not break an older client. Timestamps become aware ``datetime`` objects.

:class:`Run` is also a handle on the live run (``refresh``, ``wait``, ``stream``, ``cancel``,
``follow_up``, ``resume``, ``logs``, ``metrics``, ``artifact``); those methods live in this
module because they are what users call, but all I/O goes through the client that made the run.
"""

from __future__ import annotations

import dataclasses
import json
import json.scanner
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from ._ops import Op, Request, Sleep, endpoint
from .errors import InvalidRequestError, InvalidResponseError, RunFailedError, WaitTimeoutError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure
    from pandas import DataFrame

__all__ = [
    "FINAL_STATUSES",
    "Agent",
    "AgentVersion",
    "Artifact",
    "Event",
    "LogEntry",
    "MetricPoint",
    "Run",
    "RunMetrics",
    "StorageFile",
    "StorageInfo",
    "StorageVersion",
    "Version",
    "Volume",
]

FINAL_STATUSES = frozenset({"completed", "failed", "timeout", "cancelled"})

_scan = json.scanner.make_scanner(json.JSONDecoder())


def _loads(text: str) -> Any:
    """``json.loads`` for an event frame, without its two whitespace regexes (a fifth of the
    client's work per event); anything unusual takes ``json.loads`` and its errors."""
    try:
        value, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)

# the keys of the contract's event frames: a frame with only these needs no renaming
_FRAME_KEYS = frozenset(
    {"sequence", "type", "data", "timestamp", "status", "run_id", "output", "error", "message",
     "code"}
)
_CAMEL = re.compile(r"(?<=[a-z0-9])([A-Z])")


def snake(key: str) -> str:
    """``executionTimeMs`` -> ``execution_time_ms``; snake_case keys pass unchanged."""
    return _CAMEL.sub(r"_\1", key).lower() if any(c.isupper() for c in key) else key


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """The mapping with its top-level keys in snake_case (nested values untouched)."""
    # islower() is true for snake_case keys: an all-snake_case object is copied in C
    if all(map(str.islower, data)):
        return dict(data)
    return {k if k.islower() else snake(k): v for k, v in data.items()}


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 (``Z`` or offset) or epoch seconds/milliseconds -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """A datetime as the API writes it (``2024-01-01T00:00:00Z``)."""
    return value.isoformat().replace("+00:00", "Z") if value else None


_ID_PREFIX = re.compile(r"^(agt|ag|run|vol|art|ses|sess|chk|upl|ver)_")


def plain_id(value: str) -> str:
    """An id without its type prefix, for comparing ids from servers that differ on prefixes."""
    return _ID_PREFIX.sub("", value)


@dataclass(frozen=True)
class _Spec:
    """What ``from_api`` needs to know of a model class, worked out once per class:
    ``dataclasses.fields()`` and a frozen dataclass ``__init__`` show in every ``runs.get``."""

    names: frozenset[str]  # the fields an answer may set
    required: frozenset[str]  # the fields it must set
    defaults: dict[str, Any]
    factories: tuple[tuple[str, Any], ...]


_SPECS: dict[type, _Spec] = {}


def _spec_of(cls: type) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        fields = [f for f in dataclasses.fields(cls) if f.init]
        spec = _SPECS[cls] = _Spec(
            names=frozenset(f.name for f in fields if not f.name.startswith("_")),
            required=frozenset(
                f.name for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ),
            defaults={f.name: f.default for f in fields if f.default is not dataclasses.MISSING},
            factories=tuple((f.name, f.default_factory) for f in fields
                            if f.default_factory is not dataclasses.MISSING),
        )
    return spec


class _Model:
    """``from_api``: keep the known fields of a response object, converting as declared."""

    # field name -> other names it may arrive under (after snake-casing)
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {}
    _times: ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "started_at", "completed_at")

    @classmethod
    def from_api(cls, data: Mapping[str, Any], **extra: Any) -> Self:
        """Build from one JSON object of the API (either case style, unknown keys ignored)."""
        if not isinstance(data, Mapping):
            raise InvalidResponseError(
                f"Expected a JSON object for {cls.__name__}, got {type(data).__name__}"
            )
        src = normalize(data)
        for name, others in cls._aliases.items():
            if src.get(name) is None:
                for other in others:
                    if src.get(other) is not None:
                        src[name] = src[other]
                        break
        spec = _spec_of(cls)
        kwargs = {k: v for k, v in src.items() if k in spec.names}
        for name in cls._times:
            if name in kwargs:
                kwargs[name] = parse_time(kwargs[name])
        kwargs.update(cls._convert(src))
        kwargs.update(extra)
        if not spec.required <= kwargs.keys():
            missing = sorted(spec.required - kwargs.keys())
            raise InvalidResponseError(
                f"The server's {cls.__name__} object lacks {', '.join(missing)}"
            )
        # what the generated __init__ would do (no model has __post_init__), at a third of
        # the cost of its object.__setattr__ per field
        obj = object.__new__(cls)
        values = obj.__dict__
        values.update(spec.defaults)
        for name, factory in spec.factories:
            values[name] = factory()
        values.update(kwargs)
        return obj

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        """Nested objects to models; overridden where a model has them."""
        return {}


# -- agents -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentVersion(_Model):
    """One saved config of an agent; ``version_number`` starts at 1."""

    id: str
    agent_id: str | None = None
    version_number: int | None = None
    message: str | None = None
    created_by: str | None = None
    created_at: datetime | None = None
    config: dict[str, Any] | None = None


@dataclass(frozen=True)
class Agent(_Model):
    """An agent: its name, its config and its current version."""

    id: str
    name: str
    current_version_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    description: str | None = None
    config: dict[str, Any] | None = None
    current_version: AgentVersion | None = None

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        cur = src.get("current_version")
        return {"current_version": AgentVersion.from_api(cur) if isinstance(cur, Mapping) else None}


# -- storage ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageFile(_Model):
    """One file of a storage version (``download_url`` only in download answers)."""

    path: str
    size: int | None = None
    hash: str | None = None
    download_url: str | None = None
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {"hash": ("sha256",), "download_url": ("url",)}


@dataclass(frozen=True)
class StorageVersion(_Model):
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
class StorageInfo(_Model):
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
            body = _loads(data) if data else {}
        except ValueError:
            body = {"text": data}
        if type(body) is not dict:
            body = {"value": body}
        elif not _FRAME_KEYS.issuperset(body) and not all(map(str.islower, body)):
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


@dataclass(frozen=True)
class LogEntry(_Model):
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
        if not extra and type(data) is dict and data.keys() <= _LOG_KEYS:
            meta = data.get("metadata")
            if meta is None or (type(meta) is dict and meta.keys() <= _LOG_META_KEYS):
                return cls(parse_time(data.get("timestamp")), data.get("type"),
                           data.get("level"), data.get("message", ""), meta or {})
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
class MetricPoint(_Model):
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
class Run(_Model):
    """A run of an agent, and a handle to follow it.

        run = client.runs.create(agent="echo", prompt="hello")
        run.wait()                 # blocks until completed/failed/timeout/cancelled
        print(run.status, run.output)
        run.logs()                 # DataFrame

    On an ``AsyncClient`` the methods that talk to the server are awaitable and ``stream()`` is
    an async iterator. ``refresh``/``wait``/``cancel`` update this object in place and return it.
    """

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
    _client: Any = field(default=None, repr=False, compare=False)
    _output: str | None = field(default=None, repr=False, compare=False)
    _aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "id": ("run_id",),
        "agent_version": ("agent_version_id",),
    }

    @classmethod
    def _convert(cls, src: dict[str, Any]) -> dict[str, Any]:
        vols = src.get("volumes")
        out: dict[str, Any] = {"volumes": dict(vols) if isinstance(vols, Mapping) else {}}
        if isinstance(src.get("output"), str):
            out["_output"] = src["output"]
        return out

    # -- state --------------------------------------------------------------------------------

    @property
    def finished(self) -> bool:
        """True once the status is final (completed, failed, timeout or cancelled)."""
        return self.status in FINAL_STATUSES

    @property
    def ok(self) -> bool:
        """True when the run completed successfully."""
        return self.status == "completed"

    @property
    def output(self) -> str | None:
        """The run's final text: the ``result`` event's text, else the ``complete`` output.

        Known after ``stream()`` or ``wait()``; on a sync client a finished run fetches it on
        first access. None while the run is still going.
        """
        if self._output is None and self.finished and getattr(self._client, "is_sync", False):
            self._client.load_output(self)
        return self._output

    def raise_for_status(self) -> Self:
        """Raise :class:`RunFailedError` if the run ended failed, timeout or cancelled."""
        if self.finished and not self.ok:
            detail = f": {self.error}" if self.error else ""
            hint = "" if self.status == "cancelled" else "; run.logs() has the details"
            raise RunFailedError(f"Run {self.id} {self.status}{detail}{hint}", run=self)
        return self

    def _set(self, **values: Any) -> None:
        # A run is a live handle: refresh() changes it in place, though users cannot.
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _update_from(self, other: Run) -> Self:
        keep_output = self._output
        for f in dataclasses.fields(self):
            if f.name not in ("_client", "_output"):
                self._set(**{f.name: getattr(other, f.name)})
        self._set(_output=other._output if other._output is not None else keep_output)
        return self

    def _observe(self, event: Event) -> None:
        """Called for each streamed event: keeps status and output current."""
        if event.event == "output" and event.type == "result":
            text = event.payload.get("result")
            if isinstance(text, str):
                self._set(_output=text)
        elif event.event == "status" and event.status:
            self._set(status=event.status)
        elif event.event == "complete":
            if event.status:
                self._set(status=event.status)
            if self._output is None and isinstance(event.data.get("output"), str):
                self._set(_output=event.data["output"])
            if event.data.get("error") and not self.error:
                self._set(error=event.data["error"])
            # A finished run with no text has an empty output, so it is not fetched again.
            if self._output is None:
                self._set(_output="")

    # -- talking to the server ----------------------------------------------------------------

    def _refresh_op(self) -> Op[Run]:
        data = yield Request("GET", f"/runs/{self.id}")
        return self._update_from(Run.from_api(data))

    @endpoint
    def refresh(self) -> Op[Run]:
        """Fetch the current state from the server (in place) and return the run."""
        return (yield from self._refresh_op())

    @endpoint
    def wait(self, timeout: float | None = None, poll: float = 0.1) -> Op[Run]:
        """Block until the run is finished and return it (whatever its final status).

        Raises :class:`WaitTimeoutError` after ``timeout`` seconds; the run keeps going.

            run.wait(timeout=60).raise_for_status()
        """
        import time

        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        while True:
            yield from self._refresh_op()
            if self.finished:
                return self
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeoutError(
                    f"Run {self.id} still {self.status} after {timeout:g}s; it keeps going:"
                    " wait again, or run.cancel() it", run=self
                )
            pause = delay if deadline is None else min(delay, max(deadline - time.monotonic(), 0))
            yield Sleep(pause)
            delay = min(delay * 1.5, 1.0)

    def _cancel_op(self) -> Op[Run]:
        try:
            data = yield Request("POST", f"/runs/{self.id}/cancel", retry=True)
        except InvalidRequestError as exc:
            # a retried cancel whose first attempt went through answers invalid_state
            if exc.code != "invalid_state":
                raise
            yield from self._refresh_op()
            if self.status != "cancelled":
                raise
            return self
        return self._update_from(Run.from_api(data))

    @endpoint
    def cancel(self) -> Op[Run]:
        """Cancel the run if it is pending or running; returns it with status ``cancelled``."""
        return (yield from self._cancel_op())

    def fetch_output(self) -> str | None:
        """The output, streaming the finished run's events once if needed (awaitable on an
        ``AsyncClient``, where ``output`` only shows what is already known)."""
        if self._output is not None:
            return self._output if self._client.is_sync else _done(self._output)
        return self._client.load_output(self)

    def stream(self) -> Iterator[Event]:
        """Iterate over the run's events from the start, live, until ``complete``.

        Resumes by itself after a dropped connection; updates ``status`` and ``output``.

            for event in run.stream():
                print(event.event, event.data)
        """
        return self._client.runs.events(self.id, _observer=self._observe)

    def _inherit_secrets(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with the secrets this run was created with in this process, unless
        ``secrets=`` was given (then those are used as they are)."""
        from . import _run_secrets

        if "secrets" not in options:
            options["secrets"] = _run_secrets.recall(self.id)
        return options

    @endpoint
    def follow_up(self, prompt: str, **options: Any) -> Op[Run]:
        """Start a new run that continues this run's session, with the secrets this run was
        created with in this process (held in memory only) unless ``secrets=`` is given.

            second = run.follow_up("Now plot it").wait()
        """
        if not self.session_id:
            yield from self._refresh_op()
        if not self.session_id:
            raise InvalidRequestError(
                f"Run {self.id} has no session yet (status {self.status}); wait for it first",
                param="session_id", code="invalid_state",
            )
        return (
            yield from self._client.runs._create_op(
                prompt=prompt, session_id=self.session_id, **self._inherit_secrets(options)
            )
        )

    @endpoint
    def resume(self, prompt: str, **options: Any) -> Op[Run]:
        """Start a new run from this run's checkpoint (its state when it finished), with the
        secrets this run was created with in this process unless ``secrets=`` is given."""
        if not self.checkpoint_id:
            yield from self._refresh_op()
        if not self.checkpoint_id:
            raise InvalidRequestError(
                f"Run {self.id} has no checkpoint (status {self.status}); only finished runs do",
                param="checkpoint_id", code="invalid_state",
            )
        return (
            yield from self._client.runs._create_op(
                prompt=prompt, checkpoint_id=self.checkpoint_id, **self._inherit_secrets(options)
            )
        )

    def logs(self, **filters: Any) -> DataFrame:
        """The run's logs as a DataFrame; filters as ``client.runs.logs`` (type, level, ...)."""
        from .. import frames

        return self._client.await_or_call(
            self._client.runs.logs(self.id, **filters), frames.logs_frame
        )

    def metrics(self) -> DataFrame:
        """The run's resource samples as a DataFrame (cpu, memory, network, disk)."""
        from .. import frames

        return self._client.await_or_call(self._client.runs.metrics(self.id), frames.metrics_frame)

    def plot_metrics(self) -> Figure:
        """A matplotlib figure of the run's CPU and memory over time."""
        from .. import plots

        return plots.plot_metrics(self)

    def artifact(self, to: str | Path | None = None) -> Path:
        """Download the artifact version this run produced and return its local folder."""
        if not self.artifact_name:
            raise InvalidRequestError(
                f"Run {self.id} has no artifact (start it with artifact_name=...)",
                param="artifact_name",
            )
        return self._client.artifacts.mount(
            self.artifact_name, version=self.artifact_version or "latest", to=to
        )

    # -- display ------------------------------------------------------------------------------

    def _repr_html_(self) -> str:
        from .. import cards

        return cards.run_html(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        from .. import cards

        printer.text(cards.run_text(self))

    def __str__(self) -> str:
        from .. import cards

        return cards.run_text(self)


async def _done(value: Any) -> Any:
    return value
