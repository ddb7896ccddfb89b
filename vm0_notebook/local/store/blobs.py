"""The content-addressed file store: each file kept once, under the SHA-256 of its bytes.

A blob is written to a temporary file, hashed on the way in, fsync'd and only then renamed to
``<root>/<sha[:2]>/<sha[2:]>``, so a blob that exists is always whole. A write that fails or
whose client goes away drops its temporary file at once; a server killed mid-write leaves one,
removed when the next server opens the store (one server per data folder, so no temporary file
is then in use)::

    store = BlobStore(data_dir / "blobs")
    with store.writer() as w:
        for chunk in chunks:
            w.write(chunk)
        sha = w.commit()          # not reached: the temporary file is removed
    store.path(sha).read_bytes()
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

CHUNK = 1 << 20
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
# An unreferenced blob this old belongs to no request in flight (see Storage's sweep).
STALE_TMP_S = 3600.0


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """One blob on its way in: ``write`` chunks, then ``commit`` (or leave the ``with``)."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp, prefix="in-")
        self._tmp = Path(name)
        self._file = os.fdopen(fd, "wb")
        self._hash = hashlib.sha256()
        self._done = False
        self.size = 0

    def write(self, chunk: bytes) -> None:
        """Append bytes (hashed and counted on the way)."""
        self._file.write(chunk)
        self._hash.update(chunk)
        self.size += len(chunk)

    @property
    def sha256(self) -> str:
        """The hex SHA-256 of what was written so far."""
        return self._hash.hexdigest()

    def commit(self) -> str:
        """Make the blob durable and visible; returns its SHA-256."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        sha = self.sha256
        target = self._store.path(sha)
        # From here the temporary name is ours no more (a later writer may reuse it).
        self._done = True
        if target.exists():
            # Same bytes already kept; refresh the time so a sweep never takes a blob in use.
            self._tmp.unlink()
            with contextlib.suppress(OSError):
                os.utime(target)
            return sha
        target.parent.mkdir(exist_ok=True)
        os.replace(self._tmp, target)
        _fsync_dir(target.parent)
        return sha

    def discard(self) -> None:
        """Drop the temporary file, unless it was committed."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(
        self, typ: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # Whatever was not committed is dropped: a blob is either whole or absent.
        self.discard()


class BlobStore:
    """Files by SHA-256 under ``root``; safe to use from several threads at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        # Opened at the server's start: every temporary file was left by a server that died.
        for leftover in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                leftover.unlink()

    def path(self, sha: str) -> Path:
        """Where blob ``sha`` is (or would be) kept."""
        return self.root / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        """Whether ``sha`` is a SHA-256 in hex whose blob is kept."""
        return bool(SHA_RE.match(sha)) and self.path(sha).is_file()

    def size(self, sha: str) -> int:
        """The blob's size in bytes."""
        return self.path(sha).stat().st_size

    def writer(self) -> BlobWriter:
        """A new blob to write; use it as a context manager."""
        return BlobWriter(self)

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy a file in (read once, hashed on the way); returns ``(sha256, size)``."""
        with self.writer() as w, open(source, "rb") as src:
            while chunk := src.read(CHUNK):
                w.write(chunk)
            return w.commit(), w.size

    def copy_to(self, sha: str, target: Path) -> None:
        """Write blob ``sha`` to ``target`` as a fresh file (never a link: the copy may change)."""
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        shutil.copyfile(self.path(sha), target)

    def all(self) -> Iterable[str]:
        """Every blob's SHA-256."""
        for shard in self.root.iterdir():
            if len(shard.name) == 2 and shard.is_dir():
                for blob in shard.iterdir():
                    yield shard.name + blob.name

    def remove(self, sha: str) -> None:
        """Delete a blob (only for blobs nothing refers to)."""
        self.path(sha).unlink(missing_ok=True)
