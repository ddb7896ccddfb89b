"""``%vm0`` / ``%%vm0`` in a real kernel (nbclient) against the real local server."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.not_vm0 import not_vm0_server
from tests.notebook.notebook_kernel import SECRET_NAME, Notebook, html_of, text_of
from vm0_notebook.local import daemon

pytestmark = pytest.mark.notebook


def _running_with(client, marker: str):
    """The running run whose prompt holds ``marker`` once it has printed something, else None."""
    for run in client.runs.list(status="running"):
        if marker in (run.prompt or "") and any(client.runs.logs(run.id, type="agent")):
            return run
    return None


def test_load_ext_is_silent_and_help_lists_every_command(notebook: Notebook) -> None:
    assert notebook.nb.cells[0].outputs == []
    help_text = notebook.value('print(get_ipython().object_inspect_text("%vm0"))')
    for needle in ("%%vm0 run", "--on-interrupt", "%vm0 attach", "%vm0 logs", "%vm0 local",
                   "VM0Magics.tail_lines"):
        assert needle in help_text
    # five worked examples first, then the commands, in plain text (no reST left over)
    doc = notebook.get("get_ipython().find_line_magic('vm0').__doc__")
    assert doc.index("Examples") < doc.index("  5. ") < doc.index("Commands")
    assert "::" not in doc and "\n.." not in doc and max(map(len, doc.splitlines())) <= 100


def test_load_ext_stays_light() -> None:
    code = (
        "import sys; get_ipython().run_line_magic('load_ext', 'vm0_notebook'); "
        "print(sorted(m for m in ('httpx', 'pandas', 'matplotlib', 'ipywidgets', 'starlette')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-m", "IPython", "--quick", "--no-banner", "-c", code],
        capture_output=True, text=True, check=True,
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_run_fills_the_prompt_streams_and_returns_the_run(notebook: Notebook) -> None:
    notebook.run('name = "penguins"')
    cell = notebook.run("%%vm0 run echo -o r\nSummarise {name} and keep {{braces}}.")
    text = text_of(cell)
    assert "Summarise penguins and keep {braces}." in text
    assert "echo · run_" in text and "completed" in text and "next: %vm0 logs run_" in text
    assert "<pre" in html_of(cell)  # the live area has an HTML form too
    assert [o.output_type for o in cell.outputs][-1] == "execute_result"  # the Run
    # the card is the reference, the live summary does not repeat it; no made-up cost
    assert text.count("checkpoint") == 1 and "$0.0000" not in text
    assert notebook.value("r.status") == "'completed'"
    assert notebook.value("r.prompt") == "'Summarise penguins and keep {braces}.'"
    # the one-line form; --raw sends braces as they are; "connected" is said only once
    cell = notebook.run('%vm0 run echo --raw "keep {name}" -o raw')
    assert "keep {name}" in text_of(cell) and "connected" not in text_of(cell)
    assert notebook.value("raw.prompt") == "'keep {name}'"


def test_prompts_of_code_agents_are_sent_as_written(notebook: Notebook) -> None:
    notebook.run("i = 99\ndataset_name = 'penguins.csv'")
    cell = notebook.run('%%vm0 run python -o code\nfor i in range(3): print(f"item-{i}")')
    text = text_of(cell)
    assert "item-0" in text and "item-2" in text and "item-99" not in text
    assert "filled:" not in text
    assert notebook.get("code.prompt") == 'for i in range(3): print(f"item-{i}")'
    cell = notebook.run("%%vm0 run shell\necho 'a b' | awk '{print $2}'")
    assert "b" in text_of(cell).splitlines() and "filled:" not in text_of(cell)
    # prose agents get filling, and the cell says what was filled; --fill and --raw override
    cell = notebook.run("%%vm0 run echo -o prose\nSummarise {dataset_name}.")
    assert "filled: dataset_name='penguins.csv'" in text_of(cell)
    assert notebook.get("prose.prompt") == "Summarise penguins.csv."
    cell = notebook.run("%%vm0 run python --fill\nprint({i} + 1)")
    assert "100" in text_of(cell) and "filled: i=99" in text_of(cell)
    cell = notebook.run("%%vm0 run echo --raw -o kept\nSummarise {dataset_name}.")
    assert notebook.get("kept.prompt") == "Summarise {dataset_name}."
    # the line's options are filled in for every agent
    cell = notebook.run("%%vm0 run python --var N={i}\nimport os; print('N is', os.environ['N'])")
    assert "N is 99" in text_of(cell)
    _, error = notebook.fails("%%vm0 run echo --fill --raw\nhello")
    assert "--fill or --raw" in error


def test_quiet_and_no_wait_then_attach(notebook: Notebook) -> None:
    notebook.run("%vm0 agents")  # connect first: the once-only "connected to" line is not ours
    cell = notebook.run('%vm0 run echo "quietly" --quiet -o q')
    assert [o.output_type for o in cell.outputs] == ["execute_result"]
    cell = notebook.run('%vm0 run echo "later" --no-wait -o nw')
    run_id = notebook.get("nw.id")
    assert f"follow it with: %vm0 attach {run_id}" in text_of(cell)
    cell = notebook.run(f"%vm0 attach {run_id} -o again")
    assert "later" in text_of(cell) and notebook.value("again.status") == "'completed'"


def test_failed_run_binds_var_and_fails_the_cell_briefly(notebook: Notebook) -> None:
    cell, error = notebook.fails("%%vm0 run python -o bad\nprint('working')\n1/0")
    run_id = notebook.get("bad.id")
    assert error == (
        f"RunFailed: run {run_id} failed: ZeroDivisionError: division by zero (exit code 1). "
        f"Its logs: %vm0 logs {run_id}"
    )
    assert notebook.get("bad.status") == "failed"
    # said three times, not more: the traceback on stderr, the result line, the cell's error
    text = text_of(cell)
    assert "working" in text and text.count("ZeroDivisionError") == 3
    assert "Traceback (most recent call last):" in text  # stderr is shown as it came


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("%vm0 run echo hi --bogus", "unrecognized arguments: --bogus"),
        ("%%vm0 run\nhello", "name the agent"),
        ("%vm0 run echo hi --var NOPE", "bad --var 'NOPE': write --var NAME=VALUE"),
        ("%vm0 run no-such-agent hi", "no-such-agent"),
        ("%vm0 frobnicate", "unknown command 'frobnicate'"),
        ("%%vm0 run echo\n{undefined_name}", "NameError"),
        ("%vm0 run echo hi --timeout 0", "--timeout must be a positive number"),
        ("%vm0 run echo hi --secret NOT_SET_ANYWHERE", "set the environment variable"),
        ("%vm0 run echo hi --volume @v1", "write --volume NAME or NAME@VERSION"),
        ("%vm0 run echo hi --agent-version v99", "v99"),
        ("%vm0 run --checkpoint chk_000000000000000000000000 hi", "chk_000000000000000000000000"),
        ("%%vm0 runs\nbody", "takes no cell body"),
    ],
)
def test_magic_line_errors_are_one_short_line(
    notebook: Notebook, source: str, expected: str
) -> None:
    _, error = notebook.fails(source)
    assert error.startswith("MagicError: ") and expected in error
    assert len(error.splitlines()) == 1 and "Traceback" not in error


def test_unreachable_server_is_one_line(notebook: Notebook) -> None:
    notebook.run(
        "import os, socket\n%unload_ext vm0_notebook\n"
        "_saved_url = os.environ['VM0_API_URL']\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); _port = s.getsockname()[1]; s.close()\n"
        "os.environ['VM0_API_URL'] = f'http://127.0.0.1:{_port}'\n%load_ext vm0_notebook"
    )
    try:
        _, error = notebook.fails("%vm0 agents")
        assert error.startswith("MagicError: ") and len(error.splitlines()) == 1
    finally:
        notebook.run(
            "%unload_ext vm0_notebook\nos.environ['VM0_API_URL'] = _saved_url\n"
            "%load_ext vm0_notebook"
        )


def test_session_checkpoint_and_agent_version_reach_the_run(notebook: Notebook, client) -> None:
    notebook.run("%%vm0 run python -o first\nopen('note.txt', 'w').write('kept')")
    # the cell form without an agent: the session's own agent goes on in its folder
    cell = notebook.run(
        "%%vm0 run --session {first.session_id} -o second\nprint('read', open('note.txt').read())"
    )
    assert "read kept" in text_of(cell)
    assert notebook.value("second.session_id == first.session_id") == "True"
    cell = notebook.run(
        '%vm0 run --checkpoint {first.checkpoint_id} "print(open(\'note.txt\').read())" -o third'
    )
    assert "kept" in text_of(cell) and notebook.value("third.status") == "'completed'"
    (v1, *_) = client.agents.versions("echo")
    notebook.run('%vm0 run echo --agent-version v1 "pinned" -o fourth')
    assert notebook.get("fourth.agent_version") == v1.id


def test_listings_are_dataframes(notebook: Notebook, client) -> None:
    notebook.run('%vm0 run echo "for the listings" -o lr')
    run_id = notebook.get("lr.id")
    for source in ("%vm0 runs --limit 3", "%vm0 agents", f"%vm0 logs {run_id}",
                   f"%vm0 metrics {run_id}", "%vm0 volumes", "%vm0 artifacts"):
        cell = notebook.run(source)
        (result,) = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert "text/html" in result.data, source
    cell = notebook.run(f"%vm0 metrics {run_id} --plot")
    assert sum("image/png" in o.get("data", {}) for o in cell.outputs) == 1  # shown once
    assert "echo" in text_of(notebook.run("%vm0 agents"))
    assert run_id in text_of(notebook.run("%vm0 runs --limit 3 --agent echo"))
    # compact: what a reader scans, by run id; the full frame with -o
    notebook.run('%%vm0 run shell -o ml\necho one\necho two')
    notebook.run("%vm0 runs --limit 2 -o full")
    assert notebook.get("list(_.columns)") == ["status", "agent", "started", "duration", "prompt"]
    assert notebook.get("_.index.name") == "run" and notebook.get("_.index[0]") == notebook.get(
        "ml.id")
    assert re.fullmatch(r"\d+\.\d s", notebook.get("_.duration.iloc[0]"))
    assert notebook.get("_.prompt.iloc[0]") == "echo one…"  # the first line, marked as cut
    assert notebook.get("len(full.columns)") >= 16 and notebook.get("str(full.duration.dtype)") \
        == "timedelta64[ns]"
    _, error = notebook.fails(f"%vm0 cancel {run_id}")  # it has finished
    assert "cannot be cancelled" in error


def test_volume_in_artifact_out_push_and_mount(notebook: Notebook, tmp_path) -> None:
    (tmp_path / "hello.txt").write_text("hello from a volume\n")
    notebook.run("%vm0 volumes")  # connected (and said so) before the output checked below
    cell = notebook.run(f"%vm0 push {tmp_path} nb-data -m first")
    # one line, and no cell value to repeat it
    assert re.fullmatch(r"nb-data@[0-9a-f]{12} · 1 file · 20 B · new volume\n", text_of(cell))
    assert [o.output_type for o in cell.outputs] == ["stream"]
    cell = notebook.run(f"%vm0 push {tmp_path} nb-data -o pushed")
    assert text_of(cell).endswith(" · unchanged\n")
    assert notebook.value("pushed.file_count") == "1"
    (tmp_path / "more.txt").write_text("x" * 3000)
    assert text_of(notebook.run(f"%vm0 push {tmp_path} nb-data")).endswith(
        " · 2 files · 2.9 KiB · new version\n"
    )
    cell = notebook.run(
        "%%vm0 run shell --volume nb-data --artifact nb-out -o va\n"
        "cat volumes/nb-data/hello.txt > artifact/copy.txt && echo copied"
    )
    text = text_of(cell)
    # what the run used is in its card (the cell's value), and the next steps in the summary
    assert "copied" in text and "va.artifact()" in text
    assert re.search(r"volumes +nb-data@[0-9a-f]{12}", text)
    assert re.search(r"artifact +nb-out@[0-9a-f]{12}", text)
    notebook.run("%vm0 mount artifact nb-out -o out_dir")
    assert notebook.value("(out_dir / 'copy.txt').read_text()") == "'hello from a volume\\n'"

    # a writable copy refuses a folder holding other files, unless told to replace them
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("keep")
    _, error = notebook.fails(f"%vm0 mount artifact nb-out --to {tmp_path / 'busy'}")
    assert str(tmp_path / "busy") in error and "--overwrite" in error
    assert (tmp_path / "busy" / "mine.txt").read_text() == "keep"
    notebook.run(f"%vm0 mount artifact nb-out --to {tmp_path / 'busy'} --overwrite")
    assert sorted(p.name for p in (tmp_path / "busy").iterdir()) == ["copy.txt"]

    # the cache: its size, a clear that keeps recent versions, a full clear
    assert re.fullmatch(r"\d+(\.\d)? (B|KiB) in \S+/cache/versions\n",
                        text_of(notebook.run("%vm0 cache")))
    assert text_of(notebook.run("%vm0 cache clear --older-than 1")).startswith("freed 0 B · ")
    assert notebook.get("out_dir.exists()") is True
    assert re.fullmatch(r"freed \d+(\.\d)? (B|KiB) · 0 B left in \S+\n",
                        text_of(notebook.run("%vm0 cache clear")))
    assert notebook.get("out_dir.exists()") is False
    _, error = notebook.fails("%vm0 cache clear --older-than -2")
    assert "0 or more" in error


def test_timeout_cancels_by_default(notebook: Notebook, client) -> None:
    _, error = notebook.fails(
        "%%vm0 run python --timeout 1 -o t\nimport time\ntime.sleep(60)"
    )
    assert error.startswith("RunFailed: gave up after 1 s (--timeout): run_")
    run_id = notebook.get("t.id")
    assert client.runs.get(run_id).status == "cancelled"


def test_config_says_where_it_is_connected_once(notebook: Notebook) -> None:
    # a fresh extension: %vm0 config is the command that connects
    text = text_of(notebook.run("%unload_ext vm0_notebook\n%load_ext vm0_notebook\n%vm0 config"))
    assert text.count("connected to") == 1
    assert "connected to: the local server at http://127.0.0.1:" in text
    assert re.search(r"server: speaks the VM0 API v1 \(version \S+, sandbox \w+\)", text)
    assert "%config VM0Magics.tail_lines = 100" in text
    assert "connected" not in text_of(notebook.run("%vm0 agents"))


def test_config_and_commands_say_when_the_server_does_not_speak_the_api(
    notebook: Notebook,
) -> None:
    with not_vm0_server("html") as server:
        notebook.run(f"import os\n_saved_url = os.environ['VM0_API_URL']\n"
                     f"os.environ['VM0_API_URL'] = {server.url!r}")
        try:
            text = text_of(notebook.run(
                "%unload_ext vm0_notebook\n%load_ext vm0_notebook\n%vm0 config"))
            assert (f"server: The server at {server.url} does not serve the VM0 API v1 at /v1 "
                    "(tried GET /v1/agents, got an HTML page)") in text
            _, error = notebook.fails("%vm0 agents")
            assert error.startswith(f"MagicError: The server at {server.url} does not serve")
            assert "\n" not in error.strip()
        finally:
            notebook.run("os.environ['VM0_API_URL'] = _saved_url\n"
                         "%unload_ext vm0_notebook\n%load_ext vm0_notebook")
    assert notebook.token not in notebook.saved()


@pytest.mark.slow
def test_local_start_status_stop(notebook: Notebook, tmp_path) -> None:
    data_dir = tmp_path / "local"
    notebook.run(
        "import os\n_saved_dir = os.environ['VM0_LOCAL_DIR']\n"
        f"os.environ['VM0_LOCAL_DIR'] = {str(data_dir)!r}"
    )
    try:
        assert text_of(notebook.run("%vm0 local status")) == "local server not running\n"
        text = text_of(notebook.run("%vm0 local start"))
        assert text.startswith("local server running at http://127.0.0.1:")
        assert f"data in {data_dir}" in text
        # this kernel keeps talking to the server VM0_API_URL names, and says so
        assert "this kernel uses VM0_API_URL" in text
        info = daemon.server_status(data_dir)
        assert info is not None and info["url"] in text
        assert text_of(notebook.run("%vm0 local start")) == text  # already running: the same one
        assert text_of(notebook.run("%vm0 local stop")).startswith(
            f"local server stopped (it was at {info['url']})"
        )
        assert daemon.server_status(data_dir) is None
        assert text_of(notebook.run("%vm0 local stop")) == "local server not running\n"
    finally:
        daemon.stop_server(data_dir)
        notebook.run("os.environ['VM0_LOCAL_DIR'] = _saved_dir")


def test_secrets_and_api_key_never_reach_the_saved_notebook(notebook: Notebook) -> None:
    cell = notebook.run(
        f'%%vm0 run shell --secret {SECRET_NAME} -o s\necho "secret=${SECRET_NAME}"'
    )
    assert "secret=***" in text_of(cell)
    # a later run prints the secret and the key back without the server knowing they are secret
    notebook.run("import os")
    cell = notebook.run(
        "%%vm0 run echo -o leak\n"
        f"key {{os.environ['VM0_API_KEY']}} and {{os.environ['{SECRET_NAME}']}}"
    )
    assert "key *** and ***" in text_of(cell)
    notebook.run("%vm0 config")
    notebook.run("leak")  # the Run's own display masks too
    # the listings hold the prompt and the agent's output as the server keeps them
    run_id = notebook.get("leak.id")
    for source, column in (("%vm0 runs --limit 3", "prompt"), (f"%vm0 logs {run_id}", "message")):
        notebook.run(source)
        # the frame shown (the cell's value, _), not only its display, which cuts long text
        found = f"_.{column}.str.contains('key *** and ***', regex=False).sum()"
        assert notebook.get(f"int({found})") >= 1, source
    saved = notebook.saved()
    assert notebook.secret not in saved and notebook.token not in saved


# An agent that cannot finish before the test says so: it prints its folder and a few ticks,
# then waits for a file named "go" there (bounded, should the test die first).
_WAITER = """# {marker}
import os, time
print('cwd', os.getcwd(), flush=True)
for i in range(20):
    print('tick', i, flush=True)
