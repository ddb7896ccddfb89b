"""``/storage/...``: the signed URLs that move a storage's bytes, with no bearer token.

Each request carries its own signature (:mod:`vm0_notebook.local.store.signing`); bodies stream
in and out in chunks, so no file is ever held whole in memory.
"""

from __future__ import annotations

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Route

from vm0_notebook.contract import parse_iso
from vm0_notebook.local.errors import ApiError, invalid, invalid_state, not_found
from vm0_notebook.local.store.tarstream import tar_gz
from vm0_notebook.local.web.responses import ok
from vm0_notebook.local.web.state import local_server


async def receive(request: Request) -> Response:
    """``PUT`` of one file's raw bytes to its signed upload URL."""
    server = local_server(request)
    server.signer.verify("PUT", request.url.path, request.query_params)
    session, idx = request.path_params["session_id"], request.path_params["idx"]
    row = server.storage.upload_file(session, idx)
    if row is None:
        raise not_found("upload", f"{session}/{idx}")
    if row["version_id"] is not None:
        raise invalid_state("This upload session is already committed")
    path, size, digest = row["path"], row["size"], row["hash"]

    def wrong_size(received: int | str) -> ApiError:
        return invalid(f"Upload of {path!r} sent {received} bytes but {size} were announced; "
                       "nothing was kept", "size")

    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) != size:
        raise wrong_size(int(declared))
    received = 0
    with server.storage.blobs.writer() as blob:
        # Counted as it streams: a body longer than announced is refused at the first byte
        # too many, never written to the end. Leaving the ``with`` drops the temporary file.
        async for chunk in request.stream():
            received += len(chunk)
            if received > size:
                raise wrong_size(f"more than {size}")
            blob.write(chunk)
        if received != size:
            raise wrong_size(received)
        if digest and blob.sha256 != digest:
            raise invalid(f"Upload of {path!r} does not match its announced hash; nothing "
                          "was kept", "hash")
        sha = await anyio.to_thread.run_sync(blob.commit)
    server.storage.mark_received(session, idx, sha)
    return ok({"path": path, "size": size, "hash": sha})


async def blob(request: Request) -> Response:
    """Serve one stored file by its hash, behind a signed URL."""
    server = local_server(request)
    server.signer.verify("GET", request.url.path, request.query_params)
    sha = request.path_params["sha"]
    blobs = server.storage.blobs
    if not blobs.has(sha):
        raise not_found("file", sha)
    return FileResponse(blobs.path(sha), media_type="application/octet-stream")


async def archive(request: Request) -> Response:
    """Stream a version as a ``.tar.gz``, behind a signed URL."""
    server = local_server(request)
    server.signer.verify("GET", request.url.path, request.query_params)
    vid = request.path_params["version_id"]
    storage = server.storage
    version = storage.version(vid)
    if version is None:
        raise not_found("version", vid)
    mtime = parse_iso(version["created_at"]).timestamp()
    members = [(f.path, f.size, storage.blobs.path(f.sha256), 0o644) for f in storage.files(vid)]
    return StreamingResponse(
        tar_gz(members, mtime), media_type="application/gzip",
        headers={"Content-Disposition": f'attachment; filename="{vid[:12]}.tar.gz"'},
    )


ROUTES = [
    Route("/storage/uploads/{session_id}/{idx:int}", receive, methods=["PUT"]),
    Route("/storage/blobs/{sha}", blob, methods=["GET"]),
    Route("/storage/archives/{version_id}.tar.gz", archive, methods=["GET"]),
]
