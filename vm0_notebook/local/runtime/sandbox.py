"""How an agent process is isolated: a bubblewrap sandbox where it works, else a process group.

:func:`detect_sandbox` says which one this machine gets; :func:`launch` turns a
:class:`~vm0_notebook.local.runtime.spec.RunSpec` into what to spawn; :func:`signal_tree` delivers a
signal to everything the agent started.

Under ``bubblewrap`` the agent sees a read-only system (``/usr``, ``/etc``, the Python install and
this package), its working folder as the only writable place, a private ``/tmp`` no larger than
its memory limit, its volumes mounted read-only, its own PID namespace and, unless the agent asks
for ``"network": true``, no network at all (not even the host's loopback; with it, the host's
whole network, loopback included). It dies with the server. Under ``process`` it is a plain
process group with a scrubbed environment and rlimits (address space, CPU time, core files);
where the server can make cgroups (:mod:`vm0_notebook.local.runtime.cgroups`), memory, processes
and CPU are bounded per run by the kernel instead, in both modes. Volumes there are only as
read-only as file permissions make them. Process mode runs only when asked for
(``VM0_LOCAL_SANDBOX=process``); where bubblewrap cannot run and it was not asked for, the
sandbox is ``unavailable`` and runs fail at once, saying why and what to do.

When the server runs as root the agent does not: it gets a uid of its own per run
(:mod:`vm0_notebook.local.runtime.agent_users`), no capabilities, no supplementary groups and
``no_new_privs``. Bubblewrap as root would map the sandbox's user onto the host's root, so there
bubblewrap itself runs privileged (mount, PID, IPC, UTS, cgroup and network namespaces) and
``setpriv`` drops to the run's uid just before the agent starts (in process mode too, so that
the child joins its cgroups while it is still root).

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
from typing import Any, Literal

from vm0_notebook.local.runtime.agent_users import AgentUser
from vm0_notebook.local.runtime.cgroups import RunGroup
from vm0_notebook.local.runtime.spec import RunSpec

SandboxKind = Literal["bubblewrap", "process", "unavailable"]

# Set to "process" to run agents without a sandbox (or "bubblewrap" to insist on one).
SANDBOX_ENV = "VM0_LOCAL_SANDBOX"
# The private /tmp of an agent without a memory limit (one with a limit gets that much).
DEFAULT_TMP_BYTES = 1024**3
# Mounted by bwrap_argv before anything else; no folder is made inside them.
_SYSTEM_MOUNTS = ("/usr", "/etc", "/proc", "/dev", "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                  "/libx32")
# Extra CPU seconds over timeout x cores before RLIMIT_CPU stops the agent: the wall-clock
# timeout is the real limit, this one only catches a runaway that escaped it.
_CPU_SLACK_S = 30
# Linux's MAX_ARG_STRLEN: execve fails with E2BIG on any single "KEY=value" this long.
_MAX_ENV_STRING = 128 * 1024
# The most processes a run may have: its pids cgroup's limit, else a per-user rlimit (which a
# uid per run makes per run; ignored for root).
MAX_PROCESSES = 4096


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
    # The uid/gid the agent runs as, when it is not the server's own (the server is root).
    user: AgentUser | None = None


def detect_sandbox() -> SandboxKind:
    """``"bubblewrap"`` if ``bwrap`` can really start a sandbox here, else ``"unavailable"``
    (runs then fail at once: see :func:`unavailable_error`).

    ``$VM0_LOCAL_SANDBOX=process`` opts in to unsandboxed agents; ``bubblewrap`` is the
    default. The probe runs once per server process.
    """
    forced = os.environ.get(SANDBOX_ENV, "").strip().lower()
    if forced == "process":
        return "process"
    if forced not in ("", "bubblewrap"):
        raise ValueError(f"{SANDBOX_ENV} must be 'process' or 'bubblewrap', not {forced!r}")
    return "unavailable" if bwrap_problem() else "bubblewrap"


def unavailable_error() -> str:
    """Why a run cannot start when there is no sandbox, and the three ways out."""
    return (
        f"No sandbox for agents: {bwrap_problem() or 'bubblewrap could not start'}. Install "
        "bubblewrap (Debian/Ubuntu: apt-get install bubblewrap), allow user namespaces "
        "(sysctl user.max_user_namespaces=15000, or kernel.unprivileged_userns_clone=1), or run "
        f"agents unsandboxed by starting the server with {SANDBOX_ENV}=process."
    )


@functools.cache
def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox agents here (None when it can): said once in the server's
    log when it falls back to plain processes, and by the tests that then skip."""
    bwrap = shutil.which("bwrap")
    if not sys.platform.startswith("linux"):
        return "bubblewrap needs Linux"
    if not bwrap:
        return "bwrap is not installed (Debian: apt-get install bubblewrap)"
    user = None
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            return "setpriv is not installed (Debian: apt-get install util-linux)"
        user = AgentUser(65534, 65534)  # nobody: the probe only starts Python
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
                bwrap_argv(probe, bwrap, user),
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


