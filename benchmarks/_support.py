"""What the benchmark scripts share: a private local server, alternating timed rounds, the
median of paired ratios, and ``report()``, which prints a figure and hands it to ``run_all.py``.

Every benchmark compares itself with a baseline measured in the same run. Timing the two
alternately and taking the median of each round's ratio holds up better on a busy machine than
a ratio of two figures taken at different moments: a load that slows one round slows both.
Imported by the scripts beside it (``python benchmarks/x.py`` puts this folder on the path);
it does nothing when run on its own.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple


class Server(NamedTuple):
    """A running local server: its base URL and bearer token."""

    url: str
    token: str


def clean_env() -> dict[str, str]:
    """This process's environment without ``VM0_*`` settings, so that nothing but the
    benchmark's own server and folders is used."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}


@contextmanager
def local_server(
    data_dir: Path, command: Sequence[str] | None = None, stderr: int | IO[Any] | None =
    subprocess.DEVNULL,
) -> Iterator[Server]:
    """A private server on a free port with a fresh token, stopped on exit.

    ``command`` (default ``python -m vm0_notebook.local serve --port 0 --data-dir DATA_DIR``)
    gets ``--token TOKEN`` appended and must print its URL on a line of its standard output.

    >>> with local_server(Path(tmp)) as server:
    ...     client = Client(api_url=server.url, api_key=server.token)
    """
    token = "vm0_bench_" + secrets.token_hex(16)
    if command is None:
        command = [sys.executable, "-m", "vm0_notebook.local", "serve", "--port", "0",
                   "--data-dir", str(data_dir)]
    proc = subprocess.Popen([*command, "--token", token], stdout=subprocess.PIPE,
                            stderr=stderr, text=True, env=clean_env())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := re.search(r"https?://\S+", line):
                break
        else:
            raise SystemExit("the local server did not start")
        yield Server(match.group(0).rstrip("/"), token)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def timed(fn: Callable[[], object]) -> float:
    """Wall time of one call, in seconds."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternate(rounds: int, cases: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Each case's wall time per round, the cases run one after another within a round."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    return times


class Ratio(NamedTuple):
    """The median of the rounds' ratios and their range; prints as ``1.07 (rounds 0.98-1.15)``."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f} (rounds {self.low:.2f}-{self.high:.2f})"


def paired_ratio(ours: Sequence[float], base: Sequence[float]) -> Ratio:
    """The ratio ``ours / base`` of each round, summed up as their median and range."""
    ratios = sorted(o / b for o, b in zip(ours, base, strict=True))
    return Ratio(statistics.median(ratios), ratios[0], ratios[-1])


# the file run_all.py asks each benchmark to append its figures to, one JSON object a line
REPORT_ENV = "VM0_BENCH_REPORT"


def report(figure: str, ours: str, baseline: str, ratio: Ratio | float, goal: float | str,
           met: bool | None = None) -> None:
    """Print one figure against its baseline and goal, and hand it to ``run_all.py``.

    ``goal`` is the most the ratio may be (a number), or a goal in words with ``met`` saying
    whether it was met.

    >>> report("2,000 runs.get", "1.31 s", "1.20 s (raw httpx)", paired_ratio(a, b), 1.15)
    """
    median = ratio.median if isinstance(ratio, Ratio) else float(ratio)
    shown = str(ratio) if isinstance(ratio, Ratio) else f"{median:.2f}"
    if not isinstance(goal, str):
        goal, met = f"ratio <= {goal:g}", median <= goal
    verdict = "" if met is None else (" ok" if met else " OVER GOAL")
    print(f"{figure}: {ours} vs {baseline}: ratio {shown} ({goal}){verdict}", flush=True)
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({
                "benchmark": Path(sys.argv[0]).stem, "figure": figure, "ours": ours,
                "baseline": baseline, "ratio": shown, "goal": goal, "met": met,
            }) + "\n")
