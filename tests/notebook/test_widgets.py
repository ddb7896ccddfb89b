"""RunLauncher and RunsBrowser, built and driven through their buttons against the real server.

The buttons are clicked with ``Button.click()``, which runs the same callbacks a click in
JupyterLab does; tests/notebook/test_browser.py clicks them in a real browser.
"""

from __future__ import annotations

import html
import secrets
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.notebook.gated import GATED, release
from tests.notebook.notebook_kernel import Notebook
from vm0_notebook.cards import STATUS_CSS
from vm0_notebook.notebook.masking import SecretMasker
from vm0_notebook.notebook.widgets import RunLauncher, RunsBrowser, parse_variables

# the longest a test waits for a run it started to reach a state (a hang guard, not a timing)
WAIT = 60


def _until(ready: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = ready()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


def _shown(output: Any, mime: str = "text/plain") -> str:
    """What an ipywidgets.Output shows, as one ``mime`` string."""
    return "\n".join(o.get("data", {}).get(mime, "") for o in output.outputs)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _launcher(client: Any, agent: str, prompt: str, **fields: Any) -> RunLauncher:
    launcher = RunLauncher(client)
    launcher.agent.value = agent
    launcher.prompt.value = prompt
    for name, value in fields.items():
        getattr(launcher, name).value = value
    return launcher


def _count_runs(client: Any) -> int:
    return sum(1 for _ in client.runs.list())


def test_importing_the_module_does_not_import_ipywidgets() -> None:
    code = "import sys, vm0_notebook.notebook.widgets; print('ipywidgets' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_widgets_are_at_the_package_top_level_lazily() -> None:
    code = (
        "import sys, vm0_notebook as vm0; before = 'vm0_notebook.notebook.widgets' in sys.modules;"
        " from vm0_notebook.notebook.widgets import RunLauncher, RunsBrowser;"
        " print(before, vm0.RunLauncher is RunLauncher, vm0.RunsBrowser is RunsBrowser,"
        " 'RunLauncher' in dir(vm0), 'ipywidgets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "True", "True", "False"]


def test_launcher_offers_the_agents_volumes_and_artifacts(client: Any, tmp_path: Path) -> None:
    volume, artifact = _unique("wvol"), _unique("wart")
    (tmp_path / "a.txt").write_text("a")
    client.volumes.push(tmp_path, volume)
    client.artifacts.create(artifact)
    launcher = RunLauncher(client)
    labels = dict(launcher.agent.options)
    assert {"echo", "python", "shell"} <= set(labels.values())
    assert labels["echo · command"] == "echo"  # labelled with the framework
    assert volume in launcher.volumes.options
    assert artifact in launcher.artifact.options
    assert launcher.launch_button.disabled is False and launcher.cancel_button.disabled is True
    # what is chosen survives a reload; a new volume appears
    launcher.agent.value, launcher.volumes.value = "python", (volume,)
    other = _unique("wvol")
    client.volumes.push(tmp_path, other)
    launcher.reload_button.click()
    assert launcher.agent.value == "python" and launcher.volumes.value == (volume,)
    assert other in launcher.volumes.options
    assert launcher.message.value == ""
    assert "application/vnd.jupyter.widget-view+json" in launcher._repr_mimebundle_()
    launcher.close()


def test_launch_streams_the_run_live_into_the_output_area(client: Any) -> None:
    prompt = "hello from the launcher " + _unique("p")
    launcher = _launcher(client, "echo", prompt)
    launcher.launch_button.click()
    assert launcher.run is not None and launcher.launch_button.disabled
    run = launcher.wait(WAIT)
    assert not launcher.running
    assert run.status == "completed" and prompt in run.output
    text = _shown(launcher.output)
    assert f"echo · {run.id} · completed" in text
    assert prompt in text and "next: %vm0 logs " + run.id in text
    assert "<pre" in _shown(launcher.output, "text/html")
    assert len(launcher.output.outputs) == 1  # one area updated in place, not appended to
    assert launcher.launch_button.disabled is False and launcher.cancel_button.disabled is True
    # the form stays filled in: Launch again starts a second run
    launcher.launch_button.click()
    second = launcher.wait(WAIT)
    assert second.id != run.id and second.status == "completed"
    launcher.close()


def test_launch_sends_variables_secrets_volumes_and_artifact(
    client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    volume, artifact = _unique("wvol"), _unique("wart")
    (tmp_path / "data.txt").write_text("volume says hi")
    client.volumes.push(tmp_path, volume)
    secret = "widget-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("WIDGET_TEST_SECRET", secret)
    prompt = (
        "import os, pathlib\n"
        f"print(os.environ['MODE'], os.environ['WIDGET_TEST_SECRET'])\n"
        f"print(pathlib.Path('volumes/{volume}/data.txt').read_text())\n"
        "pathlib.Path('artifact/out.txt').write_text('made by the run')\n"
    )
    launcher = _launcher(
        client, "python", prompt, variables="MODE=fast\n\n# a comment\nLIMIT=3",
        secrets="WIDGET_TEST_SECRET", volumes=(volume,), artifact=artifact,
    )
    launcher.launch_button.click()
    run = launcher.wait(WAIT)
    assert run.status == "completed", run.error
    text = _shown(launcher.output) + _shown(launcher.output, "text/html")
    assert "fast ***" in text and "volume says hi" in text
    assert secret not in text and secret not in launcher.message.value
    assert set(run.volumes) == {volume} and run.artifact_name == artifact
    assert (run.artifact(to=tmp_path / "got") / "out.txt").read_text() == "made by the run"
    launcher.close()


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"prompt": "  \n"}, "the prompt is empty"),
        ({"variables": "MODE=fast\nNOPE"}, "variables, line 2: write NAME=value"),
        ({"variables": "not a name=1"}, "bad variable 'not a name'"),
        ({"secrets": "WIDGET_NOT_SET_ANYWHERE"}, "set the environment variable"),
        ({"secrets": "bad-name"}, "bad secret 'bad-name'"),
        ({"artifact": "Not A Valid Name!"}, "artifact"),  # refused by the server
    ],
)
def test_a_bad_form_says_what_to_fix_and_starts_nothing(
    client: Any, fields: dict[str, str], expected: str
) -> None:
    launcher = _launcher(client, "echo", **{"prompt": "hi", **fields})
    before = _count_runs(client)
    launcher.launch_button.click()
    assert expected in html.unescape(launcher.message.value)
    assert f"color:{STATUS_CSS['failed']}" in launcher.message.value  # shown as an error
    assert launcher.run is None and not launcher.running
    assert _count_runs(client) == before
    assert launcher.launch_button.disabled is False
    launcher.close()


