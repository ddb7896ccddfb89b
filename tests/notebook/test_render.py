"""The renderer on real agent streams (a real Claude Code run and a realistic sample) and on
shapes it does not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vm0_notebook.api.models import Event
from vm0_notebook.render import (
    EXCERPT_CHARS,
    RESULT_LINES,
    Line,
    RunRenderer,
    error_line,
    render_event,
    render_run_event,
    shorten,
    tool_list,
)

HERE = Path(__file__).parent
# the real output of Claude Code 2.1.197: init, text, two Bash calls and a Write, each followed
# by its tool_result, the final text, and a result with usage and modelUsage
CLAUDE = HERE / "claude-code-stream.jsonl"
# a realistic stream-JSON transcript of an agent run (init, text, tool calls, results)
SAMPLE = HERE / "agent-stream.jsonl"


def _events(path: Path) -> list[Event]:
    objects = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [Event("output", {"sequence": n, "type": o["type"], "data": o}, n)
            for n, o in enumerate(objects, 1)]


def _shown(events: list[Event], render: RunRenderer | None = None) -> list[tuple[str, str]]:
    render = render or RunRenderer()
    return [(line.kind, line.text) for event in events for line in render(event)]


def test_a_real_claude_code_run_reads_like_a_transcript() -> None:
    assert _shown(_events(CLAUDE)) == [
        ("info", "started: claude-sonnet-4-5 · tools: Bash, Read, Write, +21"),
        ("text", "I'll look at the data first."),
        ("tool", "→ Bash: head -3 volumes/penguins/penguins.csv && wc -l "
                 "volumes/penguins/penguins.csv"),
        ("ok", "  ✓ species,island,body_mass_g"),
        ("output", "    Adelie,Torgersen,3750"),
        ("output", "    Adelie,Torgersen,3800"),
        ("output", "    6 volumes/penguins/penguins.csv"),
        ("tool", "→ Bash: python3 -c \"import csv,statistics as s;r=list(csv.DictReader(open("
                 "'volumes/penguins/penguins.csv')));m=[float(x['body_mass_g']) for x in r if "
                 "x['body_mass_g']]…"),
        ("ok", "  ✓ 5 4090.0"),
        ("tool", "→ Write: artifact/summary.md"),
        ("ok", "  ✓ File created successfully at: artifact/summary.md (file state is current in "
               "your context — no need to Read it back)"),
        ("text", "The data set has 5 rows; the mean body mass is 4090.0 g. I wrote "
                 "`artifact/summary.md`."),
        # the agent's own duration: a stream without the run's start has no other clock
        ("result", "✓ done · 0.4 s · 4 turns · 5,400 in / 240 out tokens · $0.0198"),
    ]


def test_the_sample_stream_marks_the_failed_tool_call() -> None:
    assert _shown(_events(SAMPLE)) == [
        ("info", "started: claude-sonnet-4-5 · tools: Bash, Read, Write, +3"),
        ("text", "I'll start by looking at the input files."),
        ("tool", "→ Bash: ls -la volumes/input-data"),
        ("ok", "  ✓ total 24"),
        ("output", "    -rw-r--r-- 1 agent agent 18231 penguins.csv"),
        ("tool", "→ Write: artifact/summary.md"),
        ("error", "  ✗ error: Permission denied: artifact/summary.md"),
        ("text", "The data has 344 penguins of 3 species; Gentoo are the heaviest (mean 5,076 g)."),
        ("result", "✓ done · 41.2 s · 4 turns · 12,840 in (+9,100 cache) / 1,532 out tokens · "
                   "$0.0412"),
    ]


def _call(tool_id: str, command: str) -> Event:
    return Event("output", {"type": "assistant", "data": {"type": "assistant", "message": {
        "content": [{"type": "tool_use", "id": tool_id, "name": "Bash",
                     "input": {"command": command}}]}}})


def _result(tool_id: str, content: object, is_error: bool = False) -> Event:
    return Event("output", {"type": "user", "data": {"type": "user", "message": {"content": [
        {"type": "tool_result", "tool_use_id": tool_id, "content": content,
         "is_error": is_error}]}}})


def test_a_result_after_other_events_names_its_call_again() -> None:
    # two calls in a row (parallel tools), then their results in the other order
    shown = _shown([_call("t1", "sleep 1"), _call("t2", "ls"), _result("t2", "a.csv"),
                    Event("output", {"type": "assistant", "data": {"type": "assistant",
                          "message": {"content": [{"type": "text", "text": "waiting"}]}}}),
                    _result("t1", "slept")])
    assert shown == [
        ("tool", "→ Bash: sleep 1"),
        ("tool", "→ Bash: ls"),
        ("ok", "  ✓ a.csv"),  # right beneath its call: nothing repeated
        ("text", "waiting"),
        ("tool", "← Bash: sleep 1"),
        ("ok", "  ✓ slept"),
    ]


def test_a_long_result_is_folded_with_a_note() -> None:
    content = "\n".join(f"row {i}" for i in range(1, 101))
    shown = _shown([_call("t", "seq 100"), _result("t", [{"type": "text", "text": content}])])
    assert shown == [
        ("tool", "→ Bash: seq 100"),
        ("ok", "  ✓ row 1"),
        ("output", "    row 2"),
        ("output", "    row 3"),
        ("info", "    … 97 more lines"),
    ]
    # a result of exactly RESULT_LINES lines shows whole: a note never hides a single line
    exact = "\n".join(f"r{i}" for i in range(RESULT_LINES))
    assert len(_shown([_result("x", exact)])) == RESULT_LINES


def test_an_error_result_is_marked_on_every_line() -> None:
    shown = _shown([_call("t", "cat nope"), _result("t", "cat: nope: No such file\nexit 1", True)])
    assert shown[1:] == [("error", "  ✗ error: cat: nope: No such file"), ("error", "    exit 1")]


def test_an_empty_result_says_so() -> None:
    assert _shown([_result("t", "")]) == [("ok", "  ✓ (no output)")]


def test_the_start_line_names_a_few_tools_and_counts_the_rest() -> None:
    assert tool_list(["Task", "Write", "Bash", "Cron", "Read"]) == "Bash, Read, Write, +2"
    assert tool_list(["Task", "Cron"]) == "Task, Cron"
    assert render_event({"type": "system", "subtype": "init"}) == [Line("started", "info")]


def test_the_closing_line_counts_from_the_runs_start() -> None:
    from datetime import UTC, datetime

    started = datetime(2026, 12, 1, 20, 41, 20, tzinfo=UTC)
    result = {"type": "result", "subtype": "success", "duration_ms": 446, "num_turns": 1}
    event = Event("output", {"type": "result", "data": result,
                             "timestamp": "2026-12-01T20:41:25.500Z"})
    # a replay: the server's timestamps, the clock the header and the card use (no turns: no
    # model reported any usage)
    assert RunRenderer(started_at=started)(event) == [Line("✓ done · 5.5 s", "result")]
    # live: from the running status event to the result
    ticks = iter([10.0, 12.5])
    render = RunRenderer(clock=lambda: next(ticks))
    assert render(Event("status", {"status": "running"})) == []
    assert render(event) == [Line("✓ done · 2.5 s", "result")]


def test_multiline_text_becomes_several_lines() -> None:
    event = {"type": "assistant", "message": {"content": [{"type": "text", "text": "a\nb\n\nc"}]}}
    assert [line.text for line in render_event(event)] == ["a", "b", "", "c"]


def test_tool_call_without_a_known_field_shows_compact_json() -> None:
    event = {"type": "assistant", "message": {"content": [
        {"type": "tool_use", "name": "Edit", "input": {"old": "x", "new": "y"}}]}}
    assert render_event(event) == [Line('→ Edit: {"old":"x","new":"y"}', "tool")]


def test_a_long_result_line_is_cut() -> None:
    event = {"type": "user", "message": {"content": [
        {"type": "tool_result", "content": [{"type": "text", "text": "word " * 500}]}]}}
    (line,) = render_event(event)
    assert line.kind == "ok" and line.text.endswith("…")
    assert len(line.text) <= EXCERPT_CHARS + len("  ✓ ")


def test_failed_result_says_why() -> None:
    event = {"type": "result", "subtype": "error", "is_error": True, "result": "out of turns"}
    assert render_event(event) == [Line("✗ failed: out of turns", "failed")]


def test_a_failure_is_said_once_by_its_last_line() -> None:
    trace = 'Traceback (most recent call last):\n  File "<stdin>", line 2\nZeroDivisionError: x'
    result = Event("output", {"sequence": 3, "type": "result", "data": {
        "type": "result", "subtype": "error", "is_error": True, "duration_ms": 100,
        "num_turns": 0, "result": trace}}, 3)
    render = RunRenderer()
    assert render(result) == [Line("✗ failed · 0.1 s: ZeroDivisionError: x", "failed")]
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
    assert render_event(event) == [Line("✓ done · 0.4 s · 1 turn", "result")]
    # nor turns without a model: a command's output is not a conversation
    del event["total_cost_usd"], event["usage"]
    assert render_event(event) == [Line("✓ done · 0.4 s", "result")]


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


@pytest.mark.parametrize("text", [
    "line 7 of the benchmark", "", "naïve café ✓", "tab\there", 'a "quoted" word', "back\\slash",
    "two\nlines", "x" * 2000, "x" * 2001, "$(seq 3)",
])  # fmt: skip
def test_the_text_of_a_log_entry_is_what_the_live_view_rendered(text: str) -> None:
    from vm0_notebook.render import shown_text

    event = {"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}}
    expected = "\n".join(line.text for line in render_event(event))
    for message in (json.dumps(event, separators=(",", ":"), ensure_ascii=False),  # as served
                    json.dumps(event), json.dumps(event, ensure_ascii=True)):
        assert shown_text(message) == expected


def test_the_text_of_other_log_entries() -> None:
    from vm0_notebook.render import shown_text

    for path in (CLAUDE, SAMPLE):
        for raw in path.read_text().splitlines():
            if raw.strip():
                rendered = "\n".join(line.text for line in render_event(json.loads(raw)))
                assert shown_text(raw) == rendered
    assert shown_text('{"type":"assistant","mess') == '{"type":"assistant","mess'  # cut short
    assert shown_text("plain words") == "plain words"
