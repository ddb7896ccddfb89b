"""``/v1/volumes...`` and ``/v1/artifacts...``: storages, their versions, upload and download.

Both kinds share the handlers; each route says its kind. Bytes move through signed URLs
(:mod:`vm0_notebook.local.web.routes.files`) that need no bearer token:

    POST /v1/volumes/{id}/upload     -> upload_session_id, a signed PUT URL per missing file
    PUT  /storage/uploads/{session}/{n}   raw bytes, checked against the announced size/hash
    POST /v1/volumes/{id}/commit     -> the version
    GET  /v1/volumes/{id}/download   -> signed GET URLs of /storage/blobs/{sha256}
    GET  /v1/volumes/{id}/download?format=tar.gz -> 302 to /storage/archives/{version}.tar.gz
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from vm0_notebook.local.errors import check_name, invalid
from vm0_notebook.local.store.blobs import SHA_RE
from vm0_notebook.local.store.content import check_path, check_tree
from vm0_notebook.local.store.signing import DEFAULT_TTL_S, iso
from vm0_notebook.local.store.storages import storage_json, version_json
from vm0_notebook.local.web.requests import INT64_MAX, field, json_body, page_args
from vm0_notebook.local.web.responses import no_content, ok, page
from vm0_notebook.local.web.state import local_server

Handler = Callable[[Request, str], Awaitable[Response]]


def _upload_entries(files: list[Any]) -> list[tuple[str, int, str | None]]:
    """``(path, size, hash or None)`` per announced file, or a 400 naming the bad field."""
    entries = []
    for i, item in enumerate(files):
        if not isinstance(item, dict):
            raise invalid(f"'files[{i}]' must be an object with 'path' and 'size'", f"files[{i}]")
        path = check_path(item.get("path"), f"files[{i}].path")
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= INT64_MAX:
            raise invalid(f"'files[{i}].size' must be a non-negative integer below 2^63",
                          f"files[{i}].size")
        digest = item.get("hash")
        if digest is not None:
            if not isinstance(digest, str) or not SHA_RE.match(digest.lower()):
                raise invalid(f"'files[{i}].hash' must be a SHA-256 in hex", f"files[{i}].hash")
            digest = digest.lower()
        entries.append((path, size, digest))
    check_tree([e[0] for e in entries], "files[{}].path")
    return entries


# -- storages --------------------------------------------------------------------------------


async def create(request: Request, kind: str) -> Response:
    """``POST /v1/{kind}s``: a new, empty storage with the given name (201)."""
    body = await json_body(request)
    name = check_name(body.get("name"))
    row = local_server(request).storage.create(kind, name)
    # the detail, as GET answers it; the platform's create answers it too
    return ok({**storage_json(row), "current_version": None}, 201)


async def index(request: Request, kind: str) -> Response:
    """``GET /v1/{kind}s``: the storages, newest first, paged, optionally by ``name``."""
    limit, cursor = page_args(request, shape=(str, str))
    if name := request.query_params.get("name"):
        check_name(name)
    rows = local_server(request).storage.list(
        kind, name=name or None, after=(cursor[0], cursor[1]) if cursor else None,
        limit=limit + 1,
    )
    return ok(page(rows, limit, storage_json, lambda r: (r["created_at"], r["id"])))


async def get(request: Request, kind: str) -> Response:
    """``GET /v1/{kind}s/{key}``: one storage with its current version."""
    storage = local_server(request).storage
    row = storage.find(kind, request.path_params["key"])
    current = row["current_version_id"] and storage.version(row["current_version_id"])
    return ok({**storage_json(row), "current_version": current and version_json(current, kind)})


async def delete(request: Request, kind: str) -> Response:
    """``DELETE /v1/{kind}s/{key}``: remove the storage (204)."""
    storage = local_server(request).storage
    storage.delete(storage.find(kind, request.path_params["key"])["id"])
    return no_content()


async def versions(request: Request, kind: str) -> Response:
    """``GET /v1/{kind}s/{key}/versions``: its versions, newest first, paged."""
    limit, cursor = page_args(request, shape=(int,))
    storage = local_server(request).storage
    sid = storage.find(kind, request.path_params["key"])["id"]
    rows = storage.versions(sid, after=cursor[0] if cursor else None, limit=limit + 1)
    return ok(page(rows, limit, lambda r: version_json(r, kind), lambda r: (r["number"],)))


# -- upload and download ---------------------------------------------------------------------


async def upload(request: Request, kind: str) -> Response:
    """Start an upload session: signed PUT URLs only for files whose hash is not held."""
    server = local_server(request)
    storage, blobs = server.storage, server.storage.blobs
    sid = storage.find(kind, request.path_params["key"])["id"]
    body = await json_body(request)
    entries = _upload_entries(field(body, "files", list, required=True))
    message = field(body, "message", str)
    held: list[str | None] = []
    for i, (_, size, digest) in enumerate(entries):
        have = digest if digest and blobs.has(digest) else None
        if have and blobs.size(have) != size:
            raise invalid(f"'files[{i}].size' does not match the file with that hash",
                          f"files[{i}].size")
        held.append(have)
    expires = int(time.time() + DEFAULT_TTL_S)
    session = storage.open_upload(sid, message, expires, entries, held)
    base = str(request.base_url)
    wanted = [
        {"path": p, "upload_id": f"{session}.{i}", "upload_url": server.signer.url(
            base, "PUT", f"/storage/uploads/{session}/{i}", expires=expires)[0]}
        for i, (p, _, _) in enumerate(entries) if held[i] is None
    ]
    return ok({"upload_session_id": session, "files": wanted, "expires_at": iso(expires)})


async def commit(request: Request, kind: str) -> Response:
    """Turn an upload session into a new version; a repeated commit answers the same one."""
    server = local_server(request)
    storage = server.storage
    sid = storage.find(kind, request.path_params["key"])["id"]
    body = await json_body(request)
    session = field(body, "upload_session_id", str, required=True)
    vid = storage.commit_upload(sid, session, field(body, "message", str), server.user)
    version = storage.version(vid)
    assert version is not None
    files = [{"path": f.path, "size": f.size} for f in storage.files(vid)]
    return ok({**version_json(version, kind), "files": files})


async def download(request: Request, kind: str) -> Response:
    """Signed URLs of a version's files, or a redirect to its ``format=tar.gz`` archive."""
    server = local_server(request)
    query = request.query_params
    ref = query.get("version_id") or "latest"
    _, vid = server.storage.resolve(kind, request.path_params["key"], ref, "version_id")
    base, fmt = str(request.base_url), query.get("format")
    if fmt in ("tar.gz", "tgz"):
        url, _ = server.signer.url(base, "GET", f"/storage/archives/{vid}.tar.gz")
        return RedirectResponse(url, status_code=302)
    if fmt not in (None, "", "json"):
        raise invalid("'format' must be 'tar.gz' or left out", "format")
    expires = int(time.time() + DEFAULT_TTL_S)
    files = [
        {"path": f.path, "size": f.size, "hash": f.sha256, "download_url": server.signer.url(
            base, "GET", f"/storage/blobs/{f.sha256}", expires=expires)[0]}
        for f in server.storage.files(vid)
    ]
    return ok({"version_id": vid, "files": files, "expires_at": iso(expires)})


