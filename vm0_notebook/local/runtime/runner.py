"""Runs agents as sandboxed local processes: a FIFO queue, one process per run.

:class:`Runner` implements :class:`~.spec.RunnerAPI`. ``submit`` queues a run;
when fewer than ``max_concurrent`` are active the oldest queued run takes a slot: the host
prepares it, the runner spawns it in its sandbox with the prompt on stdin, reports what it prints
(:mod:`.output`) and what it uses (:mod:`.metrics`), and
ends it with a ``result`` event and ``host.finish``, whatever happened: exit, failure, timeout,
cancel, or a failure to start.

    runner = Runner(host, max_concurrent=4)     # on the server's event loop
    runner.submit("run_0123...")                # returns at once; the run starts when it can
    await runner.cancel("run_0123...")          # True once host.finish("cancelled") has run
    await runner.shutdown()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from vm0_notebook.contract import SecretMasker
from vm0_notebook.local.runtime import sandbox as sandboxes
from vm0_notebook.local.runtime.agent_users import AgentUser, AgentUsers
from vm0_notebook.local.runtime.cgroups import RunCgroups, RunGroup
from vm0_notebook.local.runtime.metrics import TreeSampler, sample_until
from vm0_notebook.local.runtime.output import AgentOutput
from vm0_notebook.local.runtime.spec import FinalStatus, LogLevel, MetricSample, RunHost, RunSpec

logger = logging.getLogger(__name__)

# Seconds between SIGTERM and SIGKILL when a run is cancelled or times out.
KILL_GRACE_S = 5.0
# After the agent exits, how long its pipes may stay open (held by a straggler that left its
# process group) before they are closed anyway.
_DRAIN_S = 5.0
_SHUTDOWN_S = 15.0


class Runner:
    """Queues runs and runs at most ``max_concurrent`` agent processes at once.

    ``sandbox`` is ``"bubblewrap"``, ``"process"`` or None to detect
    (:func:`vm0_notebook.local.runtime.sandbox.detect_sandbox`). Every method must be called on the
    event loop that the host's callbacks expect.
    """

    def __init__(
        self, host: RunHost, *, max_concurrent: int, sandbox: str | None = None,
        users: AgentUsers | None = None, cgroups: RunCgroups | None = None,
    ) -> None:
        if max_concurrent < 1:
            raise ValueError(f"max_concurrent must be at least 1, not {max_concurrent}")
        if sandbox not in (None, "bubblewrap", "process"):
            raise ValueError(f"sandbox must be 'bubblewrap', 'process' or None, not {sandbox!r}")
        if users is None and os.geteuid() == 0:
            # As root an agent never runs as root; the caller normally records its uids in
            # the data folder, for the clean-up after a crash.
            users = AgentUsers(Path(tempfile.gettempdir()) / f"vm0-local-agents-{os.getpid()}")
        self.users = users
        # Where the kernel bounds each run (none given: every limit is an rlimit).
        self.cgroups = cgroups or RunCgroups(problem="no cgroups were looked for")
        self.host = host
        self.max_concurrent = max_concurrent
        self.sandbox: str = sandbox or sandboxes.detect_sandbox()
        self._queue: dict[str, None] = {}  # insertion-ordered: FIFO with O(1) removal
        self._active: dict[str, _Job] = {}
        self._closed = False

    def __repr__(self) -> str:
        return (
            f"Runner(sandbox={self.sandbox!r}, running={len(self._active)}/"
            f"{self.max_concurrent}, queued={len(self._queue)})"
        )

    @property
    def queued(self) -> list[str]:
        """Run ids waiting for a slot, oldest first."""
        return list(self._queue)

    @property
    def active(self) -> list[str]:
        """Run ids holding a slot (being prepared, running, or finishing)."""
        return list(self._active)

    def submit(self, run_id: str) -> None:
        """Queue a pending run; it starts when fewer than ``max_concurrent`` are active.
        Submitting a run that is already queued or active does nothing."""
        if self._closed:
            raise RuntimeError("the runner is shut down")
        if run_id in self._queue or run_id in self._active:
            return
        self._queue[run_id] = None
        self._fill()

    async def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run and return once ``host.finish(run_id, "cancelled",
        ...)`` has run (for a running one: SIGTERM to its processes, SIGKILL after
        :data:`KILL_GRACE_S`). False if the run is unknown here, or was already ending on its
        own (its process had exited): then it returns once that end is recorded."""
        if run_id in self._queue:
            del self._queue[run_id]
            job = _Job(self, run_id)
            await job.end_unstarted("cancelled", "Run cancelled")
            return True
        job = self._active.get(run_id)
        if job is None or job.task is None:
            return False
        stopping = job.request_stop("cancelled")
        # Either way wait for the end, so the caller reads the final status. Shielded: a client
        # that hangs up must not abort the cancel half way.
        await asyncio.shield(job.task)
        return stopping

    async def shutdown(self) -> None:
        """Kill every agent process at once (the server is stopping). Running runs end as
        ``failed``; queued ones are dropped and stay ``pending`` for the host to deal with."""
        self._closed = True
        self._queue.clear()
        jobs = list(self._active.values())
        for job in jobs:
            job.request_stop("shutdown")
        tasks = [job.task for job in jobs if job.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=_SHUTDOWN_S)

    def _fill(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue and len(self._active) < self.max_concurrent and not self._closed:
            run_id = next(iter(self._queue))
            del self._queue[run_id]
            job = _Job(self, run_id)
            self._active[run_id] = job
            job.task = loop.create_task(job.run(), name=f"vm0-run-{run_id}")
            job.task.add_done_callback(lambda _t, r=run_id: self._release(r))

    def _release(self, run_id: str) -> None:
        self._active.pop(run_id, None)
        if not self._closed:
            self._fill()


class _Job:
    """One run from slot to ``host.finish``."""

    def __init__(self, runner: Runner, run_id: str) -> None:
        self.runner = runner
        self.host = runner.host
        self.run_id = run_id
        self.task: asyncio.Task[None] | None = None
        self.stop_reason: str | None = None  # "cancelled" or "shutdown"
        self._stop = asyncio.get_running_loop().create_future()
        self._exited = False
        self._finished = False

    def request_stop(self, reason: str) -> bool:
        """Ask the run to stop; False if its process already ended on its own."""
        if self._stop.done():
            return self.stop_reason == reason
        if self._exited:
            return False
        self.stop_reason = reason
        self._stop.set_result(None)
        return True

    async def run(self) -> None:
        """Prepare and run the agent to its end; any failure finishes the run as ``failed``."""
        try:
            spec = await self.host.prepare(self.run_id)
        except Exception as exc:
            await self.end_unstarted("failed", f"Could not prepare the run: {exc}")
            return
        if self.stop_reason is not None:
            await self.end_unstarted(*self._stopped_status(spec))
            return
        try:
            await self._execute(spec)
        except Exception as exc:
            logger.exception("run %s: the runner failed", self.run_id)
            if not self._finished:
                error = SecretMasker(spec.secrets).mask(f"Runner error: {exc}")
                with contextlib.suppress(Exception):
                    self._emit(AgentOutput(self.host, self.run_id, SecretMasker()).result_event(
                        is_error=True, error=error, duration_ms=0, session_id=None))
                await self._finish("failed", error, None)

    async def end_unstarted(self, status: FinalStatus, error: str) -> None:
        """End a run whose process never started: a result event, then ``finish``."""
        output = AgentOutput(self.host, self.run_id, SecretMasker())
        self._emit(output.result_event(is_error=True, error=error, duration_ms=0, session_id=None))
        await self._finish(status, error, None)

    async def _execute(self, spec: RunSpec) -> None:
        if self.runner.sandbox == "unavailable":
            error = sandboxes.unavailable_error()
            self._log("error", error)
            await self.end_unstarted("failed", error)
            return
        users, cgroups = self.runner.users, self.runner.cgroups
        user = users.take(self.run_id) if users is not None else None
        group = None
        try:
            group = await asyncio.to_thread(self._set_up, spec, user)
            status, error, exit_code = await self._run_agent(spec, user, group)
        finally:
            # Every process of the run, wherever it went: gone before the checkpoint. Its
            # cgroup holds them all where there is one; else every process of its uid.
            await asyncio.to_thread(_end_all, user, users, group, cgroups.kills, spec.workdir)
        await self._finish(status, error, exit_code)

    def _set_up(self, spec: RunSpec, user: AgentUser | None) -> RunGroup | None:
        """In a thread: the working folder becomes the run's uid's, the run's cgroups made."""
        if self.runner.users is not None and user is not None:
            self.runner.users.hand_over(spec.workdir, user, spec.readonly)
        try:
            return self.runner.cgroups.create(
                self.run_id, memory_bytes=spec.memory_bytes, cpu=spec.cpu,
                processes=sandboxes.MAX_PROCESSES)
        except OSError as exc:
            logger.warning("run %s: no cgroup, rlimits only: %s", self.run_id, exc)
            return None

    async def _run_agent(
        self, spec: RunSpec, user: AgentUser | None, group: RunGroup | None
    ) -> tuple[FinalStatus, str | None, int | None]:
        """Spawn the agent, report it to its end; the final status, error and exit code."""
        masker = SecretMasker(spec.secrets)
        output = AgentOutput(self.host, self.run_id, masker)
        enforced = [k for k, how in self.runner.cgroups.limits().items() if how == "cgroup"]
        plan = sandboxes.launch(spec, self.runner.sandbox, user,  # type: ignore[arg-type]
                                group, enforced)
        self._log("info", _sandbox_line(self.runner.sandbox, spec, user))
        for folder in spec.readonly:
            self._log("info", f"Volume mounted read-only: {_relative(folder, spec)}")
        for name in plan.dropped:
            self._log("warn", f"{name} left out of the environment: too long for exec")
        closed = _closed_hint(spec, user) if self.runner.sandbox == "process" else ""
        if closed:
            self._log("warn", closed.strip(" ()"))

        loop = asyncio.get_running_loop()
        started = time.monotonic()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: _AgentProtocol(loop, output),
                *plan.argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=plan.env,
                cwd=plan.cwd,
                start_new_session=True,
                preexec_fn=plan.preexec_fn,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as exc:
            error = masker.mask(f"Could not start the agent: {exc}")
            self._log("error", error)
            self._emit(output.result_event(is_error=True, error=error, duration_ms=0,
                                           session_id=spec.env.get("VM0_SESSION_ID")))
            return "failed", error, None

        pid = transport.get_pid()
        try:
            stdin = transport.get_pipe_transport(0)
            if stdin is not None:
                stdin.write(spec.prompt.encode("utf-8", "surrogatepass"))
                stdin.write_eof()
            self.host.started(self.run_id, self.runner.sandbox)
            self._log("info", f"Sandbox ready, agent process started (pid {pid})")
            sampler = TreeSampler(pid, spec.workdir, memory_limit=spec.memory_bytes)
            sampling = loop.create_task(sample_until(sampler, self._metric, protocol.exited))
            status, error = await self._watch(spec, plan, pid, protocol)
            duration_ms = int((time.monotonic() - started) * 1000)
            exit_code = transport.get_returncode()
            if group is not None:
                # What the agent left in its cgroup would hold its pipes open: end it now.
                await asyncio.to_thread(group.kill)
            if not plan.spare_root:
                # A sandbox's leftovers died with its PID namespace; a process group's may
                # have left the group. Found by their pipes or their inherited VM0_RUN_ID.
                run_var = spec.env.get("VM0_RUN_ID")
                marker = f"VM0_RUN_ID={run_var}" if run_var else None
                # Pipes named here, not in the thread: an fd closed meanwhile could be reused.
                pipes = sandboxes.pipe_names(_pipe_fds(transport))
                await asyncio.to_thread(sandboxes.kill_leftovers, pipes, marker)
            await protocol.drained(_DRAIN_S)
            await sampling
        finally:
            transport.close()

        over = group is not None and status != "cancelled" and group.oom_killed()
        if over:
            status, error = "failed", _over_memory(spec)
            self._log("error", error)
        elif status == "completed" and (exit_code != 0 or output.result_error is not None):
            status = "failed"
            # the agent's own error, else its last stderr lines then the exit code: a one-line
            # summary can name both
            exited, tail = f"Agent {_exit_text(exit_code)}", output.stderr_error()
            error = output.result_error or (f"{tail}\n{exited}" if tail else exited)
            error += closed
        self._log("info" if exit_code == 0 else "error", f"Agent {_exit_text(exit_code)}")
        if not output.saw_result:
            self._emit(output.result_event(
                is_error=status != "completed",
                error=error,
                duration_ms=duration_ms,
                session_id=spec.env.get("VM0_SESSION_ID"),
            ))
        return status, masker.mask(error) if error else None, exit_code

    async def _watch(
        self, spec: RunSpec, plan: sandboxes.Launch, pid: int, protocol: _AgentProtocol
    ) -> tuple[FinalStatus, str | None]:
        """Wait for the exit, a stop request or the timeout; stop the process for the latter."""
        done, _ = await asyncio.wait(
            [protocol.exited, self._stop], timeout=spec.timeout_s,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if protocol.exited in done:
            self._exited = True
            if not plan.spare_root:
                # Background processes the agent left behind in its group would keep its
                # pipes open; a sandbox's are gone already with its PID namespace.
                sandboxes.signal_tree(pid, signal.SIGKILL)
            if self._stop.done():  # a stop raced with the exit: the stop wins
                return self._stopped_status(spec)
            return "completed", None
        status, error = self._stopped_status(spec)
        if self.stop_reason is None:
            self._log("warn", f"{error}; stopping the agent")
        await self._terminate(pid, plan, protocol, immediate=self.stop_reason == "shutdown")
        self._exited = True
        return status, error

    async def _terminate(
        self, pid: int, plan: sandboxes.Launch, protocol: _AgentProtocol, *, immediate: bool
    ) -> None:
        if not immediate:
            sandboxes.signal_tree(pid, signal.SIGTERM, include_root=not plan.spare_root)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.exited), KILL_GRACE_S)
        if not protocol.exited.done():
            sandboxes.signal_tree(pid, signal.SIGKILL)
            await protocol.exited
        if not plan.spare_root:
            sandboxes.signal_tree(pid, signal.SIGKILL)  # what is left of its process group

    def _stopped_status(self, spec: RunSpec) -> tuple[FinalStatus, str]:
        if self.stop_reason == "cancelled":
            return "cancelled", "Run cancelled"
        if self.stop_reason == "shutdown":
            return "failed", "The local server stopped during the run"
        return "timeout", f"Run timed out after {spec.timeout_s:g} s"

    def _metric(self, sample: MetricSample) -> None:
        try:
            self.host.metric(self.run_id, sample)
        except Exception:
            logger.exception("run %s: recording a metric failed", self.run_id)

    def _emit(self, event: dict[str, Any]) -> None:
        self.host.output(self.run_id, event["type"], event)

    def _log(self, level: LogLevel, message: str) -> None:
        self.host.log(self.run_id, "system", level, message)

    async def _finish(self, status: FinalStatus, error: str | None, code: int | None) -> None:
        self._finished = True
        try:
            await self.host.finish(self.run_id, status, error, code)
        except Exception:
            logger.exception("run %s: recording its end failed", self.run_id)


