"""How an agent process is isolated: a bubblewrap sandbox where it works, else a process group.

:func:`detect_sandbox` says which one this machine gets; :func:`launch` turns a
:class:`~vm0_notebook.local.runtime.spec.RunSpec` into what to spawn; :func:`signal_tree` delivers a
signal to everything the agent started.

Under ``bubblewrap`` the agent sees a read-only system (``/usr``, ``/etc``, the Python install and
this package), its working folder as the only writable place, a private ``/tmp``, its volumes
mounted read-only, its own PID namespace and, unless the agent asks for ``"network": true``, no
network at all (not even the host's loopback). It dies with the server. Under ``process`` it is a
plain process group with a scrubbed environment and rlimits (address space, CPU time, core
files); volumes there are only as read-only as file permissions make them.

    >>> detect_sandbox()          # doctest: +SKIP
    'bubblewrap'
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vm0_notebook.local.runtime.spec import RunSpec

SandboxKind = Literal["bubblewrap", "process"]

# Set to "process" (or "bubblewrap") to override detection, e.g. to test the fallback path.
SANDBOX_ENV = "VM0_LOCAL_SANDBOX"
# Extra CPU seconds over timeout x cores before RLIMIT_CPU stops the agent: the wall-clock
# timeout is the real limit, this one only catches a runaway that escaped it.
_CPU_SLACK_S = 30
# Linux's MAX_ARG_STRLEN: execve fails with E2BIG on any single "KEY=value" this long.
_MAX_ENV_STRING = 128 * 1024
# Without cgroups the best fork-bomb guard is a per-user process cap (ignored for root).
_NPROC_CAP = 4096


@dataclass(frozen=True)
class Launch:
    """What to spawn for one run: argv, its whole environment, cwd, and limits to apply."""

    argv: tuple[str, ...]
    env: dict[str, str]
    cwd: str
    preexec_fn: Callable[[], None] | None
    # Whether signals must spare the root process until the final SIGKILL: a bubblewrap
    # parent that dies takes the whole sandbox with it, leaving the agent no time to stop.
    spare_root: bool
    # Variables left out because exec refuses strings that long (a huge VM0_PROMPT: the
    # prompt still arrives on stdin).
    dropped: tuple[str, ...] = ()


def detect_sandbox() -> SandboxKind:
    """``"bubblewrap"`` if ``bwrap`` can really start a sandbox here, else ``"process"``.

    ``$VM0_LOCAL_SANDBOX`` (``process`` or ``bubblewrap``) overrides the probe; the probe itself
    runs once per server process.
    """
    forced = os.environ.get(SANDBOX_ENV, "").strip().lower()
    if forced in ("process", "bubblewrap"):
        return forced  # type: ignore[return-value]
    if forced:
        raise ValueError(f"{SANDBOX_ENV} must be 'process' or 'bubblewrap', not {forced!r}")
    return "process" if bwrap_problem() else "bubblewrap"


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox agents here (None when it can): said once in the server's
    log when it falls back to plain processes, and by the tests that then skip."""
    bwrap = shutil.which("bwrap")
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    if not bwrap:
        return "bwrap is not installed (Debian: apt-get install bubblewrap)"
    with tempfile.TemporaryDirectory(prefix="vm0-sandbox-probe-") as tmp:
        probe = RunSpec(
            run_id="probe",
            argv=(sys.executable, "-c", "import vm0_notebook.local.runtime.spec"),
            prompt="",
            workdir=Path(tmp),
            env={"PATH": "/usr/bin:/bin"},
        )
        try:
            done = subprocess.run(
                bwrap_argv(probe, bwrap),
                env=probe.env,
                cwd=tmp,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=20,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"bwrap did not run: {exc}"
    if done.returncode != 0:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        return f"bwrap failed: {said[-1] if said else f'exit status {done.returncode}'}"
    return None


def launch(spec: RunSpec, sandbox: SandboxKind) -> Launch:
    """Build the spawn plan for ``spec`` under ``sandbox``.

    The environment is exactly ``spec.env``: it reaches the agent through the process
    environment, never on a command line where ``ps`` would show secrets.
    """
    preexec = functools.partial(_child_setup, _rlimits(spec), _prctl())
    env = {k: v for k, v in spec.env.items() if len(f"{k}={v}".encode()) < _MAX_ENV_STRING}
    dropped = tuple(k for k in spec.env if k not in env)
    if sandbox == "bubblewrap":
        argv = tuple(bwrap_argv(spec, shutil.which("bwrap") or "bwrap"))
        return Launch(argv, env, str(spec.workdir), preexec, spare_root=True, dropped=dropped)
    argv = tuple(spec.argv)
    return Launch(argv, env, str(spec.workdir), preexec, spare_root=False, dropped=dropped)


def bwrap_argv(spec: RunSpec, bwrap: str = "bwrap") -> list[str]:
    """The ``bwrap`` command line that runs ``spec.argv`` in its sandbox."""
    workdir = str(Path(spec.workdir).resolve())
    args = [bwrap, "--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    args += ["--ro-bind", "/etc", "/etc"]
    for secret_file in ("/etc/shadow", "/etc/gshadow"):
        if os.path.exists(secret_file):
            args += ["--ro-bind", "/dev/null", secret_file]
    # Mounts stack in order: the private /tmp comes before the binds below, so a Python, a
    # checkout or a data folder that lives under /tmp stays visible on top of it.
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
    for path in _python_paths():
        args += ["--ro-bind", path, path]
    args += ["--bind", workdir, workdir]
    for folder in spec.readonly:
        path = str(Path(folder).resolve())
        args += ["--ro-bind", path, path]
    # The sandbox's root is a tmpfs holding the mount points: make it read-only too.
    args += ["--remount-ro", "/"]
    args += ["--chdir", workdir, "--unshare-all", "--hostname", "vm0-sandbox"]
    if spec.network:
        args.append("--share-net")
    args += ["--die-with-parent", "--new-session", "--", *spec.argv]
    return args


@functools.cache  # fixed for the server's life; looked up once, not on every run
def _python_paths() -> tuple[str, ...]:
    """Folders the agent's Python needs: the interpreter's prefixes, site-packages, this package."""
    import vm0_notebook.contract  # a leaf: the root package exposes api too

    candidates = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
    candidates.append(os.path.dirname(os.path.realpath(sys.executable)))
    candidates += [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
    # An editable install imports from the source tree: bind only the package, not the tree.
    candidates.append(os.path.dirname(vm0_notebook.__file__))
    return tuple(_outermost(os.path.realpath(p) for p in candidates if p and os.path.isdir(p)))


def _outermost(paths: Iterable[str]) -> list[str]:
    """Drop paths already covered by another one (or by /usr), keeping a stable order."""
    kept: list[str] = []
    for path in sorted(set(paths), key=len):
        if path == "/" or any(path == k or path.startswith(k + "/") for k in ["/usr", *kept]):
            continue
        kept.append(path)
    return kept


def _rlimits(spec: RunSpec) -> list[tuple[int, int]]:
    import resource

    limits: list[tuple[int, int]] = [(resource.RLIMIT_CORE, 0)]
    if spec.memory_bytes:
        limits.append((resource.RLIMIT_AS, int(spec.memory_bytes)))
    cores = max(spec.cpu or 1.0, 1.0)
    limits.append((resource.RLIMIT_CPU, math.ceil(spec.timeout_s * cores) + _CPU_SLACK_S))
    if os.geteuid() != 0:
        limits.append((resource.RLIMIT_NPROC, _NPROC_CAP))
    return limits


@functools.cache
def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, looked up once here: done in every child, loading ctypes would double
    the time the server's event loop waits for each agent's exec."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(limits: list[tuple[int, int]], prctl: Callable[..., int] | None) -> None:
    """Runs in the child between fork and exec: lower its limits, tie its life to ours."""
    import resource

    if prctl is not None:
        # PR_SET_PDEATHSIG: a killed server must not leave agents running (bwrap does the
        # same for the sandbox with --die-with-parent).
        prctl(1, signal.SIGKILL)
    # The address-space limit goes last: this child is still a copy of the server, whose
    # address space may already be larger, so nothing may need new memory after it.
    for which, value in sorted(limits, key=lambda limit: limit[0] == resource.RLIMIT_AS):
        hard = resource.getrlimit(which)[1]
        soft = _cap(value, hard)
        # Hard limits drop too, so the agent cannot raise its own. CPU keeps a few seconds
        # between soft and hard: SIGXCPU first, SIGKILL after.
        new_hard = _cap(soft + 5, hard) if which == resource.RLIMIT_CPU else soft
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (soft, new_hard))


def _cap(value: int, hard: int) -> int:
    import resource

    return value if hard == resource.RLIM_INFINITY else min(value, hard)


def signal_tree(pid: int, sig: int, *, include_root: bool = True) -> None:
    """Send ``sig`` to the process group led by ``pid`` and to every descendant of ``pid``.

    Descendants are found by walking the process tree, so ones that left the group (a new
    session, a sandbox's own session) are reached too. ``include_root=False`` spares ``pid``
    itself and its group.
    """
    import psutil

    try:
        descendants = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        descendants = []
    if include_root:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
    for proc in descendants:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(sig)


def pipe_names(fds: Iterable[int]) -> set[str]:
    """How ``/proc/<pid>/fd`` names the pipes open as ``fds`` here (``pipe:[inode]``)."""
    names = set()
    for fd in fds:
        with contextlib.suppress(OSError):
            names.add(f"pipe:[{os.fstat(fd).st_ino}]")
    return names


def kill_leftovers(pipes: set[str], env_marker: str | None = None) -> int:
    """SIGKILL every other process that holds one of ``pipes`` (from :func:`pipe_names`), or
    whose environment holds the line ``env_marker`` (``VM0_RUN_ID=run_...``). Linux only.

    After an agent exits, a descendant that left its process group (``setsid cmd &``) is no
    longer in its tree; it is found by the agent's stdout/stderr it still holds, or by the
    environment it inherited. Returns how many processes were signalled.
    """
    marker = b"\0" + env_marker.encode() + b"\0" if env_marker else None
    if not (pipes or marker) or not os.path.isdir("/proc/self/fd"):
        return 0
    me, killed = os.getpid(), 0
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        if _holds(name, pipes) or _inherited(name, marker):
            with contextlib.suppress(OSError):
                os.kill(int(name), signal.SIGKILL)
                killed += 1
    return killed


def _holds(pid: str, pipes: set[str]) -> bool:
    if not pipes:
        return False
    try:
        links = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for link in links:
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{link}") in pipes:
                return True
    return False


def _inherited(pid: str, marker: bytes | None) -> bool:
    if marker is None:
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return marker in b"\0" + f.read()
    except OSError:
        return False
