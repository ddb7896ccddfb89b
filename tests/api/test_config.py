"""Where the client connects, and how keys are shown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

import vm0_notebook as vm0
from vm0_notebook import config
from vm0_notebook.local import daemon


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


# -- through the Client -----------------------------------------------------------------------


def test_a_key_without_url_means_the_cloud(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VM0_API_URL", raising=False)
    client = vm0.Client(api_key="vm0_live_" + "x" * 24)  # no request is made
    assert client.api_url == config.CLOUD_URL == "https://api.vm0.ai"
    assert client.base_url == "https://api.vm0.ai/v1"
    monkeypatch.setenv("VM0_API_KEY", "vm0_live_" + "y" * 24)
    assert vm0.Client().api_url == config.CLOUD_URL


def test_an_explicit_url_may_end_in_v1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VM0_API_URL", "http://env:2")
    for url in ("https://example.test/v1", "https://example.test/v1/", "https://example.test/"):
        client = vm0.Client(api_key="k", api_url=url)
        assert client.api_url == "https://example.test"
        assert client.base_url == "https://example.test/v1"
    monkeypatch.setenv("VM0_API_URL", "http://env:2/v1/")
    assert vm0.Client(api_key="k").api_url == "http://env:2"


@pytest.mark.slow
def test_nothing_set_starts_the_local_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``Client()`` with no URL or key starts (then finds) the embedded server."""
    for name in ("VM0_API_URL", "VM0_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VM0_LOCAL_DIR", str(tmp_path))
    try:
        client = vm0.Client()
        assert repr(client).endswith("api_key='<none>')")  # nothing resolved, nothing started
        assert not (tmp_path / "server.json").exists()
        run = client.runs.create(agent="echo", prompt="local by default").wait(timeout=60)
        assert run.output == "local by default"
        state = daemon.read_state(tmp_path)
        assert state is not None and client.api_url == state["url"].rstrip("/")
        assert client.api_url.startswith("http://127.0.0.1:")
        assert client.secret_values() == (state["token"],)
        assert state["token"].startswith("vm0_local_")
        assert state["token"] not in repr(client)

        async def again() -> str:
            async with vm0.AsyncClient() as aclient:  # finds the same server
                assert (await aclient.runs.get(run.id)).status == "completed"
                return aclient.api_url

        assert asyncio.run(again()) == client.api_url
        client.close()
    finally:
        stopped = daemon.stop_server(tmp_path)
    assert stopped and daemon.read_state(tmp_path) is None
