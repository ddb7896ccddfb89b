"""The ``claude-code`` framework end to end: the real Claude Code CLI, in the real sandbox, run
by a real local server over HTTP, against a scripted Anthropic Messages API on 127.0.0.1
(:mod:`tests.model_server`, the only test double: it plays the model)."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.claude_cli import EXECUTABLE, needs_claude
from tests.conftest import ServerInfo, spawn_server
from tests.local.agent_runs import Api, marked_processes
from tests.model_server import ModelServer, text, tool_use
from vm0_notebook import Client
from vm0_notebook.local.runtime.sandbox import bwrap_problem

KEY = "sk-ant-test-" + secrets.token_hex(20)
MODEL = "claude-sonnet-4-5"
INSTRUCTIONS = "You are a careful data analyst. Cite the file you read."
PENGUINS = b"species,island,body_mass_g\nAdelie,Torgersen,3750\nGentoo,Biscoe,5000\n"

pytestmark = [pytest.mark.slow, needs_claude]


@pytest.fixture(scope="module")
def model() -> Iterator[ModelServer]:
    with ModelServer(model_id=MODEL) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    # The CLI's npm folder on the server's PATH: the built-in `claude` finds it there.
    assert EXECUTABLE is not None
    path = f"{os.path.dirname(EXECUTABLE)}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    started = spawn_server(tmp_path_factory.mktemp("vm0-claude"), env={"PATH": path})
    yield started
    started.stop()


@pytest.fixture(scope="module")
def client(server: ServerInfo) -> Iterator[Client]:
    c = Client(api_url=server.url, api_key=server.token)
    yield c
    c.close()


@pytest.fixture(scope="module")
def api(server: ServerInfo) -> Iterator[Api]:
    raw = Api(server)
    yield raw
    raw.close()


@pytest.fixture(scope="module")
def analyst(client: Client, model: ModelServer) -> str:
    """An agent of the framework with every key set; its model endpoint is the scripted one."""
    name = f"analyst-{secrets.token_hex(4)}"
    client.agents.create(name, {
        "framework": "claude-code", "model": MODEL, "instructions": INSTRUCTIONS,
        "allowed_tools": ["Bash", "Read", "Write", "Edit"], "timeout_s": 300,
        "env": {"ANTHROPIC_BASE_URL": model.url, "ANALYST_MODE": "strict"},
    })
    return name


@pytest.fixture(autouse=True)
def _fresh_script(model: ModelServer) -> None:
    model.reset()


def run_claude(client: Client, agent: str, prompt: str, **options: Any) -> Any:
    options.setdefault("secrets", {"ANTHROPIC_API_KEY": KEY})
    return client.runs.create(agent, prompt, **options)


def finished(api: Api, run: Any) -> Any:
    """Follow the run to its end over SSE: its detail, frames and logs as served."""
    return api.finish(run.id)


def tool_results(done: Any) -> list[dict[str, Any]]:
    return [block for e in done.events if e["type"] == "user"
            for block in e["message"]["content"] if block.get("type") == "tool_result"]


def tool_uses(done: Any) -> list[dict[str, Any]]:
    return [block for e in done.events if e["type"] == "assistant"
            for block in e["message"]["content"] if block.get("type") == "tool_use"]


def test_a_written_report_becomes_the_artifact_version(client, api, model, analyst, tmp_path):
    report = "# Penguins\n\nTwo rows.\n"
    model.reset(tool_use("Write", {"file_path": "artifact/report.md", "content": report},
                         preface="I'll write the report."),
                text("I wrote artifact/report.md."))
    run = run_claude(client, analyst, "Write a report.", artifact_name="claude-reports")
    done = finished(api, run)
    assert done.status == "completed", done.detail
    assert done.detail["artifact_version"], done.detail
    folder = client.artifacts.mount("claude-reports", done.detail["artifact_version"],
                                    to=tmp_path / "out")
    assert (folder / "report.md").read_text() == report
    assert done.result["result"] == "I wrote artifact/report.md."
    assert client.runs.get(run.id).wait().output == "I wrote artifact/report.md."


def test_tool_calls_and_their_results_arrive_as_paired_events(client, api, model, analyst):
    model.reset(tool_use("Bash", {"command": "echo pair-one", "description": "first"}),
                tool_use("Bash", {"command": "echo pair-two", "description": "second"}),
                text("Both ran."))
    done = finished(api, run_claude(client, analyst, "Run two commands."))
    assert done.status == "completed", done.detail
    kinds = [e["type"] for e in done.events]
    assert kinds[0] == "system" and done.events[0]["subtype"] == "init"
    assert kinds[-1] == "result" and kinds.count("result") == 1
    uses, results = tool_uses(done), tool_results(done)
    assert [u["name"] for u in uses] == ["Bash", "Bash"]
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert "pair-one" in json.dumps(results[0]) and "pair-two" in json.dumps(results[1])
    # each result comes after its call, before the next call
    positions = {block["id"]: i for i, e in enumerate(done.events) if e["type"] == "assistant"
                 for block in e["message"]["content"] if block.get("type") == "tool_use"}
    for i, e in enumerate(done.events):
        for block in e["message"]["content"] if e["type"] == "user" else []:
            assert positions[block["tool_use_id"]] < i
    assert done.result["num_turns"] == 3 and done.result["usage"]["output_tokens"] > 0
    assert "total_cost_usd" in done.result


def test_a_tool_reads_a_volume_file(client, api, model, analyst, tmp_path):
    (tmp_path / "penguins.csv").write_bytes(PENGUINS)
    volume = f"penguins-{secrets.token_hex(4)}"
    client.volumes.push(tmp_path, volume)
    model.reset(tool_use("Read", {"file_path": f"volumes/{volume}/penguins.csv"}),
                text("Two penguins."))
    done = finished(api, run_claude(client, analyst, "Read the data.", volumes=[volume]))
    assert done.status == "completed", done.detail
    # what the model received back from the tool is the file's content
    [read] = model.turns[1].tool_results()
    assert "Gentoo,Biscoe,5000" in json.dumps(read)
    assert "Gentoo,Biscoe,5000" in json.dumps(tool_results(done))


def test_the_config_reaches_the_cli_model_instructions_and_env(client, api, model, analyst):
    model.reset(tool_use("Bash", {"command": 'echo "mode=$ANALYST_MODE home=$HOME"'}),
                text("Checked."))
    done = finished(api, run_claude(client, analyst, "Check the settings."))
    assert done.status == "completed", done.detail
    assert model.turns and {t.model for t in model.turns} == {MODEL}
    assert all(INSTRUCTIONS in t.system_text() for t in model.turns)
    assert done.events[0]["model"] == MODEL
    output = json.dumps(tool_results(done))
    assert "mode=strict" in output
    # its home is inside the session folder
    assert f"home={done.events[0]['cwd']}/.claude-home" in output
    sandboxed = bwrap_problem() is None
    assert any(("Sandbox: bubblewrap" if sandboxed else "Sandbox: process") in entry["message"]
               for entry in done.logs)


def test_a_tool_outside_allowed_tools_is_refused(client, api, model):
    name = f"reader-{secrets.token_hex(4)}"
    client.agents.create(name, {"framework": "claude-code", "allowed_tools": ["Read"],
                                "env": {"ANTHROPIC_BASE_URL": model.url}})
    model.reset(tool_use("Bash", {"command": "touch artifact/ran-anyway"}), text("Tried."))
    done = finished(api, run_claude(client, name, "Run a command.", artifact_name="refused"))
    assert done.status == "completed", done.detail
    [refusal] = tool_results(done)
    assert refusal["is_error"] is True
    assert [d["tool_name"] for d in done.result["permission_denials"]] == ["Bash"]
    assert done.detail["artifact_version"] is None  # nothing was written


def test_the_builtin_claude_agent_reaches_a_model_endpoint_given_as_a_variable(
    client, api, model
):
    model.reset(text("Hello from the scripted model."))
    run = run_claude(client, "claude", "Say hello.",
                     variables={"ANTHROPIC_BASE_URL": model.url})
    done = finished(api, run)
    assert done.status == "completed", done.detail
    assert done.result["result"] == "Hello from the scripted model."
    assert model.turns and all(t.had_key for t in model.turns)
    detail = client.agents.get("claude")
    assert detail.config == {"framework": "claude-code"}


def test_a_follow_up_continues_the_conversation_with_the_same_key(client, api, model, analyst):
    model.reset(text("Noted: PELICAN-ACK."))
    first = run_claude(client, analyst, "The secret word is PELICAN.")
    assert finished(api, first).status == "completed"
    model.reset(text("The word was PELICAN."))
    # no secrets given: the follow-up reuses the ones `first` was created with
    second = first.follow_up("What was the secret word?")
    done = finished(api, second)
    assert done.status == "completed", done.detail
    assert done.detail["session_id"] == first.session_id
    opening = model.turns[0]
    assert opening.had_key
    said = opening.text()
    assert "The secret word is PELICAN." in said and "Noted: PELICAN-ACK." in said
    assert said.index("PELICAN-ACK") < said.index("What was the secret word?")


def test_secrets_given_to_a_follow_up_replace_the_remembered_ones(client, api, model, analyst):
    model.reset(text("First."))
    first = run_claude(client, analyst, "Hello.")
    assert finished(api, first).status == "completed"
    done = finished(api, first.follow_up("Again, without the key.", secrets={}))
    assert done.status == "failed"
    assert done.detail["error"] == done.result["result"]


def test_resume_from_a_checkpoint_restores_the_folder_and_the_conversation(
    client, api, model, analyst
):
    model.reset(tool_use("Bash", {"command": "echo 'version one' > notes.txt"}),
                text("Noted ONE."))
    first = run_claude(client, analyst, "Write version one.")
    assert finished(api, first).status == "completed"
    model.reset(tool_use("Bash", {"command": "echo 'version two' > notes.txt"}),
                text("Noted TWO."))
    later = first.follow_up("Write version two.")
    assert finished(api, later).status == "completed"

    model.reset(tool_use("Bash", {"command": "cat notes.txt"}), text("It says version one."))
    resumed = client.runs.get(first.id).resume("What do the notes say?")
    done = finished(api, resumed)
    assert done.status == "completed", done.detail
    assert done.detail["session_id"] != first.session_id
    said = model.turns[0].text()
    assert "Noted ONE." in said and "Write version one." in said
    assert "Noted TWO." not in said and "Write version two." not in said
    [cat] = model.turns[1].tool_results()
    assert "version one" in json.dumps(cat) and "version two" not in json.dumps(cat)


def test_the_key_reaches_the_cli_environment_and_nothing_else(
    client, api, model, analyst, server
):
    # An agent that tries to show its key, and its command lines, to the world.
    listing = ("echo ARGS-START; for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; "
               "done; echo ARGS-END; echo \"KEY=$ANTHROPIC_API_KEY\"")
    model.reset(tool_use("Bash", {"command": listing}),
                # a model that repeats the key it saw
                lambda request: text(f"Your key is {KEY if KEY in request.text() else '?'}"))
    run = run_claude(client, analyst, "Show your key.")
    done = finished(api, run)
    assert done.status == "completed", done.detail
    # the CLI had it (in its environment), and no command line in the sandbox did
    [seen] = model.turns[1].tool_results()
    raw = json.dumps(seen)
    assert f"KEY={KEY}" in raw
    assert KEY not in raw[raw.index("ARGS-START"):raw.index("ARGS-END")]
    # nothing the server shows or keeps holds it
    run = client.runs.get(run.id).wait()
    assert KEY not in done.everything()
    assert KEY not in (run.output or "") and KEY not in (run.error or "")
    assert run.output == "Your key is ***"
    assert not _files_holding(server.data_dir, KEY.encode())


def test_a_run_without_a_key_fails_with_claude_codes_own_message(client, api, model, analyst):
    run = client.runs.create(analyst, "Hello?")
    done = finished(api, run)
    assert done.status == "failed"
    said = done.result["result"]
    assert said and done.detail["error"] == said
    assert "log" in said.lower() or "api key" in said.lower()  # "Not logged in · Please run /login"
    assert not [t for t in model.turns if t.had_key]


def test_cancel_stops_the_cli_and_everything_it_started(client, api, model, analyst):
    marker = f"vm0-claude-cancel-{time.time_ns()}"
    model.reset(tool_use("Bash", {"command": f"bash -c 'exec -a {marker} sleep 300'"}))
    run = run_claude(client, analyst, "Wait a long time.")
    _wait_for(lambda: marked_processes(marker))
    assert _run_processes(run.id)  # the CLI itself is running
    cancelled = client.runs.cancel(run.id)
    assert cancelled.status == "cancelled"
    assert marked_processes(marker) == []
    assert _run_processes(run.id) == []


def test_a_timeout_stops_the_cli_and_everything_it_started(client, api, model):
    marker = f"vm0-claude-timeout-{time.time_ns()}"
    name = f"slow-{secrets.token_hex(4)}"
    client.agents.create(name, {"framework": "claude-code", "timeout_s": 15,
                                "env": {"ANTHROPIC_BASE_URL": model.url}})
    model.reset(tool_use("Bash", {"command": f"bash -c 'exec -a {marker} sleep 300'"}))
    run = run_claude(client, name, "Wait a long time.")
    _wait_for(lambda: marked_processes(marker))
    done = finished(api, run)
    assert done.status == "timeout", done.detail
    assert marked_processes(marker) == []
    assert _run_processes(run.id) == []


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.05)


def _run_processes(run_id: str) -> list[psutil.Process]:
    """Live processes whose environment holds ``VM0_RUN_ID=<run_id>`` (the CLI and its tools)."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] != "zombie" and proc.environ().get("VM0_RUN_ID") == run_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _files_holding(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()
            and needle in p.read_bytes()]
