"""The local server's throughput: runs per second, and SSE events per second.

    python benchmarks/server.py [--runs 50] [--lines 20000] [--repeat 3]

Starts the real app under uvicorn in a child process, with one extra route: a minimal
sse-starlette endpoint that streams ``--lines`` ready-made events, on the same server, the same
middleware and the same event loop. Then, over real HTTP, it measures

- runs: ``--runs`` ``echo`` runs created at once and followed to ``complete``, against the same
  number of ``echo`` agent processes started directly with the same concurrency (the cost of
  the process itself);
- events: an agent printing ``--lines`` lines streamed live to ``complete``, against the minimal
  endpoint streaming as many events of the same size.

Prints the rates (medians of ``--repeat`` rounds) and each ratio's median and range over the
rounds. Under ``bubblewrap`` a run also pays for its sandbox, which bare processes do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from _support import local_server, paired_ratio, report
from httpx_sse import connect_sse

ECHO = [sys.executable, "-m", "vm0_notebook.local.runtime.frameworks.echo"]


# -- the server side (child process) ---------------------------------------------------------


def serve(data_dir: Path, token: str) -> None:
    """The real app plus ``/bench/sse``, under uvicorn on a free port; prints the URL."""
    from sse_starlette import EventSourceResponse
    from starlette.routing import Route

    from vm0_notebook.local.web.app import create_app
    from vm0_notebook.local.web.serving import listen, uvicorn_server

    async def minimal_sse(request):
        count = int(request.query_params["n"])
        payload = json.dumps(_frame_data(0))

        async def events():
            for i in range(1, count + 1):
                yield {"id": str(i), "event": "output", "data": payload}
            yield {"event": "complete", "data": "{}"}

        return EventSourceResponse(events())

    app = create_app(data_dir, token)
    app.router.routes.append(Route("/bench/sse", minimal_sse))
    # The server's own socket and uvicorn set-up (TCP_NODELAY, clean stop), as `serve` has.
    sock = listen("127.0.0.1", 0)
    server = uvicorn_server(app)

    async def main() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        await task

    asyncio.run(main())


def _frame_data(i: int) -> dict:
    """An output frame's data as the server sends it for one printed line."""
    return {"sequence": i, "type": "assistant", "timestamp": "2026-01-01T00:00:00.000Z",
            "data": {"type": "assistant", "message": {"content": [
                {"type": "text", "text": f"line {i:06d}"}]}}}


# -- the measuring side ----------------------------------------------------------------------


def follow(http: httpx.Client, path: str) -> int:
    """Read an SSE stream to ``complete``; the number of output events."""
    outputs = 0
    with connect_sse(http, "GET", path) as source:
        for sse in source.iter_sse():
            if sse.event == "output":
                outputs += 1
            elif sse.event == "complete":
                return outputs
    raise RuntimeError(f"{path}: the stream ended without 'complete'")


def runs_rate(http: httpx.Client, runs: int) -> float:
    start = time.perf_counter()
    ids = [http.post("/v1/runs", json={"agent": "echo", "prompt": f"run {i}"}).json()["id"]
           for i in range(runs)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda run_id: follow(http, f"/v1/runs/{run_id}/events"), ids))
    elapsed = time.perf_counter() - start
    statuses = {http.get(f"/v1/runs/{i}").json()["status"] for i in ids}
    assert statuses == {"completed"}, statuses
    return runs / elapsed


def direct_rate(runs: int, concurrency: int) -> float:
    """The echo agent's own process, started ``runs`` times with the server's concurrency."""
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}

    def one(i: int) -> None:
        subprocess.run(ECHO, input=f"run {i}".encode(), capture_output=True, env=env,
                       check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(runs)))
    return runs / (time.perf_counter() - start)


def events_rate(http: httpx.Client, agent: str, lines: int) -> float:
    run_id = http.post("/v1/runs", json={"agent": agent, "prompt": "go"}).json()["id"]
    start = time.perf_counter()
    got = follow(http, f"/v1/runs/{run_id}/events")
    elapsed = time.perf_counter() - start
    assert got >= lines, got
    return got / elapsed


def baseline_rate(http: httpx.Client, lines: int) -> float:
    start = time.perf_counter()
    got = follow(http, f"/bench/sse?n={lines}")
    assert got == lines, got
    return got / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--lines", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.token)
        return

    with tempfile.TemporaryDirectory(prefix="vm0-bench-") as tmp, local_server(
        Path(tmp), [sys.executable, __file__, "--serve", tmp], stderr=None,
    ) as (url, token):
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
            health = http.get("/health").json()
            sandbox = health["sandbox"]
            if health.get("limits"):  # which limits the kernel enforces per run, if any
                cgroups = sorted(k for k, how in health["limits"].items() if how == "cgroup")
                sandbox += f", cgroups: {', '.join(cgroups) or 'none'}"
            program = (f"for i in range({args.lines}):\n"
                       "    print(f'line {i:06d}')\n")
            agent = http.post("/v1/agents", json={"name": "bench-lines", "config": {
                "command": ["{python}", "-c", program], "timeout_s": 600}}).json()["name"]
            concurrency = 2 * (os.cpu_count() or 1)
            rounds = []
            for _ in range(args.repeat):
                rounds.append((runs_rate(http, args.runs), direct_rate(args.runs, concurrency),
                               events_rate(http, agent, args.lines),
                               baseline_rate(http, args.lines)))
    runs, direct, events, baseline = (statistics.median(r[i] for r in rounds) for i in range(4))
    # Each round's ratio compares two figures taken back to back, so a busy machine moves
    # both; the spread across rounds shows how far to trust the median.
    run_ratio = paired_ratio([r[0] for r in rounds], [r[1] for r in rounds])
    event_ratio = paired_ratio([r[2] for r in rounds], [r[3] for r in rounds])
    report(f"echo runs/s through the server ({args.runs} at once, sandbox: {sandbox})",
           f"{runs:.1f}/s", f"{direct:.1f}/s (bare processes)", run_ratio, "shown, no goal")
    report(f"SSE events/s from an agent printing {args.lines} lines", f"{events:.0f}/s",
           f"{baseline:.0f}/s (minimal sse-starlette endpoint)", event_ratio, "shown, no goal")

if __name__ == "__main__":
    main()
