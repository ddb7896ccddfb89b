"""The built-in agents (echo, python, shell), run on the real local server over HTTP."""

from __future__ import annotations

from tests.local.agent_runs import Api
from vm0_notebook.local.runtime.frameworks import BUILTIN_AGENTS
from vm0_notebook.local.runtime.frameworks.echo import chunks


def test_builtins_exist_on_a_fresh_server(api: Api) -> None:
    for name, builtin in BUILTIN_AGENTS.items():
        r = api.http.get("/agents", params={"name": name})
        assert r.status_code == 200, r.text
        [agent] = r.json()["data"]
        detail = api.http.get(f"/agents/{agent['id']}").json()
        assert detail["config"] == builtin["config"]


def test_echo_streams_init_text_chunks_and_result(api: Api) -> None:
    prompt = "Summarise the penguins data set and plot the distribution of body mass by species."
    run = api.run("echo", prompt)
    assert run.status == "completed"
    kinds = [event["type"] for event in run.events]
    assert kinds[0] == "system" and run.events[0]["subtype"] == "init"
    assert kinds[-1] == "result" and kinds.count("result") == 1
    assert kinds[1:-1] == ["assistant"] * (len(kinds) - 2) and len(kinds) - 2 > 1
    assert "".join(run.texts) == prompt
    assert run.result["subtype"] == "success" and run.result["result"] == prompt
    assert run.events[0]["session_id"] == run.detail["session_id"]


def test_echo_chunks_join_back_to_the_prompt() -> None:
    for prompt in ["", " ", "one", "  leading and trailing  ", "many words " * 20, "a\nb\n\nc"]:
        assert "".join(chunks(prompt)) == prompt


def test_python_runs_the_prompt_in_the_working_folder(api: Api) -> None:
    program = (
        "import os\n"
        "print(6 * 7)\n"
        "print(os.getcwd() == os.environ['VM0_WORKDIR'])\n"
        "open('artifact/answer.txt', 'w').write('42')\n"
    )
    run = api.run("python", program)
    assert run.status == "completed"
    assert run.texts == ["42", "True"]


def test_python_error_fails_the_run_with_the_traceback(api: Api) -> None:
    run = api.run("python", "print('before')\n1 / 0\n")
    assert run.status == "failed"
    assert "ZeroDivisionError" in run.detail["error"]
    assert run.texts == ["before"]


def test_shell_runs_a_script_whose_commands_read_stdin(api: Api) -> None:
    # `cat` reads the agent's stdin: the script itself must not be what it eats.
    run = api.run("shell", "echo first\ncat > /dev/null\necho \"second $((6 * 7))\"")
    assert run.status == "completed"
    assert run.texts == ["first", "second 42"]


def test_echo_still_runs_under_its_old_module_path(api: Api) -> None:
    # Data folders made before the layered layout keep this command for the built-in echo.
    name = api.agent(["{python}", "-m", "vm0_notebook.local.agents.echo"])
    run = api.run(name, "hello from an older data folder")
    assert run.status == "completed"
    assert run.result["result"] == "hello from an older data folder"
