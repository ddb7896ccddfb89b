"""A real IPython kernel, driven by nbclient, talking to the session's real local server.

``notebook`` (session scope, one kernel per xdist worker) runs cells one at a time in the same
kernel. The kernel gets the server's URL and token through ``VM0_API_URL`` / ``VM0_API_KEY`` in
its own environment, exactly as a user's kernel would.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.notebook.notebook_kernel import SECRET_NAME, CountingClient, Notebook


@pytest.fixture(scope="session")
def notebook(local_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notebook]:
    workdir: Path = tmp_path_factory.mktemp("notebook")
    secret = "nb-secret-" + secrets.token_hex(8)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}
    env.update(
        VM0_API_URL=local_server.url,
        VM0_API_KEY=local_server.token,
        VM0_LOCAL_DIR=str(workdir / "unused-local"),
        VM0_CACHE_DIR=str(workdir / "cache"),  # mounts stay out of ~/.cache
        **{SECRET_NAME: secret},
    )
    nb = nbformat.v4.new_notebook()
    client = CountingClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}},
    )
    with client.setup_kernel(env=env):
        book = Notebook(client, secret, local_server.token)
        book.run("%load_ext vm0_notebook")
        yield book


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the test item, so fixtures can tell that a test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
