"""API test fixtures: the same scenarios against the real server and through the variant proxy.

- ``api``: a ``Client`` straight to the session's server, or through :class:`VariantProxy`
  (parametrized, so each test using it runs both ways).
- ``variant_url``: the session's variant proxy URL.
- ``proxy``: a factory starting a proxy class in front of the session server for one test.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.proxies import Proxy, VariantProxy


@pytest.fixture(scope="session", autouse=True)
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Downloaded versions go to a temporary cache, never ~/.cache."""
    path = tmp_path_factory.mktemp("vm0-cache")
    old = os.environ.get("VM0_CACHE_DIR")
    os.environ["VM0_CACHE_DIR"] = str(path)
    yield path
    if old is None:
        os.environ.pop("VM0_CACHE_DIR", None)
    else:
        os.environ["VM0_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def variant_url(local_server: Any) -> Iterator[str]:
    proxy = VariantProxy(local_server.url)
    yield proxy.start()
    proxy.stop()


@pytest.fixture(params=["direct", "variant"])
def api(request: pytest.FixtureRequest, local_server: Any) -> Iterator[Any]:
    """A Client to the real server, directly or through the platform-variant proxy."""
    from vm0_notebook import Client

    url = local_server.url if request.param == "direct" else request.getfixturevalue("variant_url")
    client = Client(api_url=url, api_key=local_server.token, retry_backoff=0.01)
    client.variant = request.param  # type: ignore[attr-defined]
    yield client
    client.close()


@pytest.fixture
def proxy(local_server: Any) -> Iterator[Callable[..., Any]]:
    """``proxy(FaultProxy, error_rate=0.3)`` -> a started proxy, stopped after the test."""
    started: list[Proxy] = []

    def start(cls: type[Proxy] = Proxy, **options: Any) -> Proxy:
        p = cls(local_server.url, **options)
        p.start()
        started.append(p)
        return p

    yield start
    for p in started:
        p.stop()
