"""Unprivileged identities for agents when the server runs as root: one uid per run.

An agent run as root would own every root-owned file the sandbox shows it (``/proc/sys``
included), and in process mode the whole machine. So as root each run gets its own uid, with a
gid of the same number and no other group, picked at random from :data:`UID_RANGE` among ids
that ``/etc/passwd`` and ``/etc/group`` do not use. While the run lives the uid is held by a
lock in a machine-wide folder (no other server hands it out) and recorded in the server's data
folder, so a server restarted after a SIGKILL ends what the previous one's runs left behind.

Its own uid per run is what separates runs in process mode (``/proc/<pid>/environ`` is readable
by its owner only) and what makes the end of a run complete: ``kill(-1, SIGKILL)`` sent *as*
that uid reaches every process the uid runs, in one pass no ``fork`` can slip through.

    users = AgentUsers(data_dir / "agents")
    user = users.take("run_0123")        # AgentUser(uid=2031..., gid=2031...)
    users.hand_over(workdir, user)       # the working folder becomes the agent's
    users.release(user)                  # every process of the uid is killed
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Above what directory services hand out (SSSD's default goes to 2,000,200,000) and below
# systemd's foreign range at 0x7FFE0000 and the signed 32-bit limit.
UID_RANGE = (0x78000000, 0x7FFE0000)
# Machine-wide, so two servers (two data folders) never hand out the same uid at once.
LOCK_DIR = Path("/run/vm0-local/agent-uids")
# Where process-mode runs keep their working folders when the server is root: folders anyone
# may pass through but not list (0711), so that a run's uid reaches its own folder (0700, its
# own) while the data folder stays closed.
PASSABLE_DIR = Path("/var/lib/vm0-local")


@dataclass(frozen=True)
class AgentUser:
    """The uid and gid a run's processes have; no supplementary groups."""

    uid: int
    gid: int


class AgentUsers:
    """Hands out a fresh unprivileged uid per run, and ends every process of it afterwards.

    ``record_dir`` (in the data folder) holds one file per uid in use, named after it.
    """

    def __init__(self, record_dir: Path, lock_dir: Path | None = None) -> None:
        self.record_dir = record_dir
        self.lock_dir = lock_dir or _lock_dir()
        self._locks: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"AgentUsers(in_use={len(self._locks)})"

    def take(self, run_id: str) -> AgentUser:
        """A uid nobody uses, locked and recorded for ``run_id``."""
        self.record_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        while True:
            uid = UID_RANGE[0] + secrets.randbelow(UID_RANGE[1] - UID_RANGE[0])
            if _known(uid) or uid in self._locks:
                continue
            lock = self._lock(uid)
            if lock is None:
                continue
            self._locks[uid] = lock
            (self.record_dir / str(uid)).write_text(run_id + "\n")
            return AgentUser(uid, uid)

    def release(self, user: AgentUser, *, kill: bool = True) -> None:
        """Kill every process ``user`` runs (unless the caller already has: its cgroup held
        them all), then free the uid."""
        if kill:
            kill_all_of(user.uid)
        with contextlib.suppress(FileNotFoundError):
            (self.record_dir / str(user.uid)).unlink()
        lock = self._locks.pop(user.uid, None)
        if lock is not None:
            os.close(lock)

    def end_leftovers(self) -> list[int]:
        """At start-up: kill what the uids recorded by a previous server still run (unless
        another live server holds that uid now), and forget them. Returns those uids."""
        ended = []
        for path in sorted(self.record_dir.glob("[0-9]*")):
            uid = int(path.name)
            lock = self._lock(uid)
            if lock is not None:  # no live server uses it: the leftovers are ours
                kill_all_of(uid)
                os.close(lock)
                ended.append(uid)
            path.unlink(missing_ok=True)
        return ended

    def hand_over(self, workdir: Path, user: AgentUser, readonly: Iterable[Path] = ()) -> None:
        """Give ``workdir`` to ``user``: everything in it becomes theirs, except the read-only
        folders (volumes), which stay root's and are made readable."""
        keep = {os.path.realpath(p) for p in readonly}
        for root, dirs, files in os.walk(workdir):
            if os.path.realpath(root) in keep:
                dirs[:] = []
                _readable_tree(root)
                continue
            _own(root, user)
            for name in files:
                _own(os.path.join(root, name), user)
            for name in dirs:
                path = os.path.join(root, name)
                if os.path.islink(path):
                    _own(path, user)

    def take_back(self, workdir: Path) -> None:
        """After a run: the working folder's top is root's again, so no later holder of the
        run's uid enters it (what is inside may stay the uid's; the next run chowns it)."""
        with contextlib.suppress(OSError):
            os.chown(workdir, 0, 0)
            os.chmod(workdir, 0o700)

    def _lock(self, uid: int) -> int | None:
        self.lock_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.lock_dir / f"{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd


def passable_sessions_dir(name: str) -> Path | None:
    """``/var/lib/vm0-local/<name>/sessions``, made and checked: every folder on the way open
    to pass through, the three made here root's and 0711. None where that cannot be had."""
    folder = PASSABLE_DIR / name / "sessions"
    try:
        for path in (PASSABLE_DIR, PASSABLE_DIR / name, folder):
            path.mkdir(mode=0o711, exist_ok=True)
            info = os.lstat(path)
            if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
                return None  # not ours: someone else made it first
            os.chmod(path, 0o711)
        if any(not os.stat(p).st_mode & 0o001 for p in PASSABLE_DIR.parents):
            return None
    except OSError:
        return None
    return folder


def kill_all_of(uid: int) -> None:
    """SIGKILL every process whose real or saved uid is ``uid``, in one pass: ``kill -1`` run
    as that uid (the kernel walks all processes under one lock, so a fork cannot escape it)."""
    kill = shutil.which("kill", path="/usr/bin:/bin")
    argv = [kill, "-KILL", "-1"] if kill else [sys.executable, "-S", "-c",
                                                "import os; os.kill(-1, 9)"]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        subprocess.run(argv, user=uid, group=uid, extra_groups=[], stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                       check=False, cwd="/")


def _lock_dir() -> Path:
    if os.access("/run", os.W_OK):
        return LOCK_DIR
    return Path(tempfile.gettempdir()) / "vm0-local-agent-uids"


def _known(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return True
    return False


def _own(path: str, user: AgentUser) -> None:
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(path)
        if (info.st_uid, info.st_gid) != (user.uid, user.gid):
            os.lchown(path, user.uid, user.gid)


def _readable_tree(top: str) -> None:
    """Root keeps a read-only folder; everyone may read it (the data folder keeps others out)."""
    for root, _dirs, files in os.walk(top):
        with contextlib.suppress(OSError):
            os.chmod(root, 0o755)
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(OSError):
                mode = os.lstat(path).st_mode
                if stat.S_ISREG(mode):
                    os.chmod(path, 0o755 if mode & stat.S_IXUSR else 0o644)
