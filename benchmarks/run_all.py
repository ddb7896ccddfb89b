"""Every benchmark, one after another, then one table of their figures.

    python benchmarks/run_all.py [NAME ...]      # e.g. run_all.py map client

Runs each ``benchmarks/*.py`` script (not the ``_`` support module, not this one; only the
NAMEs given, if any) in its own process, showing its own output as it goes. Each script hands
its figures over through ``_support.report()``; at the end this prints them as one Markdown
table (figure, ours, baseline, ratio, goal, met), the form the README's "Performance" section
shows. Exits non-zero if a script failed; a figure over its goal is shown, not an error, since
a busy machine moves the figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _support import REPORT_ENV

HERE = Path(__file__).resolve().parent


def scripts(names: list[str]) -> list[Path]:
    """The benchmark scripts to run, in name order (all of them when ``names`` is empty)."""
    found = sorted(p for p in HERE.glob("*.py") if not p.name.startswith("_")
                   and p.name != Path(__file__).name)
    if not names:
        return found
    unknown = sorted(set(names) - {p.stem for p in found})
    if unknown:
        raise SystemExit(f"no benchmark named {', '.join(unknown)}; there are: "
                         f"{', '.join(p.stem for p in found)}")
    return [p for p in found if p.stem in names]


def table(rows: list[dict[str, object]], failed: list[str]) -> str:
    """The figures as a Markdown table, and a line per script that failed."""
    header = ["benchmark", "figure", "ours", "baseline", "ratio", "goal", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        met = {True: "yes", False: "no", None: ""}[row.get("met")]  # type: ignore[index]
        cells = [str(row.get(k, "")) for k in header[:-1]] + [met]
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    lines += [f"\n{name} failed: its figures are missing" for name in failed]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    todo = scripts(argv)
    rows: list[dict[str, object]] = []
    failed: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        for script in todo:
            print(f"== {script.stem}", flush=True)
            path = Path(tmp) / f"{script.stem}.jsonl"
            env = {**os.environ, REPORT_ENV: str(path)}
            if subprocess.run([sys.executable, str(script)], env=env, cwd=HERE.parent).returncode:
                failed.append(script.stem)
            if path.exists():
                rows += [json.loads(line) for line in path.read_text().splitlines() if line]
            elif script.stem not in failed:
                rows.append({"benchmark": script.stem, "figure": "(reported no figures)"})
    minutes = (time.monotonic() - started) / 60
    print(f"\n{len(todo)} benchmarks in {minutes:.1f} min "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n")
    print(table(rows, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
