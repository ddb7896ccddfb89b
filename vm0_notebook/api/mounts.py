"""``mount(to=DIR)``: a writable copy of a cached version in a folder of the user's choosing.

The copy never lands in a folder holding anything else: a non-empty folder is refused unless
it is a copy this client made and nobody changed since (re-running a notebook cell just
refreshes it), or ``overwrite=True`` says to replace its contents. What each copy wrote is
remembered under ``<cache folder>/mounts/`` (one small file per target folder), so the folder
itself gets no marker file that a later ``push`` would upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

from .cache import remove_tree, tree_stats
from .errors import FolderNotEmptyError


def _record(cache_dir: Path, target: Path) -> Path:
    key = hashlib.sha256(str(target).encode()).hexdigest()[:32]
    return cache_dir / "mounts" / f"{key}.json"


def _ours_unchanged(cache_dir: Path, target: Path) -> bool:
    try:
        record = json.loads(_record(cache_dir, target).read_text())
        return record["target"] == str(target) and tree_stats(target) == record["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _remember(cache_dir: Path, target: Path, vid: str) -> None:
    path = _record(cache_dir, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{uuid.uuid4().hex}.tmp")
    temp.write_text(json.dumps({"target": str(target), "version_id": vid,
                                "files": tree_stats(target)}))
    temp.replace(path)


def _copy_writable(src: Path, dst: Path) -> None:
    """Copy a read-only cached tree so the copy is the user's to edit (mtimes kept)."""
    for folder, dirs, names in os.walk(src):
        here = dst / Path(folder).relative_to(src)
        for name in dirs:
            (here / name).mkdir(exist_ok=True)
        for name in names:
            target = here / name
            shutil.copy2(Path(folder) / name, target)
            os.chmod(target, target.stat().st_mode | 0o200)


def copy_out(src: Path, dst: str | os.PathLike[str], *, overwrite: bool, vid: str,
             cache_dir: Path) -> Path:
    """A writable copy of the version in ``src`` at ``dst``; returns ``dst``.

    Raises :class:`FolderNotEmptyError` (a ``FileExistsError``) for a non-empty folder this
    client did not fill, or filled and someone changed since, unless ``overwrite``.
    """
    target = Path(dst).expanduser().absolute()
    if target.exists() and not target.is_dir():
        raise FolderNotEmptyError(f"Cannot mount into {target}: it is a file", str(target))
    cache_root = cache_dir.expanduser().absolute()
    if target.is_relative_to(cache_root):
        raise FolderNotEmptyError(f"Cannot mount into {target}: it is inside the cache",
                                  str(target))
    if target.is_dir() and any(target.iterdir()):
        if not overwrite and not _ours_unchanged(cache_dir, target):
            raise FolderNotEmptyError(
                f"{target} holds files mount() did not put there; nothing was touched (pass"
                " overwrite=True to replace its contents)", str(target),
            )
        if cache_root.is_relative_to(target):
            raise FolderNotEmptyError(f"Will not empty {target}: it holds the cache",
                                      str(target))
        for child in list(target.iterdir()):
            remove_tree(child)
    target.mkdir(parents=True, exist_ok=True)
    _copy_writable(src, target)
    _remember(cache_dir, target, vid)
    return target
