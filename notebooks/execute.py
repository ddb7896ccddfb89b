"""Execute a notebook end to end in a real kernel and show what a reader would see.

    python notebooks/execute.py notebooks/demo.ipynb

Writes the executed copy beside it as ``<name>.out.ipynb``, prints each cell's text output, and
exits non-zero (naming the cell) if any cell fails. With no VM0 key set, the notebook talks to the
embedded local server, which is started on first use.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def _text_of(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return f"{output.get('ename')}: {output.get('evalue')}\n"
    data = output.get("data", {})
    if "image/png" in data:
        return "[figure]\n"
    text = data.get("text/plain", "")
    return text + "\n" if text else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)

    nb = nbformat.read(args.notebook, as_version=4)
    out_path = args.notebook.with_suffix(".out.ipynb")
    client = NotebookClient(
        nb, timeout=args.timeout, kernel_name="python3",
        resources={"metadata": {"path": str(args.notebook.parent.resolve())}},
    )
    started = time.monotonic()
    failed = None
    try:
        client.execute()
    except CellExecutionError as exc:
        failed = exc
    finally:
        nbformat.write(nb, out_path)

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        print(f"--- [{index}] {cell.source.splitlines()[0] if cell.source else ''}")
        for output in cell.get("outputs", []):
            sys.stdout.write(_text_of(output))
    elapsed = time.monotonic() - started
    if failed is not None:
        print(f"\n{args.notebook} FAILED after {elapsed:.1f} s; executed copy: {out_path}")
        print(str(failed).strip().splitlines()[-1])
        return 1
    print(f"\n{args.notebook} ran end to end in {elapsed:.1f} s; executed copy: {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
