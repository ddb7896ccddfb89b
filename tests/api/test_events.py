"""Live run events: order, resume, duplicates, gaps, dropped and silent streams, log fallback."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

import vm0_notebook as vm0
from tests.proxies import FaultProxy
from vm0_notebook.api.events import _Tracker
from vm0_notebook.api.models import Event, LogEntry

# a python agent printing N stream-JSON events (the server adds a result: N + 1 outputs)
MANY = (
    "import json\n"
    "for i in range({n}):\n"
    "    print(json.dumps({{'type': 'assistant', 'message': {{'content': "
    "[{{'type': 'text', 'text': 'line %d' % i}}]}}}}), flush=True)\n"
)


def outputs(events: list[Event]) -> list[tuple[int | None, str | None, dict[str, Any]]]:
    return [(e.sequence, e.type, e.payload) for e in events if e.event == "output"]


def test_events_of_a_live_run(api: Any) -> None:
    run = api.runs.create(agent="echo", prompt=" ".join(f"w{i}" for i in range(40)))
    events = list(api.runs.events(run.id))
    assert events[0].event == "status" and events[-1].event == "complete"
    assert events[-1].status == "completed"
    seqs = [e.sequence for e in events if e.event == "output"]
    assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) >= 3
    types = [e.type for e in events if e.event == "output"]
    assert types[0] == "system" and types[-1] == "result"


def test_events_of_a_finished_run_are_recovered(api: Any) -> None:
    """Through the variant only ``complete`` comes: the output is rebuilt from the logs."""
    run = api.runs.create(agent="echo", prompt="finished before we listened").wait(timeout=60)
    events = list(api.runs.events(run.id))
    assert events[-1].event == "complete"
    if api.variant == "variant":  # the proxy sent nothing but `complete`
        assert [e.event for e in events if e.event != "output"] == ["complete"]
    outs = [e for e in events if e.event == "output"]
    assert [e.sequence for e in outs] == list(range(1, len(outs) + 1))
    assert outs[-1].type == "result"
    assert outs[-1].payload["result"] == "finished before we listened"


def test_resume_after_a_sequence(api: Any) -> None:
    run = api.runs.create(agent="echo", prompt=" ".join(f"w{i}" for i in range(40))).wait(60)
    everything = outputs(list(api.runs.events(run.id)))
    tail = outputs(list(api.runs.events(run.id, last_event_id=2)))
    assert tail == everything[2:]


@pytest.mark.slow
def test_faults_lose_repeat_and_duplicate_nothing(
    local_server: Any, client: Any, proxy: Any
) -> None:
    """Runs started and followed through cuts (between and inside frames), 503/429 storms and
    lost create answers: each stream equals the server's, and each run exists once."""
    faulty = proxy(FaultProxy, cut_rate=0.02, error_rate=0.15, lose_rate=0.3, seed=5)
    flaky = vm0.Client(api_url=faulty.url, api_key=local_server.token, max_attempts=20,
                       retry_backoff=0.01)
    marker = f"faults-{uuid.uuid4().hex[:8]}"
    slow = "flush=True); __import__('time').sleep(0.001)"
    runs = [flaky.runs.create(agent="python",
                              prompt=f"# {marker}\n" + MANY.format(n=80 + 20 * i).replace(
                                  "flush=True)", slow))
            for i in range(6)]
    seen = [outputs(list(flaky.runs.events(run.id))) for run in runs]  # the first ones live
    for run, got in zip(runs, seen, strict=True):
        truth = outputs(list(client.runs.events(run.id)))
        assert len(truth) == 81 + 20 * runs.index(run)
        assert got == truth, run.id
    made = [r.id for r in client.runs.list(limit=200) if marker in (r.prompt or "")]
    assert sorted(made) == sorted(r.id for r in runs)
    assert faulty.faults.get("lost") and faulty.faults.get("503") and faulty.faults.get("429")
    assert faulty.faults.get("cut") and faulty.faults.get("cut mid-frame")
    assert len(set(faulty.cut_at)) >= 15  # cut after many different events


def test_live_stream_survives_cuts(local_server: Any, proxy: Any) -> None:
    faulty = proxy(FaultProxy, cut_rate=0.03, seed=9)
    flaky = vm0.Client(api_url=faulty.url, api_key=local_server.token, max_attempts=20,
                       retry_backoff=0.01)
    slow = "flush=True); __import__('time').sleep(0.002)"
    prompt = MANY.format(n=200).replace("flush=True)", slow)
    run = flaky.runs.create(agent="python", prompt=prompt)
    seen = list(run.stream())
    assert faulty.cut_at
    assert [e.sequence for e in seen if e.event == "output"] == list(range(1, 202))
    assert run.status == "completed"


