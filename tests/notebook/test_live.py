"""The live view: rate limit, bounded tail, both formats, masking, the final summary."""

from __future__ import annotations

from types import SimpleNamespace

from vm0_notebook.notebook.live import LiveView, TerminalView, summary_lines
from vm0_notebook.notebook.masking import SecretMasker
from vm0_notebook.render import Line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], str, bool]] = []

    def __call__(self, bundle: dict[str, str], display_id: str, update: bool) -> None:
        self.calls.append((bundle, display_id, update))


def make_view(**kw: object) -> tuple[LiveView, Clock, Recorder]:
    clock, sent = Clock(), Recorder()
    options = {"agent": "echo", "run_id": "run_1", "publish": sent, "clock": clock, **kw}
    return LiveView(**options), clock, sent  # type: ignore[arg-type]


def test_a_flood_of_events_is_drawn_at_most_ten_times_a_second() -> None:
    view, clock, sent = make_view(tail_lines=50, max_updates_per_second=10)
    for i in range(20_000):  # 20,000 events over 2 seconds
        view.add([Line(f"line {i}")])
        view.refresh()
        clock.now += 0.0001
    view.refresh(force=True)
    assert 2 <= len(sent.calls) <= 2 * 10 + 2
    # one display area: created once, then only updated
    assert [update for _, _, update in sent.calls] == [False] + [True] * (len(sent.calls) - 1)
    assert len({display_id for _, display_id, _ in sent.calls}) == 1
    text = sent.calls[-1][0]["text/plain"]
    assert "line 19999" in text and "line 19949" not in text
    # no -o variable: the hint names the run id, not a variable that does not exist
    assert "19,950 earlier lines hidden; %vm0 logs run_1 has every line" in text
    assert "run.output" not in text and "%vm0 attach run_1" in text


def test_nothing_new_redraws_only_for_the_clock() -> None:
    view, clock, sent = make_view()
    view.refresh()
    for _ in range(100):
        clock.now += 0.05
        view.refresh()
    # 5 seconds without events: the elapsed time moves about once a second
    assert 1 + 4 <= len(sent.calls) <= 1 + 5


def test_bundle_has_plain_text_and_escaped_html() -> None:
    view, _, _ = make_view()
    view.set_status("running")
    view.add([Line("<b>not bold</b>", "text"), Line("✗ error: nope", "error")])
    bundle = view.bundle()
    assert set(bundle) == {"text/plain", "text/html"}
    assert bundle["text/plain"].splitlines()[0].startswith("echo · run_1 · running · ")
    assert "&lt;b&gt;not bold&lt;/b&gt;" in bundle["text/html"]
    assert "<b>not bold</b>" not in bundle["text/html"]


def test_secrets_are_masked_in_lines_header_and_summary() -> None:
    masker = SecretMasker()
    masker.add("TOPSECRET")
    view, _, sent = make_view(masker=masker, agent="agent-TOPSECRET")
    view.add([Line("the value is TOPSECRET")])
    run = SimpleNamespace(
        id="run_1", status="failed", error="bad token TOPSECRET", execution_time_ms=1500,
        session_id=None, checkpoint_id=None, volumes={}, artifact_name=None, agent_version=None,
    )
    view.finish(run)
    for bundle, _, _ in sent.calls:
        assert "TOPSECRET" not in bundle["text/plain"] + bundle["text/html"]
    assert "the value is ***" in sent.calls[-1][0]["text/plain"]


def test_a_secret_learnt_after_a_line_arrived_is_masked_too() -> None:
    # lines are masked when drawn: a --secret added later still hides what is on screen
    masker = SecretMasker()
    view, _, sent = make_view(masker=masker)
    view.add([Line("printed LATESECRET early")])
    masker.add("LATESECRET")
    view.refresh(force=True)
    assert "printed *** early" in sent.calls[-1][0]["text/plain"]


def _used_run(status: str) -> SimpleNamespace:
    return SimpleNamespace(
        id="run_9", status=status, error="boom", execution_time_ms=41250,
        session_id="ses_1", checkpoint_id="chk_1", agent_version="ver_3",
        volumes={"input-data": "a" * 64}, artifact_name="results", artifact_version="b" * 64,
    )


def test_summary_without_a_card_names_what_the_run_used() -> None:
    # a failed run fails the cell: no card follows, so the summary carries the reference facts;
    # status, duration (the header) and the error (the cell's error) are not repeated
    text = "\n".join(line.text for line in summary_lines(_used_run("failed"), handle="r"))
    assert text == (
        "session ses_1 · checkpoint chk_1\n"
        f"used: agent version ver_3 · volume input-data@{'a' * 12} · artifact results@{'b' * 12}"
    )


def test_summary_before_the_card_is_the_next_commands_only() -> None:
    lines = summary_lines(_used_run("completed"), handle="r", card=True)
    assert [line.text for line in lines] == [
        'next: %vm0 logs run_9  ·  r.follow_up("...")  ·  r.artifact()'
    ]


def test_finish_always_publishes_and_freezes_the_duration() -> None:
    view, clock, sent = make_view()
    view.refresh()
    run = SimpleNamespace(id="run_1", status="completed", execution_time_ms=2000)
    view.finish(run)
    clock.now += 100
    assert len(sent.calls) == 2 and view.elapsed() == 2.0
    assert "completed · 2.0 s" in view.header()


def test_terminal_view_prints_new_lines_not_redraws(capsys) -> None:
    clock = Clock()
    view = TerminalView(agent="echo", run_id="run_1", tail_lines=3, clock=clock, handle="run")
    view.refresh()
    view.add([Line("a"), Line("b")])
    clock.now += 1
    view.refresh()
    view.add([Line(str(i)) for i in range(10)])
    clock.now += 1
    view.refresh()
    view.finish(SimpleNamespace(id="run_1", status="completed", execution_time_ms=1000))
    view.refresh(force=True)  # nothing new: prints nothing more
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("echo · run_1 · pending")
    note = "… 7 lines skipped; run.output has the final text and run.logs() every line"
    assert out[1:6] == ["a", "b", note, "7", "8"]
    assert out[6] == "9" and out[8] == 'next: %vm0 logs run_1  ·  run.follow_up("...")'
    assert out.count("9") == 1
