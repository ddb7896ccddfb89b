"""What the frames, plots and cards tests share: one client per module for its shared runs.

A test module uses it by naming this module as a plugin (``client``, from conftest, is made
per test; runs that several tests read are made once per module on this one):

    pytest_plugins = ["tests.frames_support"]
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # pragma: no cover
    from tests.conftest import ServerInfo
    from vm0_notebook import Client


@pytest.fixture(scope="module")
def module_client(local_server: ServerInfo) -> Iterator[Client]:
    """A client of the session's local server, kept for the whole test module."""
    from vm0_notebook import Client

    with Client(api_url=local_server.url, api_key=local_server.token) as client:
        yield client
