"""What ``%load_ext vm0_notebook`` adds to IPython's start-up, as a ratio to bare IPython.

    python benchmarks/load_ext.py [--repeat 7]

Times ``ipython -c '%load_ext vm0_notebook'`` against ``ipython -c pass`` (the baseline, in the
same run), and against jupysql's ``%load_ext sql`` when jupysql is installed. Prints the median
of each, the added milliseconds and the ratio to the baseline. Goal: under 100 ms added.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IPYTHON = [
    sys.executable, "-m", "IPython", "--quick", "--no-banner", "--HistoryManager.enabled=False",
]
BASELINE = "ipython -c pass (baseline)"


def median_seconds(code: str, repeat: int, env: dict[str, str]) -> float:
    """Median wall time of ``ipython -c code`` over ``repeat`` runs (after one warm-up)."""
    times = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run([*IPYTHON, "-c", code], check=True, env=env, capture_output=True)
        if i:  # the first run warms the file cache
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        # a private IPython profile dir and no VM0 settings: nothing but the extension loads
        env = {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}
        env["IPYTHONDIR"] = str(Path(home) / "ipython")
        cases = {BASELINE: "pass", "%load_ext vm0_notebook": "%load_ext vm0_notebook"}
        if importlib.util.find_spec("sql") is not None:
            cases["%load_ext sql (jupysql)"] = "%load_ext sql"
        results = {name: median_seconds(code, args.repeat, env) for name, code in cases.items()}

    base = results[BASELINE]
    print(f"{'case':32} {'median':>9} {'added':>9} {'ratio':>7}")
    for name, seconds in results.items():
        added = (seconds - base) * 1000
        print(f"{name:32} {seconds * 1000:7.0f}ms {added:7.0f}ms {seconds / base:7.2f}")
    if "%load_ext sql (jupysql)" not in results:
        print("(jupysql is not installed: no comparison with %load_ext sql)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
