"""A real Claude Code run as a notebook shows it: ``%%vm0 run`` in a real kernel, against a real
local agent that prints the recorded stream of Claude Code 2.1.197, so server, client, live view
and card all work on real events. Also the agents listing, and the note on a server that runs
agents unsandboxed."""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.conftest import spawn_server
from tests.notebook.notebook_kernel import CountingClient, Notebook, html_of, text_of
from tests.sample_agents import claude_sample_agent
from vm0_notebook.notebook.live import _KEEP_SCROLL

pytestmark = pytest.mark.notebook

FIGURES = "4 turns · 5,400 in / 240 out tokens · $0.0198"


def test_a_claude_code_run_reads_like_a_transcript(notebook: Notebook, client: Any) -> None:
    agent = claude_sample_agent(client)
    cell = notebook.run(f"%%vm0 run {agent} -o claude_run\nHow heavy are the penguins?")
    shown = text_of(cell)
    lines = shown.splitlines()
    assert "started: claude-sonnet-4-5 · tools: Bash, Read, Write, +21" in lines
    # each tool call with its result right beneath it, a long result folded
    call = lines.index("→ Bash: head -3 volumes/penguins/penguins.csv && wc -l "
                       "volumes/penguins/penguins.csv")
    assert lines[call + 1:call + 5] == [
        "  ✓ species,island,body_mass_g", "    Adelie,Torgersen,3750",
        "    Adelie,Torgersen,3800", "    6 volumes/penguins/penguins.csv",
    ]
    write = lines.index("→ Write: artifact/summary.md")
    assert lines[write + 1].startswith("  ✓ File created successfully at: artifact/summary.md")
    assert "The data set has 5 rows; the mean body mass is 4090.0 g." in shown
    # the closing line: the run's time to its result, then what the agent reported
    closing = next(line for line in lines if line.startswith("✓ done · "))
    assert re.fullmatch(rf"✓ done · \d+\.\d s · {re.escape(FIGURES)}", closing)
    # the card carries the same figures, and its duration is the header's
    assert f"  usage      {FIGURES}" in shown
    header = next(line for line in lines if line.startswith(f"{agent} · run_"))
    card_duration = next(line for line in lines if line.startswith("  duration   "))
    duration = card_duration.split("   ", 1)[1].strip()
    assert header.endswith(" · completed · " + duration)
    # one clock: the result came before the end, never after it (the agent said 0.4 s)
    assert float(closing.split(" · ")[1].removesuffix(" s")) <= float(duration.removesuffix(" s"))
    # nothing of the transcript becomes a script: the only one is the view's own scroll keeper
    html = html_of(cell).replace(_KEEP_SCROLL, "")
    assert FIGURES in html and "<script" not in html
    usage = notebook.get("[claude_run.usage[k] for k in ('input_tokens', 'total_cost_usd')]")
    assert usage == [5400, pytest.approx(0.0198)]
    assert notebook.get("claude_run.usage['num_turns']") == 4


def test_agents_show_their_framework_and_whether_claude_was_found(
    notebook: Notebook, client: Any
) -> None:
    tag = uuid.uuid4().hex[:6]
    missing, present = f"nb-claude-missing-{tag}", f"nb-claude-{tag}"
    client.agents.create(missing, {"framework": "claude-code", "executable": "/nonexistent/claude"})
    client.agents.create(present, {"framework": "claude-code", "executable": sys.executable})
    notebook.run("_agents = %vm0 agents")
    rows = notebook.get("_agents.set_index('name')[['framework', 'found']].to_dict('index')")
    assert rows[missing] == {"framework": "claude-code", "found": False}
    assert rows[present] == {"framework": "claude-code", "found": True}
    assert rows["echo"]["framework"] == "command" and rows["echo"]["found"] is None
    # the launcher labels its choices the same way
    labels = notebook.get(
        "[label for label, _ in __import__('vm0_notebook.notebook.widgets', fromlist=['x'])"
        ".RunLauncher().agent.options]"
    )
    assert f"{missing} · claude-code · /nonexistent/claude not found" in labels
    assert f"{present} · claude-code" in labels and "echo · command" in labels


@pytest.fixture(scope="module")
def unsandboxed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """A server that runs agents as plain processes, and a folder for kernels on it."""
    server = spawn_server(tmp_path_factory.mktemp("vm0-process"), "--sandbox", "process")
    try:
        yield server, tmp_path_factory.mktemp("nb-process")
    finally:
        server.stop()


def _kernel(server: Any, workdir: Path) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}
    env.update(VM0_API_URL=server.url, VM0_API_KEY=server.token,
               VM0_LOCAL_DIR=str(workdir / "unused-local"), VM0_CACHE_DIR=str(workdir / "cache"))
    client = CountingClient(nbformat.v4.new_notebook(), timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    return client, env


NOTE = "agents run unsandboxed on this server"


def test_unsandboxed_is_said_once_per_kernel_and_on_every_card(
    unsandboxed: tuple[Any, Path]
) -> None:
    server, workdir = unsandboxed
    client, env = _kernel(server, workdir)
    with client.setup_kernel(env=env):
        book = Notebook(client, "unused-secret", server.token)
        book.run("%load_ext vm0_notebook")
        first = text_of(book.run("%%vm0 run echo\nfirst"))
        assert first.count(NOTE) == 1
        assert "  sandbox    none: agents run unsandboxed" in first
        second = text_of(book.run("%%vm0 run echo\nsecond"))
        assert NOTE not in second  # once per kernel...
        assert "  sandbox    none: agents run unsandboxed" in second  # ...and on every card
        assert NOTE not in text_of(book.run("%vm0 config"))


def test_config_says_it_when_it_comes_first(unsandboxed: tuple[Any, Path]) -> None:
    server, workdir = unsandboxed
    client, env = _kernel(server, workdir)
    with client.setup_kernel(env=env):
        book = Notebook(client, "unused-secret", server.token)
        book.run("%load_ext vm0_notebook")
        assert text_of(book.run("%vm0 config")).count(NOTE) == 1
        assert NOTE not in text_of(book.run("%%vm0 run echo\nafter config"))


def test_a_sandboxed_server_says_nothing(notebook: Notebook) -> None:
    # the session's server: bubblewrap where it can run (a process server says so above)
    sandbox = notebook.get("__import__('vm0_notebook').Client().server.info().sandbox")
    cell = notebook.run("%vm0 config")
    assert (NOTE in text_of(cell)) == (sandbox == "process")