def test_cancel_button_cancels_the_running_run(client: Any) -> None:
    launcher = _launcher(
        client, "python", "import time\nprint('waiting now', flush=True)\ntime.sleep(120)"
    )
    launcher.launch_button.click()
    assert launcher.cancel_button.disabled is False
    _until(lambda: "waiting now" in _shown(launcher.output), "the run printed")
    launcher.cancel_button.click()
    run = launcher.wait(WAIT)
    assert run.status == "cancelled"
    assert "cancelled" in _shown(launcher.output).splitlines()[0]  # the header
    assert f"{run.id} cancelled" in launcher.message.value
    assert launcher.cancel_button.disabled is True and launcher.launch_button.disabled is False
    launcher.close()


def test_a_failed_run_says_why_under_the_form(client: Any) -> None:
    launcher = _launcher(client, "python", "raise ValueError('bad input 42')")
    launcher.launch_button.click()
    run = launcher.wait(WAIT)
    assert run.status == "failed"
    message = html.unescape(launcher.message.value)
    assert f"{run.id} failed: " in message and "bad input 42" in message
    assert "failed" in _shown(launcher.output).splitlines()[0]
    launcher.close()


def test_parse_variables_keeps_values_as_written() -> None:
    assert parse_variables("A=1\n  \n# x\nB= two =2") == {"A": "1", "B": " two =2"}
    assert parse_variables("") == {}


# -- the browser ------------------------------------------------------------------------------


def _finished_runs(client: Any, agent: str, prompts: list[str]) -> list[Any]:
    runs = [client.runs.create(agent=agent, prompt=p) for p in prompts]
    return [run.wait(timeout=WAIT) for run in runs]


def _row_of(browser: RunsBrowser, run_id: str) -> Any:
    (row,) = [row for row in browser.table_rows if row.run_id == run_id]
    return row


def _selected_rows(browser: RunsBrowser) -> list[str]:
    return [row.run_id for row in browser.table_rows if "vm0-selected" in row.box._dom_classes]


def _status_class(row: Any) -> list[str]:
    return [c for c in row.cells["status"]._dom_classes if c.startswith("vm0-status-")]