for _ in range(6000):
    if os.path.exists('go'):
        break
    time.sleep(0.05)
print('released' if os.path.exists('go') else 'gave up', flush=True)"""


def _interrupted(notebook: Notebook, client, options: str) -> tuple[str, str, str]:
    """Run the waiting agent and Ctrl-C the cell once it has printed something.
    The cell's text, its error, and the run id."""
    marker = uuid.uuid4().hex
    sender = notebook.interrupt_when(lambda: _running_with(client, marker) is not None)
    cell, error = notebook.fails(
        f"%%vm0 run python -o slow {options}\n" + _WAITER.format(marker=marker)
    )
    sender.join()
    run_id = notebook.get("slow.id")
    return text_of(cell), error, run_id


def _release(client, run_id: str) -> None:
    """Create the file the waiting agent of ``run_id`` waits for, in its own folder."""
    logs = " ".join(entry.message for entry in client.runs.logs(run_id, type="agent"))
    (folder,) = set(re.findall(r"cwd (/[^\"\\]+)", logs))
    (Path(folder) / "go").write_text("")


@pytest.mark.slow
def test_ctrl_c_cancels_the_run_by_default(notebook: Notebook, client) -> None:
    text, error, run_id = _interrupted(notebook, client, "")
    assert error.startswith(f"RunFailed: interrupted: {run_id}") and "cancelled" in error
    assert f"cancelling {run_id}" in text
    assert client.runs.get(run_id).status == "cancelled"


