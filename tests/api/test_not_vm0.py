"""A client pointed at a server that does not speak the VM0 API v1 says so in one short error.

The servers are plain Starlette apps on 127.0.0.1 (:mod:`tests.not_vm0`); the VM0 cloud's own
message is checked on the function that builds it, without the network.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

import vm0_notebook as vm0
from tests.not_vm0 import not_vm0_server
from vm0_notebook import config
from vm0_notebook._version import __version__
from vm0_notebook.api.errors import is_vm0_cloud, not_served_message
from vm0_notebook.api.models import ServerInfo

KEY = "vm0_live_" + "k3y" * 8


def fails(call: Any) -> vm0.APINotServedError:
    with pytest.raises(vm0.APINotServedError) as exc:
        call()
    return exc.value


def check_message(err: vm0.APINotServedError, url: str, tried: str) -> str:
    text = str(err)
    assert text.startswith(f"The server at {url} does not serve the VM0 API v1 at /v1")
    assert f"tried {tried}," in text and "VM0_API_URL" in text and "vm0-local" in text
    assert KEY not in text and KEY not in repr(err) and "k3y" not in text
    assert "\n" not in text and len(text) < 400
    assert "retired" not in text  # only the VM0 cloud's message says that
    # not a NotFoundError: "missing, so create it" must not follow
    assert not isinstance(err, vm0.NotFoundError) and not isinstance(err, vm0.APIStatusError)
    assert isinstance(err, vm0.InvalidResponseError) and isinstance(err, vm0.VM0Error)
    assert (err.api_url, err.tried) == (url, tried)
    return text


@pytest.mark.parametrize("kind", ["html", "json", "page"])
def test_every_call_says_the_server_does_not_speak_v1(kind: str, tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    with not_vm0_server(kind) as server, vm0.Client(
        api_url=server.url, api_key=KEY, max_attempts=1
    ) as client:
        err = fails(lambda: list(client.agents.list()))
        check_message(err, server.url, "GET /v1/agents")
        assert err.status == (200 if kind == "page" else 404)
        check_message(fails(lambda: client.runs.create(agent="echo", prompt="hi")), server.url,
                      "POST /v1/runs")
        check_message(fails(lambda: list(client.runs.events("run_" + "0" * 24))), server.url,
                      "GET /v1/runs/run_000000000000000000000000/events")
        # push does not take the answer for "no such volume" and try to create one
        check_message(fails(lambda: client.volumes.push(tmp_path, "inputs")), server.url,
                      "GET /v1/volumes/inputs")
        writes = [(method, path) for method, path in server.seen if method != "GET"]
        assert writes == [("POST", "/v1/runs")]


def test_a_url_that_names_v1_and_the_async_client_say_the_same(tmp_path: Path) -> None:
    with not_vm0_server("html") as server:
        client = vm0.Client(api_url=server.url + "/v1/", api_key=KEY, max_attempts=1)
        check_message(fails(lambda: client.agents.get("echo")), server.url,
                      "GET /v1/agents/echo")

        async def main() -> vm0.APINotServedError:
            async with vm0.AsyncClient(api_url=server.url, api_key=KEY, max_attempts=1) as ac:
                with pytest.raises(vm0.APINotServedError) as exc:
                    await ac.runs.get("run_" + "1" * 24)
                return exc.value

        check_message(asyncio.run(main()), server.url, "GET /v1/runs/run_" + "1" * 24)


def test_server_info_says_what_the_server_is(local_server: Any) -> None:
    with vm0.Client(api_url=local_server.url, api_key=local_server.token) as client:
        info = client.server.info()
    assert info.speaks_v1 and info.problem is None and info.version == __version__
    assert info.sandbox in ("bubblewrap", "process")
    assert str(info) == f"speaks the VM0 API v1 (version {__version__}, sandbox {info.sandbox})"

    async def from_async() -> ServerInfo:
        async with vm0.AsyncClient(api_url=local_server.url, api_key=local_server.token) as ac:
            return await ac.server.info()

    assert asyncio.run(from_async()) == info
    with vm0.Client(api_url=local_server.url, api_key=KEY) as wrong:
        info = wrong.server.info()
    assert info.speaks_v1 and "Invalid API key" in str(info) and KEY not in str(info)
    with not_vm0_server("json") as server, vm0.Client(api_url=server.url, api_key=KEY) as client:
        info = client.server.info()
    assert not info.speaks_v1 and info.version is None
    assert str(info).startswith(f"The server at {server.url} does not serve the VM0 API v1")


def test_the_local_servers_own_404_is_still_not_found(client: Any) -> None:
    with pytest.raises(vm0.NotFoundError) as exc:
        client.runs.get("run_" + "2" * 24)
    assert not isinstance(exc.value, vm0.APINotServedError)


# -- the VM0 cloud's message, without the network ---------------------------------------------


def test_the_vm0_cloud_message_says_the_api_was_retired_and_where_to_go() -> None:
    assert vm0.Client(api_key=KEY).api_url == config.CLOUD_URL == "https://api.vm0.ai"
    text = not_served_message(config.CLOUD_URL, "GET /v1/agents", "an HTML page")
    assert text.startswith("The server at https://api.vm0.ai does not serve the VM0 API v1 at "
                           "/v1 (tried GET /v1/agents, got an HTML page)")
    for needle in ("retired that API in March 2026", "vm0-ai/vm0 #3393", "VM0_API_URL",
                   "shared vm0-local", "VM0_API_KEY", "embedded local server"):
        assert needle in text
    assert "\n" not in text
    err = vm0.APINotServedError(config.CLOUD_URL, "POST /v1/runs", "an empty answer", status=404)
    assert str(err) == not_served_message(config.CLOUD_URL, "POST /v1/runs",
                                          "an empty answer") + " (HTTP 404)"


@pytest.mark.parametrize(("url", "cloud"), [
    ("https://api.vm0.ai", True), ("https://vm0.ai", True), ("https://API.VM0.AI:443", True),
    ("https://api.vm0.ai.example.com", False), ("https://notvm0.ai", False),
    ("http://127.0.0.1:8765", False),
])
def test_which_urls_are_the_vm0_cloud(url: str, cloud: bool) -> None:
    assert is_vm0_cloud(url) is cloud
    assert ("retired" in not_served_message(url, "GET /v1/agents", "x")) is cloud


def test_a_password_in_the_url_is_not_shown() -> None:
    text = not_served_message("https://user:hunter2@proxy.example/vm0", "GET /vm0/v1/agents", "x")
    assert "hunter2" not in text and "https://***@proxy.example/vm0" in text
