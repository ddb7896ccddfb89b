"""The content-addressed store: whole blobs or none, each kept once."""

from __future__ import annotations

import hashlib

import pytest

from vm0_notebook.local.store.blobs import BlobStore


def test_blobs_are_whole_or_absent(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    with store.writer() as w:
        w.write(b"hello ")
        w.write(b"world")
        sha = w.commit()
    assert sha == hashlib.sha256(b"hello world").hexdigest() and w.size == 11
    assert store.path(sha).read_bytes() == b"hello world"

    with pytest.raises(RuntimeError), store.writer() as w:
        w.write(b"half a file")
        raise RuntimeError("the client went away")
    assert not store.has(hashlib.sha256(b"half a file").hexdigest())
    assert list(store.tmp.iterdir()) == []


def test_same_bytes_are_kept_once(tmp_path):
    store = BlobStore(tmp_path / "blobs")
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "b").write_bytes(b"same")
    assert store.put_file(tmp_path / "a") == store.put_file(tmp_path / "b")
    assert list(store.all()) == [hashlib.sha256(b"same").hexdigest()]
    assert list(store.tmp.iterdir()) == []
    assert not store.has("not-a-sha")
