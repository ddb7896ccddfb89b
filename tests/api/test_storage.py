"""Volumes and artifacts: three-step upload, verified download (file list or tar.gz), the
read-only cache and its housekeeping, writable copies, safe extraction."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import vm0_notebook as vm0
from tests.proxies import HostileStorage, Proxy
from vm0_notebook.api import storage


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


FILES = {"a.csv": b"x,y\n1,2\n", "sub/b.txt": b"hello", "sub/deeper/empty": b""}


def test_push_then_mount(api: Any, tmp_path: Path) -> None:
    name = unique("vol")
    src = make_tree(tmp_path / "src", FILES)
    version = api.volumes.push(src, name, message="first")
    assert len(version.id) == 64 and version.file_count == 3
    info = api.volumes.get(name)
    assert info.name == name and info.current_version_id == version.id

    folder = api.volumes.mount(name)
    assert read_tree(folder) == FILES
    copy = api.volumes.mount(name, version=version.id[:8], to=tmp_path / "copy")
    assert copy == tmp_path / "copy" and read_tree(copy) == FILES

    # unchanged content: the same version, nothing new
    assert api.volumes.push(src, name).id == version.id
    (src / "a.csv").write_bytes(b"x,y\n3,4\n")
    second = api.volumes.push(src, name, message="second")
    assert second.id != version.id
    assert [v.id for v in api.volumes.versions(name)] == [second.id, version.id]
    assert read_tree(api.volumes.mount(name, version=version.id))["a.csv"] == FILES["a.csv"]
    assert read_tree(api.volumes.mount(name))["a.csv"] == b"x,y\n3,4\n"

    api.volumes.delete(name)
    with pytest.raises(vm0.NotFoundError):
        api.volumes.get(name)


def test_push_a_single_file_and_list(api: Any, tmp_path: Path) -> None:
    name = unique("one")
    file = tmp_path / "notes.md"
    file.write_text("# notes\n")
    version = api.artifacts.push(file, name)
    assert version.file_count == 1
    assert name in [a.name for a in api.artifacts.list()]
    assert read_tree(api.artifacts.mount(name)) == {"notes.md": b"# notes\n"}


def test_run_artifact_and_volume(api: Any, tmp_path: Path) -> None:
    vol, art = unique("in"), unique("out")
    api.volumes.push(make_tree(tmp_path / "in", {"n.txt": b"41"}), vol)
    run = api.runs.create(
        agent="python",
        prompt=f"n = int(open('volumes/{vol}/n.txt').read())\n"
               "open('artifact/r.txt', 'w').write(str(n + 1))",
        volumes=[vol], artifact_name=art,
    ).wait(timeout=60)
    assert run.status == "completed", run.error
    assert set(run.volumes) == {vol}
    folder = run.artifact()
    assert (folder / "r.txt").read_text() == "42"
    copy = run.artifact(to=tmp_path / "copy")
    (copy / "r.txt").write_text("43")  # the copy is writable, the cached folder is not touched
    assert (folder / "r.txt").read_text() == "42"
    with pytest.raises(vm0.FolderNotEmptyError):
        run.artifact(to=copy)
    assert (run.artifact(to=copy, overwrite=True) / "r.txt").read_text() == "42"


def counted(local_server: Any, proxy: Any, tmp_path: Path, prefix: str) -> tuple[Any, Any, str]:
    """A counting proxy, a client through it with its own cache, and a volume of FILES."""
    counting = proxy(Proxy)
    client = vm0.Client(api_url=counting.url, api_key=local_server.token,
                        cache_dir=tmp_path / "cache")
    name = unique(prefix)
    client.volumes.push(make_tree(tmp_path / "src", FILES), name)
    return counting, client, name


def test_mount_of_an_unchanged_version_is_a_cache_hit(local_server: Any, proxy: Any,
                                                        tmp_path: Path) -> None:
    counting, client, name = counted(local_server, proxy, tmp_path, "cached")
    first = client.volumes.mount(name)
    downloads = counting.count("GET", r"/download$")
    assert downloads == 1
    assert client.volumes.mount(name) == first
    assert client.volumes.mount(name, to=tmp_path / "w").joinpath("a.csv").exists()
    assert counting.count("GET", r"/download$") == downloads


def test_files_the_server_holds_are_not_sent_again(local_server: Any, proxy: Any,
                                                    tmp_path: Path) -> None:
    counting = proxy(Proxy)
    client = vm0.Client(api_url=counting.url, api_key=local_server.token)
    src = make_tree(tmp_path / "src", {"big.bin": b"\1" * 5000, "small": b"s"})
    direct = vm0.Client(api_url=local_server.url, api_key=local_server.token)
    direct.volumes.push(src, unique("first"))
    before = len(counting.seen)
    version = client.volumes.push(src, unique("second"))  # same bytes, another volume
    assert version.file_count == 2
    ops = counting.seen[before:]
    assert [m for m, p in ops if m == "PUT"] == []
    assert [m for m, p in ops if p.endswith("/commit")] == ["POST"]


def test_bad_version_reference(api: Any, tmp_path: Path) -> None:
    name = unique("ver")
    api.volumes.push(make_tree(tmp_path / "v", {"f": b"1"}), name)
    with pytest.raises(vm0.InvalidRequestError) as exc:
        api.volumes.mount(name, version="abc12")
    assert "8 or more hex" in str(exc.value)
    with pytest.raises(vm0.NotFoundError):
        api.volumes.mount(name, version="0" * 64)
    empty = api.volumes.create(unique("empty"))
    with pytest.raises(vm0.InvalidRequestError) as exc:
        api.volumes.mount(empty.name)
    assert "no versions yet" in str(exc.value)


def test_async_push_and_mount(local_server: Any, tmp_path: Path) -> None:
    import asyncio

    async def main() -> None:
        async with vm0.AsyncClient(api_url=local_server.url, api_key=local_server.token,
                                   cache_dir=tmp_path / "cache") as aclient:
            name = unique("async")
            version = await aclient.volumes.push(make_tree(tmp_path / "src", FILES), name)
            assert version.file_count == 3
            folder = await aclient.volumes.mount(name, to=tmp_path / "out")
            assert read_tree(folder) == FILES
            assert name in [v.name async for v in aclient.volumes.list()]

    asyncio.run(main())


def test_push_of_nothing_is_refused(client: Any, tmp_path: Path) -> None:
    with pytest.raises(vm0.InvalidRequestError):
        client.volumes.push(tmp_path / "missing", "anything")


# -- safe extraction ------------------------------------------------------------------------------


def tar_with(tmp_path: Path, members: list[tarfile.TarInfo], data: bytes = b"x") -> Path:
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for info in members:
            if info.isfile():
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return archive


@pytest.mark.parametrize("name", ["../escape.txt", "/abs.txt", "a/../../escape.txt", "a\\b"])
def test_extraction_never_leaves_the_target(tmp_path: Path, name: str) -> None:
    archive = tar_with(tmp_path, [tarfile.TarInfo("ok.txt"), tarfile.TarInfo(name)])
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    with pytest.raises(vm0.InvalidResponseError):
        storage.extract_tar(archive, target)
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "deep" / "escape.txt").exists()
    assert list(target.iterdir()) == []  # nothing half-written


@pytest.mark.parametrize("kind", [tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE,
                                  tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_extraction_refuses_links_and_devices(tmp_path: Path, kind: bytes) -> None:
    member = tarfile.TarInfo("odd")
    member.type, member.linkname = kind, "/etc/passwd"
    archive = tar_with(tmp_path, [tarfile.TarInfo("ok.txt"), member])
    with pytest.raises(vm0.InvalidResponseError) as exc:
        storage.extract_tar(archive, tmp_path / "t")
    assert "'odd'" in str(exc.value)
    assert not (tmp_path / "t").exists()


def test_extraction_of_something_that_is_no_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"<html>not a tar</html>")
    with pytest.raises(vm0.InvalidResponseError) as exc:
        storage.extract_tar(junk, tmp_path / "t")
    assert "could not be unpacked" in str(exc.value)


def test_unsafe_paths_in_a_file_list(tmp_path: Path) -> None:
    for bad in ("../x", "/x", "a//b", "a\\b", "a\0b", ""):
        with pytest.raises(vm0.InvalidResponseError):
            storage.rel_under(tmp_path, bad)
    assert storage.rel_under(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"


# -- verified downloads ---------------------------------------------------------------------------


def cached(cache_dir: Path) -> list[Path]:
    """Every cache entry (and leftover) under ``cache_dir``, lock files aside."""
    versions = cache_dir / "versions"
    if not versions.is_dir():
        return []
    return [p for server in versions.iterdir() for p in server.iterdir() if p.name != ".lock"]


def test_the_client_computes_the_servers_version_id(client: Any, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    version = client.volumes.push(src, unique("rule"))
    info = client.volumes.get(version.storage_id)
    pairs = [(f.path, f.sha256) for f in storage.scan(src)]
    assert storage.version_id(info.id, pairs) == version.id
    assert storage.version_id("other", pairs) != version.id
    # the same rule as the server's own, which the client does not import (layering)
    from vm0_notebook.local.store.content import FileEntry, content_id

    entries = [FileEntry(path, sha, 0) for path, sha in pairs]
    assert content_id("vol_x", entries) == storage.version_id("vol_x", pairs)
    assert content_id("vol_x", []) == storage.version_id("vol_x", [])


HOSTILE = {
    "size": "the download was stopped",     # at the size its listing gives
    "content": "do not make that version",
    "endless": "the download was stopped",  # long before the disk fills
    "listing": "do not make that version",
    "version": "the server answered with 000000000000",
    "tar": "do not make that version",
    "tar-escape": "unsafe file path '../../escape.txt'",
}


@pytest.mark.parametrize("mode", HostileStorage.MODES)
def test_a_falsified_download_is_refused_and_leaves_nothing(
    local_server: Any, proxy: Any, tmp_path: Path, mode: str
) -> None:
    name = unique("hostile")
    direct = vm0.Client(api_url=local_server.url, api_key=local_server.token)
    version = direct.volumes.push(make_tree(tmp_path / "src", FILES), name)
    hostile = proxy(HostileStorage, mode=mode)
    cache_dir = tmp_path / "cache"
    client = vm0.Client(api_url=hostile.url, api_key=local_server.token, cache_dir=cache_dir)
    with pytest.raises(vm0.InvalidResponseError) as exc:
        client.volumes.mount(name)
    message = str(exc.value)
    assert mode == "tar-escape" or ("nothing was cached" in message and name in message)
    assert HOSTILE[mode] in message
    if mode in ("size", "endless"):
        assert "'a.csv'" in message and "listing says 8" in message
    if mode in ("content", "listing", "tar"):
        assert version.id[:12] in message and "'a.csv'" in message
    assert cached(cache_dir) == [] and client.cache.size() == 0
    assert not (tmp_path / "escape.txt").exists()
    with pytest.raises(vm0.InvalidResponseError):  # to= changes nothing: still refused
        client.volumes.mount(name, version=version.id, to=tmp_path / "out")
    assert not (tmp_path / "out").exists()

    hostile.mode = None  # the same server, honest now: the version arrives whole
    folder = client.volumes.mount(name)
    assert read_tree(folder) == FILES and folder.parent.name == version.id


def test_an_async_client_refuses_a_falsified_download(local_server: Any, proxy: Any,
                                                      tmp_path: Path) -> None:
    import asyncio

    name = unique("async-hostile")
    vm0.Client(api_url=local_server.url, api_key=local_server.token).volumes.push(
        make_tree(tmp_path / "src", FILES), name)
    hostile = proxy(HostileStorage, mode="content")

    async def main() -> None:
        async with vm0.AsyncClient(api_url=hostile.url, api_key=local_server.token,
                                   cache_dir=tmp_path / "cache") as aclient:
            with pytest.raises(vm0.InvalidResponseError):
                await aclient.volumes.mount(name)
            assert cached(tmp_path / "cache") == []
            hostile.mode = None
            assert read_tree(await aclient.volumes.mount(name)) == FILES

    asyncio.run(main())


def test_concurrent_mounts_of_one_version_share_one_entry(local_server: Any,
                                                          tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    name = unique("race")
    clients = [vm0.Client(api_url=local_server.url, api_key=local_server.token,
                          cache_dir=tmp_path / "cache") for _ in range(4)]
    clients[0].volumes.push(make_tree(tmp_path / "src", FILES), name)
    with ThreadPoolExecutor(4) as pool:
        folders = list(pool.map(lambda c: c.volumes.mount(name), clients))
    assert len(set(folders)) == 1 and read_tree(folders[0]) == FILES
    assert [p.name for p in cached(tmp_path / "cache")] == [folders[0].parent.name]


def test_the_cache_is_kept_per_server(local_server: Any, proxy: Any, tmp_path: Path) -> None:
    name = unique("per-server")
    direct = vm0.Client(api_url=local_server.url, api_key=local_server.token,
                        cache_dir=tmp_path / "cache")
    direct.volumes.push(make_tree(tmp_path / "src", FILES), name)
    through = vm0.Client(api_url=proxy(Proxy).url, api_key=local_server.token,
                         cache_dir=tmp_path / "cache")
    one, two = direct.volumes.mount(name), through.volumes.mount(name)
    assert one != two and one.parent.name == two.parent.name  # same version, two servers
    assert read_tree(one) == read_tree(two) == FILES


# -- the read-only cache and writable copies ---------------------------------------------------


def modes(root: Path) -> set[int]:
    return {stat.S_IMODE(p.stat().st_mode) for p in [root, *root.rglob("*")]}


def test_a_mounted_version_is_read_only(client: Any, tmp_path: Path) -> None:
    name = unique("ro")
    client.volumes.push(make_tree(tmp_path / "src", FILES), name)
    folder = client.volumes.mount(name)
    assert all(m & 0o222 == 0 for m in modes(folder)), modes(folder)
    if os.geteuid() != 0:  # root writes anyway: the tamper test covers that
        with pytest.raises(PermissionError):
            (folder / "a.csv").write_text("changed")


@pytest.mark.parametrize("change", ["rewrite", "same size, mtime put back", "new file", "removed"])
def test_a_changed_cache_entry_is_fetched_again(local_server: Any, proxy: Any, tmp_path: Path,
                                               change: str) -> None:
    counting, client, name = counted(local_server, proxy, tmp_path, "tamper")
    folder = client.volumes.mount(name)
    target = folder / "a.csv"
    before = target.stat()
    os.chmod(folder, 0o755)  # what root need not do; a non-root user would
    os.chmod(target, 0o644)
    if change == "rewrite":
        target.write_text("rows of someone else\n")
    elif change == "same size, mtime put back":
        target.write_bytes(b"x,y\n6,6\n")
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    elif change == "new file":
        (folder / "planted.py").write_text("import os")
    else:
        target.unlink()
    assert counting.count("GET", r"/download$") == 1
    again = client.volumes.mount(name)
    assert counting.count("GET", r"/download$") == 2
    assert again == folder and read_tree(again) == FILES
    assert client.volumes.mount(name) == folder  # and now a plain cache hit again
    assert counting.count("GET", r"/download$") == 2


def test_mount_to_makes_a_writable_copy_and_refuses_other_folders(client: Any,
                                                                  tmp_path: Path) -> None:
    name = unique("copy")
    client.volumes.push(make_tree(tmp_path / "src", FILES), name)
    out = tmp_path / "out"
    assert client.volumes.mount(name, to=out) == out
    assert read_tree(out) == FILES
    (out / "a.csv").write_text("edited\n")  # the copy is the user's
    assert read_tree(client.volumes.mount(name)) == FILES  # the cache is not
    # an edited copy is not refreshed over the edit
    with pytest.raises(FileExistsError) as exc:
        client.volumes.mount(name, to=out)
    assert str(out) in str(exc.value) and "overwrite=True" in str(exc.value)
    assert (out / "a.csv").read_text() == "edited\n"
    assert client.volumes.mount(name, to=out, overwrite=True) == out
    assert read_tree(out) == FILES
    assert client.volumes.mount(name, to=out) == out  # an unchanged copy: refreshed quietly

    mine = make_tree(tmp_path / "mine", {"notes.txt": b"keep me"})
    with pytest.raises(FileExistsError) as exc:
        client.volumes.mount(name, to=mine)
    assert isinstance(exc.value, vm0.FolderNotEmptyError) and exc.value.filename == str(mine)
    assert str(mine) in str(exc.value)
    assert read_tree(mine) == {"notes.txt": b"keep me"}  # nothing touched
    client.volumes.mount(name, to=mine, overwrite=True)
    assert read_tree(mine) == FILES  # its contents replaced
    empty = tmp_path / "empty"
    empty.mkdir()
    assert read_tree(client.volumes.mount(name, to=empty)) == FILES
    with pytest.raises(vm0.InvalidRequestError):
        client.volumes.mount(name, to=out, overwrite="yes")


# -- housekeeping -------------------------------------------------------------------------------


def test_cache_size_and_clear(local_server: Any, tmp_path: Path) -> None:
    client = vm0.Client(api_url=local_server.url, api_key=local_server.token,
                        cache_dir=tmp_path / "cache")
    assert client.cache.size() == 0 and client.cache.clear() == 0
    old, new = unique("old"), unique("new")
    client.volumes.push(make_tree(tmp_path / "a", FILES), old)
    client.volumes.push(make_tree(tmp_path / "b", {"n.txt": b"1234"}), new)
    stale = client.volumes.mount(old)
    fresh = client.volumes.mount(new)
    total = sum(len(d) for d in FILES.values()) + 4
    assert client.cache.size() >= total
    two_days = time.time() - 2 * 86400
    os.utime(stale.parent, (two_days, two_days))  # last mounted two days ago

    assert client.cache.clear(older_than=timedelta(days=3)) == 0
    freed = client.cache.clear(older_than=timedelta(days=1))
    assert freed >= sum(len(d) for d in FILES.values())
    assert not stale.exists() and read_tree(fresh) == {"n.txt": b"1234"}
    assert client.cache.clear(older_than=86400.0) == 0  # seconds work too
    with pytest.raises(ValueError):
        client.cache.clear(older_than=-1)
    with pytest.raises(ValueError):
        client.cache.clear(older_than="week")
    leftover = next(iter((tmp_path / "cache" / "versions").iterdir())) / ".staging-crashed"
    (leftover / "content").mkdir(parents=True)
    assert client.cache.clear() > 0 and leftover.exists()  # perhaps a download under way
    two_hours = time.time() - 7200
    os.utime(leftover, (two_hours, two_hours))
    client.cache.clear()
    assert client.cache.size() == 0 and not leftover.exists()
    assert cached(tmp_path / "cache") == []
    assert read_tree(client.volumes.mount(old)) == FILES  # downloaded again
