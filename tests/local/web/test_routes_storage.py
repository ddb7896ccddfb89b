"""Volumes and artifacts over real HTTP: upload, commit, download, version refs, bad input."""

from __future__ import annotations

import hashlib
import io
import secrets
import tarfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from vm0_notebook.local.web.state import local_user

KINDS = [("volume", "volumes"), ("artifact", "artifacts")]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def version_id(storage_id: str, files: dict[str, bytes]) -> str:
    """The contract's rule, written out again here on purpose."""
    lines = sorted(f"{path}:{sha(data)}" for path, data in files.items())
    return sha(("storage:" + storage_id + "\n" + "\n".join(lines)).encode())


def name(prefix: str = "s") -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


@pytest.fixture(scope="module")
def srv(local_server):
    return local_server


@pytest.fixture(scope="module")
def api(srv):
    with httpx.Client(
        base_url=srv.url + "/v1", headers={"Authorization": f"Bearer {srv.token}"}, timeout=60
    ) as c:
        yield c


@pytest.fixture(scope="module")
def plain():
    """No token: signed URLs must work on their own."""
    with httpx.Client(timeout=60) as c:
        yield c


def create(api: httpx.Client, plural: str, prefix: str = "s") -> dict[str, Any]:
    r = api.post(f"/{plural}", json={"name": name(prefix)})
    assert r.status_code == 201, r.text
    return r.json()


def push(
    api: httpx.Client, plain: httpx.Client, plural: str, key: str, files: dict[str, bytes],
    message: str | None = None, hashes: bool = True,
) -> tuple[dict[str, Any], list[str]]:
    """The three steps; returns the committed version and the paths the server asked for."""
    announce = [
        {"path": p, "size": len(d), **({"hash": sha(d)} if hashes else {})}
        for p, d in files.items()
    ]
    r = api.post(f"/{plural}/{key}/upload", json={"files": announce, "message": message})
    assert r.status_code == 200, r.text
    body = r.json()
    asked = [f["path"] for f in body["files"]]
    for f in body["files"]:
        put = plain.put(f["upload_url"], content=files[f["path"]],
                        headers={"Content-Type": "application/octet-stream"})
        assert put.status_code == 200, put.text
    r = api.post(f"/{plural}/{key}/commit", json={"upload_session_id": body["upload_session_id"]})
    assert r.status_code == 200, r.text
    return r.json(), asked


FILES = {
    "data.csv": b"a,b\n1,2\n",
    "nested/deep/notes.md": b"# notes\n" * 100,
    "empty.txt": b"",
    "unicode-\u00e9t\u00e9.txt": "caf\u00e9".encode(),
}


def fresh_files() -> dict[str, bytes]:
    """FILES with contents no other test has sent (the blob store is shared by all)."""
    tag = secrets.token_hex(8).encode()
    return {p: d + tag if d else d for p, d in FILES.items()}


@pytest.mark.parametrize(("kind", "plural"), KINDS)
def test_upload_commit_download_cycle(api, plain, kind, plural):
    storage = create(api, plural)
    assert storage["id"].startswith({"volume": "vol_", "artifact": "art_"}[kind])
    assert storage["current_version_id"] is None and storage["file_count"] == 0

    files = fresh_files()
    version, asked = push(api, plain, plural, storage["id"], files, message="first")
    assert set(asked) >= {p for p, d in files.items() if d}
    assert version["id"] == version_id(storage["id"], files)
    assert version[f"{kind}_id"] == storage["id"]
    assert version["message"] == "first"
    assert sorted(version["files"], key=lambda f: f["path"]) == sorted(
        ({"path": p, "size": len(d)} for p, d in files.items()), key=lambda f: f["path"])

    got = api.get(f"/{plural}/{storage['id']}").json()
    assert got["current_version_id"] == version["id"]
    assert got["current_version"]["id"] == version["id"]
    assert got["file_count"] == len(files) and got["size"] == sum(map(len, files.values()))
    by_name = api.get(f"/{plural}/{storage['name']}").json()
    assert by_name["id"] == storage["id"]

    versions = api.get(f"/{plural}/{storage['id']}/versions").json()["data"]
    assert [v["id"] for v in versions] == [version["id"]]
    assert set(versions[0]) == {"id", f"{kind}_id", "size", "file_count", "message",
                                "created_by", "created_at"}

    r = api.get(f"/{plural}/{storage['id']}/download")
    assert r.status_code == 200, r.text
    listing = r.json()
    assert listing["version_id"] == version["id"] and listing["expires_at"].endswith("Z")
    assert {f["path"]: f["size"] for f in listing["files"]} == {
        p: len(d) for p, d in files.items()}
    for f in listing["files"]:
        fetched = plain.get(f["download_url"])
        assert fetched.status_code == 200
        assert fetched.content == files[f["path"]]

    assert api.delete(f"/{plural}/{storage['id']}").status_code == 204
    assert error(api.get(f"/{plural}/{storage['id']}"), 404)["code"] == "resource_not_found"