def isolation(
    sandbox: str, own_uids: bool, limits: dict[str, str], limits_problem: str | None = None
) -> dict[str, Any]:
    """How agents are isolated and bounded, as ``/health`` and ``vm0-local status`` say it:
    ``limits`` maps memory, cpu and processes to ``"cgroup"`` or ``"rlimit"``."""
    return {
        "sandbox": sandbox,
        "sandbox_problem": unavailable_error() if sandbox == "unavailable" else None,
        "agent_user": "own uid per run" if own_uids else "the server's user",
        "limits": limits,
        "limits_problem": limits_problem,
        "tmp": "tmpfs bounded by the memory limit" if sandbox == "bubblewrap" else "host /tmp",
        "network": "\"network\": true shares the host's network, loopback included",
    }


def launch(
    spec: RunSpec, sandbox: SandboxKind, user: AgentUser | None = None,
    group: RunGroup | None = None, enforced: Iterable[str] = (),
) -> Launch:
    """Build the spawn plan for ``spec`` under ``sandbox``, as ``user`` when given (the server
    is root: the agent must not be), in the cgroups ``group`` when given, whose kernel limits
    ``enforced`` (``"memory"``, ``"processes"``) then need no rlimit.

    The environment is exactly ``spec.env``: it reaches the agent through the process
    environment, never on a command line where ``ps`` would show secrets.
    """
    if sandbox == "unavailable":
        raise ValueError(unavailable_error())
    limits = _rlimits(spec, user, set(enforced) if group is not None else set())
    preexec = functools.partial(_child_setup, limits, _prctl(), group)
    env = {k: v for k, v in spec.env.items() if len(f"{k}={v}".encode()) < _MAX_ENV_STRING}
    dropped = tuple(k for k in spec.env if k not in env)
    if sandbox == "bubblewrap":
        # bwrap itself stays root (it mounts); setpriv drops to ``user`` inside.
        argv = tuple(bwrap_argv(spec, shutil.which("bwrap") or "bwrap", user))
        return Launch(argv, env, str(spec.workdir), preexec, spare_root=True, dropped=dropped)
    # setpriv, not a uid change in the child: the child joins its cgroups as root first.
    argv = (*drop_to(user), *spec.argv)
    return Launch(argv, env, str(spec.workdir), preexec, spare_root=False, dropped=dropped,
                  user=user)


