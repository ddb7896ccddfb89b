"""Stopping the served app: open event streams end with ``complete``, nothing is cut."""

from __future__ import annotations

import json
import signal
import threading

from httpx_sse import connect_sse

from tests.local.agent_runs import Api


def test_sigterm_ends_open_streams_with_complete(start_server):
    server = start_server("--max-concurrent-runs", "1")
    api = Api(server)
    try:
        running = api.start("shell", "echo ready; sleep 60")
        queued = api.start("echo", "never started")
        frames: dict[str, list[tuple[str, dict]]] = {running: [], queued: []}

        def follow(run_id: str) -> None:
            with connect_sse(api.http, "GET", f"/runs/{run_id}/events") as source:
                for sse in source.iter_sse():
                    frames[run_id].append((sse.event, json.loads(sse.data)))

        readers = [threading.Thread(target=follow, args=(r,)) for r in frames]
        for reader in readers:
            reader.start()
        api.frames(running, until="ready")  # this one is abandoned mid-stream
        while not frames[queued]:  # both readers are connected
            threading.Event().wait(0.02)
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=60) == 0
        for reader in readers:
            reader.join(timeout=30)
            assert not reader.is_alive()
    finally:
        api.close()
    # Each stream ended because the server closed it after ``complete``, not mid-stream
    # (httpx_sse would have raised), and says why the run ended.
    for run_id, was in ((running, "during the run"), (queued, "before this run finished")):
        assert [e for e, _ in frames[run_id]][-3:] == ["status", "error", "complete"], run_id
        end = frames[run_id][-1][1]
        assert end["status"] == "failed" and was in end["error"]
    log = (server.data_dir / "server.stderr.log").read_text()
    assert "ASGI callable returned without completing response" not in log
    assert "Traceback" not in log and "Cancel" not in log, log
