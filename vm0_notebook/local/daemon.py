"""Find, start and stop the background local server for notebooks.

The server records itself in ``<data dir>/server.json`` (``url``, ``token``, ``pid``; mode
0600). :func:`ensure_server` answers the live server, or starts ``python -m
vm0_notebook.local serve`` as a detached process (its own session, so it outlives the kernel
that started it) and waits until it answers. A file lock makes two kernels calling it at once
end with one server. A server that is still shutting down holds the data folder (``serve``
locks ``server.lock`` for its whole life): :func:`ensure_server` waits for it to let go, up to
:data:`RELEASE_TIMEOUT_S`, before it starts the next one. A server of another package version
(left running across an upgrade) is used as is, runs in flight and all, with one
:class:`LocalServerVersionWarning` saying how to restart it::

    from vm0_notebook.local.daemon import ensure_server, server_status, stop_server
    url, token = ensure_server()        # ("http://127.0.0.1:PORT", "vm0_local_...")
    server_status()                      # {"url", "pid", "sandbox", "version", "data_dir"} or None
    stop_server()                        # True if one was running
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE_FILE = "server.json"
LOG_FILE = "server.log"
SERVER_LOCK = "server.lock"  # held by ``serve`` while it runs; it writes its pid in it
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
# How long a new server waits for one that is shutting down (it first stops its runs, which
# may take the runner's kill grace, then drains its connections).
RELEASE_TIMEOUT_S = 30.0


class LocalServerVersionWarning(UserWarning):
    """The running local server is another version of vm0-notebook than the one imported."""


# (url, pid, version) of the servers already warned about: one warning per server per process.
_warned: set[tuple[str, int, str]] = set()


def default_data_dir() -> Path:
    """``$VM0_LOCAL_DIR``, else ``~/.vm0-notebook/local``."""
    return Path(os.environ.get("VM0_LOCAL_DIR") or "~/.vm0-notebook/local").expanduser()


def _dir(data_dir: Path | str | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else default_data_dir()


def read_state(data_dir: Path | str | None = None) -> dict[str, Any] | None:
    """What ``server.json`` says, or None when it is missing or unreadable."""
    try:
        state = json.loads((_dir(data_dir) / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not {"url", "token", "pid"} <= state.keys():
        return None
    return state


def write_state(data_dir: Path, url: str, token: str, pid: int) -> None:
    """Write ``server.json`` atomically, readable by its owner only."""
    path = data_dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{pid}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token, "pid": pid}, f)
    os.replace(tmp, path)


def remove_state(data_dir: Path, pid: int | None = None) -> None:
    """Delete ``server.json`` (only if it names ``pid``, when given)."""
    state = read_state(data_dir)
    if state is not None and pid is not None and state.get("pid") != pid:
        return
    with contextlib.suppress(FileNotFoundError):
        (data_dir / STATE_FILE).unlink()


def _health(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    import httpx

    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
        return response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def _live(data_dir: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(state, health)`` of the server that ``server.json`` names, if it answers as itself."""
    state = read_state(data_dir)
    if state is None:
        return None
    health = _health(state["url"])
    # The pid check guards against another process that took over a dead server's port.
    if health is None or health.get("pid") != state["pid"]:
        return None
    return state, health


def secure_folder(folder: Path) -> None:
    """Make the data folder its owner's alone, whoever creates it: the folder and every folder
    directly in it 0700, every file 0600 (what is deeper was made under umask 077)."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for entry in os.scandir(folder):
        if not entry.is_symlink():
            os.chmod(entry.path, 0o700 if entry.is_dir() else 0o600)


@contextlib.contextmanager
def _start_lock(data_dir: Path) -> Iterator[None]:
    secure_folder(data_dir)
    fd = os.open(data_dir / "daemon.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure_server(data_dir: Path | str | None = None) -> tuple[str, str]:
    """The running local server's ``(url, token)``; starts one in the background if needed.

    >>> url, token = ensure_server()   # doctest: +SKIP
    """
    folder = _dir(data_dir)
    with _start_lock(folder):
        state, health = _wait_for_release(folder) or _start(folder)
    _warn_if_other_version(state, health)
    return state["url"], state["token"]


def _wait_for_release(folder: Path) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The live server, or None once no server holds ``folder`` (one that is shutting down
    gets :data:`RELEASE_TIMEOUT_S` to exit)."""
    deadline = time.monotonic() + RELEASE_TIMEOUT_S
    while True:
        live = _live(folder)
        if live is not None:
            return live
        holder = _server_lock_holder(folder)
        if holder is None:
            return None
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"Another local server (pid {holder}) still holds {folder} and did not exit "
                f"within {RELEASE_TIMEOUT_S:.0f} s. Wait for it to exit, or end it with "
                f"`kill {holder}`, then try again."
            )
        time.sleep(0.05)


def _server_lock_holder(folder: Path) -> str | None:
    """The pid (as ``serve`` wrote it, else "unknown") of the server holding ``folder``."""
    fd = os.open(folder / SERVER_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
    finally:
        os.close(fd)  # closing releases the lock, if it was taken here
    return None


def _start(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Start a detached server on ``folder`` (no server holds it) and wait until it answers."""
    remove_state(folder)  # stale: its server is gone
    log_path = folder / LOG_FILE
    # The server logs there itself, rotating it; what reaches stdout/stderr (a crash) too.
    log = os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "vm0_notebook.local", "serve", "--data-dir", str(folder),
             "--log-file", str(log_path)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True,
        )
    finally:
        log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        live = _live(folder)
        if live is not None and live[0]["pid"] == process.pid:
            return live
        if process.poll() is not None:
            break
        time.sleep(0.05)
    if process.poll() is None:
        process.kill()
    raise RuntimeError(
        f"The local server did not start (see {log_path}):\n" + _tail(log_path)
    )


def _warn_if_other_version(state: dict[str, Any], health: dict[str, Any]) -> None:
    """Say so (once per server) when the server runs another version than this package: it
    keeps serving, since restarting it would end the runs in flight."""
    from vm0_notebook._version import __version__

    version = str(health.get("version") or "unknown")
    key = (state["url"], state["pid"], version)
    if version == __version__ or key in _warned:
        return
    _warned.add(key)
    warnings.warn(
        f"The local server at {state['url']} runs vm0-notebook {version}, but this package is "
        f"{__version__}. It keeps serving as it is; to restart it on {__version__}, run "
        "`%vm0 local stop` (or `vm0-local stop`): the next command starts a new one.",
        LocalServerVersionWarning,
        stacklevel=3,
    )


def server_status(data_dir: Path | str | None = None) -> dict[str, Any] | None:
    """``{"url", "pid", "sandbox", "version", "data_dir", ...}`` of the live server (with what
    ``/health`` says of its isolation and limits), else None."""
    folder = _dir(data_dir)
    live = _live(folder)
    if live is None:
        return None
    state, health = live
    extra = {k: v for k, v in health.items() if k not in ("status", "pid")}
    return {**extra, "url": state["url"], "pid": state["pid"],
            "sandbox": health.get("sandbox"), "version": health.get("version"),
            "data_dir": str(folder)}


def stop_server(data_dir: Path | str | None = None) -> bool:
    """Stop the live server (SIGTERM, SIGKILL after a grace period); True if one was running."""
    folder = _dir(data_dir)
    live = _live(folder)
    if live is None:
        remove_state(folder)
        return False
    pid = live[0]["pid"]
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    remove_state(folder, pid)
    return True


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie (exited, not yet reaped by its parent) is gone."""
    import psutil

    # Reap it if it is our own child (a server this process started), so it does not linger.
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
