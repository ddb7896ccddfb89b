"""What a version is made of: file entries, the content id rule, path checks, folder scans.

The version id of the API is :func:`content_id`; every path that enters the store passed
:func:`check_path` (relative POSIX, no ``..``, no backslash, no control character) and
:func:`check_tree` (no duplicates, no file that is also a folder), so writing a version out can
never leave its folder and two different sets of files never share an id.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vm0_notebook.local.errors import ApiError, invalid

CHECKPOINT = "checkpoint"
MAX_PATH_BYTES = 4096
# C0 controls, DEL and C1 controls: a name holding one could not be listed or typed safely.
CONTROL_RE = re.compile("[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class FileEntry:
    """One file of a version or checkpoint."""

    path: str
    sha256: str
    size: int
    mode: int | None = None


def content_id(storage_id: str, files: Iterable[FileEntry]) -> str:
    """The version id rule of the API (checkpoints use ``storage_id="checkpoint"``).

    >>> content_id("vol_1", [FileEntry("a.txt", "0" * 64, 1)])[:12]
    'd9ec85442a20'
    """
    lines = sorted(f"{f.path}:{f.sha256}" for f in files)
    text = f"storage:{storage_id}\n" + "\n".join(lines)
    return hashlib.sha256(text.encode()).hexdigest()


def check_path(path: Any, param: str) -> str:
    """A relative POSIX path that can only land inside its folder, or a 400 naming ``param``."""
    if not isinstance(path, str) or not path:
        raise invalid(f"'{param}' must be a non-empty relative path", param)
    why = None
    if "\0" in path:
        why = "contains a NUL character"
    elif control := CONTROL_RE.search(path):
        # A newline would also forge the version id rule's line break (content_id).
        why = f"contains a control character ({ord(control.group()):#04x})"
    elif "\\" in path:
        why = "contains a backslash (use '/')"
    elif path.startswith("/"):
        why = "is absolute"
    elif any(part in ("", ".", "..") for part in path.split("/")):
        why = "has an empty, '.' or '..' segment"
    else:
        try:
            if len(path.encode()) > MAX_PATH_BYTES:
                why = f"is longer than {MAX_PATH_BYTES} bytes"
        except UnicodeEncodeError:
            why = "is not valid UTF-8"
    if why:
        raise invalid(f"Invalid path {path[:200]!r} in '{param}': it {why}", param)
    return path


def check_tree(paths: Sequence[str], param: str) -> None:
    """No duplicate paths, and no path that is both a file and a folder."""
    seen: set[str] = set()
    for i, path in enumerate(paths):
        if path in seen:
            raise invalid(f"Duplicate path {path!r}", param.format(i))
        seen.add(path)
    for i, path in enumerate(paths):
        parts = path.split("/")
        for n in range(1, len(parts)):
            parent = "/".join(parts[:n])
            if parent in seen:
                raise invalid(
                    f"Path {path!r} is inside {parent!r}, which is a file", param.format(i)
                )


def scan_folder(folder: Path, exclude: tuple[str, ...] = ()) -> list[tuple[str, Path, int]]:
    """``(relative path, file, mode)`` for every regular file under ``folder``.

    Symlinks are never followed (an agent could point one at a host file), and names the API
    could not carry are skipped.
    """
    found = []
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        rel_root = base.relative_to(folder).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        dirs[:] = [d for d in dirs if not _excluded(prefix + d, exclude)]
        for name in files:
            rel, full = prefix + name, base / name
            if _excluded(rel, exclude) or full.is_symlink() or not full.is_file():
                continue
            try:
                check_path(rel, "path")
            except ApiError:
                continue
            found.append((rel, full, full.stat().st_mode & 0o777))
    return found


def _excluded(rel: str, exclude: tuple[str, ...]) -> bool:
    return any(rel == e or rel.startswith(e.rstrip("/") + "/") for e in exclude)
