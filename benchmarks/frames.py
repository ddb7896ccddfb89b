"""100,000 log entries into a DataFrame: ``run.logs()`` as a ratio to a raw httpx loop.

    python benchmarks/frames.py [--lines 100000] [--repeat 2]

Starts a private local server on a temporary data folder, runs the built-in ``python`` agent
printing ``--lines`` lines (each becomes an output event and an agent log entry), then times
the same log download two ways, alternating, in the same run:

- baseline: an ``httpx.Client`` cursor loop over ``GET /v1/runs/{id}/logs`` collecting the JSON
  entries, then ``pandas.DataFrame(list_of_dicts)`` (untyped: strings and dicts);
- ``run.logs()``: the client's pager, typed entries and the column-wise frame with dtypes.

- floor: the work no implementation can skip, straight from the server's SQLite file: the same
  rows read in keyset pages of 100, each page encoded to JSON and decoded again, then put into a
  ``DataFrame``.

Prints the median time of each and the median of the paired ratios (goals: at most 1.2 against
the httpx loop, at most 2 against the floor), then the peak memory that Python allocates while
``run.logs()`` builds the frame, as a ratio to the frame's own deep size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from _support import alternate, local_server, paired_ratio, report

PAGE = 100  # the API's largest page


def raw_logs(url: str, token: str, run_id: str) -> pd.DataFrame:
    """The baseline: a plain cursor loop and ``DataFrame(list_of_dicts)``."""
    rows: list[dict] = []
    params: dict[str, str | int] = {"limit": PAGE}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) as http:
        while True:
            body = http.get(f"/v1/runs/{run_id}/logs", params=params).raise_for_status().json()
            rows.extend(body["data"])
            page = body["pagination"]
            if not page.get("has_more"):
                break
            params["cursor"] = page["next_cursor"]
    return pd.DataFrame(rows)


def floor_logs(db_path: Path, run_id: str) -> pd.DataFrame:
    """The floor: keyset pages of 100 rows from SQLite, each page through JSON and back."""
    rows: list[dict] = []
    last = 0
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        while True:
            page = db.execute(
                "SELECT id, timestamp, type, level, message, metadata FROM run_logs"
                " WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?", (run_id, last, PAGE),
            ).fetchall()
            if not page:
                break
            last = page[-1][0]
            encoded = json.dumps([
                {"timestamp": t, "type": k, "level": v, "message": m,
                 "metadata": json.loads(d) if d else None}
                for _, t, k, v, m, d in page
            ])
            rows.extend(json.loads(encoded))
    return pd.DataFrame(rows)


def quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` drawing its progress bar as a user would see it, into a buffer rather than over
    this report."""

    def run() -> Any:
        with contextlib.redirect_stderr(io.StringIO()):
            return fn()

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from vm0_notebook import Client

    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp)) as (url, token):
        client = Client(api_url=url, api_key=token)
        prompt = f"for i in range({args.lines}):\n    print(f'line {{i}} of the benchmark')\n"
        started = time.perf_counter()
        run = client.runs.create(agent="python", prompt=prompt).wait(timeout=900)
        print(f"agent run {run.id}: {run.status} in {time.perf_counter() - started:.1f}s")
        if run.status != "completed":
            print(run.error)
            return 1

        frame = quiet(run.logs)()
        raw = raw_logs(url, token, run.id)
        print(f"entries: {len(frame):,} (raw {len(raw):,})")
        baseline = "httpx loop + DataFrame(list_of_dicts) (baseline)"
        floor = "SQLite pages -> JSON -> DataFrame (floor)"
        db_path = Path(tmp) / "vm0.db"
        times = alternate(args.repeat, {
            floor: lambda: floor_logs(db_path, run.id),
            baseline: lambda: raw_logs(url, token, run.id),
            "run.logs()": quiet(run.logs),
        })  # fmt: skip
        print(f"{'case':52} {'median':>8}")
        for name, rounds in times.items():
            seconds = statistics.median(rounds)
            print(f"{name:52} {seconds:7.2f}s"
                  f"   ({seconds / len(frame) * 1e6:.0f} µs per entry)")
        logs = statistics.median(times["run.logs()"])
        report(f"{len(frame):,} log entries into a DataFrame", f"{logs:.2f} s",
               f"{statistics.median(times[baseline]):.2f} s (httpx loop + DataFrame)",
               paired_ratio(times["run.logs()"], times[baseline]), 1.2)
        report(f"{len(frame):,} log entries, against the floor", f"{logs:.2f} s",
               f"{statistics.median(times[floor]):.2f} s (SQLite pages -> JSON -> DataFrame)",
               paired_ratio(times["run.logs()"], times[floor]), 2)
        print(f"httpx loop / floor:      {paired_ratio(times[baseline], times[floor])}")

        tracemalloc.start()
        frame = quiet(run.logs)()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        size = int(frame.memory_usage(deep=True).sum())
        report("peak memory building the logs frame", f"{peak / 2**20:.1f} MiB",
               f"{size / 2**20:.1f} MiB (the frame itself)", peak / size, "shown, no goal")
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
