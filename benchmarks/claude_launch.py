"""Launch to first output event of a ``claude`` run, against the same CLI started in a shell.

    python benchmarks/claude_launch.py [--rounds 7]

Both sides run the real Claude Code CLI (``$VM0_TEST_CLAUDE``, else the test cache, else
``claude`` on the PATH) against the scripted Anthropic Messages API of ``tests/model_server.py``
on 127.0.0.1, in a fresh working folder and home each time:

- ours: ``POST /v1/runs`` for the built-in ``claude`` agent on a private local server (its
  sandbox, session folder and framework set-up included), then its event stream until the first
  ``output`` event, and on until ``complete``;
- baseline: ``sh -c 'exec claude -p --output-format stream-json --verbose ...'`` with the
  prompt on stdin, until its first line of output, and on until it exits.

Rounds alternate between the two; each prints the median ratio and the range over the rounds.
The goal for the first event is within 1.2x.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _support import local_server, paired_ratio, report
from httpx_sse import connect_sse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/ for the scripted model

from tests.claude_cli import EXECUTABLE, VERSION_OR_REASON
from tests.model_server import ModelServer
from vm0_notebook.local.runtime.frameworks.claude_code import QUIET_ENV

KEY = "sk-ant-bench-0123456789"
PROMPT = "Say hello."


def through_server(http: httpx.Client, model: ModelServer) -> tuple[float, float]:
    """Seconds from ``POST /runs`` to the first output event, and to ``complete``."""
    start = time.perf_counter()
    r = http.post("/runs", json={"agent": "claude", "prompt": PROMPT,
                                 "variables": {"ANTHROPIC_BASE_URL": model.url},
                                 "secrets": {"ANTHROPIC_API_KEY": KEY}})
    r.raise_for_status()
    first = None
    with connect_sse(http, "GET", f"/runs/{r.json()['id']}/events") as source:
        for sse in source.iter_sse():
            if sse.event == "output" and first is None:
                first = time.perf_counter() - start
            if sse.event == "complete":
                status = json.loads(sse.data)["status"]
                if status != "completed":
                    raise SystemExit(f"the claude run ended {status}: {sse.data}")
                break
    assert first is not None
    return first, time.perf_counter() - start


def in_a_shell(model: ModelServer, root: Path) -> tuple[float, float]:
    """Seconds from starting the CLI in a shell to its first line of output, and to its exit."""
    workdir = Path(tempfile.mkdtemp(dir=root))
    home = workdir / ".claude-home"
    home.mkdir()
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
           "ANTHROPIC_BASE_URL": model.url, "ANTHROPIC_API_KEY": KEY, **QUIET_ENV}
    argv = [str(EXECUTABLE), "-p", "--output-format", "stream-json", "--verbose",
            "--allowedTools", "Bash", "Read", "Write", "Edit"]
    start = time.perf_counter()
    proc = subprocess.Popen(["sh", "-c", "exec " + shlex.join(argv)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                            cwd=workdir)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(PROMPT.encode())
    proc.stdin.close()
    proc.stdout.readline()
    first = time.perf_counter() - start
    proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"claude exited with {proc.returncode}")
    return first, time.perf_counter() - start


def main() -> None:
    """Run the rounds and print the timings and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    if EXECUTABLE is None:
        print(f"skipped: {VERSION_OR_REASON}")
        return
    # The built-in `claude` agent finds the CLI on the server's PATH.
    os.environ["PATH"] = f"{os.path.dirname(EXECUTABLE)}:{os.environ.get('PATH', '')}"
    # An empty script: every turn answers the same short text.
    with tempfile.TemporaryDirectory(prefix="vm0-bench-claude-") as tmp, \
            ModelServer() as model, local_server(Path(tmp) / "data") as server, \
            httpx.Client(base_url=server.url + "/v1", timeout=120,
                         headers={"Authorization": f"Bearer {server.token}"}) as http:
        through_server(http, model)  # warm-up: the CLI's pages in the cache, the server's imports
        in_a_shell(model, Path(tmp))
        ours: list[tuple[float, float]] = []
        base: list[tuple[float, float]] = []
        for _ in range(args.rounds):
            ours.append(through_server(http, model))
            base.append(in_a_shell(model, Path(tmp)))
    print(f"Claude Code {VERSION_OR_REASON}, {args.rounds} rounds")
    for i, what in enumerate(("first output event", "whole run")):
        o, b = [t[i] for t in ours], [t[i] for t in base]
        report(f"claude run to its {what}", f"{statistics.median(o) * 1000:.0f} ms",
               f"{statistics.median(b) * 1000:.0f} ms (the CLI in a shell)", paired_ratio(o, b),
               1.2 if i == 0 else "shown, no goal")


if __name__ == "__main__":
    main()
