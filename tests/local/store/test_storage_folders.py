"""What the run host calls: commit_folder, materialize, resolve, save_tree, restore_tree."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from vm0_notebook.local.errors import ApiError
from vm0_notebook.local.store.db import Database
from vm0_notebook.local.store.storages import SCHEMA, Storage


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_id(storage_id: str, files: dict[str, bytes]) -> str:
    lines = sorted(f"{p}:{sha(d)}" for p, d in files.items())
    return sha(("storage:" + storage_id + "\n" + "\n".join(lines)).encode())


def write(folder: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def read(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    db = Database(tmp_path / "data" / "vm0.db", [SCHEMA])
    yield Storage(db, tmp_path / "data")
    db.close()


FILES = {"out/result.csv": b"x,y\n1,2\n", "log.txt": b"done\n", "empty": b""}


def test_commit_folder_creates_the_storage_and_follows_the_version_rule(storage, tmp_path):
    folder = write(tmp_path / "artifact", FILES)
    vid = storage.commit_folder("artifact", "results", folder, "from run", "run_1")
    row = storage.find("artifact", "results")
    assert vid == content_id(row["id"], FILES) == row["current_version_id"]
    version = storage.version(vid)
    assert (version["message"], version["created_by"], version["file_count"]) == (
        "from run", "run_1", 3)

    assert storage.commit_folder("artifact", "results", folder, "again", "run_2") == vid
    assert storage.version(vid)["created_by"] == "run_1"

    out = tmp_path / "mounted"
    storage.materialize(vid, out)
    assert read(out) == FILES
    # The copy is the agent's to change; the stored version must not change with it.
    (out / "log.txt").write_bytes(b"tampered")
    storage.materialize(vid, tmp_path / "again")
    assert read(tmp_path / "again") == FILES


def test_empty_folders(storage, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert storage.commit_folder("artifact", "nothing", empty, None, None) is None
    assert storage.commit_folder("artifact", "nothing", tmp_path / "missing", None, None) is None
    with pytest.raises(ApiError):
        storage.find("artifact", "nothing")

    storage.commit_folder("artifact", "cleared", write(tmp_path / "a", {"f": b"1"}), None, None)
    vid = storage.commit_folder("artifact", "cleared", empty, None, None)
    assert vid == content_id(storage.find("artifact", "cleared")["id"], {})


def test_symlinks_and_unsendable_names_stay_out(storage, tmp_path):
    outside = tmp_path / "host-secret"
    outside.write_bytes(b"do not take")
    folder = write(tmp_path / "artifact", {"keep.txt": b"k", "back\\slash": b"b"})
    (folder / "link").symlink_to(outside)
    (folder / "dirlink").symlink_to(tmp_path)
    vid = storage.commit_folder("artifact", "links", folder, None, None)
    assert [f.path for f in storage.files(vid)] == ["keep.txt"]


def test_resolve(storage, tmp_path):
    first = storage.commit_folder("volume", "data", write(tmp_path / "1", {"a": b"1"}), None, None)
    second = storage.commit_folder("volume", "data", write(tmp_path / "1", {"a": b"2"}), None, None)
    sid = storage.find("volume", "data")["id"]
    assert storage.resolve("volume", "data", "latest", "volumes.data") == (sid, second)
    assert storage.resolve("volume", sid, first, "v") == (sid, first)
    assert storage.resolve("volume", "data", first[:8], "v") == (sid, first)

    for ref, status in [(first[:7], 400), ("f" * 64, 404), ("v1", 400)]:
        with pytest.raises(ApiError) as err:
            storage.resolve("volume", "data", ref, "volumes.data")
        assert (err.value.status, err.value.param) == (status, "volumes.data")
    with pytest.raises(ApiError) as err:
        storage.resolve("volume", "nope", "latest", "volumes.nope")
    assert (err.value.status, err.value.param) == (404, "volumes.nope")
    storage.create("volume", "blank")
    with pytest.raises(ApiError) as err:
        storage.resolve("volume", "blank", "latest", "volumes.blank")
    assert err.value.status == 400
    # Versions belong to their storage: another storage's id is unknown here.
    with pytest.raises(ApiError) as err:
        storage.resolve("volume", "blank", first, "v")
    assert err.value.status == 404


def test_checkpoints_keep_files_and_modes_minus_excluded(storage, tmp_path):
    session = write(tmp_path / "session", {
        "notes.md": b"n", "bin/run.sh": b"#!/bin/sh\n", "volumes/data/a": b"mounted",
        "artifact/x": b"x", "artifactual.txt": b"kept",
    })
    (session / "bin/run.sh").chmod(0o755)
    tree = storage.save_tree(session, exclude=("volumes", "artifact/"))
    kept = {"notes.md": b"n", "bin/run.sh": b"#!/bin/sh\n", "artifactual.txt": b"kept"}
    assert tree == content_id("checkpoint", kept)
    assert storage.save_tree(session, exclude=("volumes", "artifact")) == tree

    restored = tmp_path / "restored"
    storage.restore_tree(tree, restored)
    assert read(restored) == kept
    assert (restored / "bin/run.sh").stat().st_mode & 0o777 == 0o755
    with pytest.raises(ValueError):
        storage.restore_tree("0" * 64, restored)
    with pytest.raises(ValueError):
        storage.materialize(tree, restored)  # a checkpoint is no storage version


def test_a_restart_keeps_versions_and_sweeps_leftovers(tmp_path):
    data = tmp_path / "data"
    db = Database(data / "vm0.db", [SCHEMA])
    storage = Storage(db, data)
    kept = storage.commit_folder("volume", "kept", write(tmp_path / "k", {"k": b"keep"}),
                                 None, None)
    storage.commit_folder("volume", "gone", write(tmp_path / "g", {"g": b"gone"}), None, None)
    storage.delete(storage.find("volume", "gone")["id"])
    leftover = data / "blobs" / "tmp" / "in-killed"
    leftover.write_bytes(b"half")
    old = time.time() - 2 * 86400
    for path in [leftover, storage.blobs.path(sha(b"gone")), storage.blobs.path(sha(b"keep"))]:
        os.utime(path, (old, old))
    db.close()

    db = Database(data / "vm0.db", [SCHEMA])
    storage = Storage(db, data)
    assert storage.resolve("volume", "kept", "latest", "v")[1] == kept
    storage.materialize(kept, tmp_path / "out")
    assert read(tmp_path / "out") == {"k": b"keep"}
    assert not leftover.exists()
    assert not storage.blobs.has(sha(b"gone"))
    db.close()
