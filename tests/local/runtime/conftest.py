"""Fixtures for tests that attack a server from inside its runs, once per sandbox mode."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import ServerInfo, spawn_server
from vm0_notebook.local.runtime.sandbox import bwrap_problem


@pytest.fixture(scope="module", params=["bubblewrap", "process"])
def mode(request: pytest.FixtureRequest) -> str:
    """Each sandbox mode in turn (bubblewrap skipped where it cannot run)."""
    if request.param == "bubblewrap" and bwrap_problem():
        pytest.skip(f"no bubblewrap here: {bwrap_problem()}")
    return request.param


@pytest.fixture(scope="module")
def server(mode: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """A server of its own for the module, in ``mode``."""
    info = spawn_server(tmp_path_factory.mktemp(f"attacks-{mode}"), "--sandbox", mode)
    yield info
    info.stop()
