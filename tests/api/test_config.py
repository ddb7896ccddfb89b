"""Where the client connects, and how keys are shown."""

from __future__ import annotations

import pytest

from vm0_notebook import config


def test_explicit_environment_and_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    assert config.resolve("http://h:1/v1/", "k") == ("http://h:1", "k")
    monkeypatch.setenv("VM0_API_URL", "http://env:2")
    monkeypatch.setenv("VM0_API_KEY", "vm0_live_env")
    assert config.resolve() == ("http://env:2", "vm0_live_env")
    monkeypatch.delenv("VM0_API_URL")
    assert config.resolve() == (config.CLOUD_URL, "vm0_live_env")


def test_urls_are_checked() -> None:
    assert config.normalize_url(" https://api.vm0.ai/v1 ") == "https://api.vm0.ai"
    with pytest.raises(ValueError, match="http"):
        config.normalize_url("api.vm0.ai")


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("vm0_live_abcdefghijklmnop1234", "vm0_live_…1234"),
        ("vm0_local_" + "0" * 28 + "beef", "vm0_local_…beef"),
        ("plainsecretvalue9876", "…9876"),
        ("vm0_live_short", "vm0_live_…"),
        (None, "<none>"),
    ],
)
def test_mask_key(key: str | None, shown: str) -> None:
    assert config.mask_key(key) == shown


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("VM0_CACHE_DIR", str(tmp_path))
    assert config.cache_dir() == tmp_path
