"""The widgets in JupyterLab, in headless Chromium: what a user sees and clicks.

One JupyterLab server for the module, its kernels connected to the session's local server
through VM0_API_URL / VM0_API_KEY. Screenshots are left in the test's temporary folder.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notebook.jupyterlab import CHROMIUM, CHROMIUM_ARGS, Lab, start_lab

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"no {CHROMIUM}: install Debian's chromium (make browser-deps)",
    ),
]

# the longest a step waits for the page (a hang guard, not a timing)
WAIT_MS = 45_000
NOTEBOOK = "widgets.ipynb"
CELLS = ["%load_ext vm0_notebook", "%vm0 launcher", "%vm0 browser"]


@pytest.fixture(scope="module")
def lab(local_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install jupyterlab)")
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    root.mkdir()
    notebook = {
        "cells": [
            {"cell_type": "code", "source": src, "metadata": {}, "outputs": [],
             "execution_count": None}
            for src in CELLS
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    (root / NOTEBOOK).write_text(json.dumps(notebook))
    server = start_lab(root, env={
        "VM0_API_URL": local_server.url,
        "VM0_API_KEY": local_server.token,
        "VM0_LOCAL_DIR": str(home / "unused-local"),
        "VM0_CACHE_DIR": str(home / "cache"),
    })
    yield server
    server.stop()


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1200})
        page.set_default_timeout(WAIT_MS)
        sync_api.expect.set_options(timeout=WAIT_MS)
        yield page
        browser.close()


def _run_cell(page: Any, index: int) -> Any:
    """Select cell ``index`` and run it with Shift+Enter, as a user would; the cell, once
    it has run (its prompt shows an execution count)."""
    from playwright.sync_api import expect

    cell = page.locator(".jp-Notebook .jp-CodeCell").nth(index)
    cell.locator(".jp-InputArea-editor").click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-InputPrompt")).to_have_text(re.compile(r"\[\d+\]"))
    return cell


def test_launch_a_run_watch_it_stream_then_find_it_in_the_browser(
    lab: Lab, page: Any, local_server: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page.goto(lab.url_of(NOTEBOOK))
    page.locator(".jp-Notebook .jp-CodeCell").nth(2).wait_for()
    expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible()
    _run_cell(page, 0)
    launcher = _run_cell(page, 1).locator(".vm0-launcher")
    expect(launcher).to_be_visible()

    prompt = f"Hello from Chromium {uuid.uuid4().hex[:8]}"
    # the choices are labelled "name · framework"
    launcher.locator(".widget-dropdown select").first.select_option(label="echo · command")
    launcher.locator("textarea").first.fill(prompt)
    launcher.get_by_role("button", name="Launch").click()
    live = launcher.locator(".vm0-live")
    expect(live).to_contain_text(prompt)  # the echo agent streams the prompt back
    expect(live.locator("div").first).to_contain_text("completed")  # the header
    expect(launcher.get_by_role("button", name="Launch")).to_be_enabled()
    expect(launcher.get_by_role("button", name="Cancel")).to_be_disabled()
    run_id = live.locator("code").first.inner_text()
    assert run_id.startswith("run_")
    launcher.screenshot(path=str(tmp_path / "launcher.png"))

    browser = _run_cell(page, 2).locator(".vm0-browser")
    table = browser.locator(".vm0-runs-table select")
    expect(table.locator("option").first).to_contain_text(run_id)  # newest first
    expect(table.locator("option").first).to_contain_text("completed")
    table.select_option(index=0)
    expect(browser.locator(".vm0-run")).to_contain_text(run_id)  # the card
    expect(browser.locator(".vm0-run-output")).to_contain_text(prompt)
    browser.screenshot(path=str(tmp_path / "browser.png"))
    browser.get_by_role("button", name="Logs").click()
    expect(browser.locator("table.dataframe")).to_be_visible()
    browser.locator("table.dataframe").screenshot(path=str(tmp_path / "logs.png"))

    assert local_server.token not in page.content()  # the API key is never rendered
    page.keyboard.press("Control+s")
    saved = lab.root_dir / NOTEBOOK
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)
    saved_text = saved.read_text()
    assert "application/vnd.jupyter.widget-view+json" in saved_text  # the saved outputs
    assert local_server.token not in saved_text