class _AgentProtocol(asyncio.SubprocessProtocol):
    """Hands pipe data straight to :class:`AgentOutput`: no stream buffers, no per-line awaits,
    and the exit is known the moment it happens (``Process.wait`` would also wait for pipes)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, output: AgentOutput) -> None:
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self._open = {1, 2}
        self._closed: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        """Feed a chunk of stdout/stderr to the output; a failure there is logged, not raised."""
        try:
            self.output.feed(fd, data)
        except Exception:
            logger.exception("run %s: reporting output failed", self.output.run_id)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        """Flush a closed pipe's output; once both pipes are closed, the output is drained."""
        if fd not in self._open:
            return
        self._open.discard(fd)
        try:
            self.output.close(fd)
        except Exception:
            logger.exception("run %s: reporting output failed", self.output.run_id)
        if not self._open and not self._closed.done():
            self._closed.set_result(None)

    def process_exited(self) -> None:
        """Resolve ``exited`` the moment the process ends."""
        if not self.exited.done():
            self.exited.set_result(None)

    async def drained(self, timeout: float) -> bool:
        """Wait until stdout and stderr have closed (everything read), at most ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closed), timeout)
        return self._closed.done()


def _pipe_fds(transport: asyncio.SubprocessTransport) -> list[int]:
    """File descriptors of the agent's stdout and stderr pipes that are still open."""
    fds = []
    for fd in (1, 2):
        pipe = transport.get_pipe_transport(fd)
        handle = pipe.get_extra_info("pipe") if pipe is not None else None
        if handle is not None and not handle.closed:
            fds.append(handle.fileno())
    return fds


