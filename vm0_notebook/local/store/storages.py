"""Volumes and artifacts: named storages of immutable, content-addressed versions.

A version is a set of ``(path, sha256, size)`` files whose bytes live in the blob store. Its id
is the SHA-256 of ``"storage:<storage id>\\n"`` and the sorted ``<path>:<sha256>`` lines joined
by ``\\n``, so the same files in the same storage always give the same version and an upload of
unchanged content creates nothing new. Checkpoints (``save_tree``) follow the same rule with the
storage id ``checkpoint``.

What a version is made of lives in ``content.py``, the HTTP routes in ``web/routes/storage.py``
and ``web/routes/files.py``; the run host uses the folder methods::

    storage = Storage(db, data_dir)
    vid = storage.commit_folder("artifact", "results", workdir / "artifact", None, run_id)
    sid, vid = storage.resolve("volume", "input-data", "latest", "volumes.input-data")
    storage.materialize(vid, workdir / "volumes" / "input-data")
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vm0_notebook.contract import VERSION_PREFIX_MIN, is_hex, now_iso
from vm0_notebook.local.errors import ApiError, conflict, invalid, invalid_state, not_found
from vm0_notebook.local.store.blobs import STALE_TMP_S, BlobStore
from vm0_notebook.local.store.content import (
    CHECKPOINT,
    FileEntry,
    content_id,
    scan_folder,
)
from vm0_notebook.local.store.db import Where
from vm0_notebook.local.store.ids import new_id

if TYPE_CHECKING:
    from vm0_notebook.local.store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS storages (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('volume', 'artifact')),
    name TEXT NOT NULL,
    current_version_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (kind, name)
);
CREATE INDEX IF NOT EXISTS storages_by_time ON storages (kind, created_at, id);
CREATE TABLE IF NOT EXISTS storage_versions (
    id TEXT PRIMARY KEY,
    storage_id TEXT NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    message TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (storage_id, number)
);
-- Checkpoints: session folder snapshots, named by content like versions.
CREATE TABLE IF NOT EXISTS storage_trees (
    id TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    file_count INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
-- The files of a version or of a checkpoint (owner_id is the one or the other's id).
CREATE TABLE IF NOT EXISTS storage_files (
    owner_id TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mode INTEGER,
    PRIMARY KEY (owner_id, path)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS upload_sessions (
    id TEXT PRIMARY KEY,
    storage_id TEXT NOT NULL REFERENCES storages(id) ON DELETE CASCADE,
    message TEXT,
    expires REAL NOT NULL,
    version_id TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS upload_files (
    session_id TEXT NOT NULL REFERENCES upload_sessions(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    hash TEXT,
    received TEXT,
    PRIMARY KEY (session_id, idx)
);
"""

KINDS = {"volume": ("vol", "volumes"), "artifact": ("art", "artifacts")}


# Who made a version that has no maker recorded: the platform's schema says created_by is a
# string, never null.
UNKNOWN_CREATOR = "local"


def version_json(row: sqlite3.Row, kind: str) -> dict[str, Any]:
    """A version as the API shows it (``volume_id`` or ``artifact_id`` after ``kind``)."""
    return {
        "id": row["id"], f"{kind}_id": row["storage_id"], "size": row["size"],
        "file_count": row["file_count"], "message": row["message"],
        "created_by": row["created_by"] or UNKNOWN_CREATOR, "created_at": row["created_at"],
    }


