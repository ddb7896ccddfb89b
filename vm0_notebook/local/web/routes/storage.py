"""The HTTP face of :mod:`storage`: ``/v1/volumes...``, ``/v1/artifacts...`` and ``/storage/...``.

Upload and download go through signed URLs (``signing.py``) that need no bearer token:

    POST /v1/volumes/{id}/upload     -> upload_session_id, a signed PUT URL per missing file
    PUT  /storage/uploads/{session}/{n}   raw bytes, checked against the announced size/hash
    POST /v1/volumes/{id}/commit     -> the version
    GET  /v1/volumes/{id}/download   -> signed GET URLs of /storage/blobs/{sha256}
    GET  /v1/volumes/{id}/download?format=tar.gz -> 302 to /storage/archives/{version}.tar.gz

Bodies stream in and out in chunks: no file is ever held whole in memory.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from vm0_notebook.contract import now_iso
from vm0_notebook.local.errors import check_name, invalid, invalid_state, not_found
from vm0_notebook.local.store.blobs import SHA_RE
from vm0_notebook.local.store.content import FileEntry, check_path, check_tree
from vm0_notebook.local.store.ids import new_id
from vm0_notebook.local.store.signing import DEFAULT_TTL_S, Signer, iso
from vm0_notebook.local.store.storages import (
    KINDS,
    STORAGE_SELECT,
    Storage,
    storage_json,
    version_json,
)
from vm0_notebook.local.store.tarstream import tar_gz
from vm0_notebook.local.web.requests import field, json_body, page_args
from vm0_notebook.local.web.responses import no_content, ok, page

Handler = Callable[[Request, str], Awaitable[Response]]


def _keyset(cursor: tuple[Any, ...] | None, *kinds: type) -> tuple[Any, ...] | None:
    """The cursor's position checked against the shape this list writes."""
    if cursor is None:
        return None
    if len(cursor) != len(kinds) or not all(map(isinstance, cursor, kinds)):
        raise invalid("Invalid 'cursor'", "cursor")
    return cursor


def _upload_entries(files: list[Any]) -> list[tuple[str, int, str | None]]:
    """``(path, size, hash or None)`` per announced file, or a 400 naming the bad field."""
    entries = []
    for i, item in enumerate(files):
        if not isinstance(item, dict):
            raise invalid(f"'files[{i}]' must be an object with 'path' and 'size'", f"files[{i}]")
        path = check_path(item.get("path"), f"files[{i}].path")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise invalid(f"'files[{i}].size' must be a non-negative integer", f"files[{i}].size")
        digest = item.get("hash")
        if digest is not None:
            if not isinstance(digest, str) or not SHA_RE.match(digest.lower()):
                raise invalid(f"'files[{i}].hash' must be a SHA-256 in hex", f"files[{i}].hash")
            digest = digest.lower()
        entries.append((path, size, digest))
    check_tree([e[0] for e in entries], "files[{}].path")
    return entries


