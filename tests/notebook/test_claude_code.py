"""``%%vm0 run claude`` in a real kernel: the real Claude Code CLI on a real local server, against
the scripted Anthropic Messages API (:mod:`tests.model_server`). The key comes from the kernel's
environment with ``--secret`` and never reaches the saved notebook; a follow-up from the kernel
keeps it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.claude_cli import EXECUTABLE, needs_claude
from tests.conftest import spawn_server
from tests.model_server import ModelServer, text, tool_use
from tests.notebook.notebook_kernel import CountingClient, Notebook, text_of

pytestmark = [pytest.mark.slow, pytest.mark.notebook, needs_claude]

KEY = "sk-ant-nb-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with ModelServer() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def claude_notebook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Notebook]:
    """A kernel on a server of its own whose PATH holds the CLI; ANTHROPIC_API_KEY is in the
    kernel's environment, as a user's would be."""
    assert EXECUTABLE is not None
    path = f"{os.path.dirname(EXECUTABLE)}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    server = spawn_server(tmp_path_factory.mktemp("vm0-nb-claude"), env={"PATH": path})
    workdir: Path = tmp_path_factory.mktemp("nb-claude")
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}
    env.update(VM0_API_URL=server.url, VM0_API_KEY=server.token,
               VM0_LOCAL_DIR=str(workdir / "unused-local"), ANTHROPIC_API_KEY=KEY)
    client = CountingClient(nbformat.v4.new_notebook(), timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    try:
        with client.setup_kernel(env=env):
            book = Notebook(client, KEY, server.token)
            book.run("%load_ext vm0_notebook")
            yield book
    finally:
        server.stop()


def test_a_claude_cell_shows_the_tool_call_and_the_answer(
    claude_notebook: Notebook, model: ModelServer
) -> None:
    model.reset(tool_use("Bash", {"command": "echo counted-3-penguins"},
                         preface="Let me count."),
                text("There are 3 penguins."))
    cell = claude_notebook.run(
        f"%%vm0 run claude --secret ANTHROPIC_API_KEY --var ANTHROPIC_BASE_URL={model.url} -o run\n"
        "How many penguins are there?"
    )
    shown = text_of(cell)
    assert "Bash" in shown and "counted-3-penguins" in shown
    assert "There are 3 penguins." in shown
    # the closing line: turns, tokens and cost as the CLI reported them
    closing = next(line for line in shown.splitlines() if "tokens" in line)
    assert "2 turns" in closing and "$" in closing
    assert claude_notebook.get("run.status") == "completed"
    assert all(turn.had_key for turn in model.turns)

    # a follow-up from the kernel keeps the key the first run was given
    model.reset(text("Still 3."))
    claude_notebook.run(f"again = run.follow_up('And now?', variables={{'ANTHROPIC_BASE_URL': "
                        f"'{model.url}'}}).wait()")
    assert claude_notebook.get("again.status") == "completed"
    assert claude_notebook.get("again.output") == "Still 3."
    assert "How many penguins are there?" in model.turns[0].text()

    saved = claude_notebook.saved()
    assert KEY not in saved and claude_notebook.token not in saved