@pytest.mark.parametrize(("kind", "plural"), KINDS)
def test_where_the_platform_is_stricter_the_server_follows_it(api, plain, kind, plural):
    # a new storage answers its detail, with no current version
    storage = create(api, plural)
    assert "current_version" in storage and storage["current_version"] is None
    files = fresh_files()
    announce = [{"path": p, "size": len(d), "hash": sha(d)} for p, d in files.items()]
    body = api.post(f"/{plural}/{storage['id']}/upload", json={"files": announce}).json()
    ids = [f["upload_id"] for f in body["files"]]
    assert all(isinstance(i, str) and i for i in ids) and len(set(ids)) == len(ids)
    # an uploaded version is made by the user the server runs as, never by null
    version, _ = push(api, plain, plural, storage["id"], files)
    listed = api.get(f"/{plural}/{storage['id']}/versions").json()["data"]
    assert listed[0]["id"] == version["id"]
    assert listed[0]["created_by"] == local_user() != ""
    detail = api.get(f"/{plural}/{storage['id']}").json()
    assert detail["current_version"]["created_by"] == local_user()


def test_unchanged_content_makes_no_new_version_and_held_files_are_skipped(api, plain):
    vol, files = create(api, "volumes"), fresh_files()
    first, _ = push(api, plain, "volumes", vol["id"], files)
    again, asked = push(api, plain, "volumes", vol["id"], files, message="ignored")
    assert again["id"] == first["id"] and asked == []
    assert len(api.get(f"/volumes/{vol['id']}/versions").json()["data"]) == 1

    changed = {**files, "data.csv": secrets.token_bytes(8)}
    second, asked = push(api, plain, "volumes", vol["id"], changed)
    assert asked == ["data.csv"]
    assert second["id"] == version_id(vol["id"], changed) != first["id"]

    # Going back to the first content makes that version current again, adding nothing.
    back, _ = push(api, plain, "volumes", vol["id"], files)
    assert back["id"] == first["id"]
    assert api.get(f"/volumes/{vol['id']}").json()["current_version_id"] == first["id"]
    versions = api.get(f"/volumes/{vol['id']}/versions").json()["data"]
    assert [v["id"] for v in versions] == [second["id"], first["id"]]

    # Without hashes the server cannot know, so it asks for everything.
    _, asked = push(api, plain, "volumes", vol["id"], files, hashes=False)
    assert sorted(asked) == sorted(files)


def _colliding_contents(storage_id: str) -> tuple[bytes, bytes]:
    """Two one-file contents whose version ids share their first 8 hex characters."""
    seen: dict[str, bytes] = {}
    for i in range(2_000_000):
        data = str(i).encode()
        prefix = version_id(storage_id, {"f": data})[:8]
        if prefix in seen:
            return seen[prefix], data
        seen[prefix] = data
    raise AssertionError("no collision found")


