"""tests/frames.ipynb executed in a real kernel against the session's local server."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

NOTEBOOK = Path(__file__).parent / "frames.ipynb"


@pytest.fixture
def executed(local_server, monkeypatch, tmp_path) -> dict[str, list[dict]]:
    """Each tagged cell's outputs, after running the whole notebook."""
    from nbclient import NotebookClient

    # the kernel inherits the environment: Client() finds the test server there
    monkeypatch.setenv("VM0_API_URL", local_server.url)
    monkeypatch.setenv("VM0_API_KEY", local_server.token)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=90, kernel_name="python3", resources={
        "metadata": {"path": str(tmp_path)}}).execute()  # fmt: skip
    return {cell.metadata["tags"][0]: cell.outputs for cell in nb.cells
            if cell.cell_type == "code" and cell.metadata.get("tags")}  # fmt: skip


def only(outputs: list[dict]) -> dict:
    assert len(outputs) == 1, outputs
    return outputs[0]["data"]


@pytest.mark.slow
@pytest.mark.notebook
def test_the_notebook_shows_the_card_frames_and_figures_once(executed) -> None:
    card = only(executed["card"])
    assert 'class="vm0-run ' in card["text/html"] and "completed" in card["text/html"]
    assert "tex2jax_ignore" in card["text/html"]  # a $ in a prompt is not typeset
    assert card["text/plain"].startswith("Run run_")

    dtypes = only(executed["log-dtypes"])["text/plain"]
    for expected in ("datetime64[ns, UTC]", "category", "string", "Int64"):
        assert expected in dtypes

    logs = only(executed["logs"])
    assert "<table" in logs["text/html"] and "assistant" in logs["text/html"]
    assert 'class="vm0-frame tex2jax_ignore mathjax_ignore"' in logs["text/html"]
    metrics = only(executed["metrics"])
    assert "cpu_percent" in metrics["text/html"] and "memory_used_mb" in metrics["text/html"]
    assert "duration" in only(executed["runs"])["text/html"]

    for tag in ("plot-metrics", "plot-runs"):
        figure = executed[tag]  # one output with one image: the figure is shown once
        assert len(figure) == 1 and "image/png" in figure[0]["data"], figure
        assert [o for o in figure if o.get("output_type") == "display_data"] == []
