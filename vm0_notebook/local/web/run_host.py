"""The HTTP side's :class:`~vm0_notebook.local.runtime.spec.RunHost`: what the runner calls
back into.

``prepare`` lays out the run's session folder (volumes, the artifact folder, a restored
checkpoint) and builds its :class:`RunSpec`; ``started``/``output``/``log``/``metric`` record and
publish what happens; ``finish`` saves the artifact folder as a new version, records a
checkpoint, stores the end and sends ``complete``.

Secrets are held here in memory from ``POST /runs`` until the run ends, and reach only the
agent's environment (and the runner's masker). They are never written anywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vm0_notebook.contract import RESULT_TRUNCATED, SecretMasker
from vm0_notebook.local.runtime.frameworks import (
    framework_command,
    framework_finish,
    framework_of,
)
from vm0_notebook.local.runtime.output import AgentOutput
from vm0_notebook.local.runtime.spec import FinalStatus, LogLevel, LogType, MetricSample, RunSpec
from vm0_notebook.local.store.agents import parse_memory
from vm0_notebook.local.store.ids import new_id
from vm0_notebook.local.store.runs import INTERRUPTED
from vm0_notebook.local.web.broker import Frame, end_frames, status_frame

if TYPE_CHECKING:
    import sqlite3

    from vm0_notebook.local.store.agents import AgentStore
    from vm0_notebook.local.store.records import Records
    from vm0_notebook.local.store.runs import RunStore
    from vm0_notebook.local.store.storages import Storage
    from vm0_notebook.local.web.broker import Broker

logger = logging.getLogger(__name__)

PYTHON = "{python}"
# The most a session's working folder may hold when a run ends (it is saved as a checkpoint).
CHECKPOINT_LIMIT_BYTES = 8 * 1024**3
BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_TIMEOUT_S = 600.0


class Host:
    """Implements :class:`~vm0_notebook.local.runtime.spec.RunHost` over the server's stores."""

    def __init__(
        self, runs: RunStore, records: Records, storage: Storage, broker: Broker,
        agents: AgentStore, data_dir: Path, token: str | None = None,
    ) -> None:
        self.runs, self.records, self.storage, self.broker = runs, records, storage, broker
        self.agents = agents
        # The server's own token: masked in every run's output like the run's secrets.
        self._token = token
        self.sessions_dir = data_dir / "sessions"
        self.secrets: dict[str, dict[str, str]] = {}
        self._results: dict[str, tuple[str, bool]] = {}  # run -> (result text, truncated)
        self._prepared: set[str] = set()
        self._frameworks: dict[str, dict[str, Any]] = {}  # run id -> config, for framework runs

    def __repr__(self) -> str:  # never the secrets
        return f"Host(runs_with_secrets={len(self.secrets)})"

    def workdir(self, session_id: str) -> Path:
        """The working folder of a session, under ``sessions_dir``: runs of a session share it."""
        return self.sessions_dir / session_id

    # -- RunHost -----------------------------------------------------------------------------

    async def prepare(self, run_id: str) -> RunSpec:
        """Lay out the run's working folder and return its spec; raise when the agent cannot run."""
        run = self.runs.get(run_id)
        version = self.agents.version_by_id(run["agent_version_id"])
        if version is None:
            raise RuntimeError(f"agent '{run['agent_name']}' was deleted")
        config = json.loads(version["config"])
        if not config.get("command") and framework_of(config) is None:
            raise RuntimeError(
                f"agent '{run['agent_name']}' has no 'command' in its config: the local server "
                "runs an agent as the local process that 'command' names, or as a 'framework'"
            )
        self.log(run_id, "system", "info",
                 f"Agent '{run['agent_name']}' version {version['version_number']}"
                 f" ({version['id']})")
        workdir = self.workdir(run["session_id"])
        for line in await asyncio.to_thread(self._lay_out, run, workdir):
            self.log(run_id, "system", "info", line)
        self._prepared.add(run_id)
        framework = await asyncio.to_thread(framework_command, config, workdir)
        if framework is None:
            argv = tuple(sys.executable if arg == PYTHON else arg for arg in config["command"])
        else:
            self._frameworks[run_id] = config
            argv = framework.argv
            self.log(run_id, "system", "info",
                     f"Framework '{config['framework']}': {shlex.join(_shown(argv))}")

        secrets = self.secrets.get(run_id, {})
        env = {"PATH": BASE_PATH, "HOME": str(workdir), "LANG": "C.UTF-8"}
        env.update(framework.env if framework else {})
        env.update(json.loads(run["variables"]))
        env.update(secrets)
        # The runner leaves out VM0_PROMPT when it is too long for exec (it is on stdin too).
        env.update(VM0_RUN_ID=run_id, VM0_SESSION_ID=run["session_id"], VM0_WORKDIR=str(workdir),
                   VM0_PROMPT=run["prompt"])
        resources = config.get("resources") or {}
        volumes = json.loads(run["volumes"])
        return RunSpec(
            run_id=run_id,
            argv=argv,
            prompt=run["prompt"],
            workdir=workdir,
            env=env,
            secrets=(*secrets.values(), *([self._token] if self._token else [])),
            timeout_s=float(config.get("timeout_s") or DEFAULT_TIMEOUT_S),
            memory_bytes=parse_memory(resources.get("memory")),
            cpu=resources.get("cpu"),
            network=framework.network if framework else bool(config.get("network", False)),
            readonly=tuple(workdir / "volumes" / name for name in volumes),
            binds=framework.binds if framework else (),
        )

    def started(self, run_id: str, sandbox: str) -> None:
        """Mark the run ``running`` and send a status event (once, if it was still pending)."""
        if self.runs.mark_started(run_id, sandbox):
            self.broker.publish(run_id, status_frame(run_id, "running"))

    def output(self, run_id: str, type: str, data: dict[str, Any]) -> None:
        """Store one output event, publish it, and keep the ``result`` text for the end."""
        seq, frame = self.records.add_output(run_id, type, data)
        self.broker.publish(run_id, Frame("output", frame, seq))
        if type == "result" and isinstance(data.get("result"), str):
            self._results[run_id] = (data["result"], data.get(RESULT_TRUNCATED) is True)

    def log(
        self, run_id: str, type: LogType, level: LogLevel, message: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Queue one log line for the run (written in the next batch)."""
        self.records.add_log(run_id, type, level, message, metadata)

    def metric(self, run_id: str, sample: MetricSample) -> None:
        """Queue one resource sample for the run (written in the next batch)."""
        self.records.add_metric(run_id, sample)

    async def finish(
        self, run_id: str, status: FinalStatus, error: str | None, exit_code: int | None
    ) -> None:
        """Record the end: artifact version and checkpoint if prepared, status, end frames."""
        run = self.runs.get(run_id)
        checkpoint_id = artifact_version = None
        if run_id in self._prepared:
            config = self._frameworks.get(run_id)
            if config is not None:  # before the size check: it may leave the CLI's state lighter
                await self._framework_finish(run, config)
            folder = self.workdir(run["session_id"])
            too_big = await asyncio.to_thread(_over_limit, folder, checkpoint_limit())
            if too_big:
                self.log(run_id, "system", "error", too_big)
                status = "failed" if status == "completed" else status
                error = error or too_big
            else:
                artifact_version = await self._save_artifact(run)
                checkpoint_id = await self._save_checkpoint(run)
        self.records.flush()
        output, truncated = self._results.get(run_id, (None, False))
        self.runs.mark_finished(run_id, status, error, output, exit_code, checkpoint_id,
                                artifact_version, output_truncated=truncated)
        self._ended(run_id)

    def fail_interrupted(self) -> list[str]:
        """Mark every run still pending or running as failed: at start-up these are the runs
        of a server that died; at shut-down, the queued runs the runner dropped. Each gets a
        ``result`` event and a log line saying so. Returns their ids."""
        failed = []
        for run in self.runs.active():
            run_id = run["id"]
            error = f"{INTERRUPTED} (it was {run['status']}); create it again to retry"
            result = AgentOutput(self, run_id, SecretMasker()).result_event(
                is_error=True, error=error, duration_ms=0, session_id=run["session_id"])
            self.output(run_id, "result", result)
            self.log(run_id, "system", "error", error)
            self.records.flush()
            self.runs.mark_finished(run_id, "failed", error, error, None, None, None)
            self._ended(run_id)
            failed.append(run_id)
        return failed

    def _ended(self, run_id: str) -> None:
        """Forget what the run held in memory (its secrets first), then tell the streams."""
        self.secrets.pop(run_id, None)
        self._results.pop(run_id, None)
        self._prepared.discard(run_id)
        self._frameworks.pop(run_id, None)
        self.records.forget(run_id)
        final = self.runs.get(run_id)
        self.broker.publish(run_id, status_frame(run_id, final["status"]))
        for frame in end_frames(final):
            self.broker.publish(run_id, frame)

    # -- helpers -----------------------------------------------------------------------------

    def _lay_out(self, run: sqlite3.Row, workdir: Path) -> list[str]:
        """The session folder for this run (blocking); returns the lines to log."""
        lines = []
        session = self.runs.session(run["session_id"])
        if not workdir.is_dir():
            source = session["source_checkpoint_id"]
            if source:
                tree = self.runs.checkpoint(source)["tree_id"]
                staging = workdir.with_name(workdir.name + ".restoring")
                _remove(staging)
                self.storage.restore_tree(tree, staging)
                staging.rename(workdir)
                lines.append(f"Session {run['session_id']} restored from checkpoint {source}")
            else:
                workdir.mkdir(parents=True)
                lines.append(f"Session {run['session_id']} (new working folder)")
        else:
            lines.append(f"Session {run['session_id']} continued (working folder kept)")
        volumes_dir = workdir / "volumes"
        _remove(volumes_dir)
        for name, version_id in json.loads(run["volumes"]).items():
            self.storage.materialize(version_id, volumes_dir / name)
            lines.append(f"Volume '{name}' version {version_id[:12]} at volumes/{name}/")
        artifact_dir = workdir / "artifact"
        if run["artifact_name"]:
            _remove(artifact_dir)
            artifact_dir.mkdir()
            if run["artifact_version"]:
                self.storage.materialize(run["artifact_version"], artifact_dir)
                lines.append(f"Artifact '{run['artifact_name']}' version "
                             f"{run['artifact_version'][:12]} at artifact/")
            else:
                lines.append(f"Artifact '{run['artifact_name']}' starts empty at artifact/")
        elif artifact_dir.is_symlink() or not artifact_dir.is_dir():
            _remove(artifact_dir)
            artifact_dir.mkdir()
        return lines

    async def _framework_finish(self, run: sqlite3.Row, config: dict[str, Any]) -> None:
        secrets = tuple(self.secrets.get(run["id"], {}).values())
        try:
            await asyncio.to_thread(framework_finish, config, self.workdir(run["session_id"]),
                                    secrets)
        except Exception as exc:
            logger.exception("run %s: the framework's end step failed", run["id"])
            said = SecretMasker(secrets).mask(str(exc))
            self.log(run["id"], "system", "error", f"Framework '{config['framework']}': {said}")

    async def _save_artifact(self, run: sqlite3.Row) -> str | None:
        name = run["artifact_name"]
        if not name:
            return None
        folder = self.workdir(run["session_id"]) / "artifact"
        if folder.is_symlink():
            self.log(run["id"], "system", "warn",
                     "artifact/ was replaced by a symbolic link: not saved")
            return None
        try:
            version = await asyncio.to_thread(
                self.storage.commit_folder, "artifact", name, folder, f"Run {run['id']}", run["id"]
            )
        except Exception as exc:
            logger.exception("run %s: saving the artifact failed", run["id"])
            self.log(run["id"], "system", "error", f"Could not save artifact '{name}': {exc}")
            return None
        if version is None:
            self.log(run["id"], "system", "info", f"Artifact '{name}': no files, no version")
        else:
            self.log(run["id"], "system", "info",
                     f"Artifact '{name}' saved as version {version[:12]}")
        return version

    async def _save_checkpoint(self, run: sqlite3.Row) -> str | None:
        folder = self.workdir(run["session_id"])
        try:
            tree = await asyncio.to_thread(self.storage.save_tree, folder, ("volumes",))
        except Exception as exc:
            logger.exception("run %s: saving the checkpoint failed", run["id"])
            self.log(run["id"], "system", "error", f"Could not record a checkpoint: {exc}")
            return None
        checkpoint_id = new_id("chk")
        self.runs.add_checkpoint(run, checkpoint_id, tree)
        self.log(run["id"], "system", "info",
                 f"Checkpoint {checkpoint_id} recorded (content {tree[:12]})")
        return checkpoint_id


def _shown(argv: tuple[str, ...], limit: int = 80) -> list[str]:
    """``argv`` for a log line: long arguments (instructions) cut short."""
    return [arg if len(arg) <= limit else arg[: limit - 1] + "…" for arg in argv]


def checkpoint_limit() -> int:
    """The most a working folder may hold to be saved: ``$VM0_LOCAL_CHECKPOINT_LIMIT`` bytes,
    else :data:`CHECKPOINT_LIMIT_BYTES`."""
    value = os.environ.get("VM0_LOCAL_CHECKPOINT_LIMIT", "").strip()
    return int(value) if value.isdigit() else CHECKPOINT_LIMIT_BYTES


def _over_limit(folder: Path, limit: int) -> str | None:
    """Why ``folder`` is too big to save, or None. Files count at their apparent size: a
    sparse file takes no disk but would become a blob of that size."""
    total = 0
    for root, dirs, files in os.walk(folder):
        if root == str(folder):
            dirs[:] = [d for d in dirs if d != "volumes"]  # not saved: they are the volumes'
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
        if total > limit:
            return (f"The working folder holds over {_size(limit)}, the checkpoint limit: no "
                    "checkpoint or artifact version was saved. Delete what is not needed "
                    "(the next run of this session sees the folder as it is) and run again.")
    return None


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:g} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count:g} TiB"


def _remove(path: Path) -> None:
    """Delete a file, a link or a folder tree; never follows a link."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
