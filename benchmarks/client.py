"""The client's overhead over raw httpx, measured against the embedded local server.

    .venv/bin/python benchmarks/client.py

Prints two ratios (goals in brackets), each against a baseline measured in the same run on the
same URL, alternating rounds so both see the same machine load (the ratio is the median of the
rounds' ratios):
- 2,000 ``runs.get`` through ``Client`` vs ``httpx.Client.get(...).json()``      [<= 1.15]
- 20,000 events through ``runs.events`` vs raw httpx-sse with ``json.loads``     [<= 1.2]
"""

from __future__ import annotations

import json
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path

import httpx
import httpx_sse
from _support import alternate, local_server, paired_ratio, report

GETS = 2_000
EVENTS = 20_000
ROUNDS = 10

EMIT = (
    "import json, sys\n"
    "line = json.dumps({'type': 'assistant', 'message': {'content': "
    "[{'type': 'text', 'text': 'x' * 40}]}})\n"
    f"sys.stdout.write((line + '\\n') * {EVENTS})\n"
)


def compare(name: str, ours: Callable[[], object], raw: Callable[[], object], goal: float,
            rounds: int = ROUNDS) -> None:
    ours(), raw()  # warm up connections and caches
    times = alternate(rounds, {"client": ours, "raw": raw})
    ratio = paired_ratio(times["client"], times["raw"])
    report(name, f"{statistics.median(times['client']):.3f} s",
           f"{statistics.median(times['raw']):.3f} s (raw httpx)", ratio, goal)


def main() -> None:
    from vm0_notebook import Client

    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp)) as (url, token):
        client = Client(api_url=url, api_key=token, cache_dir=Path(tmp) / "cache")
        raw = httpx.Client(headers={"Authorization": f"Bearer {token}"})
        run = client.runs.create(agent="python", prompt=EMIT).wait(timeout=300)
        assert run.status == "completed", run.error
        per_round = GETS // ROUNDS

        def client_gets() -> None:
            for _ in range(per_round):
                client.runs.get(run.id)

        def raw_gets() -> None:
            for _ in range(per_round):
                response = raw.get(f"{url}/v1/runs/{run.id}")
                response.raise_for_status()
                response.json()

        compare(f"{GETS} runs.get", client_gets, raw_gets, 1.15)

        def client_events() -> None:
            n = 0
            for event in client.runs.events(run.id):
                if event.event == "output":
                    n += 1
            assert n >= EVENTS, n  # the server adds a result event

        def raw_events() -> None:
            n = 0
            with httpx_sse.connect_sse(raw, "GET", f"{url}/v1/runs/{run.id}/events") as src:
                for sse in src.iter_sse():
                    data = json.loads(sse.data)
                    if sse.event == "output":
                        n += 1
                    elif sse.event == "complete":
                        break
                    del data
            assert n >= EVENTS, n  # the server adds a result event

        compare(f"{EVENTS} events", client_events, raw_events, 1.2, rounds=15)
        client.close()
        raw.close()


if __name__ == "__main__":
    main()
