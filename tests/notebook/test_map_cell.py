"""``%%vm0 map`` and ``client.map`` in a real kernel (nbclient) against the real local server."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.notebook.notebook_kernel import Notebook, text_of

pytestmark = pytest.mark.notebook

PENGUINS = (
    "import pandas as pd\n"
    "penguins = pd.DataFrame({'species': ['Adelie', 'Gentoo', 'Chinstrap', 'Adelie'],\n"
    "                         'island': ['Biscoe', 'Dream', 'Torgersen', 'Dream']})"
)


def test_map_over_a_dataframe_binds_the_frame_and_shows_a_compact_table(
    notebook: Notebook,
) -> None:
    notebook.run(PENGUINS)
    cell = notebook.run("%%vm0 map echo --over penguins --concurrency 2 -o described\n"
                        "Describe a {species} penguin from {island}.")
    text = text_of(cell)
    assert "vm0 map echo: 4 runs: 4 completed. The frame is in described." in text
    assert "run_" in text and "Describe a Gentoo penguin from Dream." in text
    assert notebook.get("list(described.output)") == [
        f"Describe a {s} penguin from {i}." for s, i in
        [("Adelie", "Biscoe"), ("Gentoo", "Dream"), ("Chinstrap", "Torgersen"),
         ("Adelie", "Dream")]
    ]
    assert notebook.get("list(described.columns[:3])") == ["species", "island", "prompt"]
    help_text = notebook.value('print(get_ipython().object_inspect_text("%vm0"))')
    assert "%%vm0 map" in help_text and "--strict" in help_text


def test_a_failed_item_fails_the_cell_only_with_strict(notebook: Notebook) -> None:
    notebook.run("commands = ['echo fine', 'exit 3']")
    cell = notebook.run("%%vm0 map shell --over commands\n{}")
    assert "2 runs: 1 completed, 1 failed" in text_of(cell)
    assert cell.outputs[-1].output_type == "execute_result"  # the whole frame
    cell, error = notebook.fails("%%vm0 map shell --over commands --strict -o strict_out\n{}")
    assert "--strict: 1 of 2 runs did not complete (1 failed)" in error
    assert "Traceback" not in error
    assert notebook.get("list(strict_out.status)") == ["completed", "failed"]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("%%vm0 map echo --over nowhere\nx {item}", "no variable 'nowhere'"),
        ("%vm0 map echo --over penguins", "template in the cell body"),
        ("%%vm0 map echo --over penguins\nabout {colour}", "{colour}"),
        ("%%vm0 map echo\nx", "--over"),
    ],
)
def test_bad_map_cells_say_what_to_fix(notebook: Notebook, source: str, words: str) -> None:
    notebook.run(PENGUINS)
    _, error = notebook.fails(source)
    assert words in error and "Traceback" not in error


def test_ctrl_c_cancels_the_map_and_binds_what_finished(notebook: Notebook, client: Any) -> None:
    marker = uuid.uuid4().hex
    notebook.run(f"markers = ['{marker}-' + str(i) for i in range(5)]")

    def running() -> bool:
        return any(marker in (r.prompt or "") for r in client.runs.list(status="running"))

    sender = notebook.interrupt_when(running)
    _, error = notebook.fails("%%vm0 map python --over markers --concurrency 2 -o partial\n"
                              "# {item}\nimport time; time.sleep(120)")
    sender.join()
    assert "interrupted: 5 runs: 5 cancelled" in error and "The frame is in partial." in error
    assert notebook.get("list(partial.status)") == ["cancelled"] * 5
    ours = [r for r in client.runs.list(limit=50) if marker in (r.prompt or "")]
    assert ours and all(r.status == "cancelled" for r in ours)


def test_client_map_in_the_kernel_sync_and_awaited(notebook: Notebook) -> None:
    notebook.run(
        "import sys, vm0_notebook as vm0\n"
        "sync_frame = vm0.Client().map('echo', ['a b', 'c d'], progress=False)\n"
        "async with vm0.AsyncClient() as aclient:\n"
        "    async_frame = await aclient.map('echo', ['e f', 'g h'], progress=False)"
    )
    assert notebook.get("list(sync_frame.output) + list(async_frame.output)") == [
        "a b", "c d", "e f", "g h"]
    assert notebook.get("'nest_asyncio' in sys.modules") is False
