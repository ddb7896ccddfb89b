"""``client.volumes`` and ``client.artifacts``: the same API but for the word.

    v = client.volumes.push("data/", "input-data", message="first cut")   # creates it if missing
    folder = client.volumes.mount("input-data")          # verified, cached by version, read-only
    client.artifacts.mount("results", version="ab12cd34", to="out/")
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import storage
from .._ops import Download, Op, Reply, Request, endpoint
from .._parse import normalize
from .._validate import check_name, check_version_ref, invalid
from ..cache import CONTENT, VersionCache
from ..errors import ConflictError, InvalidResponseError, NotFoundError
from ..models import Artifact, StorageFile, StorageInfo, StorageVersion, Volume
from ..mounts import copy_out
from ..pagination import Pager, split_page
from ._resource import Resource

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_OCTETS = {"Content-Type": "application/octet-stream"}


class _Storage(Resource):
    model: type[StorageInfo] = StorageInfo

    def list(self, limit: int | None = None) -> Pager[StorageInfo]:
        """All of them, lazily paged."""
        return self._client.pager(
            Request("GET", f"/{self.segment}"), self.model.from_api, self.model, limit=limit
        )

    @endpoint
    def get(self, id_or_name: str) -> Op[StorageInfo]:
        """One by id or name, with its current version."""
        return self.model.from_api((yield from self._find_op(id_or_name)))

    @endpoint
    def create(self, name: str) -> Op[StorageInfo]:
        """Create an empty one; a name that exists already raises :class:`ConflictError`."""
        check_name(name)
        return self.model.from_api((yield Request("POST", f"/{self.segment}", json={"name": name})))

    @endpoint
    def delete(self, id_or_name: str) -> Op[None]:
        """Delete it and all its versions."""
        info = self.model.from_api((yield from self._find_op(id_or_name)))
        yield Request("DELETE", self._path(info.id))

    def versions(self, id_or_name: str, limit: int | None = None) -> Pager[StorageVersion]:
        """Its versions, newest first."""
        return self._client.pager(
            Request("GET", self._path(id_or_name, "versions")), StorageVersion.from_api,
            StorageVersion, limit=limit,
        )

    # -- upload -------------------------------------------------------------------------------

    def _ensure_op(self, name: str) -> Op[StorageInfo]:
        try:
            return self.model.from_api((yield from self._find_op(name)))
        except NotFoundError:
            pass
        try:
            # retried safely: a retry that finds it created answers 409, handled below
            data = yield Request("POST", f"/{self.segment}", json={"name": name}, retry=True)
        except ConflictError:
            data = yield from self._find_op(name)
        return self.model.from_api(data)

    @endpoint
    def push(self, path: str | Path, name: str, message: str | None = None) -> Op[StorageVersion]:
        """Upload a file or folder as a new version of ``name`` (created if missing).

        Files the server already holds (same SHA-256) are not sent again; unchanged content
        gives the same version id and creates nothing new.

            version = client.volumes.push("data/", "input-data", message="2024 data")
            version.id, version.file_count
        """
        check_name(name)
        if message is not None and not isinstance(message, str):
            raise invalid("'message' must be a string", "message")
        files = storage.scan(path)
        info = yield from self._ensure_op(name)
        body: dict[str, Any] = {"files": [f.manifest() for f in files]}
        if message is not None:
            body["message"] = message
        session = normalize((yield Request("POST", self._path(info.id, "upload"), json=body,
                                           retry=True)))
        by_path = {f.path: f for f in files}
        wanted = [normalize(w) for w in session.get("files") or () if isinstance(w, Mapping)]
        unknown = [w.get("path") for w in wanted if w.get("path") not in by_path]
        if unknown or not session.get("upload_session_id"):
            raise InvalidResponseError(
                f"The upload answer is not the contract (unknown paths {unknown[:3]})"
            )
        total = sum(by_path[w["path"]].size for w in wanted)
        with storage.progress(total, f"push {name}") as bar:
            yield [
                Request("PUT", url=w["upload_url"], file=by_path[w["path"]].source,
                        headers=_OCTETS, progress=bar)
                for w in wanted
            ]
        commit = {"upload_session_id": session["upload_session_id"]}
        if message is not None:
            commit["message"] = message
        data = yield Request("POST", self._path(info.id, "commit"), json=commit, retry=True)
        return StorageVersion.from_api(data)

    # -- download -----------------------------------------------------------------------------

    def _version_op(self, info: StorageInfo, ref: str) -> Op[str | None]:
        """The full version id ``ref`` names, or None to let the download answer say."""
        if ref == "latest":
            if not info.current_version_id:
                raise invalid(f"The {self.noun} '{info.name}' has no versions yet", "version_id")
            return info.current_version_id
        if len(ref) == 64:
            return ref.lower()
        params: dict[str, Any] = {"limit": 100}
        matches: list[str] = []
        while True:
            data = yield Request("GET", self._path(info.id, "versions"), params=params)
            items, cursor = split_page(data)
            ids = (str(normalize(i).get("id", "")) for i in items if isinstance(i, Mapping))
            matches += [i for i in ids if i.lower().startswith(ref.lower())]
            if not cursor:
                break
            params["cursor"] = cursor
        return matches[0] if len(matches) == 1 else None

    @endpoint
    def mount(
        self, name: str, version: str = "latest", to: str | Path | None = None,
        overwrite: bool = False,
    ) -> Op[Path]:
        """A local folder holding version ``version`` (``latest``, an id or an 8+ hex prefix).

        Every download is verified: each file's size and SHA-256 against the listing, and the
        whole set against the version id (a hash of the content); anything else is an
        :class:`InvalidResponseError` naming the file, and nothing is cached. Versions are
        cached by server and id, so mounting an unchanged version downloads nothing.

        With ``to=None`` the cached folder itself is returned: it is **read-only** (copy it,
        or pass ``to=``, to change files), and a cache entry changed anyway is noticed on the
        next mount and fetched again. With ``to=DIR`` a writable copy is made there; a
        non-empty ``DIR`` is refused with :class:`FolderNotEmptyError` (a ``FileExistsError``)
        naming it, nothing touched, unless it is an unchanged copy an earlier ``mount`` made,
        or ``overwrite=True``, which replaces its contents.

            folder = client.volumes.mount("input-data")           # read-only, cached
            work = client.volumes.mount("input-data", to="work/")  # a copy to edit
            sorted(p.name for p in folder.iterdir())
        """
        check_version_ref(version)
        if not isinstance(overwrite, bool):
            raise invalid("'overwrite' must be True or False", "overwrite")
        info = self.model.from_api((yield from self._find_op(name)))
        vid = yield from self._version_op(info, version)
        cache = VersionCache(Path(self._client.get_cache_dir()) / "versions", self._client.api_url)
        folder = cache.lookup(vid)
        if folder is None:
            folder = yield from self._download_op(info, vid or version, cache)
        if to is None:
            return folder
        return copy_out(folder, to, overwrite=overwrite, vid=folder.parent.name,
                        cache_dir=Path(self._client.get_cache_dir()))

    def _download_op(self, info: StorageInfo, ref: str, cache: VersionCache) -> Op[Path]:
        """Download version ``ref`` (a full id, or a prefix the server resolves), verify it
        and cache it; returns the cached folder."""
        what = f"{self.noun} {info.name!r}"
        params = {"version_id": ref, "versionId": ref}
        reply: Reply = yield Request("GET", self._path(info.id, "download"), params=params,
                                     raw=True)
        with cache.staging() as stage:
            content = stage / CONTENT
            if reply.status in _REDIRECTS:
                location = reply.headers.get("location")
                if not location:
                    raise InvalidResponseError("A download redirect without a Location")
                archive = stage / "version.tar.gz"
                yield Download(location, archive)
                storage.extract_tar(archive, content)
                vid = storage.check_version(ref, info.id, storage.hashed_tree(content), what)
                return cache.commit(stage, vid)
            data = normalize(reply.data if isinstance(reply.data, Mapping) else {})
            claimed = str(data.get("version_id") or "").lower()
            if len(claimed) != 64 or not claimed.startswith(ref.lower()):
                raise InvalidResponseError(
                    f"Asked for version {ref[:12]} of {what}, the server answered with"
                    f" {claimed[:12] or 'no version id'}; nothing was cached"
                )
            hit = cache.lookup(claimed)
            if hit is not None:
                return hit
            files = [StorageFile.from_api(f) for f in data.get("files") or ()
                     if isinstance(f, Mapping)]
            storage.check_listing([f.path for f in files])
            targets = [(f, storage.rel_under(content, f.path)) for f in files]
            with storage.progress(sum(f.size or 0 for f in files), f"mount {info.name}") as bar:
                yield [Download(f.download_url or "", dest, bar, f.size, f"{f.path!r} of {what}")
                       for f, dest in targets if f.download_url]
            for f, dest in targets:
                if not f.download_url:  # empty files may come without a URL
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.touch()
            hashed = [(f.path, storage.check_file(dest, f.path, f.size, f.hash, what))
                      for f, dest in targets]
            vid = storage.check_version(claimed, info.id, hashed, what)
            return cache.commit(stage, vid)


class Volumes(_Storage):
    """Input volumes: folders mounted read-only into runs (``volumes=["name"]``)."""

    segment = "volumes"
    model = Volume


class Artifacts(_Storage):
    """Output artifacts: what runs leave in their ``artifact/`` folder, versioned."""

    segment = "artifacts"
    model = Artifact

