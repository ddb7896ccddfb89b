"""The Run handle: its attributes are what it has seen, its methods do the I/O."""

from __future__ import annotations

import pytest

import vm0_notebook as vm0
from vm0_notebook.api.models import Event, RunDetail
from vm0_notebook.api.run import Run

from .test_models import SNAKE_RUN, camel


def test_a_run_reads_its_detail_as_its_own_attributes() -> None:
    run = Run.from_api(SNAKE_RUN)
    assert run.detail == RunDetail.from_api(SNAKE_RUN)
    assert (run.id, run.status, run.agent_name) == (SNAKE_RUN["id"], "completed", "echo")
    assert run.finished and run.ok and run.output is None and run.usage is None
    assert run == Run.from_api({camel(k): v for k, v in SNAKE_RUN.items()})
    assert repr(run).startswith(f"Run(id={SNAKE_RUN['id']!r}, status='completed'")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        run.nope  # noqa: B018


def test_events_update_the_handle_in_place() -> None:
    run = Run(RunDetail(id="run_1"))
    run._observe(Event("status", {"status": "running"}))
    assert run.status == "running" and not run.finished
    result = {"type": "result", "result": "done", "usage": {"input_tokens": 3,
                                                            "output_tokens": 5}}
    run._observe(Event("output", {"sequence": 1, "type": "result", "data": result}, 1))
    run._observe(Event("complete", {"status": "failed", "output": "other", "error": "boom"}))
    assert (run.status, run.output, run.error) == ("failed", "done", "boom")
    assert run.usage == {
        "duration_ms": None, "num_turns": None, "total_cost_usd": None, "input_tokens": 3,
        "output_tokens": 5, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
        "models": {},
    }
    with pytest.raises(vm0.RunFailedError, match="run_1 failed: boom"):
        run.raise_for_status()


def test_a_newer_detail_keeps_the_output_already_seen() -> None:
    run = Run(RunDetail(id="run_1", status="running"))
    run.output = "seen"
    run._update(RunDetail(id="run_1", status="completed"))
    assert (run.status, run.output) == ("completed", "seen")
    run._update(RunDetail(id="run_1", status="completed", output="final"))
    assert run.output == "final"


def test_output_is_read_by_methods_never_by_attribute_access(api: vm0.Client) -> None:
    run = api.runs.create(agent="echo", prompt="quiet words").wait(timeout=60)
    assert run.output == "quiet words"
    # a handle whose detail lacks the output shows None until a method reads the events
    bare = Run(RunDetail(id=run.id, status="completed"), api)
    assert bare.output is None and bare.output is None
    assert bare.fetch_output() == "quiet words" and bare.output == "quiet words"
    again = Run(RunDetail(id=run.id, status="running"), api).wait(timeout=60)
    assert again.status == "completed" and again.output == "quiet words"


def _text(seq: int, text: str) -> Event:
    data = {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}
    return Event("output", {"sequence": seq, "type": "assistant", "data": data}, seq)


def test_a_truncated_result_is_rebuilt_from_the_assistant_events() -> None:
    run = Run(RunDetail(id="run_1", status="running"))
    for seq, text in enumerate(["a", "b", "c"], 1):
        run._observe(_text(seq, text))
    tail = {"type": "result", "result": "[… the first 4 characters …]\nc",
            "result_truncated": True}
    run._observe(Event("output", {"sequence": 4, "type": "result", "data": tail}, 4))
    run._observe(Event("complete", {"status": "completed", "output": tail["result"],
                                    "error": None, "output_truncated": True}))
    assert run.output == "a\nb\nc"
    # a later detail with only the tail leaves the whole output alone
    run._update(RunDetail(id="run_1", status="completed", output="c", output_truncated=True))
    assert run.output == "a\nb\nc"


def test_a_detail_with_only_the_tail_is_read_whole_from_the_events(api: vm0.Client) -> None:
    """Through the variant too, whose finished runs send only `complete`: the logs then."""
    run = api.runs.create(agent="python", prompt="for i in range(3000): print(f'n{i:05d}')")
    whole = "\n".join(f"n{i:05d}" for i in range(3000))
    assert run.wait(timeout=60).output == whole
    bare = api.runs.get(run.id)
    assert bare.output is not None and bare.output.endswith("n02999") and len(bare.output) < 17_000
    assert bare.fetch_output() == whole and bare.output == whole
    assert bare.refresh().output == whole  # the detail's tail does not replace it
