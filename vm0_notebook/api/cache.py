"""The local cache of downloaded versions: verified going in, read-only, checked coming out.

Layout, under the client's cache folder::

    versions/<server key>/<version id>/content/        the files, read-only
    versions/<server key>/<version id>/manifest.json   what they were when written
    versions/<server key>/.lock                        taken to add or remove an entry

The server key is a hash of the server's URL, so two servers never share an entry. An entry
appears by renaming a finished staging folder into place, so it is whole or absent.

Files and folders are read-only, but root (and ``chmod``) ignore that. Every lookup compares
each file's size, mtime and ctime with the manifest and the set of files with its list: a write,
a truncation, a new or removed file all change one of them, and ``ctime`` cannot be set back by
hand the way ``mtime`` can. This costs one ``stat`` per file; re-hashing would read the whole
version on every mount, which is what the cache exists to avoid. A changed entry is removed and
the version fetched again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no flock; an entry still appears by one atomic rename
    fcntl = None  # type: ignore[assignment]

MANIFEST = "manifest.json"
CONTENT = "content"
_STAGING = ".staging-"
# a staging folder untouched this long belongs to a process that died mid-download
_STALE_STAGING_S = 3600.0

Stats = dict[str, list[int]]


def server_key(api_url: str) -> str:
    """The cache folder name of a server: a short hash of its URL."""
    return hashlib.sha256(api_url.rstrip("/").encode()).hexdigest()[:16]


def tree_stats(root: Path) -> Stats | None:
    """``{path: [size, mtime_ns, ctime_ns]}`` of every file under ``root``; None if any entry
    is not a regular file or folder (a link, a device...)."""
    found: Stats = {}
    for folder, dirs, names in os.walk(root):
        base = Path(folder)
        for name in dirs + names:
            info = (base / name).lstat()
            if stat.S_ISDIR(info.st_mode):
                continue
            if not stat.S_ISREG(info.st_mode):
                return None
            rel = (base / name).relative_to(root).as_posix()
            found[rel] = [info.st_size, info.st_mtime_ns, info.st_ctime_ns]
    return found


def remove_tree(path: Path) -> None:
    """Delete a folder even where its read-only modes would stop a non-root user."""
    if not path.exists() and not path.is_symlink():
        return
    if path.is_symlink() or not path.is_dir():
        path.unlink()
        return
    for folder, _dirs, _names in os.walk(path):
        os.chmod(folder, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def tree_bytes(root: Path) -> int:
    """The bytes of the files under ``root`` (links not followed)."""
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            with suppress(OSError):  # removed meanwhile
                total += (Path(folder) / name).lstat().st_size
    return total


def _freeze(root: Path) -> None:
    """Make a tree read-only, keeping execute bits (folders stay enterable)."""
    for folder, dirs, names in os.walk(root):
        for name in names:
            path = Path(folder) / name
            os.chmod(path, (path.lstat().st_mode & 0o555) | 0o444)
        for name in dirs:
            os.chmod(Path(folder) / name, 0o555)
    os.chmod(root, 0o555)


@contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Hold ``folder/.lock`` exclusively (between processes too)."""
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:
        yield
        return
    with open(folder / ".lock", "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class VersionCache:
    """The downloaded versions of one server under ``root/<server key>/``."""

    def __init__(self, root: Path, api_url: str) -> None:
        self.api_url = api_url
        self.folder = root / server_key(api_url)

    def _entry(self, vid: str) -> Path:
        return self.folder / vid

    def lookup(self, vid: str | None) -> Path | None:
        """The read-only content folder of version ``vid`` if cached and unchanged, else None.

        An entry whose files were changed is removed here, so the caller downloads it again.
        """
        if not vid:
            return None
        entry = self._entry(vid)
        if not entry.is_dir():
            return None
        if self._intact(entry):
            with suppress(OSError):  # the entry's mtime is its last use, for clear(older_than=)
                os.utime(entry)
            return entry / CONTENT
        with locked(self.folder):
            if entry.is_dir() and not self._intact(entry):
                self._discard(entry)
        return None

    @staticmethod
    def _intact(entry: Path) -> bool:
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
            return tree_stats(entry / CONTENT) == manifest["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def _discard(self, entry: Path) -> None:
        # renamed first, so no reader ever sees a half-deleted entry
        trash = self.folder / f"{_STAGING}{uuid.uuid4().hex}"
        entry.rename(trash)
        remove_tree(trash)

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder to download into (files go in ``CONTENT``); removed unless
        committed."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stage = self.folder / f"{_STAGING}{uuid.uuid4().hex}"
        (stage / CONTENT).mkdir(parents=True)
        try:
            yield stage
        finally:
            remove_tree(stage)

    def commit(self, stage: Path, vid: str) -> Path:
        """Freeze a verified download and move it into place; returns its content folder.

        Under the lock: another process's intact entry for the same version wins, a changed
        one is replaced.
        """
        content = stage / CONTENT
        _freeze(content)
        manifest = {"server": self.api_url, "version_id": vid, "created_at": time.time(),
                    "files": tree_stats(content)}
        (stage / MANIFEST).write_text(json.dumps(manifest))
        os.chmod(stage / MANIFEST, 0o444)
        with locked(self.folder):
            final = self._entry(vid)
            if final.is_dir():
                if self._intact(final):
                    return final / CONTENT
                self._discard(final)
            stage.rename(final)
        return final / CONTENT


def _seconds(older_than: timedelta | float | None) -> float | None:
    if older_than is None:
        return None
    seconds = older_than.total_seconds() if isinstance(older_than, timedelta) else older_than
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"older_than must be a timedelta or seconds >= 0, not {older_than!r}")
    return float(seconds)


class Cache:
    """``client.cache``: the downloaded versions on this machine (from every server).

        client.cache.size()                          # bytes held
        client.cache.clear(older_than=timedelta(days=30))   # drop versions unused for 30 days
        client.cache.clear()                         # drop them all

    Both are plain calls on ``Client`` and ``AsyncClient`` alike (local disk only). Folders
    returned by ``mount()`` without ``to=`` live here: clearing removes them; the next
    ``mount()`` downloads again.
    """

    def __init__(self, client: Any) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"<Cache at {str(self.path)!r}>"

    @property
    def path(self) -> Path:
        """The folder the versions are kept in."""
        return Path(self._client.get_cache_dir()) / "versions"

    def size(self) -> int:
        """The bytes the cached versions take."""
        return tree_bytes(self.path) if self.path.is_dir() else 0

    def clear(self, older_than: timedelta | float | None = None) -> int:
        """Remove cached versions; returns the bytes freed.

        Args:
            older_than: only versions not mounted for this long (a ``timedelta`` or seconds);
                None removes all. Leftovers of interrupted downloads go after an hour.
        """
        limit = _seconds(older_than)
        if not self.path.is_dir():
            return 0
        now, freed = time.time(), 0
        for server in sorted(p for p in self.path.iterdir() if p.is_dir()):
            with locked(server):
                for entry in sorted(p for p in server.iterdir() if p.is_dir()):
                    age = now - entry.stat().st_mtime
                    if entry.name.startswith(_STAGING):
                        if age < max(limit or 0.0, _STALE_STAGING_S):
                            continue  # perhaps a download under way in another process
                    elif limit is not None and age < limit:
                        continue
                    freed += tree_bytes(entry)
                    remove_tree(entry)
        return freed
