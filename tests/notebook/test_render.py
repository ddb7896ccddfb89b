"""The renderer on a real agent stream (the sample) and on shapes it does not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vm0_notebook.api.models import Event
from vm0_notebook.render import (
    EXCERPT_CHARS,
    Line,
    RunRenderer,
    error_line,
    render_event,
    render_run_event,
    shorten,
)

# a realistic stream-JSON transcript of an agent run (init, text, tool calls, results)
SAMPLE = Path(__file__).with_name("agent-stream.jsonl")


@pytest.fixture(scope="module")
def sample_lines() -> list[Line]:
    events = [json.loads(line) for line in SAMPLE.read_text().splitlines() if line.strip()]
    return [line for event in events for line in render_event(event)]


def test_sample_stream_reads_like_a_transcript(sample_lines: list[Line]) -> None:
    assert [(line.kind, line.text) for line in sample_lines] == [
        ("info", "started: model claude-sonnet-4-5 · session ses_3f1c · "
                 "tools Bash, Read, Write, Edit, Glob, Grep"),
        ("text", "I'll start by looking at the input files."),
        ("tool", "→ Bash: ls -la volumes/input-data"),
        ("ok", "  ✓ ok: total 24 -rw-r--r-- 1 agent agent 18231 penguins.csv"),
        ("tool", "→ Write: artifact/summary.md"),
        ("error", "  ✗ error: Permission denied: artifact/summary.md"),
        ("text", "The data has 344 penguins of 3 species; Gentoo are the heaviest (mean 5,076 g)."),
        ("result", "✓ done · $0.0412 · 4 turns · 12,840 in / 1,532 out tokens"),
    ]


def test_multiline_text_becomes_several_lines() -> None:
    event = {"type": "assistant", "message": {"content": [{"type": "text", "text": "a\nb\n\nc"}]}}
    assert [line.text for line in render_event(event)] == ["a", "b", "", "c"]


def test_tool_call_without_a_known_field_shows_compact_json() -> None:
    event = {"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Edit", "input": {"old": "x", "new": "y"}}]}}
    assert render_event(event) == [Line('→ Edit: {"old":"x","new":"y"}', "tool")]


def test_long_tool_result_is_an_excerpt() -> None:
    event = {"type": "user", "message": {"content": [
        {"type": "tool_result", "content": [{"type": "text", "text": "word " * 500}]}]}}
    (line,) = render_event(event)
    assert line.kind == "ok" and line.text.endswith("…")
    assert len(line.text) <= EXCERPT_CHARS + len("  ✓ ok: ")


def test_failed_result_says_why() -> None:
    event = {"type": "result", "subtype": "error", "is_error": True, "result": "out of turns"}
    assert render_event(event) == [Line("✗ failed: out of turns", "failed")]


def test_a_failure_is_said_once_by_its_last_line() -> None:
    trace = 'Traceback (most recent call last):\n  File "<stdin>", line 2\nZeroDivisionError: x'
    result = Event("output", {"sequence": 3, "type": "result", "data": {
        "type": "result", "subtype": "error", "is_error": True, "duration_ms": 100,
        "num_turns": 0, "result": trace}}, 3)
    render = RunRenderer()
    assert render(result) == [Line("✗ failed: ZeroDivisionError: x", "failed")]
    # the server's error event repeats it: not shown again; a different one is
    assert render(Event("error", {"message": trace})) == []
    assert render(Event("error", {"message": "sandbox died"})) == [
        Line("error: sandbox died", "error")
    ]
    # without a result first, the error event is all there is
    assert RunRenderer()(Event("error", {"message": trace})) != []


def test_result_without_cost_or_tokens_does_not_show_zeros() -> None:
    # a local command reports neither; zeros would read as "free" rather than "not counted"
    event = {"type": "result", "subtype": "success", "duration_ms": 400, "num_turns": 1,
             "total_cost_usd": 0.0, "usage": {"input_tokens": 0, "output_tokens": 0}}
    assert render_event(event) == [Line("✓ done · 1 turn", "result")]
    # nor turns without a model: a command's output is not a conversation; the duration is
    # the view header's, not repeated here
    del event["total_cost_usd"], event["usage"]
    assert render_event(event) == [Line("✓ done", "result")]


def test_stderr_lines_are_dimmed_and_an_exit_code_joins_the_last_stderr_line() -> None:
    event = {"type": "system", "subtype": "stderr", "text": "warning: low disk"}
    assert render_event(event) == [Line("warning: low disk", "stderr")]
    error = "about to fail\nAgent exited with code 3"
    assert error_line(error) == "about to fail (exit code 3)"
    assert error_line("Agent exited with code 3") == "Agent exited with code 3"
    assert error_line("x\nAgent killed by SIGKILL") == "x (killed by SIGKILL)"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "brand-new", "payload": [1, 2]},
        {"type": "assistant", "message": "not a dict"},
        {"type": "assistant", "message": {"content": [{"type": "image", "source": {}}]}},
        {"type": "result", "duration_ms": "soon"},
        {"no": "type"},
        ["a", "list"],
        None,
    ],
)
def test_unknown_shapes_show_as_compact_json_and_never_fail(event: object) -> None:
    lines = render_event(event)
    assert lines and all(isinstance(line.text, str) and line.text for line in lines)


def test_unknown_event_is_its_json() -> None:
    assert render_event({"type": "brand-new", "n": 1}) == [
        Line('{"type":"brand-new","n":1}', "info")
    ]


def test_run_events_other_than_output() -> None:
    assert render_run_event(Event("status", {"status": "running"})) == []
    assert render_run_event(Event("heartbeat", {"timestamp": "x"})) == []
    assert render_run_event(Event("error", {"message": "boom", "code": "x"})) == [
        Line("error: boom", "error")
    ]
    assert render_run_event(Event("gap", {"missing": 3}))[0].text == 'gap: {"missing":3}'
    output = Event("output", {"sequence": 1, "type": "assistant", "data": {
        "type": "assistant", "message": {"content": [{"type": "text", "text": "hi"}]}}}, 1)
    assert render_run_event(output) == [Line("hi")]


def test_shorten_collapses_whitespace() -> None:
    assert shorten("a\n  b\tc") == "a b c"
    assert shorten("x" * 10, limit=5) == "xxxx…"
