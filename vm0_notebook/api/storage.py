"""Moving volume and artifact files: what to upload, what a download must be, safe extraction.

Nothing here speaks HTTP; ``resources/storage.py`` drives the three-step upload and the
download with these pieces, and ``cache.py`` keeps what passed.

- :func:`scan` lists a local file or folder with sizes and SHA-256 hashes, so the server can
  skip files it already holds.
- :func:`version_id` is the API's content-id rule, the one place the client computes it;
  :func:`check_file` and :func:`check_version` hold a download to its listing and to that id.
- :func:`check_relpath`, :func:`check_listing` and :func:`extract_tar` never let a download
  write outside its folder.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ._validate import invalid
from .errors import InvalidResponseError

# transfers at least this big show a progress bar
PROGRESS_BYTES = 8 * 1024 * 1024
_CHUNK = 1 << 20
_SHOWN = 5  # file names listed in an error message


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


def _walk_files(base: Path) -> Iterator[tuple[str, Path]]:
    for folder, dirs, names in os.walk(base):
        dirs.sort()
        for name in sorted(names):
            full = Path(folder) / name
            yield full.relative_to(base).as_posix(), full


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
        pairs = [(rel, full) for rel, full in _walk_files(base) if full.is_file()]
    files = []
    for rel, full in pairs:
        if "\\" in rel or "\0" in rel:
            raise invalid(f"Cannot upload {rel!r}: a path may not contain a backslash", "path")
        files.append(LocalFile(rel, full, full.stat().st_size, sha256_file(full)))
    return files


# -- what a download must be ----------------------------------------------------------------


def version_id(storage_id: str, files: Iterable[tuple[str, str]]) -> str:
    """The API's version id of ``(path, sha256)`` files in the storage ``storage_id``.

    SHA-256 over ``"storage:<storage id>\\n"`` and the sorted ``<path>:<sha256>`` lines
    joined by ``"\\n"`` (see the API contract)::

        version_id("vol_1", [("a.txt", "0" * 64)])[:12]   # 'd9ec85442a20'
    """
    lines = sorted(f"{path}:{sha}" for path, sha in files)
    return hashlib.sha256((f"storage:{storage_id}\n" + "\n".join(lines)).encode()).hexdigest()


def shown(paths: Sequence[str]) -> str:
    """A few paths for a message: ``'a.csv', 'b.csv', ... (12 files)``."""
    names = ", ".join(repr(p) for p in sorted(paths)[:_SHOWN])
    more = f", ... ({len(paths)} files)" if len(paths) > _SHOWN else ""
    return (names + more) or "no files"


def check_file(path: Path, rel: str, size: int | None, sha256: str | None, what: str) -> str:
    """The SHA-256 of a downloaded file, after checking it against its listing entry.

    A size or hash that differs is an :class:`InvalidResponseError` naming the file.
    """
    got = path.stat().st_size
    if size is not None and got != size:
        raise InvalidResponseError(
            f"The server sent {got} bytes for {rel!r} of {what}, but its listing says {size};"
            " nothing was cached"
        )
    digest = sha256_file(path)
    if sha256 and digest != sha256.lower():
        raise InvalidResponseError(
            f"{rel!r} of {what} does not match the SHA-256 its listing gives; nothing was cached"
        )
    return digest


def check_version(expected: str, storage_id: str, files: Sequence[tuple[str, str]],
                  what: str) -> str:
    """The version id the ``(path, sha256)`` files make, which must be (or start with) ``expected``.

    Otherwise an :class:`InvalidResponseError` naming the files: the server sent other content
    than the version it named.
    """
    vid = version_id(storage_id, files)
    if not vid.startswith(expected.lower()):
        raise InvalidResponseError(
            f"The files sent as version {expected[:12]} of {what} ({shown([p for p, _ in files])})"
            f" do not make that version (their id is {vid[:12]}); nothing was cached"
        )
    return vid


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


def check_listing(paths: Sequence[Any]) -> None:
    """Safe paths, none twice, and none that is also another's folder."""
    seen: set[str] = set()
    for path in paths:
        if check_relpath(path) in seen:
            raise InvalidResponseError(f"The server listed {path!r} twice; nothing written")
        seen.add(path)
    for path in paths:
        parts = path.split("/")
        for n in range(1, len(parts)):
            if "/".join(parts[:n]) in seen:
                raise InvalidResponseError(
                    f"The server listed {path!r} inside {'/'.join(parts[:n])!r}, which is a"
                    " file; nothing written"
                )


def hashed_tree(root: Path) -> list[tuple[str, str]]:
    """``(path, sha256)`` of every file under ``root``; anything else there is refused."""
    found = []
    for rel, full in _walk_files(root):
        if full.is_symlink() or not full.is_file():
            raise InvalidResponseError(f"The download holds {rel!r}, which is not a file")
        found.append((rel, sha256_file(full)))
    return found


def extract_tar(archive: Path, dest: Path) -> int:
    """Unpack a .tar.gz into ``dest`` (regular files and folders only); returns files written.

    Any member that would land outside ``dest`` (absolute, ``..``, links, devices) stops the
    extraction; so does an archive that is not one.
    """
    count = 0
    try:
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
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidResponseError(
            f"The server's archive could not be unpacked ({type(exc).__name__}: {exc})"
        ) from None
    return count


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
