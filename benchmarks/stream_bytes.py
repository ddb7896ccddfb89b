"""How many bytes a run's event stream takes, against the size of the output's text.

    python benchmarks/stream_bytes.py [--mb 1] [--line 100]

Starts a private local server, lets the ``python`` agent print about ``--mb`` megabytes of
text in lines of ``--line`` characters, then reads that finished run's replayed event stream
as raw bytes and sorts them by frame: the output events that carry the text, the ``result``,
``complete`` and the rest. Prints each part, the stream's total against the text's size (the
goal: the text once plus framing) and the run detail's size; then checks that the client's
``run.output`` holds the whole text again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import httpx
from _support import local_server, report


def frame_kind(frame: bytes) -> str:
    """``output``, ``result`` (an output whose type is result), or the frame's event name."""
    event = next((line[6:].strip() for line in frame.split(b"\n") if line.startswith(b"event:")),
                 b"message").decode()
    if event == "output" and b'"type":"result"' in frame[:200]:
        return "result"
    return event


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=1.0)
    parser.add_argument("--line", type=int, default=100)
    args = parser.parse_args()
    lines = max(int(args.mb * 1_000_000) // args.line, 1)
    prompt = f"for i in range({lines}):\n    print(f'{{i:08d}} ' + 'x' * {args.line - 10})\n"
    text_chars = lines * (args.line - 1) + (lines - 1)  # the lines joined by newlines

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from vm0_notebook import Client

    with tempfile.TemporaryDirectory() as tmp, local_server(Path(tmp)) as server:
        client = Client(api_url=server.url, api_key=server.token)
        run = client.runs.create(agent="python", prompt=prompt).wait(timeout=600)
        headers = {"Authorization": f"Bearer {server.token}"}
        sizes: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        total = 0
        with httpx.stream("GET", f"{server.url}/v1/runs/{run.id}/events", headers=headers,
                          timeout=120) as response:
            pending = b""
            for chunk in response.iter_bytes():
                total += len(chunk)
                pending += chunk
                *frames, pending = pending.split(b"\n\n")
                for frame in frames:
                    kind = frame_kind(frame)
                    sizes[kind] += len(frame) + 2
                    counts[kind] += 1
        detail = httpx.get(f"{server.url}/v1/runs/{run.id}", headers=headers).content
        output = client.runs.get(run.id).fetch_output() or ""
        client.close()

    print(f"run {run.id}: {lines:,} lines, output text {text_chars:,} characters")
    for kind in ("output", "result", "complete", "status"):
        print(f"  {kind:>8} frames: {counts[kind]:>7,}  {sizes[kind]:>11,} bytes")
    framing = sizes["output"] - text_chars
    print(f"event stream: {total:,} bytes = {total / text_chars:.2f} x the text "
          f"(text once {text_chars:,} + output framing {framing:,}"
          f" = {framing / max(counts['output'], 1):.0f} bytes an event"
          f" + final frames {sizes['result'] + sizes['complete']:,})")
    print(f"run detail: {len(detail):,} bytes")
    report("event stream of a finished run, bytes", f"{total:,} B", f"{text_chars:,} B (the "
           "output's text)", total / text_chars, "the text once plus framing")
    # what the same run cost when result, complete and detail each carried the whole text:
    # the tail they carry now swapped for the text
    extra = text_chars - len(json.dumps(json.loads(detail)["output"], ensure_ascii=False))
    before = total + 2 * extra
    print(f"before (the whole text in result and complete, computed): {before:,} bytes ="
          f" {before / text_chars:.2f} x the text; run detail {len(detail) + extra:,} bytes")
    whole = len(output) == text_chars
    print(f"client run.output: {len(output):,} characters ({'whole' if whole else 'NOT whole'})")
    return 0 if whole else 1


if __name__ == "__main__":
    raise SystemExit(main())
