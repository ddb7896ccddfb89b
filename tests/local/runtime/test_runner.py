"""The runner over real HTTP: output events, results, failure, timeout, cancel, the queue,
secret masking, long and many lines, metrics."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.local.agent_runs import (
    Api,
    cancel_and_check_tree_is_gone,
    exit_and_check_nothing_is_left,
    marked_processes,
)


@pytest.fixture
def api(local_server) -> Iterator[Api]:
    client = Api(local_server)
    yield client
    client.close()


def test_stream_json_lines_pass_through_and_other_lines_become_text(api: Api) -> None:
    script = (
        "echo plain words\n"
        'echo \'{"type": "user", "message": {"content": [{"type": "tool_result", '
        '"content": "ok", "is_error": false}]}, "extra": [1, 2]}\'\n'
        "echo '{\"no_type\": 1}'\n"
        "echo '[1, 2]'\n"
    )
    run = api.run("shell", script)
    assert run.status == "completed"
    assert [o["sequence"] for o in run.outputs] == list(range(1, len(run.outputs) + 1))
    first, passed, no_type, array, result = run.events
    assert first == {"type": "assistant", "message": {"content": [{"type": "text",
                                                                    "text": "plain words"}]}}
    assert passed == {"type": "user", "message": {"content": [
        {"type": "tool_result", "content": "ok", "is_error": False}]}, "extra": [1, 2]}
    assert no_type["message"]["content"][0]["text"] == '{"no_type": 1}'
    assert array["message"]["content"][0]["text"] == "[1, 2]"
    # The agent printed no result: one is made up, shaped like an agent's own.
    assert result["type"] == "result" and result["subtype"] == "success"
    assert result["is_error"] is False
    assert isinstance(result["duration_ms"], int) and result["num_turns"] >= 1
    assert "plain words" in result["result"]
    # A local process reports no cost and no token counts: none are made up.
    assert "total_cost_usd" not in result and "usage" not in result


def test_an_agents_own_result_is_not_doubled(api: Api) -> None:
    run = api.run("echo", "one two three")
    assert run.status == "completed"
    assert run.result["result"] == "one two three"
    assert run.events[-1]["type"] == "result"


def _stderr(run: Any) -> list[str]:
    """The stderr lines of a run, from its ``system`` events of subtype ``stderr``."""
    return [e["text"] for e in run.events if e["type"] == "system" and e["subtype"] == "stderr"]


def test_failure_reports_the_last_stderr_lines(api: Api) -> None:
    run = api.run("shell", "echo partial\necho 'warming up' >&2\necho 'the real problem' >&2\n"
                           "exit 3")
    assert run.status == "failed"
    assert "the real problem" in run.detail["error"]
    assert run.result["subtype"] == "error" and run.result["is_error"] is True
    # stderr lines are streamed as they come, and the error ends with the exit code
    assert _stderr(run) == ["warming up", "the real problem"]
    assert run.detail["error"].endswith("the real problem\nAgent exited with code 3")
    messages = [entry["message"] for entry in run.logs]
    assert any("exited with code 3" in m for m in messages)
    assert any("Sandbox" in m for m in messages)


def test_timeout_stops_the_agent(api: Api) -> None:
    agent = api.agent(["bash", "-c", "echo started; sleep 120"], timeout_s=1)
    run = api.run(agent, "wait")
    assert run.status == "timeout"
    assert "timed out" in run.detail["error"]
    assert run.texts == ["started"]
    assert run.result["is_error"] is True


def test_cancel_ends_the_whole_process_tree(api: Api) -> None:
    cancel_and_check_tree_is_gone(api)


@pytest.mark.slow
def test_cancel_kills_an_agent_that_ignores_sigterm(api: Api) -> None:
    marker = f"vm0-stubborn-{time.time_ns()}"
    script = ("trap 'echo got-term' TERM\necho ready\n"
              f"while true; do bash -c 'exec -a {marker} sleep 0.2'; done\n")
    run_id = api.start("shell", script)
    api.frames(run_id, until="ready")
    r = api.http.post(f"/runs/{run_id}/cancel")  # SIGTERM, then SIGKILL after the grace
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    run = api.finish(run_id)
    assert "got-term" in run.texts  # it was asked first
    assert run.result["is_error"] is True
    assert marked_processes(marker) == []


def test_background_processes_end_with_the_agent(api: Api) -> None:
    exit_and_check_nothing_is_left(api)


@pytest.mark.slow
def test_concurrency_limit_keeps_the_rest_pending_in_order(start_server) -> None:
    server = start_server("--max-concurrent-runs", "1")
    api = Api(server)
    try:
        blocker = api.start("shell", "echo holding\nsleep 300")
        api.frames(blocker, until="holding")
        queued = [api.start("echo", f"queued {i}") for i in range(3)]
        assert [api.get(run_id)["status"] for run_id in queued] == ["pending"] * 3
        assert api.http.post(f"/runs/{blocker}/cancel").status_code == 200
        runs = [api.finish(run_id) for run_id in queued]
        assert [run.status for run in runs] == ["completed"] * 3
        # One slot: each started only after the one before it had finished, oldest first.
        for before, after in itertools.pairwise(runs):
            assert before.detail["completed_at"] <= after.detail["started_at"]
        assert [run.result["result"] for run in runs] == [f"queued {i}" for i in range(3)]
    finally:
        api.close()


def test_secrets_are_masked_in_output_logs_and_errors(api: Api) -> None:
    secret = "sk-test-" + str(time.time_ns())
    script = (
        'echo "token is $API_TOKEN"\n'
        'printf \'{"type":"user","message":{"content":[{"type":"tool_result",'
        '"content":"%s","is_error":false}]}}\\n\' "$API_TOKEN"\n'
        'echo "stderr says $API_TOKEN" >&2\n'
        "exit 1\n"
    )
    run = api.run("shell", script, secrets={"API_TOKEN": secret})
    assert run.status == "failed"
    assert secret not in run.everything()
    assert run.texts[0] == "token is ***"
    assert run.events[1]["message"]["content"][0]["content"] == "***"
    assert "stderr says ***" in _stderr(run)
    assert "***" in run.detail["error"]


def test_very_long_lines_arrive_whole(api: Api) -> None:
    program = (
        "import json\n"
        "print('a' * 300_000)\n"
        "print(json.dumps({'type': 'user', 'message': {'content': "
        "[{'type': 'text', 'text': 'b' * 200_000}]}}))\n"
    )
    run = api.run("python", program)
    assert run.status == "completed"
    text, event = run.events[0], run.events[1]
    assert text["message"]["content"][0]["text"] == "a" * 300_000
    assert event["type"] == "user"
    assert event["message"]["content"][0]["text"] == "b" * 200_000


def test_a_plain_runs_result_carries_its_last_lines_not_its_whole_text(api: Api) -> None:
    """The text travels once, in the output events: result, complete and detail get the tail."""
    program = "for i in range(3000):\n    print(f'line {i:05d}')\n"
    run = api.run("python", program)
    whole = "\n".join(f"line {i:05d}" for i in range(3000))
    assert "\n".join(run.texts) == whole
    result = run.result
    assert result["result_truncated"] is True
    note, tail = result["result"].split("\n", 1)
    assert len(tail) <= 16 * 1024 and whole.endswith(tail) and tail.startswith("line ")
    dropped = len(whole) - len(tail)
    assert note == f"[… the first {dropped:,} characters are in the run's output events and logs]"
    complete = run.frames[-1][1]
    assert complete == {"status": "completed", "output": result["result"], "error": None,
                        "output_truncated": True}
    assert run.detail["output"] == result["result"] and run.detail["output_truncated"] is True


def test_a_single_line_longer_than_the_tail_keeps_its_end(api: Api) -> None:
    run = api.run("python", "print('a' * 50_000 + 'z' * 100)")
    note, tail = run.result["result"].split("\n", 1)
    assert tail == ("a" * 50_000 + "z" * 100)[-16 * 1024:]
    assert note.startswith(f"[… the first {50_100 - 16 * 1024:,} characters")


def test_a_short_plain_run_and_an_agents_own_result_are_whole(api: Api) -> None:
    short = api.run("shell", "echo one\necho two")
    assert short.result["result"] == "one\ntwo" and "result_truncated" not in short.result
    assert short.detail["output"] == "one\ntwo" and short.detail["output_truncated"] is False
    long_prompt = " ".join(f"w{i}" for i in range(5000))  # echo's own result, 30 KB: as is
    own = api.run("echo", long_prompt)
    assert own.result["result"] == long_prompt and own.detail["output"] == long_prompt
    assert own.detail["output_truncated"] is False


@pytest.mark.slow
def test_twenty_thousand_quick_lines_all_arrive_in_order(api: Api) -> None:
    program = "import sys\nfor i in range(20_000):\n    sys.stdout.write(f'line {i}\\n')\n"
    run = api.run("python", program)
    assert run.status == "completed"
    assert run.texts == [f"line {i}" for i in range(20_000)]
    assert [o["sequence"] for o in run.outputs] == list(range(1, 20_002))


def test_every_run_has_metrics(api: Api) -> None:
    run = api.run("echo", "quick")
    data = api.metrics(run.detail["id"])["data"]
    assert len(data) >= 1
    assert {"timestamp", "cpu_percent"} <= set(data[0])


def test_metrics_follow_the_process_tree_and_its_folder(api: Api) -> None:
    run_id = api.start("shell", "head -c 3000000 /dev/zero > blob.bin\necho written\nsleep 300")
    api.frames(run_id, until="written")
    while True:  # a sample taken after the write shows it (sampled about every second)
        data = api.metrics(run_id)["data"]
        if any(_disk_bytes(sample) >= 2_900_000 for sample in data):
            break
        time.sleep(0.2)
    assert any(_memory_bytes(sample) > 0 for sample in data)
    assert api.http.post(f"/runs/{run_id}/cancel").status_code == 200
    api.finish(run_id)


def _disk_bytes(sample: dict) -> float:
    if sample.get("disk_used_bytes") is not None:
        return sample["disk_used_bytes"]
    return (sample.get("disk_used_mb") or 0) * 1024 * 1024


def _memory_bytes(sample: dict) -> float:
    if sample.get("memory_bytes") is not None:
        return sample["memory_bytes"]
    return (sample.get("memory_used_mb") or 0) * 1024 * 1024


def test_a_run_that_cannot_start_fails_with_a_result(api: Api) -> None:
    agent = api.agent(["/nonexistent/agent-binary"])
    run = api.run(agent, "hello")
    assert run.status == "failed"
    assert run.detail["error"]
    assert run.result["is_error"] is True
    assert json.dumps(run.result)  # a plain JSON object, as any other event