def test_browser_pages_through_the_runs_newest_first(client: Any) -> None:
    marker = _unique("page")
    runs = _finished_runs(client, "echo", [f"{marker} {i}\nsecond line" for i in range(3)])
    browser = RunsBrowser(client, page_size=2)
    newest = [run.id for run in sorted(runs, key=lambda r: r.created_at, reverse=True)]
    assert [run.id for run in browser.runs] == newest[:2]
    assert [row.run_id for row in browser.table_rows] == newest[:2]
    assert browser.prev_button.disabled and not browser.next_button.disabled
    assert browser.page_label.value == "runs 1–2"
    browser.next_button.click()
    assert browser.runs[0].id == newest[2] and browser.page_label.value.startswith("runs 3–")
    browser.prev_button.click()
    assert [run.id for run in browser.runs] == newest[:2]
    row = browser.table_rows[0].texts()
    assert row["status"] == "completed" and row["agent"] == "echo" and row["run"] == newest[0]
    assert row["prompt"] == f"{marker} 2"  # the prompt's first line
    assert row["duration"].endswith(" s") and row["created (UTC)"] != "-"
    assert _status_class(browser.table_rows[0]) == ["vm0-status-completed"]
    # the table's colours are the theme's status colours
    css = browser.table.children[0].value
    assert f".vm0-status-completed {{color:{STATUS_CSS['completed']}" in css
    browser.close()


def test_a_short_page_hides_the_rows_it_does_not_need(client: Any) -> None:
    _finished_runs(client, "echo", ["one"])
    shown = _count_runs(client)
    browser = RunsBrowser(client, page_size=shown + 2)
    assert len(browser.runs) == len(browser.table_rows) == shown
    assert all(row.box.layout.display is None for row in browser.table_rows)
    assert all(row.box.layout.display == "none" for row in browser._rows[shown:])
    browser.close()


def test_browser_filters_by_status_and_agent(client: Any) -> None:
    _finished_runs(client, "python", ["raise SystemExit(3)", "print('fine')"])
    browser = RunsBrowser(client, page_size=50)
    assert {run.status for run in browser.runs} >= {"completed", "failed"}
    browser.status.value = "failed"
    assert browser.runs and {run.status for run in browser.runs} == {"failed"}
    assert {tuple(_status_class(row)) for row in browser.table_rows} == {("vm0-status-failed",)}
    browser.status.value = ""
    python_id = dict(browser.agent.options)["python"]
    browser.agent.value = python_id
    assert browser.runs and {run.agent_name for run in browser.runs} == {"python"}
    browser.status.value = "pending"
    browser.agent.value = dict(browser.agent.options)["shell"]
    assert browser.runs == [] and browser.page_label.value == "no runs match"
    assert browser.table_rows == []
    browser.close()


def test_selecting_a_run_shows_its_card_output_and_frames(client: Any) -> None:
    prompt = "show me " + _unique("sel")
    (run,) = _finished_runs(client, "echo", [prompt])
    browser = RunsBrowser(client)
    browser.logs_button.click()
    assert "select a run in the table first" in browser.message.value
    _row_of(browser, run.id).click()  # a click on the row, as in JupyterLab
    assert browser.selected.id == run.id and browser.message.value == ""
    assert _selected_rows(browser) == [run.id]
    assert run.id in browser.card.value and "completed" in browser.card.value
    output = _shown(browser.run_output, "text/html")
    assert prompt in output and "<pre" in output and not browser.following
    assert browser.cancel_button.disabled  # a finished run cannot be cancelled
    browser.logs_button.click()
    logs = _shown(browser.frame, "text/html")
    assert "<table" in logs and "timestamp" in logs and "agent" in logs
    browser.metrics_button.click()
    assert "text/html" in browser.frame.outputs[0]["data"]
    browser.plot_button.click()
    assert "image/png" in browser.frame.outputs[0]["data"]
    # a cancel that the server refuses shows its reason, not a traceback in the log console
    browser.cancel_button.click()
    message = html.unescape(browser.message.value)
    assert message.startswith(f'<span style="color:{STATUS_CSS["failed"]}">Run cannot be cancelled')
    browser.close()


def test_browser_shows_a_chatty_runs_whole_output(client: Any) -> None:
    """The run detail carries only the last 16 KB; the browser shows every line."""
    (run,) = _finished_runs(client, "python", ["for i in range(3000): print(f'n{i:05d}')"])
    browser = RunsBrowser(client)
    browser.select(run.id)
    shown = _shown(browser.run_output, "text/html")
    assert "n00000\nn00001" in shown and "n02999" in shown and "the first" not in shown
    browser.close()


def test_browser_follows_a_running_run_live_to_its_end(client: Any, local_server: Any) -> None:
    run = client.runs.create(agent="shell", prompt=GATED)
    browser = RunsBrowser(client, max_updates_per_second=50)
    _row_of(browser, run.id).click()
    assert browser.following and not browser.cancel_button.disabled
    live = _until(lambda: "tick 40" in _shown(browser.run_output) and _shown(browser.run_output),
                  "the lines streamed in")
    assert live.splitlines()[0].split(" · ")[2] == "running"  # the live header
    assert _row_of(browser, run.id).texts()["status"] == "running"
    assert _status_class(_row_of(browser, run.id)) == ["vm0-status-running"]
    release(local_server, run.id, client)
    _until(lambda: not browser.following, "the run ended")
    # no Refresh: the row, the card and the live view say how it ended
    row = _row_of(browser, run.id)
    assert row.texts()["status"] == "completed" and row.texts()["duration"].endswith(" s")
    assert _status_class(row) == ["vm0-status-completed"]
    assert "completed" in browser.card.value and browser.cancel_button.disabled
    shown = _shown(browser.run_output)
    assert "released" in shown and shown.splitlines()[0].split(" · ")[2] == "completed"
    assert browser.selected.status == "completed" and browser.message.value == ""
    browser.close()


