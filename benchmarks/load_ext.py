"""What ``%load_ext vm0_notebook`` adds to IPython's start-up, as a ratio to bare IPython.

    python benchmarks/load_ext.py [--repeat 7]

Times ``ipython -c '%load_ext vm0_notebook'`` against ``ipython -c pass`` (the baseline, in the
same run, the cases alternating), and against jupysql's ``%load_ext sql`` when jupysql is
installed. Prints the median of each, the added milliseconds and the median of the paired ratios
to the baseline. Goal: under 100 ms added.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _support import alternate, clean_env, paired_ratio, report

IPYTHON = [
    sys.executable, "-m", "IPython", "--quick", "--no-banner", "--HistoryManager.enabled=False",
]
BASELINE = "ipython -c pass (baseline)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        # a private IPython profile dir and no VM0 settings: nothing but the extension loads
        env = clean_env()
        env["IPYTHONDIR"] = str(Path(home) / "ipython")
        codes = {BASELINE: "pass", "%load_ext vm0_notebook": "%load_ext vm0_notebook"}
        if importlib.util.find_spec("sql") is not None:
            codes["%load_ext sql (jupysql)"] = "%load_ext sql"
        cases = {
            name: lambda code=code: subprocess.run(
                [*IPYTHON, "-c", code], check=True, env=env, capture_output=True)
            for name, code in codes.items()
        }
        for case in cases.values():  # the first run of each warms the file cache
            case()
        results = alternate(args.repeat, cases)

    base = statistics.median(results[BASELINE])
    print(f"{'case':32} {'median':>9} {'added':>9}  ratio")
    for name, rounds in results.items():
        seconds = statistics.median(rounds)
        added = (seconds - base) * 1000
        print(f"{name:32} {seconds * 1000:7.0f}ms {added:7.0f}ms  "
              f"{paired_ratio(rounds, results[BASELINE])}")
    ours = statistics.median(results["%load_ext vm0_notebook"])
    added = (ours - base) * 1000
    report("%load_ext vm0_notebook in IPython start-up", f"{ours * 1000:.0f} ms",
           f"{base * 1000:.0f} ms (ipython -c pass)",
           paired_ratio(results["%load_ext vm0_notebook"], results[BASELINE]),
           f"under 100 ms added ({added:.0f} ms)", added < 100)
    if "%load_ext sql (jupysql)" not in results:
        print("(jupysql is not installed: no comparison with %load_ext sql)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
