"""100,000 log entries into a DataFrame: ``run.logs()`` as a ratio to a raw httpx loop.

    python benchmarks/frames.py [--lines 100000] [--repeat 2]

Starts a private local server on a temporary data folder, runs the built-in ``python`` agent
printing ``--lines`` lines (each becomes an output event and an agent log entry), then times
the same log download two ways, alternating, in the same run:

- baseline: an ``httpx.Client`` cursor loop over ``GET /v1/runs/{id}/logs`` collecting the JSON
  entries, then ``pandas.DataFrame(list_of_dicts)`` (untyped: strings and dicts);
- ``run.logs()``: the client's pager, typed entries and the column-wise frame with dtypes.

Prints the best time of each and their ratio (goal: at most 1.2), then the peak memory that
Python allocates while ``run.logs()`` builds the frame, as a ratio to the frame's own deep size.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import httpx
import pandas as pd

PAGE = 100  # the API's largest page


def start_server(data_dir: Path) -> tuple[subprocess.Popen[str], str, str]:
    """``python -m vm0_notebook.local serve`` on a free port; returns (process, url, token)."""
    token = "vm0_test_" + secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}
    env["VM0_LOCAL_DIR"] = str(data_dir)
    proc = subprocess.Popen(
        [sys.executable, "-m", "vm0_notebook.local", "serve", "--port", "0",
         "--data-dir", str(data_dir), "--token", token],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"https?://\S+", line)
        if match:
            return proc, match.group(0).rstrip("/"), token
        if not line:
            break
    proc.kill()
    raise SystemExit("the local server did not start")


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


def best_of(repeat: int, cases: dict[str, object]) -> dict[str, float]:
    """Best wall time of each case, the cases alternating so drift hits them equally.

    run.logs() draws its progress bar as a user would see it, into a buffer rather than over
    this report.
    """
    best = dict.fromkeys(cases, float("inf"))
    for _ in range(repeat):
        for name, fn in cases.items():
            with contextlib.redirect_stderr(io.StringIO()):
                start = time.perf_counter()
                fn()  # type: ignore[operator]
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    from vm0_notebook import Client

    with tempfile.TemporaryDirectory() as tmp:
        proc, url, token = start_server(Path(tmp))
        try:
            client = Client(api_url=url, api_key=token)
            prompt = f"for i in range({args.lines}):\n    print(f'line {{i}} of the benchmark')\n"
            started = time.perf_counter()
            run = client.runs.create(agent="python", prompt=prompt).wait(timeout=900)
            print(f"agent run {run.id}: {run.status} in {time.perf_counter() - started:.1f}s")
            if run.status != "completed":
                print(run.error)
                return 1

            with contextlib.redirect_stderr(io.StringIO()):
                frame = run.logs()
            raw = raw_logs(url, token, run.id)
            print(f"entries: {len(frame):,} (raw {len(raw):,})")
            times = best_of(args.repeat, {
                "httpx loop + DataFrame(list_of_dicts) (baseline)":
                    lambda: raw_logs(url, token, run.id),
                "run.logs()": run.logs,
            })  # fmt: skip
            base = times["httpx loop + DataFrame(list_of_dicts) (baseline)"]
            print(f"{'case':52} {'best':>8} {'ratio':>6}")
            for name, seconds in times.items():
                print(f"{name:52} {seconds:7.2f}s {seconds / base:6.2f}"
                      f"   ({seconds / len(frame) * 1e6:.0f} µs per entry)")

            tracemalloc.start()
            with contextlib.redirect_stderr(io.StringIO()):
                frame = run.logs()
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            size = int(frame.memory_usage(deep=True).sum())
            print(f"frame {size / 2**20:.1f} MiB; peak while building {peak / 2**20:.1f} MiB; "
                  f"ratio {peak / size:.2f}")
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
