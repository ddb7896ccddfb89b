"""Fixtures shared by the local server's tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.local.agent_runs import Api


@pytest.fixture(scope="module")
def api(local_server: Any) -> Iterator[Api]:
    """A raw-HTTP client to the session's server, one per test module (a module may override
    it with its own)."""
    client = Api(local_server)
    yield client
    client.close()
