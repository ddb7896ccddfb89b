"""The notebooks in notebooks/: committed clean, and run end to end the way ``make demo`` runs
them (notebooks/execute.py: a real kernel, a fresh embedded server on a new data folder),
without a model and with the scripted one in front of the real Claude Code CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from tests.claude_cli import EXECUTABLE, needs_claude
from tests.notebook_model import NotebookModel
from vm0_notebook.api.model_env import NO_MODEL_NOTE

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# what a machine path looks like in a saved notebook
MACHINE_PATH = re.compile(r"(/root/|/home/|/tmp/|/work/|/Users/|[A-Z]:\\\\)")


def _execute_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("execute", ROOT / "notebooks" / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


execute = _execute_module()


def _claude_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code" and "claude" in c.source
            and "%load_ext" not in c.source]


def _text(cell: nbformat.NotebookNode) -> str:
    return "".join(execute.text_of(output) for output in cell.get("outputs", []))


def _run(path: Path, tmp_path: Path, extra_env: dict[str, str]) -> nbformat.NotebookNode:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VM0_", "ANTHROPIC_"))}
    with execute.fresh_server(tmp_path / "data") as data_dir:
        env = execute.kernel_env(data_dir, {**base, **extra_env})
        nb, failed = execute.execute(path, execute.working_copy(tmp_path / "out"), env, 300)
    if failed is not None:
        pytest.fail(f"{path.name}: {str(failed).strip().splitlines()[-1]}")
    return nb


def test_there_are_three_numbered_notebooks_and_no_others() -> None:
    assert [p.name for p in NOTEBOOKS] == [
        "01-quickstart.ipynb", "02-data-exploration.ipynb", "03-teaching-demo.ipynb"]
    assert [p.name for p in execute.default_notebooks()] == [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs_or_machine_paths(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]
    assert not MACHINE_PATH.search(path.read_text()), MACHINE_PATH.search(path.read_text())
    assert "vm0_live_" not in path.read_text() and "sk-ant-" not in path.read_text()


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_to_the_end_without_a_model(path: Path, tmp_path: Path) -> None:
    nb = _run(path, tmp_path, {})
    claude = _claude_cells(nb)
    if path.stem != "03-teaching-demo":
        assert claude
    for cell in claude:
        assert NO_MODEL_NOTE in _text(cell), cell.source[:60]
    # every cell of the notebook ran
    assert all(c.execution_count for c in nb.cells if c.cell_type == "code")


@pytest.fixture(scope="module")
def model() -> Iterator[NotebookModel]:
    with NotebookModel() as endpoint:
        yield endpoint


@pytest.mark.slow
@pytest.mark.notebook
@needs_claude
@pytest.mark.parametrize("path", NOTEBOOKS[:2], ids=lambda p: p.stem)
def test_the_claude_cells_run_the_cli_with_a_model(
    path: Path, tmp_path: Path, model: NotebookModel
) -> None:
    assert EXECUTABLE is not None
    key = "sk-ant-nb-" + secrets.token_hex(16)
    path_var = f"{os.path.dirname(EXECUTABLE)}:{os.environ.get('PATH', '/usr/bin:/bin')}"
    nb = _run(path, tmp_path, {"ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": model.url,
                               "PATH": path_var})
    shown = "\n".join(_text(cell) for cell in nb.cells if cell.cell_type == "code")
    assert NO_MODEL_NOTE not in shown
    if path.stem == "01-quickstart":
        assert "They huddle to share warmth" in shown
    else:
        profile = next(c for c in _claude_cells(nb) if "Profile" in c.source)
        assert "Write" in _text(profile) and "Bash" in _text(profile)
        assert "species-counts.png" in _text(profile) and "✗" not in _text(profile)
        # the mounted artifact's files, shown inline: the summary and the chart
        files = next(c for c in nb.cells if "rglob" in c.source)
        kinds = {key for o in files.outputs for key in o.get("data", {})}
        assert {"text/markdown", "image/png"} <= kinds
        markdown = [o["data"]["text/markdown"] for o in files.outputs
                    if "text/markdown" in o.get("data", {})]
        assert "Palmer penguins: profile" in markdown[0]  # Claude Code's, not the baseline's
        assert "species-counts.png" in _text(files) and "summary.md" in _text(files)
        assert "Flipper length" in shown  # the follow-up, in the same session
        assert "Biscoe" in shown and "1.5 mm deeper" in shown  # the fan-out
        assert "Torgersen: Adelie only." in shown  # %%vm0 map, filled from each row
        compared = next(c for c in nb.cells if "input tokens" in c.source)
        table = compared.outputs[-1]["data"]["text/plain"]
        # tokens for every run (the python baseline's are 0)
        assert "question 3" in table and "NaN" not in table, table
    saved = json.dumps(nb)
    assert key not in saved
    assert all(turn.had_key for turn in model.turns)
