"""A cgroup per run: the kernel bounds its memory (``/tmp`` pages included), its processes and
its CPU, and ends every process of it at once.

Two layouts are used, whichever this machine lets the server write:

- cgroup v2 (``/sys/fs/cgroup/cgroup.controllers`` exists): groups below the server's own
  cgroup, when that one is delegated (writable, with ``memory``, ``pids`` and ``cpu`` to hand
  down). ``cgroup.kill`` ends a run.
- cgroup v1 (a hybrid system, as root): a group below the server's own group in each of the
  ``memory``, ``pids`` and ``cpu`` hierarchies; the v2 hierarchy mounted beside them
  (``/sys/fs/cgroup/unified``), where there is one, gives ``cgroup.kill`` too; otherwise a run
  ends by killing what its ``cgroup.procs`` lists until it lists nothing (its pids limit bounds
  how many a fork can add).

Every group of a server lives in a folder named after its data folder, ``vm0-local-<hash>``,
so a server restarted after a crash finds and ends what its predecessor's runs left. What
cannot be had stays an rlimit (see :mod:`vm0_notebook.local.runtime.sandbox`), and
:meth:`RunCgroups.limits` says which.

    cgroups = RunCgroups.detect("vm0-local-1a2b3c4d")
    group = cgroups.create("run_0123", memory_bytes=2**30, cpu=1.0, processes=4096)
    # in the child, before exec: group.join()
    group.kill(); group.remove()
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
# The CPU quota's period: cpu.max / cpu.cfs_quota_us are counted in it.
CPU_PERIOD_US = 100_000
# How many rounds of "kill what cgroup.procs lists" before giving up on a v1 group.
_KILL_ROUNDS = 200
_LIMITS = ("memory", "cpu", "processes")
_V1_CONTROLLERS = {"memory": "memory", "pids": "processes", "cpu": "cpu"}


def group_name(data_dir: Path | str) -> str:
    """The folder a server's run groups live in, the same for every server of ``data_dir``."""
    digest = hashlib.sha256(os.fsencode(os.path.realpath(data_dir))).hexdigest()[:12]
    return f"vm0-local-{digest}"


@dataclass(frozen=True)
class RunGroup:
    """One run's cgroups: one folder per hierarchy (v1) or a single one (v2)."""

    folders: tuple[Path, ...]
    # The folder whose cgroup.kill ends the run, if the kernel has one for it.
    kill_file: Path | None
    # The memory group (its OOM count says whether the run went over its limit).
    memory: Path | None
    v2: bool
    # The procs files the child writes itself into, opened by path in the child.
    procs_files: tuple[bytes, ...] = field(default=())

    def join(self) -> None:
        """Put the calling process into every group (run in the child, before exec)."""
        for path in self.procs_files:
            fd = os.open(path, os.O_WRONLY)
            try:
                os.write(fd, b"0")  # "0": the writing process itself
            finally:
                os.close(fd)

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for going over its memory limit."""
        if self.memory is None:
            return False
        name = "memory.events" if self.v2 else "memory.oom_control"
        with contextlib.suppress(OSError, ValueError):
            text = (self.memory / name).read_text()
            found = re.search(r"^oom_kill (\d+)$", text, re.M)
            return bool(found and int(found.group(1)) > 0)
        return False

    def pids(self) -> list[int]:
        """The processes in the run's groups now."""
        found: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill(self) -> bool:
        """SIGKILL every process of the run; True once none is left."""
        if self.kill_file is not None:
            with contextlib.suppress(OSError):
                self.kill_file.write_text("1")
        for _ in range(_KILL_ROUNDS):
            left = self.pids()
            if not left:
                return True
            for pid in left:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)  # a killed process leaves its group once the kernel reaps it
        return not self.pids()

    def remove(self) -> None:
        """Delete the run's folders (their processes must be gone)."""
        for folder in self.folders:
            _rmdir(folder)


