"""``vm0-local`` / ``python -m vm0_notebook.local``: serve, status, stop.

    vm0-local serve [--host 127.0.0.1] [--port 0] [--data-dir DIR]
                    [--token TOKEN | --token-file FILE] [--allow-host NAME]...
                    [--max-concurrent-runs N]
    vm0-local status [--data-dir DIR]
    vm0-local stop [--data-dir DIR]

``serve`` binds the socket itself (so ``--port 0`` picks a free port), prints one line with the
URL once it accepts requests, and records url, token and pid in ``<data dir>/server.json``.

A ``--host`` other than loopback (a shared server for a class) needs a token chosen by whoever
runs it (``--token-file``, or ``--token``), says on stderr what it exposes, and answers to the
names in ``--allow-host`` as well as its own (a TLS reverse proxy's public name, say).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vm0_notebook.local import daemon
from vm0_notebook.local.runtime.sandbox import SANDBOX_ENV, unavailable_error
from vm0_notebook.local.sharing import allowed_hosts, exposure, is_loopback, serve_token
from vm0_notebook.local.web.serving import listen, uvicorn_server

if TYPE_CHECKING:
    import socket

# The bearer token, read from the environment so that it does not show on the command line.
TOKEN_ENV = "VM0_LOCAL_TOKEN"
# server.log rotates at this size.
LOG_BYTES = 10 * 2**20


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vm0-local",
                                     description="The embedded VM0-compatible local server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument("--token", default=os.environ.get(TOKEN_ENV) or None,
                       help=f"bearer token (default: ${TOKEN_ENV}, else a new random one); "
                       "visible to other users in the process list, prefer --token-file")
    serve.add_argument("--token-file", type=Path, metavar="FILE",
                       help="read the bearer token from FILE (its first line)")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="a host name clients reach the server by, e.g. a reverse proxy's "
                       "(repeatable)")
    serve.add_argument("--log-file", type=Path, default=None,
                       help=f"log there, rotated at {LOG_BYTES // 2**20} MiB (default: stderr)")
    serve.add_argument("--log-bytes", type=int, default=LOG_BYTES, metavar="N",
                       help="rotate --log-file at N bytes; three old files are kept")
    serve.add_argument("--max-concurrent-runs", type=int, metavar="N",
                       help="agent processes at once (default: twice the CPU count)")
    serve.add_argument("--sandbox", choices=("bubblewrap", "process"),
                       help="force a sandbox kind (default: bubblewrap where it works)")
    serve.add_argument("--heartbeat", type=float, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--header-timeout", type=float, default=None, help=argparse.SUPPRESS)
    serve.add_argument("--max-connections", type=int, default=None, help=argparse.SUPPRESS)
    for name, text in (("status", "is the server running, and where"),
                       ("stop", "stop the background server")):
        commands.add_parser(name, help=text)
    for sub in commands.choices.values():
        sub.add_argument("--data-dir", type=Path, default=None,
                         help="data folder (default: $VM0_LOCAL_DIR or ~/.vm0-notebook/local)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The ``vm0-local`` console script."""
    args = _parser().parse_args(argv)
    data_dir = (args.data_dir or daemon.default_data_dir()).expanduser().resolve()
    if args.command == "serve":
        return serve(args, data_dir)
    if args.command == "status":
        info = daemon.server_status(data_dir)
        if info is None:
            print(f"vm0-local: not running (data: {data_dir})")
            return 1
        print(f"vm0-local: running at {info['url']} (pid {info['pid']}, sandbox: "
              f"{info['sandbox']}, version {info['version']}, data: {data_dir})")
        for line in _isolation_lines(info):
            print(f"  {line}")
        return 0
    stopped = daemon.stop_server(data_dir)
    print("vm0-local: stopped" if stopped else "vm0-local: was not running")
    return 0


