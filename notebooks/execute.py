"""Execute the notebooks end to end against a fresh embedded server and write HTML copies.

    python notebooks/execute.py                      # every notebooks/NN-*.ipynb
    python notebooks/execute.py notebooks/01-quickstart.ipynb --out build/notebooks

Each notebook runs in a real kernel, in a working copy of this folder under ``OUT/work`` (so
the files its cells write stay out of the checkout), against an embedded local server on a new,
empty data folder that is stopped at the end. ``VM0_API_URL`` and ``VM0_API_KEY`` are left out
of the kernels' environment; the model settings (``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``)
are passed on, so the ``claude`` cells run when a model is configured and say how to configure
one when not. Writes ``OUT/<name>.html`` for each notebook, prints each cell's text output, and
exits non-zero naming the cell if any cell fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent
# what a notebook reads from its own folder, copied into the working copy
SHIPPED = ("data",)


def default_notebooks() -> list[Path]:
    """The notebooks of this folder, in their numbered order."""
    return sorted(HERE.glob("[0-9][0-9]-*.ipynb"))


def kernel_env(data_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The kernels' environment: ``base`` (default: ours) on the embedded server in
    ``data_dir``, with its own download cache."""
    env = {k: v for k, v in (os.environ if base is None else base).items()
           if k not in ("VM0_API_URL", "VM0_API_KEY")}
    env["VM0_LOCAL_DIR"] = str(data_dir / "server")
    env["VM0_CACHE_DIR"] = str(data_dir / "cache")
    return env


@contextmanager
def fresh_server(data_dir: Path | None = None) -> Iterator[Path]:
    """A data folder for the embedded server (a new temporary one by default); the server the
    notebooks start there is stopped on the way out."""
    from vm0_notebook.local import daemon

    made = data_dir is None
    folder = Path(tempfile.mkdtemp(prefix="vm0-demo-")) if made else data_dir
    try:
        yield folder
    finally:
        daemon.stop_server(folder / "server")
        if made:
            shutil.rmtree(folder, ignore_errors=True)


def working_copy(out: Path) -> Path:
    """``out/work``, holding what the notebooks read from their folder."""
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        if (HERE / name).is_dir():
            shutil.copytree(HERE / name, work / name, dirs_exist_ok=True)
    return work


def execute(path: Path, workdir: Path, env: Mapping[str, str], timeout: int = 600,
            kernel_name: str = "python3"
            ) -> tuple[nbformat.NotebookNode, CellExecutionError | None]:
    """Run every cell of ``path`` in a new kernel in ``workdir``; the executed notebook and the
    error of the cell that failed (None when all ran)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name,
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute(env=dict(env))  # passed on to the kernel's start
    except CellExecutionError as exc:
        return nb, exc
    return nb, None


def write_html(nb: nbformat.NotebookNode, target: Path) -> Path:
    """The executed notebook as a standalone HTML page at ``target``."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    target.write_text(body, encoding="utf-8")
    return target


def text_of(output: Mapping) -> str:
    """What a text frontend shows of one output."""
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
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="the notebooks to run (default: notebooks/NN-*.ipynb)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "build" / "notebooks",
                        help="where the HTML copies go (default: build/notebooks)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    parser.add_argument("--quiet", action="store_true", help="do not print the cells' output")
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    with fresh_server() as data_dir:
        env, work = kernel_env(data_dir), working_copy(args.out)
        for path in args.notebooks or default_notebooks():
            started = time.monotonic()
            nb, failed = execute(path, work, env, args.timeout)
            html = write_html(nb, args.out / f"{path.stem}.html")
            if not args.quiet:
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type == "code":
                        print(f"--- [{index}] {(cell.source.splitlines() or [''])[0]}")
                        for output in cell.get("outputs", []):
                            sys.stdout.write(text_of(output))
            elapsed = time.monotonic() - started
            if failed is not None:
                failures += 1
                last = (str(failed).strip().splitlines() or ["?"])[-1]
                print(f"{path.name} FAILED after {elapsed:.1f} s: {last}\n  executed copy: {html}")
            else:
                print(f"{path.name} ran end to end in {elapsed:.1f} s: {html}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