def _closed_hint(spec: RunSpec, user: AgentUser | None) -> str:
    """Why an agent of its own uid may fail to start here, with the way out; else ""."""
    if user is None or not spec.argv:
        return ""
    closed = sandboxes.closed_on_the_way(spec.argv[0], spec.env.get("PATH"))
    if closed is None:
        return ""
    return (f" (agents run as uid {user.uid}, not as root, and {closed}: install the command "
            "where other users can reach it, or run agents under bubblewrap)")


def _over_memory(spec: RunSpec) -> str:
    limit = f" of {spec.memory_bytes / 2**20:g} MiB" if spec.memory_bytes else ""
    return (f"The run went over its memory limit{limit} (its /tmp counts too) and the kernel "
            "killed it; raise the agent's resources.memory or use less.")


def _end_all(
    user: AgentUser | None, users: AgentUsers | None, group: RunGroup | None, complete: bool,
    workdir: Path,
) -> None:
    """Kill what is left of a run and free its uid, its working folder and its cgroups."""
    done = group is not None and group.kill() and complete
    if users is not None and user is not None:
        users.release(user, kill=not done)
        users.take_back(workdir)
    if group is not None:
        group.remove()


def _sandbox_line(sandbox: str, spec: RunSpec, user: AgentUser | None) -> str:
    who = f", uid {user.uid}, no capabilities" if user is not None else ""
    if sandbox == "bubblewrap":
        net = ("host network, loopback included" if spec.network else "no network")
        return f"Sandbox: bubblewrap (read-only system, writable working folder, {net}{who})"
    return ("Sandbox: none, agents run unsandboxed as a process group (scrubbed environment, "
            f"resource limits{who})")


def _relative(folder: Any, spec: RunSpec) -> str:
    try:
        return str(folder.relative_to(spec.workdir))
    except (AttributeError, ValueError):
        return str(folder)


def _exit_text(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
