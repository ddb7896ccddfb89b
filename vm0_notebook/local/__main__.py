"""``vm0-local`` / ``python -m vm0_notebook.local``: serve, status, stop.

    vm0-local serve [--host 127.0.0.1] [--port 0] [--data-dir DIR] [--token TOKEN]
                    [--max-concurrent-runs N]
    vm0-local status [--data-dir DIR]
    vm0-local stop [--data-dir DIR]

``serve`` binds the socket itself (so ``--port 0`` picks a free port), prints one line with the
URL once it accepts requests, and records url, token and pid in ``<data dir>/server.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vm0_notebook.local import daemon
from vm0_notebook.local.runtime.sandbox import bwrap_problem
from vm0_notebook.local.web.serving import listen, uvicorn_server

if TYPE_CHECKING:
    import socket


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vm0-local",
                                     description="The embedded VM0-compatible local server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server in the foreground")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve.add_argument("--token", help="bearer token (default: a new random one)")
    serve.add_argument("--max-concurrent-runs", type=int, metavar="N",
                       help="agent processes at once (default: twice the CPU count)")
    serve.add_argument("--sandbox", choices=("bubblewrap", "process"),
                       help="force a sandbox kind (default: bubblewrap where it works)")
    serve.add_argument("--heartbeat", type=float, default=None, help=argparse.SUPPRESS)
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
        return 0
    stopped = daemon.stop_server(data_dir)
    print("vm0-local: stopped" if stopped else "vm0-local: was not running")
    return 0


def serve(args: argparse.Namespace, data_dir: Path) -> int:
    """Run the server until SIGINT/SIGTERM."""
    if args.max_concurrent_runs is not None and args.max_concurrent_runs < 1:
        print("vm0-local: --max-concurrent-runs must be at least 1", file=sys.stderr)
        return 2
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # it holds the users' files
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
    token = args.token or "vm0_local_" + secrets.token_hex(16)
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
    from vm0_notebook.local.web.state import DEFAULT_HEARTBEAT_S

    app = create_app(
        data_dir, token, max_concurrent=args.max_concurrent_runs, sandbox=args.sandbox,
        heartbeat_s=args.heartbeat or DEFAULT_HEARTBEAT_S,
    )
    server = uvicorn_server(app)
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
        if sandbox != "bubblewrap" and (problem := bwrap_problem()):
            print(f"vm0-local: agents run as plain processes: {problem}", file=sys.stderr)
    with contextlib.suppress(asyncio.CancelledError):
        await task


if __name__ == "__main__":
    sys.exit(main())