def test_version_refs_exact_prefix_short_unknown_ambiguous(api, plain):
    vol = create(api, "volumes")
    e = error(api.get(f"/volumes/{vol['id']}/download"), 400)
    assert e["param"] == "version_id" and "no versions" in e["message"]

    one, two = _colliding_contents(vol["id"])
    v1, _ = push(api, plain, "volumes", vol["id"], {"f": one})
    v2, _ = push(api, plain, "volumes", vol["id"], {"f": two})
    assert v1["id"][:8] == v2["id"][:8] and v1["id"] != v2["id"]

    def download(ref: str, query: str = "version_id") -> httpx.Response:
        return api.get(f"/volumes/{vol['id']}/download", params={query: ref})

    assert download(v1["id"]).json()["version_id"] == v1["id"]
    assert download(v1["id"], "versionId").json()["version_id"] == v1["id"]
    assert download("latest").json()["version_id"] == v2["id"]
    assert download(v1["id"][:12].upper()).json()["version_id"] == v1["id"]
    assert download(v2["id"][:8] + v2["id"][8:12]).json()["version_id"] == v2["id"]

    assert error(download(v1["id"][:7]), 400)["param"] == "version_id"
    ambiguous = error(download(v1["id"][:8]), 400)
    assert ambiguous["param"] == "version_id" and "several" in ambiguous["message"]
    assert error(download("0" * 64), 404)["param"] == "version_id"
    assert error(download("not-a-hex-ref"), 404)["code"] == "resource_not_found"
    assert error(api.get("/volumes/vol_nope/download"), 404)["code"] == "resource_not_found"


def test_create_and_lookup_errors(api, srv):
    taken = create(api, "volumes")
    e = error(api.post("/volumes", json={"name": taken["name"]}), 409)
    assert e["type"] == "conflict_error" and e["param"] == "name"
    # The same name is free on the other side: volumes and artifacts are separate.
    assert api.post("/artifacts", json={"name": taken["name"]}).status_code == 201

    for bad in ["Upper", "-lead", "trail-", "a_b", "x" * 101, 7]:
        e = error(api.post("/volumes", json={"name": bad}), 400)
        assert e["param"] == "name" and e["type"] == "invalid_request_error"
    assert error(api.post("/volumes", json={}), 400)["code"] == "missing_parameter"
    e = error(api.get("/artifacts", params={"name": "Bad_Name"}), 400)
    assert (e["param"], e["code"]) == ("name", "invalid_parameter")
    assert error(api.post("/volumes", content=b"{nope"), 400)["code"] == "invalid_parameter"
    assert error(api.get("/artifacts/art_missing"), 404)["code"] == "resource_not_found"
    assert error(api.delete("/volumes/vol_missing"), 404)["code"] == "resource_not_found"
    assert error(httpx.get(srv.url + "/v1/volumes"), 401)["type"] == "authentication_error"


def test_lists_paginate_newest_first(api, plain):
    made = [create(api, "artifacts", "page")["id"] for _ in range(3)]
    seen, cursor = [], None
    while True:
        r = api.get("/artifacts", params={"limit": 2, **({"cursor": cursor} if cursor else {})})
        body = r.json()
        assert len(body["data"]) <= 2
        seen += [a["id"] for a in body["data"]]
        cursor = body["pagination"]["next_cursor"]
        assert body["pagination"]["has_more"] == (cursor is not None)
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert [i for i in seen if i in made] == made[::-1]

    art = made[0]
    ids = [push(api, plain, "artifacts", art, {"n": str(i).encode()})[0]["id"] for i in range(3)]
    first = api.get(f"/artifacts/{art}/versions", params={"limit": 2}).json()
    assert [v["id"] for v in first["data"]] == ids[:0:-1] and first["pagination"]["has_more"]
    rest = api.get(f"/artifacts/{art}/versions",
                   params={"limit": 2, "cursor": first["pagination"]["next_cursor"]}).json()
    assert [v["id"] for v in rest["data"]] == ids[:1] and not rest["pagination"]["has_more"]

    for limit in ("0", "101", "x"):
        assert error(api.get("/artifacts", params={"limit": limit}), 400)["param"] == "limit"
    assert error(api.get("/artifacts", params={"cursor": "!!"}), 400)["param"] == "cursor"