def _as(kind: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """``handler`` as the endpoint of one kind's route."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, kind)

    endpoint.__name__ = f"{kind}_{handler.__name__}"
    return endpoint


ROUTES = [
    Route("/v1/volumes", _as("volume", create), methods=["POST"]),
    Route("/v1/volumes", _as("volume", index), methods=["GET"]),
    Route("/v1/volumes/{key}", _as("volume", get), methods=["GET"]),
    Route("/v1/volumes/{key}", _as("volume", delete), methods=["DELETE"]),
    Route("/v1/volumes/{key}/versions", _as("volume", versions), methods=["GET"]),
    Route("/v1/volumes/{key}/upload", _as("volume", upload), methods=["POST"]),
    Route("/v1/volumes/{key}/commit", _as("volume", commit), methods=["POST"]),
    Route("/v1/volumes/{key}/download", _as("volume", download), methods=["GET"]),
    Route("/v1/artifacts", _as("artifact", create), methods=["POST"]),
    Route("/v1/artifacts", _as("artifact", index), methods=["GET"]),
    Route("/v1/artifacts/{key}", _as("artifact", get), methods=["GET"]),
    Route("/v1/artifacts/{key}", _as("artifact", delete), methods=["DELETE"]),
    Route("/v1/artifacts/{key}/versions", _as("artifact", versions), methods=["GET"]),
    Route("/v1/artifacts/{key}/upload", _as("artifact", upload), methods=["POST"]),
    Route("/v1/artifacts/{key}/commit", _as("artifact", commit), methods=["POST"]),
    Route("/v1/artifacts/{key}/download", _as("artifact", download), methods=["GET"]),
]
