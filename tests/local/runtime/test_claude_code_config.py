"""The ``claude-code`` framework's config and session handling, without the CLI: bad configs
are refused with a clear error, a missing CLI fails the run at once with how to install it, and
the conversation pointer survives a session folder's move (a checkpoint restored elsewhere)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.local.agent_runs import Api
from vm0_notebook.local.runtime.frameworks import claude_code
from vm0_notebook.local.runtime.spec import ConfigProblem


def refused(api: Api, config: dict[str, object]) -> dict[str, str]:
    r = api.http.post("/agents", json={"name": f"bad-{uuid.uuid4().hex[:8]}", "config": config})
    assert r.status_code == 400, r.text
    return r.json()["error"]


def test_a_key_in_the_stored_config_is_refused_without_echoing_it(api: Api) -> None:
    key = "sk-ant-stored-" + uuid.uuid4().hex
    error = refused(api, {"framework": "claude-code", "env": {"ANTHROPIC_API_KEY": key}})
    assert error["param"] == "config.env.ANTHROPIC_API_KEY"
    assert "run secret" in error["message"] and key not in json.dumps(error)


@pytest.mark.parametrize(("config", "param"), [
    ({"framework": "claude-cod"}, "config.framework"),
    ({"framework": "claude-code", "allowedTools": ["Bash"]}, "config.allowedTools"),
    ({"framework": "claude-code", "command": ["claude"]}, "config.command"),
    ({"framework": "claude-code", "allowed_tools": "Bash"}, "config.allowed_tools"),
    ({"framework": "claude-code", "allowed_tools": ["--dangerously-skip-permissions"]},
     "config.allowed_tools"),
    ({"framework": "claude-code", "model": ""}, "config.model"),
    ({"framework": "claude-code", "env": {"A": 1}}, "config.env"),
])
def test_bad_framework_configs_are_refused(api: Api, config: dict[str, object], param: str
                                           ) -> None:
    assert refused(api, config)["param"] == param


def test_an_update_is_checked_too(api: Api) -> None:
    name = f"cc-{uuid.uuid4().hex[:8]}"
    r = api.http.post("/agents", json={"name": name, "config": {"framework": "claude-code"}})
    assert r.status_code == 201, r.text
    r = api.http.put(f"/agents/{name}", json={"config": {"framework": "claude-code",
                                                          "modle": "x"}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "config.modle", r.text


@pytest.mark.parametrize("executable", ["/nonexistent/bin/claude", "claude-not-installed-here"])
def test_a_missing_cli_fails_the_run_at_once_with_how_to_install_it(api: Api, executable: str
                                                                    ) -> None:
    name = f"cc-{uuid.uuid4().hex[:8]}"
    config = {"framework": "claude-code", "executable": executable}
    assert api.http.post("/agents", json={"name": name, "config": config}).status_code == 201
    run = api.run(name, "hello", secrets={"ANTHROPIC_API_KEY": "sk-ant-x"})
    assert run.status == "failed"
    assert "npm install -g @anthropic-ai/claude-code" in run.detail["error"]
    assert executable in run.detail["error"]
    assert run.result["is_error"] is True


def test_the_command_follows_the_symlink_and_sets_flags(tmp_path: Path) -> None:
    real = tmp_path / "pkg" / "bin" / "claude.exe"
    real.parent.mkdir(parents=True)
    real.write_bytes(b"\x7fELF")
    real.chmod(0o755)
    link = tmp_path / "bin" / "claude"
    link.parent.mkdir()
    link.symlink_to(real)
    workdir = tmp_path / "session"
    workdir.mkdir()
    config = {"framework": "claude-code", "model": "m-1", "instructions": "Be brief.",
              "allowed_tools": ["Bash", "Read"], "env": {"X": "1"}}
    cmd = claude_code.command(config, workdir, path=str(link.parent))
    argv = list(cmd.argv)
    assert argv[:5] == [str(real), "-p", "--output-format", "stream-json", "--verbose"]
    assert argv[argv.index("--model") + 1] == "m-1"
    assert argv[argv.index("--append-system-prompt") + 1] == "Be brief."
    assert argv[argv.index("--allowedTools"):] == ["--allowedTools", "Bash", "Read"]
    assert "--dangerously-skip-permissions" not in argv
    assert cmd.binds == (real,) and cmd.network is True
    assert cmd.env["HOME"] == str(workdir / ".claude-home") and cmd.env["X"] == "1"
    assert cmd.env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1"


def test_defaults_tools_and_a_script_cli_binds_its_package(tmp_path: Path) -> None:
    package = tmp_path / "node_modules" / "claude-code"
    (package / "vendor").mkdir(parents=True)
    (package / "package.json").write_text("{}")
    script = package / "cli.js"
    script.write_text("#!/usr/bin/env node\n")
    script.chmod(0o755)
    workdir = tmp_path / "s"
    workdir.mkdir()
    cmd = claude_code.command({"framework": "claude-code", "executable": str(script),
                               "network": False}, workdir)
    assert cmd.binds == (script, package) and cmd.network is False
    assert list(cmd.argv[cmd.argv.index("--allowedTools") + 1:]) == list(claude_code.DEFAULT_TOOLS)
    assert "--model" not in cmd.argv and "--append-system-prompt" not in cmd.argv


def test_the_conversation_is_resumed_where_the_session_folder_now_is(tmp_path: Path) -> None:
    first = tmp_path / "sessions" / "ses_one"
    home = first / claude_code.HOME
    home.mkdir(parents=True)
    args = claude_code.conversation_args(home, first)
    assert args[0] == "--session-id"
    session = args[1]
    assert claude_code.conversation_args(home, first) == ["--session-id", session]  # no transcript
    project = home / ".claude" / "projects" / claude_code.project_name(first)
    project.mkdir(parents=True)
    (project / f"{session}.jsonl").write_text('{"type":"user"}\n')
    assert claude_code.conversation_args(home, first) == ["--resume", session]

    # a checkpoint restored as another session's folder
    second = tmp_path / "sessions" / "ses_two"
    os.rename(first, second)
    home = second / claude_code.HOME
    assert claude_code.conversation_args(home, second) == ["--resume", session]
    moved = home / ".claude" / "projects" / claude_code.project_name(second) / f"{session}.jsonl"
    assert moved.read_text() == '{"type":"user"}\n'
    assert sorted(p.name for p in (home / ".claude" / "projects").iterdir()) == [
        claude_code.project_name(second)]


def test_project_names_follow_claude_codes_rule(tmp_path: Path) -> None:
    assert claude_code.project_name("/") == "-"
    folder = tmp_path / "a.b_c d"
    folder.mkdir()
    assert claude_code.project_name(folder) == os.path.realpath(folder).translate(
        {ord(c): "-" for c in "/._ "})


def test_finish_masks_the_runs_secrets_in_the_clis_home(tmp_path: Path) -> None:
    key = "sk-ant-" + uuid.uuid4().hex
    home = tmp_path / claude_code.HOME
    transcript = home / ".claude" / "projects" / "p" / "t.jsonl"
    transcript.parent.mkdir(parents=True)
    transcript.write_text(json.dumps({"content": f"KEY={key}"}) + "\n")
    (home / ".claude.json").write_text(json.dumps({"note": key}))
    (home / ".claude" / "other.json").write_text("{}")
    # what the agent's tools wrote is its own
    (home / ".cache").mkdir()
    (home / ".cache" / "tool.txt").write_text(key)
    (tmp_path / "artifact.txt").write_text(key)
    assert claude_code.finish(tmp_path, [key]) == 2
    assert "KEY=***" in transcript.read_text() and key not in transcript.read_text()
    assert key not in (home / ".claude.json").read_text()
    assert (tmp_path / "artifact.txt").read_text() == key
    assert (home / ".cache" / "tool.txt").read_text() == key
    assert not list(home.rglob("*.vm0-masking"))


def test_check_names_the_key_it_cannot_use() -> None:
    with pytest.raises(ConfigProblem) as caught:
        claude_code.check({"framework": "claude-code", "timeout": 5})
    assert caught.value.param == "config.timeout"


def _fake_cli(tmp_path: Path) -> str:
    cli = tmp_path / "claude"
    cli.write_bytes(b"\x7fELF")
    cli.chmod(0o755)
    return str(cli)


def test_links_the_agent_leaves_in_its_home_are_never_followed(tmp_path: Path) -> None:
    # Between runs the session folder is the agent's: it may put links where folders were, to
    # make the server (root) write or move files elsewhere on the next run.
    outside = tmp_path / "outside"
    (outside / ".claude" / "projects" / "p").mkdir(parents=True)
    (outside / "vm0-claude-session").write_text(str(uuid.uuid4()))
    config = {"framework": "claude-code", "executable": _fake_cli(tmp_path)}
    before = sorted(str(p) for p in outside.rglob("*"))

    workdir = tmp_path / "session"
    workdir.mkdir()
    (workdir / claude_code.HOME).symlink_to(outside)
    cmd = claude_code.command(config, workdir)
    home = workdir / claude_code.HOME
    assert not home.is_symlink() and home.is_dir()
    assert cmd.argv[cmd.argv.index("--session-id") + 1]

    # deeper: the conversation's folders, and the pointer itself
    session = (home / claude_code.SESSION_FILE).read_text().strip()
    (home / ".claude").symlink_to(outside / ".claude")
    assert "--session-id" in claude_code.command(config, workdir).argv
    (home / claude_code.SESSION_FILE).unlink()
    (home / claude_code.SESSION_FILE).symlink_to(outside / "vm0-claude-session")
    argv = claude_code.command(config, workdir).argv
    assert "--session-id" in argv and session not in argv
    assert not (home / claude_code.SESSION_FILE).is_symlink()
    assert sorted(str(p) for p in outside.rglob("*")) == before
    assert (outside / "vm0-claude-session").read_text() != argv[argv.index("--session-id") + 1]