@pytest.mark.parametrize(
    ("files", "param"),
    [
        ([{"path": "../escape", "size": 1}], "files[0].path"),
        ([{"path": "a/../../escape", "size": 1}], "files[0].path"),
        ([{"path": "/etc/passwd", "size": 1}], "files[0].path"),
        ([{"path": "ok", "size": 1}, {"path": "a\\b", "size": 1}], "files[1].path"),
        ([{"path": "a\u0000b", "size": 1}], "files[0].path"),
        ([{"path": "", "size": 1}], "files[0].path"),
        ([{"path": "a//b", "size": 1}], "files[0].path"),
        ([{"path": "./a", "size": 1}], "files[0].path"),
        ([{"path": 5, "size": 1}], "files[0].path"),
        ([{"path": "a", "size": 1}, {"path": "a", "size": 2}], "files[1].path"),
        ([{"path": "a", "size": 1}, {"path": "a/b", "size": 2}], "files[1].path"),
        ([{"path": "a", "size": -1}], "files[0].size"),
        ([{"path": "a", "size": "1"}], "files[0].size"),
        ([{"path": "a", "size": 1, "hash": "abc"}], "files[0].hash"),
        (["a"], "files[0]"),
        ("a", "files"),
    ],
)
def test_upload_rejects_bad_files(api, files, param):
    vol = create(api, "volumes")
    e = error(api.post(f"/volumes/{vol['id']}/upload", json={"files": files}), 400)
    assert e["param"] == param and e["type"] == "invalid_request_error"


def test_upload_needs_files_and_a_known_storage(api):
    vol = create(api, "volumes")
    assert error(api.post(f"/volumes/{vol['id']}/upload", json={}), 400)["code"] == (
        "missing_parameter")
    assert error(api.post("/volumes/vol_missing/upload", json={"files": []}), 404)["code"] == (
        "resource_not_found")


def _files_holding(root: Path, data: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.stat().st_size == len(data)
            and p.read_bytes() == data]


def test_bad_bytes_are_refused_and_leave_nothing_behind(api, plain, srv):
    vol = create(api, "volumes")
    good = b"the real content " + secrets.token_bytes(16)
    r = api.post(f"/volumes/{vol['id']}/upload",
                 json={"files": [{"path": "f.bin", "size": len(good), "hash": sha(good)}]})
    session, url = r.json()["upload_session_id"], r.json()["files"][0]["upload_url"]

    wrong_hash = secrets.token_bytes(len(good))
    assert error(plain.put(url, content=wrong_hash), 400)["param"] == "hash"
    too_long = good + b"!"
    assert error(plain.put(url, content=too_long), 400)["param"] == "size"
    too_short = good[:-1]
    assert error(plain.put(url, content=too_short), 400)["param"] == "size"
    for data in (wrong_hash, too_long, too_short):
        assert _files_holding(srv.data_dir, data) == []

    commit = {"upload_session_id": session}
    e = error(api.post(f"/volumes/{vol['id']}/commit", json=commit), 400)
    assert e["code"] == "upload_incomplete" and "f.bin" in e["message"]
    assert api.get(f"/volumes/{vol['id']}").json()["current_version_id"] is None

    assert plain.put(url, content=good).status_code == 200
    first = api.post(f"/volumes/{vol['id']}/commit", json=commit)
    second = api.post(f"/volumes/{vol['id']}/commit", json=commit)
    assert first.status_code == second.status_code == 200
    assert first.json()["id"] == second.json()["id"] == version_id(vol["id"], {"f.bin": good})
    assert len(api.get(f"/volumes/{vol['id']}/versions").json()["data"]) == 1
    # A committed session takes no more bytes.
    assert error(plain.put(url, content=good), 400)["code"] == "invalid_state"


def test_commit_errors(api):
    vol, other = create(api, "volumes"), create(api, "volumes")
    e = error(api.post(f"/volumes/{vol['id']}/commit", json={}), 400)
    assert e["code"] == "missing_parameter" and e["param"] == "upload_session_id"
    e = error(api.post(f"/volumes/{vol['id']}/commit", json={"upload_session_id": "upl_x"}), 404)
    assert e["param"] == "upload_session_id"
    session = api.post(f"/volumes/{other['id']}/upload",
                       json={"files": [{"path": "a", "size": 1}]}).json()["upload_session_id"]
    # A session belongs to the storage it was opened on.
    e = error(api.post(f"/volumes/{vol['id']}/commit", json={"upload_session_id": session}), 404)
    assert e["param"] == "upload_session_id"


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    query = {k: v for k, v in query.items() if v}
    return parts._replace(query="&".join(f"{k}={v}" for k, v in query.items())).geturl()