def test_a_silent_stream_reconnects(local_server: Any, proxy: Any) -> None:
    faulty = proxy(FaultProxy, stall_after=3)
    quiet = vm0.Client(api_url=faulty.url, api_key=local_server.token,
                       stream_idle_timeout=0.5, retry_backoff=0.01)
    run = quiet.runs.create(agent="python", prompt=MANY.format(n=20)).wait(timeout=60)
    seen = list(quiet.runs.events(run.id))
    assert faulty.faults.get("stall") == 1
    assert [e.sequence for e in seen if e.event == "output"] == list(range(1, 22))


def test_async_events_resume_too(local_server: Any, proxy: Any) -> None:
    faulty = proxy(FaultProxy, cut_rate=0.03, seed=2)

    async def main() -> list[int | None]:
        async with vm0.AsyncClient(api_url=faulty.url, api_key=local_server.token,
                                   max_attempts=20, retry_backoff=0.01) as aclient:
            run = await aclient.runs.create(agent="python", prompt=MANY.format(n=100))
            return [e.sequence async for e in aclient.runs.events(run.id) if e.event == "output"]

    assert asyncio.run(main()) == list(range(1, 102))
    assert faulty.cut_at


def test_unknown_run_is_not_found(api: Any) -> None:
    with pytest.raises(vm0.NotFoundError):
        list(api.runs.events("run_" + "f" * 24))


# -- the tracker's rules, on their own ------------------------------------------------------------


def output(seq: int) -> Event:
    return Event("output", {"sequence": seq, "type": "assistant", "data": {"n": seq}}, seq)


def test_tracker_drops_duplicates_and_reports_gaps() -> None:
    t = _Tracker("run_x", None, None)
    t.connection()
    got = [e for seq in (1, 2, 2, 1, 5, 6) for e in t.accept_event(output(seq))]
    assert [(e.event, e.sequence) for e in got] == [
        ("output", 1), ("output", 2), ("gap", None), ("output", 5), ("output", 6)]
    assert got[2].data == {"after": 2, "next": 5, "missing": 2}
    params, headers = t.connection()
    assert params == {"last_event_id": "6", "lastEventId": "6"}
    assert headers["Last-Event-ID"] == "6"


def test_tracker_drops_repeated_status_and_holds_complete() -> None:
    t = _Tracker("run_x", None, None)
    t.connection()
    status = Event("status", {"status": "running"})
    assert t.accept_event(status) == [status]
    assert t.accept_event(Event("status", {"status": "running"})) == []
    assert t.accept_event(Event("complete", {"status": "completed"})) == []
    assert not t.needs_logs  # this connection saw the run live
    assert [e.event for e in t.finish()] == ["complete"]


def test_tracker_rebuilds_output_from_agent_logs() -> None:
    t = _Tracker("run_x", 1, None)
    t.connection()
    t.accept_event(Event("complete", {"status": "completed"}))
    assert t.needs_logs
    entries = [
        LogEntry.from_api({"timestamp": "2024-01-01T00:00:00Z", "type": "agent", "level": "info",
                           "message": f'{{"type": "assistant", "n": {n}}}',
                           "metadata": {"sequence": n, "eventType": "assistant"}})
        for n in (2, 1, 3)
    ]
    got = t.from_logs(entries)
    assert [(e.sequence, e.type, e.payload["n"]) for e in got] == [(2, "assistant", 2),
                                                                 (3, "assistant", 3)]


# -- the output travels once; streams cut inside frames -----------------------------------------

LINES = "for i in range(2000):\n    print(f'line {i:05d} ' + 'x' * 4)\n"
ONE_BIG_LINE = "print('y' * 100_000)\n"


def _stream_through_cuts(local_server: Any, client: Any, proxy: Any, prompt: str,
                         seed: int) -> tuple[Any, list[Event], list[Event], Any]:
    """One run followed live through a proxy cutting every stream at 2 to 64 KB, and the
    same run's events read directly afterwards."""
    faulty = proxy(FaultProxy, cut_bytes=(2 * 1024, 64 * 1024), seed=seed)
    flaky = vm0.Client(api_url=faulty.url, api_key=local_server.token, retry_backoff=0.01)
    run = flaky.runs.create(agent="python", prompt=prompt)
    seen = list(run.stream())
    truth = list(client.runs.events(run.id))
    return run, seen, truth, faulty


