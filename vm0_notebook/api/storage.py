"""Moving volume and artifact files: what to upload, safe extraction, the local version cache.

Nothing here speaks HTTP; ``resources/storage.py`` drives the three-step upload and the
download with these pieces.

- :func:`scan` lists a local file or folder with sizes and SHA-256 hashes, so the server can
  skip files it already holds.
- :func:`check_relpath` and :func:`extract_tar` never let a download write outside its folder.
- :class:`VersionCache` keeps downloaded versions by id (a content hash), so mounting an
  unchanged version again is a cache hit with no download.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ._validate import invalid
from .errors import InvalidResponseError

# transfers at least this big show a progress bar
PROGRESS_BYTES = 8 * 1024 * 1024
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LocalFile:
    """A file to upload: its path in the version, where it is here, size and SHA-256."""

    path: str
    source: Path
    size: int
    sha256: str

    def manifest(self) -> dict[str, Any]:
        """The file's entry in an upload request: path, size and hash."""
        return {"path": self.path, "size": self.size, "hash": self.sha256}


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in chunks so big files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan(root: str | os.PathLike[str]) -> list[LocalFile]:
    """Every regular file under ``root`` (or ``root`` itself), sorted by path.

        scan("data/")   # [LocalFile(path='a.csv', ...), LocalFile(path='sub/b.csv', ...)]
    """
    base = Path(root).expanduser()
    if not base.exists():
        raise invalid(f"Nothing to upload: {str(base)!r} does not exist", "path")
    if base.is_file():
        pairs = [(base.name, base)]
    else:
        pairs = []
        for folder, dirs, names in os.walk(base):
            dirs.sort()
            for name in sorted(names):
                full = Path(folder) / name
                if full.is_file():
                    pairs.append((full.relative_to(base).as_posix(), full))
    files = []
    for rel, full in pairs:
        if "\\" in rel or "\0" in rel:
            raise invalid(f"Cannot upload {rel!r}: a path may not contain a backslash", "path")
        files.append(LocalFile(rel, full, full.stat().st_size, sha256_file(full)))
    return files


def check_relpath(path: Any) -> str:
    """A server-given path that stays inside its folder, else :class:`InvalidResponseError`."""
    if (
        not isinstance(path, str)
        or not path
        or "\\" in path
        or "\0" in path
        or path.startswith("/")
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise InvalidResponseError(f"The server sent an unsafe file path {path!r}; nothing written")
    return path


def extract_tar(archive: Path, dest: Path) -> int:
    """Unpack a .tar.gz into ``dest`` (regular files and folders only); returns files written.

    Any member that would land outside ``dest`` (absolute, ``..``, links) stops the extraction.
    """
    count = 0
    with tarfile.open(archive, "r:*") as tar:
        members = []
        for member in tar.getmembers():
            name = member.name.removeprefix("./").rstrip("/")
            if not name:
                continue
            check_relpath(name)
            if member.isfile():
                count += 1
            elif not member.isdir():
                raise InvalidResponseError(
                    f"The archive holds {member.name!r}, which is not a file or folder"
                )
            member.name = name
            members.append(member)
        # the "data" filter refuses anything unsafe we did not already catch
        tar.extractall(dest, members=members, filter="data")
    return count


class VersionCache:
    """Downloaded versions under ``root/<version id>/``; a folder exists only when complete."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        """The folder a version with this id is (or would be) kept in."""
        return self.root / key

    def lookup(self, key: str | None) -> Path | None:
        """The folder of a complete cached version, or None when it is not cached."""
        if not key:
            return None
        path = self.path(key)
        return path if path.is_dir() else None

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder to download into; removed unless committed."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root / f".staging-{uuid.uuid4().hex}"
        folder.mkdir()
        try:
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def commit(self, staging: Path, key: str) -> Path:
        """Move a finished download into place (another process may have won the race)."""
        final = self.path(key)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():
                raise
        return final


def cache_key(version_id: str | None, scope: str) -> str | None:
    """A version id is a SHA-256 of the content, so it is a safe key on its own; other ids
    are scoped by server and storage."""
    if not version_id:
        return None
    if len(version_id) == 64 and all(c in "0123456789abcdef" for c in version_id):
        return version_id
    return hashlib.sha256(f"{scope}\n{version_id}".encode()).hexdigest()


def copy_tree(src: Path, dst: Path) -> Path:
    """Copy a cached version to where the user asked for it (existing files overwritten)."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, dirs_exist_ok=True)
    return dst


@contextmanager
def progress(total: int, desc: str) -> Iterator[Callable[[int], Any] | None]:
    """A tqdm.auto bar for transfers of ``PROGRESS_BYTES`` or more, else None."""
    if total < PROGRESS_BYTES:
        yield None
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024)
    try:
        yield bar.update
    finally:
        bar.close()


def rel_under(root: Path, rel: str) -> Path:
    """``root / rel`` for a checked relative path, as a local path."""
    return root.joinpath(*PurePosixPath(check_relpath(rel)).parts)
