"""``client.map`` against the same API calls made with raw httpx, wall time and client CPU.

    python benchmarks/map.py [--runs 200] [--concurrency 16] [--repeat 3]

Starts a private local server, then times ``--runs`` ``echo`` runs at ``--concurrency`` four
ways, alternating within each round so every case sees the same machine load:

- ``Client.map`` (progress bar on, drawn to a null stream) against the baseline: an
  ``httpx.Client`` shared by a thread pool making, per prompt, the calls map makes: ``POST
  /v1/runs`` with an ``Idempotency-Key``, the run's event stream read to ``complete`` with
  httpx-sse and ``json.loads``, ``GET /v1/runs/{id}``, and a DataFrame of the rows at the end;
- ``AsyncClient.map`` against the same calls through ``httpx.AsyncClient`` and
  ``asyncio.gather`` under a semaphore.

Prints each case's median wall time and client CPU (this process's, all threads; the server is
another process) and the median of the paired ratios. Goal: both ratios at most 1.2.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import httpx_sse
import pandas as pd
from _support import local_server, paired_ratio, report

GOAL = 1.2


class Sample(NamedTuple):
    seconds: float
    cpu: float


def measure(fn: Callable[[], object]) -> Sample:
    """Wall time and this process's CPU time (every thread) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return Sample(time.perf_counter() - wall, time.process_time() - cpu)


def raw_row(detail: dict[str, Any], output: str | None) -> dict[str, Any]:
    return {"prompt": detail["prompt"], "run_id": detail["id"], "status": detail["status"],
            "output": output, "error": detail.get("error"),
            "execution_time_ms": detail.get("execution_time_ms"),
            "artifact_version": detail.get("artifact_version")}


def raw_sync(url: str, token: str, prompts: list[str], concurrency: int) -> pd.DataFrame:
    """The baseline: the calls of one map item per prompt, in a thread pool."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url + "/v1", headers=headers, timeout=60) as http:

        def one(prompt: str) -> dict[str, Any]:
            run = http.post("/runs", json={"agent": "echo", "prompt": prompt},
                            headers={"Idempotency-Key": uuid.uuid4().hex}).json()
            output = None
            with httpx_sse.connect_sse(http, "GET", f"/runs/{run['id']}/events") as source:
                for sse in source.iter_sse():
                    data = json.loads(sse.data)
                    if sse.event == "complete":
                        output = data.get("output")
                        break
            return raw_row(http.get(f"/runs/{run['id']}").json(), output)

        with ThreadPoolExecutor(concurrency) as pool:
            rows = list(pool.map(one, prompts))
    return pd.DataFrame(rows)


async def raw_async(url: str, token: str, prompts: list[str], concurrency: int) -> pd.DataFrame:
    """The async baseline: the same calls as tasks under a semaphore."""
    headers = {"Authorization": f"Bearer {token}"}
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url + "/v1", headers=headers, timeout=60) as http:

        async def one(prompt: str) -> dict[str, Any]:
            async with limit:
                run = (await http.post("/runs", json={"agent": "echo", "prompt": prompt},
                                       headers={"Idempotency-Key": uuid.uuid4().hex})).json()
                output = None
                async with httpx_sse.aconnect_sse(http, "GET",
                                                  f"/runs/{run['id']}/events") as source:
                    async for sse in source.aiter_sse():
                        data = json.loads(sse.data)
                        if sse.event == "complete":
                            output = data.get("output")
                            break
                return raw_row((await http.get(f"/runs/{run['id']}")).json(), output)

        rows = await asyncio.gather(*(one(p) for p in prompts))
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from vm0_notebook import AsyncClient, Client

    prompts = [f"benchmark prompt {i}" for i in range(args.runs)]
    n, c = args.runs, args.concurrency
    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp)) as (url, token):
        client = Client(api_url=url, api_key=token, cache_dir=Path(tmp) / "cache")

        def ours_sync() -> None:
            with contextlib.redirect_stderr(io.StringIO()):  # the bar, drawn where none looks
                frame = client.map("echo", prompts, concurrency=c)
            assert (frame["status"] == "completed").all() and len(frame) == n

        def ours_async() -> None:
            async def go() -> pd.DataFrame:
                async with AsyncClient(api_url=url, api_key=token) as aclient:
                    return await aclient.map("echo", prompts, concurrency=c)

            with contextlib.redirect_stderr(io.StringIO()):
                frame = asyncio.run(go())
            assert (frame["status"] == "completed").all() and len(frame) == n

        def base_sync() -> None:
            assert (raw_sync(url, token, prompts, c)["status"] == "completed").all()

        def base_async() -> None:
            assert (asyncio.run(raw_async(url, token, prompts, c))["status"]
                    == "completed").all()

        cases = {"Client.map": ours_sync, "raw httpx + threads": base_sync,
                 "AsyncClient.map": ours_async, "raw httpx.AsyncClient": base_async}
        for fn in cases.values():  # warm up: connections, imports, the agent's first start
            fn()
        samples: dict[str, list[Sample]] = {name: [] for name in cases}
        for _ in range(args.repeat):
            for name, fn in cases.items():
                samples[name].append(measure(fn))
        client.close()

    print(f"{n} echo runs at concurrency {c}, median of {args.repeat} rounds")
    print(f"{'case':24}{'wall':>9}{'client CPU':>13}")
    for name, rows in samples.items():
        print(f"{name:24}{statistics.median(s.seconds for s in rows):8.2f}s"
              f"{statistics.median(s.cpu for s in rows):12.2f}s")
    for ours, base in (("Client.map", "raw httpx + threads"),
                       ("AsyncClient.map", "raw httpx.AsyncClient")):
        for field, label in (("seconds", "wall"), ("cpu", "client CPU")):
            mine = [getattr(s, field) for s in samples[ours]]
            theirs = [getattr(s, field) for s in samples[base]]
            report(f"{ours}: {n} runs at {c}, {label}", f"{statistics.median(mine):.2f} s",
                   f"{statistics.median(theirs):.2f} s ({base})", paired_ratio(mine, theirs),
                   GOAL)
    return 0


if __name__ == "__main__":
    sys.exit(main())
