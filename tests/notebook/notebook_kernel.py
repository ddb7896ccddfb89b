"""Cells run one at a time in a real IPython kernel through nbclient, for the notebook tests.

:class:`Notebook` keeps the executed notebook, so tests can look at outputs, at the IOPub
messages a cell caused, and at what would be saved to disk.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbclient.util import run_sync
from nbformat import NotebookNode

# a secret the kernel can read with --secret NB_TEST_SECRET; never typed into a cell
SECRET_NAME = "NB_TEST_SECRET"


class CountingClient(NotebookClient):
    """nbclient, counting the IOPub messages each cell receives by type."""

    counts: Counter[str]

    def process_message(self, msg: dict[str, Any], cell: NotebookNode, cell_index: int) -> Any:
        self.counts[msg["msg_type"]] += 1
        return super().process_message(msg, cell, cell_index)


class Notebook:
    """Cells executed one by one in one kernel; ``nb`` is the notebook as it would be saved."""

    def __init__(self, client: CountingClient, secret: str, token: str) -> None:
        self.client = client
        self.nb = client.nb
        self.secret = secret
        self.token = token
        self.counts: Counter[str] = Counter()

    def run(self, source: str) -> NotebookNode:
        """Execute ``source`` as a new cell; raises CellExecutionError if the cell fails."""
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        self.client.counts = self.counts = Counter()
        self.client.execute_cell(cell, len(self.nb.cells) - 1)
        return cell

    def fails(self, source: str) -> tuple[NotebookNode, str]:
        """Execute ``source``, which must fail the cell; the cell and its error text."""
        with pytest.raises(CellExecutionError):
            self.run(source)
        cell = self.nb.cells[-1]
        errors = [o for o in cell.outputs if o.output_type == "error"]
        assert len(errors) == 1, cell.outputs
        return cell, "\n".join(errors[0].traceback)

    def value(self, expression: str) -> str:
        """The text/plain value of ``expression`` in the kernel."""
        return text_of(self.run(expression)).strip()

    def get(self, expression: str) -> Any:
        """The value of ``expression`` in the kernel, for values JSON can carry."""
        code = f"import json as _json; print(_json.dumps({expression}))"
        return json.loads(self.value(code).splitlines()[-1])

    def interrupt_when(self, ready: Callable[[], bool], timeout: float = 60) -> threading.Thread:
        """Send Ctrl-C to the kernel, from a thread, once ``ready()`` is true."""

        def watch() -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if ready():
                        break
                except Exception:  # the server may be busy; ask again
                    pass
                time.sleep(0.05)
            os.kill(self.client.km.provisioner.pid, signal.SIGINT)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        return thread

    def restart(self) -> None:
        """Restart the kernel (same environment), as a user would after a crash."""
        run_sync(self.client.km.restart_kernel)(now=True)
        run_sync(self.client.kc.wait_for_ready)(timeout=60)

    def saved(self) -> str:
        """The notebook file as nbformat would write it."""
        return nbformat.writes(self.nb)


def text_of(cell: NotebookNode) -> str:
    """Everything a text-only reader sees in a cell's outputs."""
    parts = []
    previous = None
    for output in cell.outputs:
        if output.output_type == "stream":
            # one print can arrive as two stream messages ("text", "\n"): a reader sees one
            if previous is not None and previous.output_type == "stream" \
                    and previous.name == output.name:
                parts[-1] += output.text
            else:
                parts.append(output.text)
        elif output.output_type == "error":
            parts.append("\n".join(output.traceback))
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
        previous = output
    return "\n".join(parts)


def html_of(cell: NotebookNode) -> str:
    return "\n".join(o.get("data", {}).get("text/html", "") for o in cell.outputs)
