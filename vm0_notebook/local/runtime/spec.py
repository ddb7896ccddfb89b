"""The seam between the HTTP side of the local server and the runner.

The HTTP side (``app.py``, ``db.py``, ``blobs.py``) owns the database, the blob store and the
working folders. The runner (``runner.py``, ``sandbox.py``) owns processes: it queues runs, starts
them when a slot is free, watches them, and reports back through a :class:`RunHost`.

    host (HTTP side)                       runner
    ----------------                       ------
    POST /runs  -> runner.submit(id)  -->  queue (FIFO, at most max_concurrent running)
                   host.prepare(id)   <--  a slot is free: working folder, env, limits
                   host.started(id)   <--  process spawned
                   host.output(...)   <--  each stdout line (secrets already masked)
                   host.log(...)      <--  stderr lines, lifecycle steps
                   host.metric(...)   <--  about every second (faster at first), and at least once
                   host.finish(...)   <--  exit, timeout, cancel or a failure to start
    POST /runs/{id}/cancel -> runner.cancel(id)

Every host method is called on the server's event loop. ``prepare`` and ``finish`` may do file
I/O and so are coroutines (they push it to a thread); the others must return quickly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vm0_notebook.contract import FinalStatus, LogLevel, LogType


@dataclass(frozen=True)
class RunSpec:
    """Everything the runner needs to start one agent process."""

    run_id: str
    argv: tuple[str, ...]
    prompt: str
    # The session folder: the process's cwd and its only writable place. It already holds
    # ``volumes/<name>/`` (to be mounted read-only) and ``artifact/`` (pre-filled).
    workdir: Path
    # The process's whole environment: VM0_PROMPT, VM0_RUN_ID, VM0_SESSION_ID, VM0_WORKDIR,
    # the run's variables and secrets, plus a minimal PATH/HOME/LANG. Nothing from the server.
    # A variable too long for exec (over 128 KiB, e.g. a huge VM0_PROMPT) is left out, with a
    # log line; the prompt always arrives on stdin.
    env: dict[str, str]
    # Values to mask (as ``***``) in everything the process prints before it is reported.
    secrets: tuple[str, ...] = ()
    timeout_s: float = 600.0
    memory_bytes: int | None = None
    cpu: float | None = None
    network: bool = False
    # Folders under ``workdir`` that the sandbox mounts read-only (the volumes).
    readonly: tuple[Path, ...] = ()
    # Host files or folders the agent needs (a framework's executable), bound read-only at the
    # same path in the sandbox.
    binds: tuple[Path, ...] = ()


class ConfigProblem(ValueError):
    """An agent config a framework cannot run; ``param`` names the key (``config.model``)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class AgentCommand:
    """What a framework makes of an agent config for one run."""

    argv: tuple[str, ...]
    # Laid over the run's base environment (PATH, HOME, LANG); variables and secrets go on top.
    env: dict[str, str]
    binds: tuple[Path, ...] = ()
    network: bool = False


@dataclass(frozen=True)
class MetricSample:
    """One sample over the agent's process tree; None where the platform cannot tell."""

    timestamp: str  # ISO-8601 UTC, "2024-01-01T00:00:00Z"
    cpu_percent: float
    memory_bytes: int
    disk_used_bytes: int
    network_rx_bytes: int | None = None
    network_tx_bytes: int | None = None
    # The runner fills memory_total_bytes (the limit, else the machine's), disk_total_bytes
    # and processes (the tree's size).
    extra: dict[str, Any] = field(default_factory=dict)


class RunHost(Protocol):
    """What the runner calls back into. Implemented by the HTTP side."""

    async def prepare(self, run_id: str) -> RunSpec:
        """Lay out the working folder and return the spec; raise to fail the run."""
        ...

    def started(self, run_id: str, sandbox: str) -> None:
        """The process is running: status ``running``, ``started_at`` set, status event sent."""
        ...

    def output(self, run_id: str, type: str, data: dict[str, Any]) -> None:
        """One stream-JSON event (``type`` is its ``type`` field, ``data`` the whole object).

        Every run gets exactly one ``result`` before ``finish`` unless the agent printed its
        own, including runs that never started (prepare failed, cancelled while queued)."""
        ...

    def log(
        self,
        run_id: str,
        type: LogType,
        level: LogLevel,
        message: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """A log line: stderr lines come as ``("agent", "info", line, {"stream": "stderr"})``
        (no ``sequence``: they mirror no output event); lifecycle steps (sandbox, volumes,
        process started, exit code, timeout) as ``"system"``."""
        ...

    def metric(self, run_id: str, sample: MetricSample) -> None:
        """One resource sample of the agent's process tree."""
        ...

    async def finish(
        self, run_id: str, status: FinalStatus, error: str | None, exit_code: int | None
    ) -> None:
        """Record the end: new artifact version, checkpoint, then the ``complete`` event."""
        ...


class RunnerAPI(Protocol):
    """What the HTTP side calls. ``runner.Runner(host, max_concurrent=N, sandbox=None)``
    implements it; ``sandbox=None`` means detect (``sandbox.detect_sandbox()``)."""

    sandbox: str  # "bubblewrap" or "process", as /health reports it

    def submit(self, run_id: str) -> None:
        """Queue a pending run (FIFO); it starts when fewer than max_concurrent are running."""
        ...

    async def cancel(self, run_id: str) -> bool:
        """Drop a queued run, or SIGTERM a running one's process group (SIGKILL after 5 s).
        Returns True once ``host.finish(run_id, "cancelled", ...)`` has run (for a running
        run that is when its processes are gone: at most about 5 s). False if unknown here, or
        if it was already ending on its own (its process had exited): then it returns only once
        that end is recorded, so the caller reads the final status."""
        ...

    async def shutdown(self) -> None:
        """Kill every agent process (the server is stopping). Running runs are finished as
        ``failed``; queued ones are dropped without a call (they stay ``pending``)."""
        ...
