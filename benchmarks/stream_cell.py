"""20,000 events through ``%vm0 attach`` in a kernel, against the raw client on the same run.

    python benchmarks/stream_cell.py [--events 20000] [--repeat 5]

Starts a private local server, lets the ``python`` agent print ``--events`` lines (one output
event each), then, in one IPython kernel, times two cells over that finished run's replayed
stream: the baseline ``for _ in client.runs.events(RUN): pass`` and ``%vm0 attach RUN``
(render, mask, live view, display updates), alternately. Prints the medians and the median of
the paired ratios (each magic cell against the raw cell run just before it, which holds up
better on a busy machine), and how many display messages the magic sent.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import psutil
from _support import clean_env, local_server, paired_ratio, report
from jupyter_client.manager import start_new_kernel


class Sample(NamedTuple):
    seconds: float  # wall time from execute to reply
    cpu: float  # CPU seconds the kernel process spent (all its threads)
    displays: int  # display messages the cell sent


def timed_cell(kc, code: str, kernel: psutil.Process | None = None) -> Sample:
    """Run ``code`` in the kernel and measure it."""
    displays = 0

    def count(msg) -> None:
        nonlocal displays
        if msg["msg_type"] in ("display_data", "update_display_data"):
            displays += 1

    def cpu() -> float:
        times = kernel.cpu_times() if kernel is not None else None
        return times.user + times.system if times is not None else 0.0

    cpu_start, start = cpu(), time.perf_counter()
    reply = kc.execute_interactive(code, output_hook=count, timeout=600)
    elapsed, cpu_used = time.perf_counter() - start, cpu() - cpu_start
    if reply["content"]["status"] != "ok":
        raise RuntimeError(f"cell failed: {code!r}: {reply['content'].get('evalue')}")
    return Sample(elapsed, cpu_used, displays)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp) / "server") as server:
        url, token = server
        km = kc = None
        try:
            from vm0_notebook import Client

            with Client(api_url=url, api_key=token) as client:
                code = f"for i in range({args.events}):\n    print(f'line {{i}}')"
                run = client.runs.create(agent="python", prompt=code).wait()
            env = clean_env()
            env.update(VM0_API_URL=url, VM0_API_KEY=token)
            km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=tmp)
            setup = "%load_ext vm0_notebook\nimport vm0_notebook as vm0\nclient = vm0.Client()"
            timed_cell(kc, setup)
            kernel = psutil.Process(km.provisioner.pid)  # type: ignore[union-attr]
            raw_cell = f"for _ in client.runs.events({run.id!r}): pass"
            magic_cell = f"%vm0 attach {run.id} -o r"
            timed_cell(kc, magic_cell)  # warm-up: imports, first connection
            raw, magic = [], []
            for _ in range(args.repeat):
                raw.append(timed_cell(kc, raw_cell, kernel))
                magic.append(timed_cell(kc, magic_cell, kernel))
        finally:
            if kc is not None:
                kc.stop_channels()
            if km is not None:
                km.shutdown_kernel(now=True)

    def median(samples: list[Sample], field: str) -> float:
        return statistics.median(getattr(s, field) for s in samples)

    def paired(field: str) -> float:
        return paired_ratio([getattr(m, field) for m in magic],
                            [getattr(r, field) for r in raw]).median

    print(f"{args.events:,} events, median of {args.repeat} (ratios: median of paired runs)")
    print(f"{'':24}{'wall':>9}{'kernel CPU':>13}")
    print(f"{'raw client (baseline)':24}{median(raw, 'seconds') * 1000:7.0f}ms"
          f"{median(raw, 'cpu') * 1000:11.0f}ms")
    print(f"{'%vm0 attach':24}{median(magic, 'seconds') * 1000:7.0f}ms"
          f"{median(magic, 'cpu') * 1000:11.0f}ms")
    print(f"{'ratio':24}{paired('seconds'):9.2f}{paired('cpu'):13.2f}")
    for field, label in (("seconds", "wall"), ("cpu", "kernel CPU")):
        report(f"{args.events:,} events through %vm0 attach, {label}",
               f"{median(magic, field) * 1000:.0f} ms",
               f"{median(raw, field) * 1000:.0f} ms (raw client in the kernel)",
               paired_ratio([getattr(m, field) for m in magic],
                            [getattr(r, field) for r in raw]), "shown, no goal")
    print(f"display messages sent by the magic: {max(s.displays for s in magic)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
