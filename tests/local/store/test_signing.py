"""Signed storage URLs: a key per data folder, kept private, checked in full."""

from __future__ import annotations

import stat
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from vm0_notebook.local.errors import ApiError
from vm0_notebook.local.store.signing import KEY_FILE, Signer


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_key_is_private_and_survives_a_restart(tmp_path):
    url, _ = Signer(tmp_path).url("http://h", "GET", "/storage/blobs/ab")
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    Signer(tmp_path).verify("GET", "/storage/blobs/ab", query(url))


def test_method_path_expiry_and_data_folder_are_all_signed(tmp_path):
    signer = Signer(tmp_path / "one")
    url, expires_at = signer.url("http://h/", "PUT", "/storage/uploads/upl_1/0", ttl=60)
    assert url.startswith("http://h/storage/uploads/upl_1/0?") and expires_at.endswith("Z")
    q = query(url)
    for method, path, params, signer_used in [
        ("GET", "/storage/uploads/upl_1/0", q, signer),
        ("PUT", "/storage/uploads/upl_1/1", q, signer),
        ("PUT", "/storage/uploads/upl_1/0", {**q, "expires": str(int(q["expires"]) + 1)}, signer),
        ("PUT", "/storage/uploads/upl_1/0", {"expires": q["expires"]}, signer),
        ("PUT", "/storage/uploads/upl_1/0", q, Signer(tmp_path / "two")),
    ]:
        with pytest.raises(ApiError) as err:
            signer_used.verify(method, path, params)
        assert err.value.status == 403

    old, _ = signer.url("http://h", "GET", "/p", expires=int(time.time()) - 1)
    with pytest.raises(ApiError, match="expired"):
        signer.verify("GET", "/p", query(old))
