"""Volumes and artifacts: three-step upload, download (file list or tar.gz), cache, safety."""

from __future__ import annotations

import io
import tarfile
import uuid
from pathlib import Path
from typing import Any

import pytest

import vm0_notebook as vm0
from tests.proxies import Proxy
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


def test_mount_of_an_unchanged_version_is_a_cache_hit(local_server: Any, proxy: Any,
                                                        tmp_path: Path) -> None:
    counting = proxy(Proxy)
    client = vm0.Client(api_url=counting.url, api_key=local_server.token,
                        cache_dir=tmp_path / "cache")
    name = unique("cached")
    client.volumes.push(make_tree(tmp_path / "src", FILES), name)
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


def test_extraction_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = tar_with(tmp_path, [link])
    with pytest.raises(vm0.InvalidResponseError):
        storage.extract_tar(archive, tmp_path / "t")


def test_unsafe_paths_in_a_file_list(tmp_path: Path) -> None:
    for bad in ("../x", "/x", "a//b", "a\\b", "a\0b", ""):
        with pytest.raises(vm0.InvalidResponseError):
            storage.rel_under(tmp_path, bad)
    assert storage.rel_under(tmp_path, "a/b.txt") == tmp_path / "a" / "b.txt"