def test_selecting_another_run_lets_go_of_the_followed_one(
    client: Any, local_server: Any
) -> None:
    (done,) = _finished_runs(client, "echo", ["already " + _unique("done")])
    running = client.runs.create(agent="shell", prompt=GATED)
    browser = RunsBrowser(client, max_updates_per_second=50)
    browser.select(running.id)
    _until(lambda: "tick 40" in _shown(browser.run_output), "the lines streamed in")
    followers = [t for t in threading.enumerate() if t.name == "vm0-live-output"]
    _row_of(browser, done.id).click()
    assert followers and not browser.following
    assert not any(thread.is_alive() for thread in followers)  # let go, not left writing
    shown = browser.run_output.outputs
    assert "already" in _shown(browser.run_output) and "tick" not in _shown(browser.run_output)
    release(local_server, running.id, client)
    running.wait(timeout=WAIT)
    assert browser.run_output.outputs == shown  # nothing more was written into the area
    assert browser.selected.id == done.id and _selected_rows(browser) == [done.id]
    # Refresh lists it again, now completed
    browser.refresh_button.click()
    assert _row_of(browser, running.id).texts()["status"] == "completed"
    browser.close()


def test_browser_cancels_a_running_run(client: Any) -> None:
    run = client.runs.create(agent="python", prompt="import time\ntime.sleep(120)")
    _until(lambda: run.refresh().status == "running", "the run started")
    browser = RunsBrowser(client)
    _row_of(browser, run.id).click()
    assert browser.following
    _until(lambda: " · running · " in _shown(browser.run_output), "the live view shows")
    assert browser.cancel_button.disabled is False
    browser.cancel_button.click()
    assert client.runs.get(run.id).status == "cancelled"
    assert f"{run.id} cancelled" in browser.message.value
    assert browser.selected.status == "cancelled" and browser.cancel_button.disabled
    assert not browser.following
    assert _row_of(browser, run.id).texts()["status"] == "cancelled"
    browser.close()


# padding that puts the secret across the cut of a table row (120) and of the card's prompt (300)
@pytest.mark.parametrize("padding", [0, 110, 290])
def test_browser_masks_every_known_secret(client: Any, padding: int) -> None:
    secret = secrets.token_hex(8) + "-browser-secret"
    (run,) = _finished_runs(client, "echo", ["p" * padding + f"{secret} is the password"])
    masker = SecretMasker()
    masker.add(secret)
    browser = RunsBrowser(client, masker=masker)
    _row_of(browser, run.id).click()
    browser.logs_button.click()
    shown = [text for row in browser.table_rows for text in row.texts().values()]
    shown += [row.cells["prompt"].tooltip or "" for row in browser.table_rows]
    shown += [browser.card.value, _shown(browser.run_output),
              _shown(browser.run_output, "text/html"), _shown(browser.frame),
              _shown(browser.frame, "text/html")]
    # not even its start where a long text is cut short (rows, card, pandas cells)
    assert all(secret[:9] not in text for text in shown)
    assert "*** is the password" in _shown(browser.run_output)
    assert "*** is the password" in _row_of(browser, run.id).cells["prompt"].tooltip
    assert masker.mask(client._key) == "***"  # the API key is known to the masker too
    browser.close()


# -- the magics -------------------------------------------------------------------------------


@pytest.mark.notebook
@pytest.mark.parametrize(("command", "cls"), [("launcher", "RunLauncher"),
                                              ("browser", "RunsBrowser")])
def test_magic_shows_the_widget(notebook: Notebook, command: str, cls: str) -> None:
    cell = notebook.run(f"w = %vm0 {command}\nw")
    bundles = [o.get("data", {}) for o in cell.outputs if o.output_type == "execute_result"]
    assert bundles and "application/vnd.jupyter.widget-view+json" in bundles[-1]
    assert notebook.value("type(w).__name__") == repr(cls)
    # the widget masks with the kernel's masker (which knows every --secret of the kernel)
    assert notebook.value(
        "w.masker is get_ipython().find_magic('vm0').__self__.masker"
    ) == "True"