@dataclass
class RunCgroups:
    """Which cgroups this server can make for its runs, and the making of them."""

    # v2: the folder run groups go in; v1: one such folder per hierarchy.
    parents: dict[str, Path] = field(default_factory=dict)
    # The v2 folder run groups go in for cgroup.kill on a v1 system, if there is one.
    kill_parent: Path | None = None
    v2: bool = False
    problem: str | None = None

    @classmethod
    def detect(cls, name: str, root: Path = ROOT) -> RunCgroups:
        """Find where this process may make run groups, making ``<own group>/<name>`` in each."""
        try:
            if (root / "cgroup.controllers").exists():
                return _detect_v2(root, name)
            return _detect_v1(root, name)
        except OSError as exc:
            return cls(problem=f"cgroups not usable here: {exc.strerror or exc}")

    def limits(self) -> dict[str, str]:
        """For each limit, ``"cgroup"`` where the kernel enforces it per run, else ``"rlimit"``."""
        if self.v2:
            have = set(_LIMITS) if self.parents else set()
        else:
            have = {_V1_CONTROLLERS[c] for c in self.parents}
        return {limit: "cgroup" if limit in have else "rlimit" for limit in _LIMITS}

    @property
    def kills(self) -> bool:
        """Whether a run's groups hold all its processes (the end of a run can use them)."""
        return bool(self.v2 and self.parents) or "pids" in self.parents

    def create(self, run_id: str, *, memory_bytes: int | None, cpu: float | None,
               processes: int) -> RunGroup | None:
        """Make the run's groups with its limits; None when there are no cgroups here."""
        if not self.parents:
            return None
        if self.v2:
            folder = self.parents["v2"] / run_id
            _fresh(folder)
            _write(folder / "pids.max", processes)
            if memory_bytes:
                _write(folder / "memory.max", memory_bytes)
                with contextlib.suppress(OSError):  # no swap to escape to
                    _write(folder / "memory.swap.max", 0)
            if cpu:
                _write(folder / "cpu.max", f"{max(int(cpu * CPU_PERIOD_US), 1000)} "
                                           f"{CPU_PERIOD_US}")
            return RunGroup((folder,), folder / "cgroup.kill", folder, True,
                            (os.fsencode(folder / "cgroup.procs"),))
        folders: list[Path] = []
        memory = None
        for controller, parent in self.parents.items():
            # A v1 group only where it bounds something: each costs a migration at the start,
            # and CPU groups are scheduled as one task each (see _detect_v1).
            if (controller == "memory" and not memory_bytes) or (controller == "cpu" and not cpu):
                continue
            folder = parent / run_id
            _fresh(folder)
            folders.append(folder)
            if controller == "memory":
                memory = folder
                if memory_bytes:
                    _write(folder / "memory.limit_in_bytes", memory_bytes)
                    with contextlib.suppress(OSError):  # where swap is accounted, none of it
                        _write(folder / "memory.memsw.limit_in_bytes", memory_bytes)
            elif controller == "pids":
                _write(folder / "pids.max", processes)
            elif controller == "cpu" and cpu:
                _write(folder / "cpu.cfs_period_us", CPU_PERIOD_US)
                _write(folder / "cpu.cfs_quota_us", max(int(cpu * CPU_PERIOD_US), 1000))
        kill_file = None
        if self.kill_parent is not None:
            folder = self.kill_parent / run_id
            _fresh(folder)
            folders.append(folder)
            kill_file = folder / "cgroup.kill"
        procs = tuple(os.fsencode(f / "cgroup.procs") for f in folders)
        return RunGroup(tuple(folders), kill_file, memory, False, procs)

    def close(self) -> None:
        """Remove this server's folders of run groups, if no run group is left in them."""
        for parent in self._all_parents():
            _rmdir(parent, tries=1)

    def end_leftovers(self) -> list[str]:
        """Kill and remove every run group a previous server of this data folder left.
        Returns the run ids whose groups still had processes."""
        names: set[str] = set()
        for parent in self._all_parents():
            with contextlib.suppress(OSError):
                names.update(entry.name for entry in os.scandir(parent) if entry.is_dir())
        killed = []
        for name in sorted(names):
            group = self.group(name)
            if group.pids():
                killed.append(name)
            group.kill()
            group.remove()
        return killed

    def group(self, run_id: str) -> RunGroup:
        """The groups of ``run_id`` as they are (made or not)."""
        folders = tuple(p / run_id for p in self._all_parents())
        memory = (self.parents.get("v2") or self.parents.get("memory"))
        kill_parent = self.parents.get("v2") or self.kill_parent
        return RunGroup(folders, kill_parent / run_id / "cgroup.kill" if kill_parent else None,
                        memory / run_id if memory else None, self.v2)

    def _all_parents(self) -> list[Path]:
        return [*self.parents.values(), *([self.kill_parent] if self.kill_parent else [])]