def storage_json(row: sqlite3.Row) -> dict[str, Any]:
    """A volume or artifact as lists show it (a row of ``STORAGE_SELECT``)."""
    return {
        "id": row["id"], "name": row["name"], "current_version_id": row["current_version_id"],
        "size": row["size"] or 0, "file_count": row["file_count"] or 0,
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


STORAGE_SELECT = """
SELECT s.*, v.size AS size, v.file_count AS file_count FROM storages s
LEFT JOIN storage_versions v ON v.id = s.current_version_id
"""


class Storage:
    """Volumes, artifacts and checkpoints over one database and one blob store."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir
        self.blobs = BlobStore(data_dir / "blobs")
        self._sweep()

    # -- storages ----------------------------------------------------------------------------

    def list(
        self, kind: str, *, name: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[sqlite3.Row]:
        """Up to ``limit`` storages of ``kind``, newest first, after ``(created_at, id)``."""
        where = Where("s.kind = ?", kind)
        if name:
            where.add("s.name = ?", name)
        if after is not None:
            where.add("(s.created_at, s.id) < (?, ?)", *after)
        return self.db.all(
            f"{STORAGE_SELECT}WHERE {where} ORDER BY s.created_at DESC, s.id DESC LIMIT ?",
            (*where.params, limit),
        )

    def find(self, kind: str, key: str, param: str | None = None) -> sqlite3.Row:
        """The storage named or identified by ``key``, or a 404."""
        row = self.db.one(
            STORAGE_SELECT + "WHERE s.kind = ? AND (s.id = ? OR s.name = ?)", (kind, key, key)
        )
        if row is None:
            raise not_found(kind, key, param)
        return row

    def create(self, kind: str, name: str) -> sqlite3.Row:
        """A new empty storage; 409 when the name is taken for this kind."""
        sid, at = new_id(KINDS[kind][0]), now_iso()
        try:
            with self.db.tx() as c:
                c.execute(
                    "INSERT INTO storages (id, kind, name, created_at, updated_at) "
                    "VALUES (?, ?, ?, ?, ?)", (sid, kind, name, at, at),
                )
        except sqlite3.IntegrityError:
            raise conflict(f"A {kind} named '{name}' already exists", "name") from None
        return self.find(kind, sid)

    def delete(self, storage_id: str) -> None:
        """The storage, its versions and open uploads; blobs go at the next start's sweep."""
        with self.db.tx() as c:
            c.execute(
                "DELETE FROM storage_files WHERE owner_id IN "
                "(SELECT id FROM storage_versions WHERE storage_id = ?)", (storage_id,),
            )
            c.execute("DELETE FROM storages WHERE id = ?", (storage_id,))

    # -- versions ----------------------------------------------------------------------------

    def versions(self, storage_id: str, *, after: int | None, limit: int) -> list[sqlite3.Row]:
        """Up to ``limit`` of the storage's versions, newest first, after number ``after``."""
        where = Where("storage_id = ?", storage_id)
        if after is not None:
            where.add("number < ?", after)
        return self.db.all(
            f"SELECT * FROM storage_versions WHERE {where} ORDER BY number DESC LIMIT ?",
            (*where.params, limit),
        )

    def version(self, version_id: str) -> sqlite3.Row | None:
        """The ``storage_versions`` row, or None."""
        return self.db.one("SELECT * FROM storage_versions WHERE id = ?", (version_id,))

    def files(self, owner_id: str) -> list[FileEntry]:
        """The files of a version or checkpoint, by path."""
        rows = self.db.all(
            "SELECT path, sha256, size, mode FROM storage_files WHERE owner_id = ? ORDER BY path",
            (owner_id,),
        )
        return [FileEntry(r["path"], r["sha256"], r["size"], r["mode"]) for r in rows]

    def resolve(self, kind: str, name: str, ref: str, param: str) -> tuple[str, str]:
        """``(storage_id, version_id)`` for ``ref``: ``latest``, an id or an 8+ hex prefix.

        Unknown storage or version: 404; a prefix under 8 characters, an ambiguous one, or a
        storage with no version yet: 400. Every error names ``param``.
        """
        row = self.find(kind, name, param)
        label = f"{kind} '{row['name']}'"
        if ref in ("", "latest"):
            if row["current_version_id"] is None:
                raise invalid(f"The {label} has no versions yet", param)
            return row["id"], row["current_version_id"]
        ref = ref.lower()
        if len(ref) < VERSION_PREFIX_MIN:  # hex or not: a short reference names nothing
            raise invalid(f"Version reference {ref!r} is too short: use {VERSION_PREFIX_MIN} "
                          "or more hex characters", param)
        matches = [] if not is_hex(ref) else self.db.all(
            "SELECT id FROM storage_versions WHERE storage_id = ? AND id LIKE ? LIMIT 2",
            (row["id"], ref + "%"),
        )
        if not matches:
            raise not_found(f"version of the {label}", ref, param)
        if len(matches) > 1:
            raise invalid(f"Version prefix {ref!r} matches several versions of the {label}: "
                          "use more characters", param)
        return row["id"], matches[0]["id"]

    def record_version(
        self, c: sqlite3.Connection, storage_id: str, files: Sequence[FileEntry],
        message: str | None, created_by: str | None,
    ) -> str:
        """Inside a transaction: the version of ``files`` (existing or new), made current."""
        vid = content_id(storage_id, files)
        if c.execute("SELECT 1 FROM storage_versions WHERE id = ?", (vid,)).fetchone() is None:
            number = c.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM storage_versions WHERE storage_id = ?",
                (storage_id,),
            ).fetchone()[0]
            c.execute(
                "INSERT INTO storage_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (vid, storage_id, number, sum(f.size for f in files), len(files), message,
                 created_by, now_iso()),
            )
            c.executemany(
                "INSERT INTO storage_files VALUES (?, ?, ?, ?, ?)",
                [(vid, f.path, f.sha256, f.size, f.mode) for f in files],
            )
        # Unchanged content touches nothing; older content becomes current again.
        c.execute(
            "UPDATE storages SET current_version_id = ?, updated_at = ? "
            "WHERE id = ? AND current_version_id IS NOT ?", (vid, now_iso(), storage_id, vid),
        )
        return vid

    # -- uploads -----------------------------------------------------------------------------

    def open_upload(
        self, storage_id: str, message: str | None, expires: int,
        entries: Sequence[tuple[str, int, str | None]], held: Sequence[str | None],
    ) -> str:
        """A new upload session of ``(path, size, hash)`` entries (``held``: the blob each
        already has, or None); returns its id."""
        session = new_id("upl")
        with self.db.tx() as c:
            c.execute("INSERT INTO upload_sessions VALUES (?, ?, ?, ?, NULL, ?)",
                      (session, storage_id, message, expires, now_iso()))
            c.executemany(
                "INSERT INTO upload_files VALUES (?, ?, ?, ?, ?, ?)",
                [(session, i, p, s, d, held[i]) for i, (p, s, d) in enumerate(entries)],
            )
        return session

    def upload_file(self, session: str, idx: int) -> sqlite3.Row | None:
        """File ``idx`` of an upload session with its session's ``version_id``, or None."""
        return self.db.one(
            "SELECT f.*, s.version_id FROM upload_files f JOIN upload_sessions s "
            "ON s.id = f.session_id WHERE f.session_id = ? AND f.idx = ?", (session, idx),
        )

    def mark_received(self, session: str, idx: int, sha: str) -> None:
        """File ``idx`` of the session has arrived as blob ``sha``."""
        with self.db.tx() as c:
            c.execute("UPDATE upload_files SET received = ? WHERE session_id = ? AND idx = ?",
                      (sha, session, idx))

    def commit_upload(
        self, storage_id: str, session: str, message: str | None, created_by: str
    ) -> str:
        """The upload session as the storage's new version, made by ``created_by``; a repeated
        commit answers the same version. 404 for an unknown session, 400 when expired or
        incomplete."""
        with self.db.tx() as c:
            row = c.execute("SELECT * FROM upload_sessions WHERE id = ? AND storage_id = ?",
                            (session, storage_id)).fetchone()
            if row is None:
                raise not_found("upload session", session, "upload_session_id")
            vid = row["version_id"]
            if vid is None:  # a second commit of the same session answers the same version
                if row["expires"] < time.time():
                    raise invalid_state("This upload session has expired; start a new upload")
                files = self._arrived(c.execute(
                    "SELECT * FROM upload_files WHERE session_id = ? ORDER BY idx", (session,)
                ).fetchall())
                vid = self.record_version(
                    c, storage_id, files, message if message is not None else row["message"],
                    created_by,
                )
                c.execute("UPDATE upload_sessions SET version_id = ? WHERE id = ?", (vid, session))
        return vid

    def _arrived(self, rows: list[Any]) -> list[FileEntry]:
        files, missing = [], []
        for r in rows:
            sha = r["received"]
            if sha is None and r["hash"] and self.blobs.has(r["hash"]) \
                    and self.blobs.size(r["hash"]) == r["size"]:
                sha = r["hash"]  # the same bytes arrived meanwhile by another upload
            if sha is None:
                missing.append(r["path"])
            else:
                files.append(FileEntry(r["path"], sha, r["size"]))
        if missing:
            shown = ", ".join(repr(p) for p in missing[:5]) + (", ..." if len(missing) > 5 else "")
            raise invalid(f"Upload incomplete: {len(missing)} of {len(rows)} files not received "
                          f"({shown})", "upload_session_id", "upload_incomplete")
        return files

    # -- folders (for the run host; blocking, call them in a thread) -------------------------

    def _ingest(self, folder: Path, exclude: tuple[str, ...] = ()) -> list[FileEntry]:
        entries = []
        for rel, full, mode in scan_folder(folder, exclude):
            sha, size = self.blobs.put_file(full)
            entries.append(FileEntry(rel, sha, size, mode))
        return entries

    def _write(self, files: Iterable[FileEntry], dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for f in files:
            target = root / f.path
            # Paths were checked on the way in; this guards against symlinks already in dest.
            if not target.parent.resolve().is_relative_to(root):
                raise ValueError(f"refusing to write {f.path!r} outside {dest}")
            self.blobs.copy_to(f.sha256, target)
            target.chmod(f.mode if f.mode is not None else 0o644)

    def materialize(self, version_id: str, dest: Path) -> None:
        """Write the version's files under ``dest`` (fresh copies, never links to blobs)."""
        if self.version(version_id) is None:
            raise ValueError(f"no such storage version: {version_id}")
        self._write(self.files(version_id), dest)

    def commit_folder(
        self, kind: str, name: str, folder: Path, message: str | None, created_by: str | None
    ) -> str | None:
        """The folder's files as the storage's new version; returns its id.

        Unchanged content gives the existing version. Creates the storage when missing; returns
        None when the folder is empty and the storage has no version.
        """
        files = self._ingest(folder) if folder.is_dir() else []
        try:
            row = self.find(kind, name)
        except ApiError:
            if not files:
                return None
            try:
                row = self.create(kind, name)
            except ApiError:  # created meanwhile by someone else
                row = self.find(kind, name)
        if not files and row["current_version_id"] is None:
            return None
        with self.db.tx() as c:
            return self.record_version(c, row["id"], files, message, created_by)

    def save_tree(self, folder: Path, exclude: tuple[str, ...] = ()) -> str:
        """A checkpoint of ``folder`` (minus ``exclude``d relative paths); returns its id."""
        files = self._ingest(folder, exclude)
        tid = content_id(CHECKPOINT, files)
        with self.db.tx() as c:
            if c.execute("SELECT 1 FROM storage_trees WHERE id = ?", (tid,)).fetchone() is None:
                c.execute("INSERT INTO storage_trees VALUES (?, ?, ?, ?)",
                          (tid, sum(f.size for f in files), len(files), now_iso()))
                c.executemany("INSERT INTO storage_files VALUES (?, ?, ?, ?, ?)",
                              [(tid, f.path, f.sha256, f.size, f.mode) for f in files])
        return tid

    def restore_tree(self, tree_id: str, dest: Path) -> None:
        """Write a checkpoint's files (with their modes) under ``dest``."""
        if self.db.one("SELECT 1 FROM storage_trees WHERE id = ?", (tree_id,)) is None:
            raise ValueError(f"no such checkpoint tree: {tree_id}")
        self._write(self.files(tree_id), dest)

    # -- housekeeping ------------------------------------------------------------------------

    def _sweep(self) -> None:
        """Drop expired upload sessions and blobs nothing refers to (deleted storages)."""
        with self.db.tx() as c:
            c.execute("DELETE FROM upload_sessions WHERE expires < ?", (time.time(),))
            used = {r[0] for r in c.execute(
                "SELECT sha256 FROM storage_files UNION SELECT received FROM upload_files "
                "UNION SELECT hash FROM upload_files"
            )}
        cutoff = time.time() - STALE_TMP_S
        for sha in list(self.blobs.all()):
            if sha not in used and self.blobs.path(sha).stat().st_mtime < cutoff:
                self.blobs.remove(sha)
