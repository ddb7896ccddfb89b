"""Where to connect: explicit arguments, else ``VM0_API_URL`` / ``VM0_API_KEY``, else the
embedded local server (started on first use through ``vm0_notebook.local.daemon``).

    resolve()                      # ("http://127.0.0.1:PORT", "vm0_local_...") with no env set
    resolve(api_key="vm0_live_x")  # ("https://api.vm0.ai", "vm0_live_x")
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CLOUD_URL = "https://api.vm0.ai"

_PREFIX = re.compile(r"^([A-Za-z0-9]+_(?:[A-Za-z0-9]+_)?)")


def resolve(api_url: str | None = None, api_key: str | None = None) -> tuple[str, str | None]:
    """The server root URL and key to use; starts the local server if nothing is configured.

    A key without a URL means the VM0 cloud (which retired its public v1 API in March 2026:
    requests there raise ``APINotServedError`` saying so); a URL without a key is used as is
    (a local server with auth off, or one that will answer 401 with a clear message).
    """
    url = api_url or os.environ.get("VM0_API_URL") or None
    key = api_key or os.environ.get("VM0_API_KEY") or None
    if url is None and key is None:
        from .local.daemon import ensure_server

        url, key = ensure_server()
    return normalize_url(url or CLOUD_URL), key


def normalize_url(url: str) -> str:
    """The server root: no trailing slash and no ``/v1`` (the client adds it)."""
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://", url):
        raise ValueError(f"API URL must start with http:// or https://, got {url!r}")
    if url.endswith("/v1"):
        url = url[: -len("/v1")]
    return url


def mask_key(key: str | None) -> str:
    """A key as it may be shown: its prefix and last 4 characters at most.

        mask_key("vm0_live_abcdef123456")  # 'vm0_live_…3456'
    """
    if not key:
        return "<none>"
    match = _PREFIX.match(key)
    prefix = match.group(1) if match else ""
    rest = key[len(prefix):]
    if len(rest) < 12:  # too short to show any of it
        return prefix + "…"
    return f"{prefix}…{rest[-4:]}"


def cache_dir() -> Path:
    """The local content cache of downloaded volume/artifact versions.

    ``VM0_CACHE_DIR``, else ``$XDG_CACHE_HOME/vm0-notebook``, else ``~/.cache/vm0-notebook``.
    """
    explicit = os.environ.get("VM0_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "vm0-notebook"