def bwrap_argv(spec: RunSpec, bwrap: str = "bwrap", user: AgentUser | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``spec.argv`` in its sandbox (as ``user``)."""
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
    # /tmp counts against the agent's memory: a tmpfs is memory.
    tmp_bytes = int(spec.memory_bytes or DEFAULT_TMP_BYTES)
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(tmp_bytes), "--tmpfs", "/tmp"]
    readonly = [str(Path(folder).resolve()) for folder in spec.readonly]
    # The folders on the way to the mount points hold nothing but the way down.
    binds = [os.path.realpath(bind) for bind in spec.binds]
    # A non-root uid must be able to walk down to each bind (a CLI under /root, say).
    args += _open_ancestors([*_python_paths(), *binds, workdir])
    for path in _python_paths():
        args += ["--ro-bind", path, path]
    for path in binds:
        args += ["--ro-bind", path, path]
    args += ["--bind", workdir, workdir]
    for path in readonly:
        args += ["--ro-bind", path, path]
    # The sandbox's root is a tmpfs holding the mount points: make it read-only too.
    args += ["--remount-ro", "/"]
    args += ["--chdir", workdir]
    if user is None:
        args += ["--unshare-all", *(["--share-net"] if spec.network else [])]
    else:
        # No user namespace: bwrap would map the agent onto the host's root.
        args += ["--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
        args += [] if spec.network else ["--unshare-net"]
    args += ["--hostname", "vm0-sandbox", "--die-with-parent", "--new-session", "--"]
    return args + drop_to(user) + list(spec.argv)


def closed_on_the_way(argv0: str, path_env: str | None) -> str | None:
    """Which folder on the way to the command ``argv0`` (and, for the server's own Python, to
    its standard library) other users may not enter, said as a sentence; None if none.

    A process-mode agent of its own uid needs every folder there open: a Python under /root
    (pyenv) starts, but cannot find its files.
    """
    exe = os.path.abspath(shutil.which(argv0, path=path_env) or argv0)
    targets = [exe, os.path.realpath(exe)]
    if targets[1] == os.path.realpath(sys.executable):
        targets.append(os.path.realpath(sys.base_prefix) + "/lib")
    for target in targets:
        for folder in reversed(Path(target).parents):
            with contextlib.suppress(OSError):
                if not os.stat(folder).st_mode & 0o001:
                    return f"{folder}, on the way to {target}, is closed to other users"
    return None


def drop_to(user: AgentUser | None) -> list[str]:
    """The ``setpriv`` prefix that runs a command as ``user`` with no capability, no group
    but its own and ``no_new_privs`` (setuid files give nothing); empty for None."""
    if user is None:
        return []
    # A uid change clears the parent-death signal: "keep" sets it again, so the agent still
    # dies with the server.
    return ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups",
            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--pdeathsig=keep",
            "--"]


def _open_ancestors(paths: Iterable[str]) -> list[str]:
    """``--dir`` operations (mode 0755) for every folder above ``paths``, outermost first.

    bwrap makes the folders on the way to a mount point 0700 and root's: an agent that is not
    root could not walk down to its own working folder or to the Python it runs.
    """
    made: list[str] = []
    for path in paths:
        for parent in reversed(Path(path).parents):
            folder = str(parent)
            if folder in made or folder in ("/", "/tmp") or _under(folder, _SYSTEM_MOUNTS):
                continue
            made.append(folder)
    ops: list[str] = []
    for folder in made:
        ops += ["--perms", "0755", "--dir", folder]
    return ops


def _under(path: str, tops: Iterable[str]) -> bool:
    return any(path == top or path.startswith(top + "/") for top in tops)


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


def _rlimits(
    spec: RunSpec, user: AgentUser | None = None, enforced: set[str] | frozenset[str] = frozenset()
) -> list[tuple[int, int]]:
    """The rlimits for ``spec``, but none for what a cgroup ``enforced`` already: an address
    space limit breaks runtimes that reserve much more than they use (Node, Go, the JVM)."""
    import resource

    limits: list[tuple[int, int]] = [(resource.RLIMIT_CORE, 0)]
    if spec.memory_bytes and "memory" not in enforced:
        limits.append((resource.RLIMIT_AS, int(spec.memory_bytes)))
    cores = max(spec.cpu or 1.0, 1.0)
    limits.append((resource.RLIMIT_CPU, math.ceil(spec.timeout_s * cores) + _CPU_SLACK_S))
    # With a uid per run the per-user cap is per run; root ignores it.
    if "processes" not in enforced and (os.geteuid() != 0 or user is not None):
        limits.append((resource.RLIMIT_NPROC, MAX_PROCESSES))
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


def _child_setup(
    limits: list[tuple[int, int]], prctl: Callable[..., int] | None, group: RunGroup | None
) -> None:
    """Runs in the child between fork and exec: join the run's cgroups (still as the server's
    user: a failure fails the start), lower its limits, tie its life to ours."""
    import resource

    if group is not None:
        group.join()

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
