"""The run card: HTML for notebooks, text elsewhere, from real runs; user text is escaped."""

from __future__ import annotations

import subprocess
import sys
from html.parser import HTMLParser

from vm0_notebook.cards import STATUS_COLORS, format_duration, format_usage, run_html, run_text

# the shared module_client fixture
pytest_plugins = ["tests.frames_support"]

EVIL = "<script>alert('x')</script> & <b>bold</b>"


class Collector(HTMLParser):
    """The tags and the text of an HTML fragment, as a browser would parse them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(fragment: str) -> Collector:
    collector = Collector()
    collector.feed(fragment)
    return collector


def test_card_of_a_completed_run_with_volume_and_artifact(module_client, tmp_path) -> None:
    (tmp_path / "input.csv").write_text("a,b\n1,2\n")
    volume = module_client.volumes.push(tmp_path, "cards-input")
    program = "import shutil\nshutil.copy('volumes/cards-input/input.csv', 'artifact/out.csv')\n"
    run = module_client.runs.create(
        agent="python", prompt=program, volumes={"cards-input": "latest"},
        artifact_name="cards-output",
    ).wait(timeout=60)  # fmt: skip
    assert run.status == "completed", run.error
    html = run._repr_html_()
    assert html == run_html(run)
    shown = parse(html)
    assert "script" not in shown.tags
    text = "".join(shown.text)
    for fact in ("completed", run.id, "python", "duration", "created", "started", "completed",
                 f"cards-input@{volume.id[:12]}", f"cards-output@{run.artifact_version[:12]}"):
        assert fact in text, fact
    # the local server opens a session and saves a checkpoint for every run
    assert run.session_id and run.session_id in text
    assert run.checkpoint_id and run.checkpoint_id in text
    assert STATUS_COLORS["completed"] in html
    plain = str(run)
    assert plain.splitlines()[0] == f"Run {run.id} · completed"
    assert f"cards-input@{volume.id[:12]}" in plain
    assert "<" not in plain  # no markup
    # the prompt keeps its lines, aligned under the first
    assert "  prompt     import shutil\n             shutil.copy(" in plain


def test_card_of_a_failed_run_escapes_the_prompt_and_error(module_client) -> None:
    program = f"import sys\n# {EVIL}\nsys.exit({EVIL!r})\n"
    run = module_client.runs.create(agent="python", prompt=program).wait(timeout=60)
    assert run.status == "failed"
    assert "<script>" in (run.error or "")  # the agent's own words reach the card...
    html = run_html(run)
    shown = parse(html)
    assert "script" not in shown.tags and "b" not in shown.tags  # ...but only as text
    text = "".join(shown.text)
    assert "error" in text and "<script>alert('x')</script>" in text
    assert STATUS_COLORS["failed"] in html
    assert "<script>" in run_text(run)  # plain text needs no escaping
    assert "  error" in run_text(run)


def test_card_of_a_pending_run_shows_what_is_known(module_client) -> None:
    program = "import time\n" + "".join(f"# step {i}\n" for i in range(10)) + "time.sleep(30)\n"
    run = module_client.runs.create(agent="python", prompt=program)
    try:
        text = run_text(run)
        assert text.splitlines()[0] in (f"Run {run.id} · pending", f"Run {run.id} · running")
        assert "completed " not in text and "error" not in text
        # a long prompt shows its first lines only; the card's tooltip has all of it
        assert "# step 2 …" in text and "# step 3" not in text and "time.sleep" not in text
        assert "time.sleep(30)" in run_html(run)
        assert run.id in run_html(run)
    finally:
        run.cancel()
    run.wait(timeout=30)
    assert run.status == "cancelled"
    assert STATUS_COLORS["cancelled"] in run_html(run)


def test_cards_import_nothing_heavy() -> None:
    code = (
        "import sys, vm0_notebook.cards, vm0_notebook.api.models\n"
        "heavy = {'pandas', 'matplotlib', 'IPython'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_every_run_status_has_its_colour() -> None:
    from vm0_notebook.contract import STATUSES

    assert tuple(STATUS_COLORS) == STATUSES


def test_card_and_usage_of_a_claude_code_run_carry_the_same_figures(module_client) -> None:
    from tests.sample_agents import claude_sample_agent
    from vm0_notebook.render import RunRenderer

    run = module_client.runs.create(agent=claude_sample_agent(module_client), prompt="go")
    assert run.usage is None  # not seen yet
    render = RunRenderer(started_at=None)
    shown = [line.text for event in run.stream() for line in render(event)]
    run.refresh()
    assert run.status == "completed", run.error
    assert run.usage is not None and run.usage["num_turns"] == 4
    assert (run.usage["input_tokens"], run.usage["output_tokens"]) == (5400, 240)
    figures = "4 turns · 5,400 in / 240 out tokens · $0.0198"
    assert format_usage(run.usage) == figures
    closing = shown[-1]
    assert closing.startswith("✓ done · ") and closing.endswith(figures)
    assert f"  usage      {figures}" in run_text(run)
    assert figures in "".join(parse(run_html(run)).text)
    # one clock for the run's duration: the card's is the server's, never the agent's 0.4 s
    assert f"  duration   {format_duration(run.execution_time_ms / 1000)}" in run_text(run)


def test_a_run_without_a_sandbox_says_so_on_its_card(module_client) -> None:
    from vm0_notebook.api.models import RunDetail
    from vm0_notebook.api.run import Run

    run = module_client.runs.create(agent="echo", prompt="boxed?").wait(timeout=60)
    # the local server says how it ran each run
    assert run.sandbox in ("bubblewrap", "process")
    unboxed = Run(RunDetail(id="run_1", status="completed", sandbox="process"))
    for card in (run_text(unboxed), "".join(parse(run_html(unboxed)).text)):
        assert "none: agents run unsandboxed" in card
    # a detail that does not say: the server's sandbox (from /health) decides
    bare = Run(RunDetail(id="run_2", status="completed"))
    assert "unsandboxed" not in run_text(bare)
    assert "none: agents run unsandboxed" in run_text(bare, sandbox="process")
    assert "unsandboxed" not in run_html(bare, sandbox="bubblewrap")
    # its own word wins over the server's
    boxed = Run(RunDetail(id="run_3", status="completed", sandbox="bubblewrap"))
    assert "unsandboxed" not in run_text(boxed, sandbox="process")