class StorageRoutes:
    """Route handlers bound to one :class:`Storage` and its URL signer."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.db = storage.db
        self.blobs = storage.blobs
        self.signer = Signer(storage.data_dir)

    def routes(self) -> list[BaseRoute]:
        """The ``/v1/volumes`` and ``/v1/artifacts`` routes, plus the signed-URL ones."""
        table: list[BaseRoute] = []
        for kind, (_, plural) in KINDS.items():
            base = f"/v1/{plural}"
            for path, handler, method in [
                ("", self.create, "POST"),
                ("", self.index, "GET"),
                ("/{key}", self.get, "GET"),
                ("/{key}", self.delete, "DELETE"),
                ("/{key}/versions", self.versions, "GET"),
                ("/{key}/upload", self.upload, "POST"),
                ("/{key}/commit", self.commit, "POST"),
                ("/{key}/download", self.download, "GET"),
            ]:
                table.append(Route(base + path, _bind(handler, kind), methods=[method]))
        return [
            *table,
            Route("/storage/uploads/{session_id}/{idx:int}", self.receive, methods=["PUT"]),
            Route("/storage/blobs/{sha}", self.blob, methods=["GET"]),
            Route("/storage/archives/{version_id}.tar.gz", self.archive, methods=["GET"]),
        ]

    # -- storages ----------------------------------------------------------------------------

    async def create(self, request: Request, kind: str) -> Response:
        """``POST /v1/{kind}s``: a new, empty storage with the given name (201)."""
        body = await json_body(request)
        name = check_name(body.get("name"))
        return ok(storage_json(self.storage.create(kind, name)), 201)

    async def index(self, request: Request, kind: str) -> Response:
        """``GET /v1/{kind}s``: the storages, newest first, paged, optionally by ``name``."""
        limit, cursor = page_args(request)
        sql, args = STORAGE_SELECT + "WHERE s.kind = ?", [kind]
        if name := request.query_params.get("name"):
            check_name(name)
            sql, args = sql + " AND s.name = ?", [*args, name]
        if position := _keyset(cursor, str, str):
            sql, args = sql + " AND (s.created_at, s.id) < (?, ?)", [*args, *position]
        sql += " ORDER BY s.created_at DESC, s.id DESC LIMIT ?"
        rows = self.db.all(sql, [*args, limit + 1])
        return ok(page(rows, limit, storage_json, lambda r: (r["created_at"], r["id"])))

    async def get(self, request: Request, kind: str) -> Response:
        """``GET /v1/{kind}s/{key}``: one storage with its current version."""
        row = self.storage.find(kind, request.path_params["key"])
        current = row["current_version_id"] and self.storage.version(row["current_version_id"])
        return ok({**storage_json(row), "current_version": current and version_json(current, kind)})

    async def delete(self, request: Request, kind: str) -> Response:
        """``DELETE /v1/{kind}s/{key}``: remove the storage (204)."""
        self.storage.delete(self.storage.find(kind, request.path_params["key"])["id"])
        return no_content()

    async def versions(self, request: Request, kind: str) -> Response:
        """``GET /v1/{kind}s/{key}/versions``: its versions, newest first, paged."""
        limit, cursor = page_args(request)
        sid = self.storage.find(kind, request.path_params["key"])["id"]
        sql, args = "SELECT * FROM storage_versions WHERE storage_id = ?", [sid]
        if position := _keyset(cursor, int):
            sql, args = sql + " AND number < ?", [*args, *position]
        rows = self.db.all(sql + " ORDER BY number DESC LIMIT ?", [*args, limit + 1])
        return ok(page(rows, limit, lambda r: version_json(r, kind), lambda r: (r["number"],)))

    # -- upload ------------------------------------------------------------------------------

    async def upload(self, request: Request, kind: str) -> Response:
        """Start an upload session: signed PUT URLs only for files whose hash is not held."""
        sid = self.storage.find(kind, request.path_params["key"])["id"]
        body = await json_body(request)
        entries = _upload_entries(field(body, "files", list, required=True))
        message = field(body, "message", str)
        held: list[str | None] = []
        for i, (_, size, digest) in enumerate(entries):
            have = digest if digest and self.blobs.has(digest) else None
            if have and self.blobs.size(have) != size:
                raise invalid(f"'files[{i}].size' does not match the file with that hash",
                              f"files[{i}].size")
            held.append(have)
        session, expires = new_id("upl"), int(time.time() + DEFAULT_TTL_S)
        with self.db.tx() as c:
            c.execute("INSERT INTO upload_sessions VALUES (?, ?, ?, ?, NULL, ?)",
                      (session, sid, message, expires, now_iso()))
            c.executemany(
                "INSERT INTO upload_files VALUES (?, ?, ?, ?, ?, ?)",
                [(session, i, p, s, d, held[i]) for i, (p, s, d) in enumerate(entries)],
            )
        base = str(request.base_url)
        wanted = [
            {"path": p, "upload_url": self.signer.url(
                base, "PUT", f"/storage/uploads/{session}/{i}", expires=expires)[0]}
            for i, (p, _, _) in enumerate(entries) if held[i] is None
        ]
        return ok({"upload_session_id": session, "files": wanted, "expires_at": iso(expires)})

    async def receive(self, request: Request) -> Response:
        """``PUT`` of one file's raw bytes to its signed upload URL."""
        self.signer.verify("PUT", request.url.path, request.query_params)
        session, idx = request.path_params["session_id"], request.path_params["idx"]
        row = self.db.one(
            "SELECT f.*, s.version_id FROM upload_files f JOIN upload_sessions s "
            "ON s.id = f.session_id WHERE f.session_id = ? AND f.idx = ?", (session, idx),
        )
        if row is None:
            raise not_found("upload", f"{session}/{idx}")
        if row["version_id"] is not None:
            raise invalid_state("This upload session is already committed")
        path, size, digest = row["path"], row["size"], row["hash"]
        received = 0
        with self.blobs.writer() as blob:
            # Read to the end even past a bad size, so the client gets the answer, not a reset.
            async for chunk in request.stream():
                received += len(chunk)
                if received <= size:
                    blob.write(chunk)
            if received != size:
                raise invalid(f"Upload of {path!r} sent {received} bytes but {size} were "
                              "announced; nothing was kept", "size")
            if digest and blob.sha256 != digest:
                raise invalid(f"Upload of {path!r} does not match its announced hash; nothing "
                              "was kept", "hash")
            sha = await anyio.to_thread.run_sync(blob.commit)
        with self.db.tx() as c:
            c.execute("UPDATE upload_files SET received = ? WHERE session_id = ? AND idx = ?",
                      (sha, session, idx))
        return ok({"path": path, "size": size, "hash": sha})

    async def commit(self, request: Request, kind: str) -> Response:
        """Turn an upload session into a new version; a repeated commit answers the same one."""
        sid = self.storage.find(kind, request.path_params["key"])["id"]
        body = await json_body(request)
        session = field(body, "upload_session_id", str, required=True)
        message = field(body, "message", str)
        with self.db.tx() as c:
            row = c.execute("SELECT * FROM upload_sessions WHERE id = ? AND storage_id = ?",
                            (session, sid)).fetchone()
            if row is None:
                raise not_found("upload session", session, "upload_session_id")
            vid = row["version_id"]
            if vid is None:  # a second commit of the same session answers the same version
                if row["expires"] < time.time():
                    raise invalid_state("This upload session has expired; start a new upload")
                files = self._arrived(c.execute(
                    "SELECT * FROM upload_files WHERE session_id = ? ORDER BY idx", (session,)
                ).fetchall())
                vid = self.storage.record_version(
                    c, sid, files, message if message is not None else row["message"], None
                )
                c.execute("UPDATE upload_sessions SET version_id = ? WHERE id = ?", (vid, session))
        version = self.storage.version(vid)
        assert version is not None
        files = [{"path": f.path, "size": f.size} for f in self.storage.files(vid)]
        return ok({**version_json(version, kind), "files": files})

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

    # -- download ----------------------------------------------------------------------------

    async def download(self, request: Request, kind: str) -> Response:
        """Signed URLs of a version's files, or a redirect to its ``format=tar.gz`` archive."""
        query = request.query_params
        ref = query.get("version_id") or query.get("versionId") or "latest"
        _, vid = self.storage.resolve(kind, request.path_params["key"], ref, "version_id")
        base, fmt = str(request.base_url), query.get("format")
        if fmt in ("tar.gz", "tgz"):
            url, _ = self.signer.url(base, "GET", f"/storage/archives/{vid}.tar.gz")
            return RedirectResponse(url, status_code=302)
        if fmt not in (None, "", "json"):
            raise invalid("'format' must be 'tar.gz' or left out", "format")
        expires = int(time.time() + DEFAULT_TTL_S)
        files = [
            {"path": f.path, "size": f.size, "download_url": self.signer.url(
                base, "GET", f"/storage/blobs/{f.sha256}", expires=expires)[0]}
            for f in self.storage.files(vid)
        ]
        return ok({"version_id": vid, "files": files, "expires_at": iso(expires)})

    async def blob(self, request: Request) -> Response:
        """Serve one stored file by its hash, behind a signed URL."""
        self.signer.verify("GET", request.url.path, request.query_params)
        sha = request.path_params["sha"]
        if not self.blobs.has(sha):
            raise not_found("file", sha)
        return FileResponse(self.blobs.path(sha), media_type="application/octet-stream")

    async def archive(self, request: Request) -> Response:
        """Stream a version as a ``.tar.gz``, behind a signed URL."""
        self.signer.verify("GET", request.url.path, request.query_params)
        vid = request.path_params["version_id"]
        version = self.storage.version(vid)
        if version is None:
            raise not_found("version", vid)
        mtime = datetime.fromisoformat(version["created_at"].replace("Z", "+00:00")).timestamp()
        members = [(f.path, f.size, self.blobs.path(f.sha256), 0o644)
                   for f in self.storage.files(vid)]
        return StreamingResponse(
            tar_gz(members, mtime), media_type="application/gzip",
            headers={"Content-Disposition": f'attachment; filename="{vid[:12]}.tar.gz"'},
        )


def _bind(handler: Handler, kind: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return await handler(request, kind)

    endpoint.__name__ = f"{kind}_{handler.__name__}"
    return endpoint