def test_signed_urls_refuse_tampering_and_expiry(api, plain, srv):
    from vm0_notebook.local.store.signing import Signer

    vol = create(api, "volumes")
    push(api, plain, "volumes", vol["id"], {"secret.txt": b"s3cret"})
    url = api.get(f"/volumes/{vol['id']}/download").json()["files"][0]["download_url"]
    assert plain.get(url).content == b"s3cret"

    expires = parse_qs(urlsplit(url).query)["expires"][0]
    other_blob = url.replace(urlsplit(url).path, "/storage/blobs/" + sha(b"other"))
    for bad in [
        _with_query(url, sig="0" * 64),
        _with_query(url, expires=str(int(expires) + 3600)),
        _with_query(url, sig=""),
        _with_query(url, expires="soon"),
        other_blob,
    ]:
        e = error(plain.get(bad), 403)
        assert e["type"] == "authorization_error" and e["code"] == "permission_denied"

    # A URL signed with the server's own key but already past its expiry.
    path = urlsplit(url).path
    expired, _ = Signer(srv.data_dir).url(srv.url, "GET", path, expires=int(expires) - 7200)
    e = error(plain.get(expired), 403)
    assert "expired" in e["message"]
    # A download URL is no upload URL.
    upload = _with_query(expired.replace("/storage/blobs/", "/storage/uploads/"))
    assert plain.put(upload, content=b"x").status_code in (403, 404, 405)


def test_tar_gz_download_redirects_to_a_signed_archive(api, plain):
    art = create(api, "artifacts")
    version, _ = push(api, plain, "artifacts", art["id"], FILES)
    r = api.get(f"/artifacts/{art['id']}/download", params={"format": "tar.gz"})
    assert r.status_code == 302
    location = r.headers["location"]
    assert "sig=" in location and version["id"] in location
    archive = plain.get(location)
    assert archive.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(archive.content), mode="r:gz") as tar:
        got = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert got == FILES
    assert error(api.get(f"/artifacts/{art['id']}/download", params={"format": "zip"}),
                 400)["param"] == "format"
    assert plain.get(_with_query(location, sig="f" * 64)).status_code == 403


@pytest.mark.slow
def test_a_200_mb_file_streams_both_ways(api, plain, srv):
    status = Path(f"/proc/{srv.pid}/status")
    if not status.exists():
        pytest.skip("needs /proc to read the server's peak memory")
    rss_before = _proc_kib(status, "VmRSS")
    size, chunk = 200 * 1024 * 1024, secrets.token_bytes(1024 * 1024)
    digest = hashlib.sha256()
    for _ in range(size // len(chunk)):
        digest.update(chunk)

    def body():
        for _ in range(size // len(chunk)):
            yield chunk

    vol = create(api, "volumes")
    r = api.post(f"/volumes/{vol['id']}/upload",
                 json={"files": [{"path": "big.bin", "size": size, "hash": digest.hexdigest()}]})
    put = plain.put(r.json()["files"][0]["upload_url"], content=body())
    assert put.status_code == 200, put.text
    commit = api.post(f"/volumes/{vol['id']}/commit",
                      json={"upload_session_id": r.json()["upload_session_id"]})
    assert commit.json()["files"] == [{"path": "big.bin", "size": size}]

    url = api.get(f"/volumes/{vol['id']}/download").json()["files"][0]["download_url"]
    back, received = hashlib.sha256(), 0
    with plain.stream("GET", url) as stream:
        for part in stream.iter_bytes():
            back.update(part)
            received += len(part)
    assert received == size and back.hexdigest() == digest.hexdigest()
    # The server's peak resident memory never grew by anything near the file's size.
    assert (_proc_kib(status, "VmHWM") - rss_before) * 1024 < size / 2


def _proc_kib(status: Path, key: str) -> int:
    line = next(x for x in status.read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1])