def _isolation_lines(info: dict[str, Any]) -> list[str]:
    """What ``status`` says of how agents are isolated and bounded (from ``/health``)."""
    lines = []
    if info.get("sandbox") == "process":
        lines.append("agents run unsandboxed (process mode was asked for)")
    if info.get("sandbox_problem"):
        lines.append(str(info["sandbox_problem"]))
    if info.get("agent_user"):
        lines.append(f"agents run as: {info['agent_user']}")
    limits = info.get("limits") or {}
    only_rlimits = sorted(name for name, how in limits.items() if how == "rlimit")
    if only_rlimits:
        why = f" ({info['limits_problem']})" if info.get("limits_problem") else ""
        lines.append(f"limits only as rlimits, no cgroup: {', '.join(only_rlimits)}{why}")
    enforced = sorted(name for name, how in limits.items() if how == "cgroup")
    if enforced:
        lines.append(f"limits per run in a cgroup: {', '.join(enforced)}")
    if info.get("network"):
        lines.append(str(info["network"]))
    return lines


def _log_to(path: Path, max_bytes: int) -> None:
    """Send the server's logging to ``path``, rotated at ``max_bytes`` (three old ones kept)."""
    import logging
    from logging.handlers import RotatingFileHandler

    handler = RotatingFileHandler(path, maxBytes=max_bytes, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.WARNING)


def serve(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the server until SIGINT/SIGTERM."""
    if args.max_concurrent_runs is not None and args.max_concurrent_runs < 1:
        print("vm0-local: --max-concurrent-runs must be at least 1", file=sys.stderr)
        return 2
    try:
        token, warnings = serve_token(args)
    except ValueError as exc:
        print(f"vm0-local: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(f"vm0-local: {warning}", file=sys.stderr)
    # Everything the server writes is its owner's alone: the database with its -wal and
    # -shm, the log, the blobs, the working folders. The folder is fixed if it is not.
    os.umask(0o077)
    daemon.secure_folder(data_dir)
    if args.log_bytes < 1024:
        print("vm0-local: --log-bytes must be at least 1024", file=sys.stderr)
        return 2
    if args.log_file is not None:
        _log_to(args.log_file, args.log_bytes)
    # One server per data folder: two would both write the database and each would fail the
    # other's runs as interrupted. The lock lives as long as this process.
    lock = os.open(data_dir / "server.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"vm0-local: another server is already using {data_dir}", file=sys.stderr)
        return 1
    # Who holds it, for the message of a caller that waits for it in vain (daemon.py).
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        print(f"vm0-local: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    try:
        asyncio.run(_serve(sock, url, token, data_dir, args))
    finally:
        daemon.remove_state(data_dir, os.getpid())
        os.close(lock)
    return 0


async def _serve(
    sock: socket.socket, url: str, token: str, data_dir: Path, args: argparse.Namespace
) -> None:
    from vm0_notebook.local.web.app import create_app
    from vm0_notebook.local.web.serving import HEADER_TIMEOUT_S, MAX_CONNECTIONS
    from vm0_notebook.local.web.state import DEFAULT_HEARTBEAT_S

    app = create_app(
        data_dir, token, max_concurrent=args.max_concurrent_runs, sandbox=args.sandbox,
        heartbeat_s=args.heartbeat or DEFAULT_HEARTBEAT_S,
        allowed_hosts=allowed_hosts(args.host, args.allow_host),
    )
    # Without its own log config uvicorn's loggers reach the rotating file too.
    server = uvicorn_server(app, header_timeout_s=args.header_timeout or HEADER_TIMEOUT_S,
                            max_connections=args.max_connections or MAX_CONNECTIONS,
                            **({"log_config": None} if args.log_file else {}))
    # uvicorn re-raises the signal that stopped it once it is done; these make that a no-op,
    # so the clean-up (server.json, the lock) still runs and the exit status is 0.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        daemon.write_state(data_dir, url, token, os.getpid())
        sandbox = app.state.local.sandbox
        print(f"vm0-local: serving {url} (sandbox: {sandbox}, data: {data_dir})", flush=True)
        if not is_loopback(args.host):
            print(exposure(url, data_dir), file=sys.stderr, flush=True)
        if sandbox == "process":
            print("vm0-local: agents run unsandboxed, as plain processes "
                  f"({SANDBOX_ENV}=process)", file=sys.stderr)
        elif sandbox == "unavailable":
            print(f"vm0-local: runs will fail: {unavailable_error()}", file=sys.stderr)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    sys.exit(main())