def _check_same(seen: list[Event], truth: list[Event]) -> list[Event]:
    outs = [e for e in seen if e.event == "output"]
    assert [e.sequence for e in outs] == list(range(1, len(outs) + 1))
    assert outs == [e for e in truth if e.event == "output"]  # none lost, none twice
    assert not [e for e in seen if e.event == "gap"]
    assert seen[-1].event == "complete" and seen[-1].data == truth[-1].data
    return outs


def _final_frames_are_small(outs: list[Event], complete: Event) -> None:
    result = outs[-1]
    assert result.type == "result" and result.payload["result_truncated"] is True
    assert result.payload["result"].startswith("[… the first ")
    assert len(json.dumps(result.data)) < 20_000
    assert complete.data["output_truncated"] is True and len(json.dumps(complete.data)) < 20_000


@pytest.mark.slow
def test_two_thousand_lines_through_streams_cut_every_few_kilobytes(
    local_server: Any, client: Any, proxy: Any
) -> None:
    run, seen, truth, faulty = _stream_through_cuts(local_server, client, proxy, LINES, seed=11)
    outs = _check_same(seen, truth)
    assert len(outs) == 2001 and faulty.faults["cut bytes"] >= 5
    _final_frames_are_small(outs, seen[-1])
    # the handle holds every line, rebuilt from the events; the detail only the tail
    whole = "\n".join(f"line {i:05d} xxxx" for i in range(2000))
    assert run.status == "completed" and run.output == whole
    detail = client.runs.get(run.id)
    assert detail.detail.output_truncated and len(detail.detail.output or "") < 17_000
    assert detail.detail.output.endswith("line 01999 xxxx")
    assert detail.wait(timeout=60).output == whole and detail.fetch_output() == whole


@pytest.mark.slow
def test_a_frame_larger_than_any_connection_comes_from_the_logs(
    local_server: Any, client: Any, proxy: Any
) -> None:
    run, seen, truth, faulty = _stream_through_cuts(local_server, client, proxy, ONE_BIG_LINE,
                                                    seed=12)
    outs = _check_same(seen, truth)
    assert [e.type for e in outs] == ["assistant", "result"]
    assert len(outs[0].payload["message"]["content"][0]["text"]) == 100_000
    assert faulty.faults["cut bytes"] >= 1 and faulty.count("GET", r"/logs$") >= 1
    _final_frames_are_small(outs, seen[-1])
    assert run.output == "y" * 100_000


@pytest.mark.slow
def test_async_streams_read_too_large_frames_from_the_logs(
    local_server: Any, client: Any, proxy: Any
) -> None:
    faulty = proxy(FaultProxy, cut_bytes=(2 * 1024, 64 * 1024), seed=13)

    async def main() -> list[Event]:
        async with vm0.AsyncClient(api_url=faulty.url, api_key=local_server.token,
                                   retry_backoff=0.01) as aclient:
            run = await aclient.runs.create(agent="python", prompt=ONE_BIG_LINE)
            return [e async for e in aclient.runs.events(run.id)]

    seen = asyncio.run(main())
    run_id = seen[0].data["run_id"]
    _check_same(seen, list(client.runs.events(run_id)))
    assert faulty.count("GET", r"/logs$") >= 1


def test_the_tracker_keeps_going_while_connections_make_progress() -> None:
    class Retry:  # the one part of a client that dropped() reads
        class retry:
            attempts = 3

            @staticmethod
            def delay(attempt: int, retry_after: float | None = None) -> float:
                return 0.0

    t = _Tracker("run_x", None, None)
    for seq in range(1, 51):  # fifty drops, each after one new output: never gives up
        t.connection()
        t.opened()
        t.accept_event(output(seq))
        assert not t.stuck
        assert t.dropped(Retry, None) == 0.0
    t.connection()
    t.opened()
    assert t.stuck  # a connection that brought nothing new: read the logs next
    t.dropped(Retry, None)
    t.connection()
    t.dropped(Retry, None)
    with pytest.raises(vm0.APIConnectionError, match="kept dropping"):
        t.connection()
        t.dropped(Retry, None)