@pytest.mark.slow
def test_ctrl_c_detach_then_attach_from_a_restarted_kernel(notebook: Notebook, client) -> None:
    _, error, run_id = _interrupted(notebook, client, "--on-interrupt detach")
    assert f"%vm0 attach {run_id}" in error and "keeps running" in error
    assert client.runs.get(run_id).status == "running"  # it waits for "go": it cannot be done

    notebook.restart()
    notebook.run("%load_ext vm0_notebook")
    _release(client, run_id)
    cell = notebook.run(f"%vm0 attach {run_id} -o back")
    text = text_of(cell)
    # the whole output again, from the first line, then live to the end
    assert "tick 0\n" in text and "tick 19\n" in text and "released" in text
    assert "hidden" not in text
    assert notebook.value("back.status") == "'completed'"


@pytest.mark.slow
def test_twenty_thousand_events_send_few_display_updates(notebook: Notebook) -> None:
    started = time.monotonic()
    cell = notebook.run(
        "%%vm0 run python -o big\nfor i in range(20000):\n    print('line', i)"
    )
    elapsed = time.monotonic() - started
    updates = notebook.counts["display_data"] + notebook.counts["update_display_data"]
    # at most ~10 redraws a second of streaming, plus a constant (first draw, summary, clock)
    assert updates <= 10 * elapsed + 10, (updates, elapsed)
    assert notebook.counts["stream"] <= 2
    assert len(json.dumps(cell.outputs)) < 64_000
    text = text_of(cell)
    assert "line 19999" in text and "earlier lines hidden" in text
    # the whole output stays reachable: every event in the logs, every line in .output
    logged = notebook.value("len(big.logs(type='agent'))").splitlines()[-1]  # after tqdm's bar
    assert int(logged) >= 20_000
    assert notebook.value("big.output.splitlines()[::19999]") == "['line 0', 'line 19999']"
    assert notebook.value("len(big.output.splitlines())") == "20000"
