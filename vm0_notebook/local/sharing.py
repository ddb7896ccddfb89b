"""Serving beyond loopback (a shared ``vm0-local`` for a class): which hosts stay on this
machine, the token such a server needs, and what it tells its operator it exposes.

    token, warnings = serve_token(args)     # ValueError: refuse to serve, with the reason
    if not is_loopback(args.host):
        print(exposure(url, data_dir), file=sys.stderr)
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

# shortest token a server reachable from other machines accepts
MIN_SHARED_TOKEN = 16


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine (``127.0.0.1``, ``::1``,
    ``localhost``); a wildcard (``0.0.0.0``) or any other address or name does not."""
    if host.lower() in ("localhost", "localhost.", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def read_token(path: Path) -> str:
    """The token in ``path`` (its first line), or ValueError saying what is wrong with it."""
    try:
        lines = path.expanduser().read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {path}: {exc}") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ValueError(f"the token file {path} is empty")
    return token


def serve_token(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The token to serve with, and warnings to print; ValueError for what cannot be served.

    A server bound beyond loopback is reachable by every machine that can route to it: it
    needs a token that its operator chose and hands out, not a random one, and one long enough.
    """
    if args.token and args.token_file:
        raise ValueError("give --token or --token-file, not both")
    warnings, mode = [], 0
    token = args.token
    if args.token_file:
        token = read_token(args.token_file)
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(args.token_file.expanduser().stat().st_mode)
        if mode & 0o077:
            warnings.append(f"the token file {args.token_file} is open to other users: "
                            f"chmod 600 {args.token_file}")
    if is_loopback(args.host):
        return token or "vm0_local_" + secrets.token_hex(16), warnings
    if not token:
        raise ValueError(
            f"--host {args.host} makes this server reachable from other machines: give it a "
            "token with --token-file FILE (or --token), and hand that token out as VM0_API_KEY "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))' > FILE)")
    if len(token) < MIN_SHARED_TOKEN:
        raise ValueError(f"a token for --host {args.host} must be at least {MIN_SHARED_TOKEN} "
                         "characters")
    return token, warnings


def exposure(url: str, data_dir: Path) -> str:
    """What a server bound beyond loopback exposes, and what to do about plain HTTP."""
    return (
        f"vm0-local: {url} is reachable from other machines. Anyone with the token can run "
        f"agents as commands on this machine and read and write every agent, run, volume and "
        f"artifact in {data_dir}. The traffic is plain HTTP (token included): put a TLS "
        "reverse proxy in front and --allow-host its name (see the README)."
    )


def is_wildcard(host: str) -> bool:
    """Whether ``host`` binds every interface (``0.0.0.0``, ``::``): no name of its own."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False


def allowed_hosts(host: str, extra: Iterable[str]) -> list[str]:
    """The names a server bound to ``host`` answers to besides loopback, for the Host-header
    check: ``host`` itself unless it is a wildcard, and each ``--allow-host``."""
    return [h for h in (host, *extra) if h and not is_wildcard(h)]