def _own_group(root: Path, hierarchy: str) -> str | None:
    """This process's group path in ``hierarchy`` (a v1 controller, or "" for v2)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            # v1 controllers may share a hierarchy ("cpu,cpuacct", mounted with links to it).
            if hierarchy in controllers.split(","):  # "" is the v2 line, "0::/path"
                return path
    return None


def _detect_v1(root: Path, name: str) -> RunCgroups:
    found = RunCgroups()
    problems = []
    for controller in _V1_CONTROLLERS:
        own = _own_group(root, controller)
        parent = root / controller / (own or "/").lstrip("/") / name
        try:
            if own is None or not (root / controller).is_dir():
                raise FileNotFoundError(errno.ENOENT, "no such hierarchy", str(root / controller))
            parent.mkdir(exist_ok=True)
            if controller == "cpu":
                # Under contention the scheduler weighs this folder as one task against the
                # machine's others, all runs together: weigh it as a full set of runs instead.
                _write(parent / "cpu.shares", 1024 * 2 * (os.cpu_count() or 1))
            found.parents[controller] = parent
        except OSError as exc:
            problems.append(f"{controller}: {exc.strerror or exc}")
    own = _own_group(root, "")
    unified = root / "unified" / (own or "/").lstrip("/") / name
    if own is not None and (root / "unified" / "cgroup.procs").exists():
        with contextlib.suppress(OSError):
            unified.mkdir(exist_ok=True)
            if (unified / "cgroup.kill").exists():
                found.kill_parent = unified
    found.problem = "; ".join(problems) or None
    return found


def _detect_v2(root: Path, name: str) -> RunCgroups:
    own = _own_group(root, "")
    if own is None:
        return RunCgroups(v2=True, problem="this process is in no cgroup v2 group")
    base = root / own.lstrip("/")
    wanted = {"memory", "pids", "cpu"}
    available = set((base / "cgroup.controllers").read_text().split())
    if not wanted <= available:
        missing = ", ".join(sorted(wanted - available))
        return RunCgroups(v2=True, problem=f"the server's cgroup {own} lacks {missing}")
    parent = base / name
    parent.mkdir(exist_ok=True)
    enable = " ".join(f"+{c}" for c in sorted(wanted))
    try:
        _write(base / "cgroup.subtree_control", enable)
    except OSError as exc:
        if exc.errno != errno.EBUSY:
            raise
        # A group with processes cannot hand controllers down: move them to a leaf first.
        leaf = base / f"{name}-server"
        leaf.mkdir(exist_ok=True)
        for pid in (base / "cgroup.procs").read_text().split():
            with contextlib.suppress(OSError):
                _write(leaf / "cgroup.procs", pid)
        _write(base / "cgroup.subtree_control", enable)
    _write(parent / "cgroup.subtree_control", enable)
    return RunCgroups(parents={"v2": parent}, v2=True)


def _fresh(folder: Path) -> None:
    """Make ``folder`` (and its parent, if a clean-up removed it); one left by an earlier run
    of the same id is emptied first."""
    folder.parent.mkdir(exist_ok=True)
    try:
        folder.mkdir()
    except FileExistsError:
        RunGroup((folder,), folder / "cgroup.kill", None, False).kill()


def _write(path: Path, value: object) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _rmdir(folder: Path, tries: int = 50) -> None:
    for _ in range(tries):
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return
            time.sleep(0.01)  # the last process is still being reaped
