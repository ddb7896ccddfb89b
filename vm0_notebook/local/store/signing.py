"""Signed storage URLs: usable without a bearer token until they expire, useless if altered.

A URL carries ``expires`` (Unix seconds) and ``sig``, an HMAC-SHA256 over the method, the path
and the expiry, keyed by a secret kept in the data folder (``signing.key``, mode 0600), so URLs
stay valid across a restart of the same server::

    signer = Signer(data_dir)
    url, expires_at = signer.url("http://127.0.0.1:8000", "GET", "/storage/blobs/ab12...")
    signer.verify("GET", "/storage/blobs/ab12...", request.query_params)   # or 403
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from hashlib import sha256
from pathlib import Path

from vm0_notebook.local.errors import forbidden

KEY_FILE = "signing.key"
DEFAULT_TTL_S = 3600


def _load_or_create_key(data_dir: Path) -> bytes:
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = data_dir / f".{KEY_FILE}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, secrets.token_hex(32).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            # link() never replaces: if another process won the race, its key is the key.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_bytes().strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} is damaged: delete it to make a new signing key")
    return key


def iso(ts: float) -> str:
    """Unix seconds as ISO-8601 UTC (``2024-01-01T00:00:00Z``)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Signer:
    """Makes and checks signed URLs for one data folder."""

    def __init__(self, data_dir: Path) -> None:
        self._key = _load_or_create_key(data_dir)

    def _sig(self, method: str, path: str, expires: int) -> str:
        msg = f"{method.upper()}\n{path}\n{expires}".encode()
        return hmac.new(self._key, msg, sha256).hexdigest()

    def url(
        self, base: str, method: str, path: str, ttl: float = DEFAULT_TTL_S,
        expires: int | None = None,
    ) -> tuple[str, str]:
        """``(absolute URL, expires_at ISO)`` for ``method path`` under ``base``."""
        expires = int(time.time() + ttl) if expires is None else expires
        sig = self._sig(method, path, expires)
        return f"{base.rstrip('/')}{path}?expires={expires}&sig={sig}", iso(expires)

    def verify(self, method: str, path: str, query: Mapping[str, str]) -> None:
        """Raise a 403 ``authorization_error`` unless the URL is intact and unexpired."""
        raw, sig = query.get("expires", ""), query.get("sig", "")
        try:
            expires = int(raw)
        except ValueError:
            raise forbidden("Invalid storage URL: missing or malformed signature") from None
        if not hmac.compare_digest(self._sig(method, path, expires), sig):
            raise forbidden("Invalid storage URL: the signature does not match")
        if expires < time.time():
            raise forbidden(f"Storage URL expired at {iso(expires)}; request a new one")
