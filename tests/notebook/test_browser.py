"""The widgets in JupyterLab, in headless Chromium: what a user sees and clicks.

One JupyterLab server for the module, its kernels connected to the session's local server
through VM0_API_URL / VM0_API_KEY. Screenshots are left in the test's temporary folder
(``--basetemp DIR`` puts them where you can look at them).
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notebook.gated import GATED, release
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
CELL = ".jp-Notebook .jp-CodeCell"
CELLS = ["%load_ext vm0_notebook", "%vm0 launcher", "%vm0 browser"]


@pytest.fixture(scope="module")
def lab(local_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    pytest.importorskip("jupyterlab", reason="JupyterLab is not installed (pip install jupyterlab)")
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    root.mkdir()
    _write_notebook(root / NOTEBOOK, CELLS)
    server = start_lab(root, env={
        "VM0_API_URL": local_server.url,
        "VM0_API_KEY": local_server.token,
        "VM0_LOCAL_DIR": str(home / "unused-local"),
        "VM0_CACHE_DIR": str(home / "cache"),
    })
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: Any, tmp_path: Path) -> Iterator[None]:
    """A failed test leaves a screenshot of the whole page in its folder."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and "page" in request.fixturenames:
        request.getfixturevalue("page").screenshot(path=str(tmp_path / "failure.png"))


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


def _write_notebook(path: Path, cells: list[str]) -> None:
    notebook = {
        "cells": [
            {"cell_type": "code", "source": src, "metadata": {}, "outputs": [],
             "execution_count": None}
            for src in cells
        ],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }
    path.write_text(json.dumps(notebook))


def _open(page: Any, lab: Lab, cells: list[str]) -> str:
    """Write a new notebook of ``cells``, open it and wait for an idle kernel; its name."""
    from playwright.sync_api import expect

    name = f"nb-{uuid.uuid4().hex[:8]}.ipynb"
    _write_notebook(lab.root_dir / name, cells)
    page.goto(lab.url_of(name, workspace=name.removesuffix(".ipynb")))
    page.locator(CELL).nth(len(cells) - 1).wait_for()
    expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible()
    return name


def _start_cell(page: Any, index: int) -> Any:
    """Select cell ``index`` and press Shift+Enter, without waiting for it to finish."""
    from playwright.sync_api import expect

    cell = page.locator(CELL).nth(index)
    cell.locator(".jp-InputArea-editor").click()
    expect(cell).to_have_class(re.compile(r"\bjp-mod-selected\b"))
    page.keyboard.press("Shift+Enter")
    return cell


def _run_cell(page: Any, index: int) -> Any:
    """Select cell ``index`` and run it with Shift+Enter, as a user would; the cell, once
    it has run (its prompt shows an execution count)."""
    from playwright.sync_api import expect

    cell = page.locator(CELL).nth(index)
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
    page.locator(CELL).nth(2).wait_for()
    expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible()
    _run_cell(page, 0)
    launcher = _run_cell(page, 1).locator(".vm0-launcher")
    expect(launcher).to_be_visible()

    # it opens ready to launch: an agent chosen, the artifact hint shown whole
    assert launcher.locator(".widget-dropdown select").first.input_value() != ""
    artifact = launcher.locator("input[placeholder^='none, or a name']")
    fits = artifact.evaluate(
        """input => { const style = getComputedStyle(input);
        const ctx = document.createElement("canvas").getContext("2d");
        ctx.font = style.font;
        const room = input.clientWidth - parseFloat(style.paddingLeft)
                     - parseFloat(style.paddingRight);
        return ctx.measureText(input.placeholder).width <= room; }"""
    )
    assert fits
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
    assert "launcher." not in live.inner_text()  # hints name the run, not a guessed variable
    launcher.screenshot(path=str(tmp_path / "launcher.png"))

    browser = _run_cell(page, 2).locator(".vm0-browser")
    row = browser.locator(".vm0-run-row").first
    expect(row).to_contain_text(run_id)  # newest first
    expect(row.locator(".vm0-status-completed")).to_have_text("completed")
    row.click()
    expect(row).to_have_class(re.compile(r"\bvm0-selected\b"))
    expect(browser.locator(".vm0-run")).to_contain_text(run_id)  # the card
    expect(browser.locator(".vm0-run-output")).to_contain_text(prompt)
    browser.screenshot(path=str(tmp_path / "browser.png"))
    browser.get_by_role("button", name="Logs").click()
    expect(browser.locator("table.dataframe")).to_be_visible()
    browser.locator("table.dataframe").screenshot(path=str(tmp_path / "logs.png"))
    browser.get_by_role("button", name="Plot metrics").click()
    image = browser.locator("img[src^='data:image/png']")
    expect(image).to_be_visible()
    source = image.get_attribute("src")
    assert source.startswith("data:image/png;base64,iVBORw0KGgo")  # base64 of a PNG header
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")  # the browser drew it
    browser.screenshot(path=str(tmp_path / "browser-plot.png"))

    assert local_server.token not in page.content()  # the API key is never rendered
    page.keyboard.press("Control+s")
    saved = lab.root_dir / NOTEBOOK
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)
    saved_text = saved.read_text()
    assert "application/vnd.jupyter.widget-view+json" in saved_text  # the saved outputs
    assert local_server.token not in saved_text


# -- the browser follows a run live ------------------------------------------------------------

def _colour(element: Any) -> dict[str, Any]:
    """The colour of an element's own text and its contrast, as _CONTRASTS measures them."""
    (found,) = element.evaluate(_CONTRASTS)
    return found


def test_the_browser_follows_a_running_run_live_then_shows_how_it_ended(
    lab: Lab, page: Any, client: Any, local_server: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    run = client.runs.create(agent="shell", prompt=GATED)
    _open(page, lab, ["%load_ext vm0_notebook", "%vm0 browser"])
    _run_cell(page, 0)
    browser = _run_cell(page, 1).locator(".vm0-browser")
    row = browser.locator(".vm0-run-row", has_text=run.id)
    status = row.locator(".vm0-cell").first
    expect(status).to_have_text(re.compile(r"^(pending|running)$"))
    row.click()
    expect(row).to_have_class(re.compile(r"\bvm0-selected\b"))
    live = browser.locator(".vm0-live")
    header = live.locator(".vm0-live-header")
    expect(live.locator(".vm0-live-tail")).to_contain_text("tick 40")
    expect(header).to_contain_text("running")
    expect(status).to_have_text("running")  # the row caught up when the run was selected
    expect(browser.locator(".vm0-run")).to_contain_text("running")  # the card
    newest = live.evaluate(_NEWEST_IN_VIEW)
    assert newest["last"] == "tick 40" and newest["inView"] and newest["scrollable"], newest
    ticking = header.inner_text()
    expect(header).not_to_have_text(ticking)  # the clock moves while nothing else comes
    expect(browser.get_by_role("button", name="Cancel run")).to_be_enabled()
    running = _colour(status)
    browser.screenshot(path=str(tmp_path / "browser-following.png"))

    release(local_server, run.id, client)
    # no Refresh: the row, the card and the live view say how it ended
    expect(status).to_have_text("completed")
    expect(row.locator(".vm0-cell").nth(3)).to_have_text(re.compile(r" s$"))  # its duration
    expect(browser.locator(".vm0-run")).to_contain_text("completed")
    expect(header).to_contain_text("completed")
    expect(live.locator(".vm0-live-tail")).to_contain_text("released")
    expect(browser.get_by_role("button", name="Cancel run")).to_be_disabled()
    assert browser.get_by_role("button", name="Refresh").is_enabled()
    # the status cells in the theme's colours, not the text colour of the other cells
    completed, plain = _colour(status), _colour(row.locator(".vm0-cell").nth(1))
    assert len({running["color"], completed["color"], plain["color"]}) == 3
    assert min(running["ratio"], completed["ratio"]) >= 4.5, (running, completed)
    browser.screenshot(path=str(tmp_path / "browser-followed.png"))
    assert local_server.token not in page.content()


# -- the live view ----------------------------------------------------------------------------

# a pause after step 30 leaves the test time to look while the run is still going
SIXTY_STEPS = (
    "%%vm0 run shell\n"
    "for i in $(seq 60); do echo step $i; [ $i = 30 ] && sleep 3; sleep 0.02; done"
)

# Where the newest line of a live view's tail box is, against the box: is it in view?
_NEWEST_IN_VIEW = r"""view => {
  const box = view.querySelector(".vm0-live-tail");
  const pre = box.querySelector("pre");
  const node = pre.lastChild, text = node.textContent, range = document.createRange();
  const end = text.replace(/\s+$/, "").length, start = text.lastIndexOf("\n", end - 1) + 1;
  range.setStart(node, start);
  range.setEnd(node, end);
  const line = range.getBoundingClientRect(), frame = box.getBoundingClientRect();
  return {last: text.slice(start, end), maxHeight: getComputedStyle(box).maxHeight,
          inView: line.bottom <= frame.bottom + 1 && line.top >= frame.top - 1,
          scrollable: box.scrollHeight > box.clientHeight};
}"""


def _step(view: Any) -> int:
    """The number of the newest ``step N`` line in the live view's tail."""
    text = view.locator(".vm0-live-tail").inner_text()
    return max(int(n) for n in re.findall(r"step (\d+)", text))


def test_live_view_keeps_the_newest_line_in_view_during_and_after_a_run(
    lab: Lab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _open(page, lab, ["%load_ext vm0_notebook", SIXTY_STEPS])
    _run_cell(page, 0)
    cell = _start_cell(page, 1)
    view = cell.locator(".vm0-live")
    # from the first redraw: how to follow the run again, also from a restarted kernel
    expect(view).to_contain_text("%vm0 attach run_")
    expect(view.locator(".vm0-live-tail")).to_contain_text("step 30")
    during = view.evaluate(_NEWEST_IN_VIEW)
    view.screenshot(path=str(tmp_path / "live-during.png"))
    assert during["scrollable"] and during["inView"], during
    expect(view.locator(".vm0-live-header")).to_contain_text("completed")
    after = view.evaluate(_NEWEST_IN_VIEW)
    assert after["last"] == "step 60" and after["inView"], after
    # the closing line is below the box, not hidden inside it
    closing = view.locator(".vm0-live-closing")
    expect(closing).to_contain_text("done")
    expect(closing).to_be_in_viewport()
    assert view.locator(".vm0-live-tail .vm0-live-closing").count() == 0
    assert "%vm0 attach" not in view.inner_text()  # finished: nothing to reattach to
    view.screenshot(path=str(tmp_path / "live-after.png"))


def test_live_view_stays_where_the_user_scrolled(lab: Lab, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    _open(page, lab, ["%load_ext vm0_notebook", SIXTY_STEPS])
    _run_cell(page, 0)
    view = _start_cell(page, 1).locator(".vm0-live")
    box = view.locator(".vm0-live-tail")
    expect(box).to_contain_text("step 30")
    box.hover()
    page.mouse.wheel(0, -5000)  # the user scrolls the box up to its first line
    expect(box).to_have_js_property("vm0Stuck", False)
    box.evaluate("box => { box.vm0Mark = 'kept'; }")  # survives only if redraws update in place
    seen = _step(view)
    expect(view.locator(".vm0-live-header")).to_contain_text("completed")
    assert _step(view) == 60 > seen  # lines kept coming while the user looked up
    state = box.evaluate(
        "box => ({mark: box.vm0Mark, fromTop: box.scrollHeight - box.clientHeight + box.scrollTop,"
        " first: box.getBoundingClientRect().top})"
    )
    assert state["mark"] == "kept", state  # the same element, updated in place
    assert state["fromTop"] < 5, state  # still at the top, where the user left it
    first_line = page.evaluate(
        """box => { const r = document.createRange(); const pre = box.querySelector("pre");
        r.setStart(pre.firstChild, 0); r.setEnd(pre.firstChild, 6);
        return r.getBoundingClientRect().top - box.getBoundingClientRect().top; }""",
        box.element_handle(),
    )
    assert -4 <= first_line < 16  # the first line is the one on screen (one line is 16 px)
    view.screenshot(path=str(tmp_path / "live-scrolled-up.png"))


def test_saved_output_of_a_restarted_kernel_says_how_to_reattach(
    lab: Lab, page: Any, client: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    name = _open(page, lab, [
        "%load_ext vm0_notebook\nimport os\nprint(os.getpid())",
        "%%vm0 run shell\necho waiting for a restart; sleep 60",
    ])
    pid = int(_run_cell(page, 0).locator(".jp-OutputArea-output").inner_text())
    view = _start_cell(page, 1).locator(".vm0-live")
    expect(view).to_contain_text("waiting for a restart")
    run_id = view.locator("code").first.inner_text()
    os.kill(pid, signal.SIGKILL)  # the kernel dies mid-cell; JupyterLab starts a new one
    expect(page.locator(".jp-StatusBar-Widget", has_text="Idle").first).to_be_visible()
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0)
    saved = json.loads((lab.root_dir / name).read_text())
    outputs = saved["cells"][1]["outputs"]
    for mime in ("text/plain", "text/html"):
        shown = "".join("".join(o.get("data", {}).get(mime, "")) for o in outputs)
        assert f"%vm0 attach {run_id}" in shown, mime
    view.screenshot(path=str(tmp_path / "live-restarted.png"))
    assert client.runs.get(run_id).status == "running"  # the run outlived the kernel
    client.runs.cancel(run_id)


# -- prompts as written, nothing typeset as maths ---------------------------------------------


def test_code_prompts_are_sent_as_written_and_prose_is_filled_visibly(
    lab: Lab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _open(page, lab, [
        "%load_ext vm0_notebook\ni = 99\ndataset_name = 'penguins.csv'",
        '%%vm0 run python\nfor i in range(3): print(f"item-{i}")',
        "%%vm0 run shell\necho 'a b' | awk '{print $2}'",
        "%%vm0 run echo\nSummarise {dataset_name}.",
    ])
    _run_cell(page, 0)
    code = _run_cell(page, 1)
    expect(code.locator(".vm0-live-header")).to_contain_text("completed")
    tail = code.locator(".vm0-live-tail").inner_text().split()
    assert tail == ["item-0", "item-1", "item-2"], tail
    assert "filled:" not in code.locator(".jp-OutputArea").inner_text()
    # no -o: the next steps name the run and its session, no variable that does not exist
    summary = code.locator(".vm0-live-summary").inner_text()
    assert "%vm0 logs run_" in summary and "%%vm0 run --session ses_" in summary
    assert "run." not in summary and "follow_up" not in summary
    code.screenshot(path=str(tmp_path / "python-f-string.png"))
    shell = _run_cell(page, 2)
    expect(shell.locator(".vm0-live-header")).to_contain_text("completed")
    assert shell.locator(".vm0-live-tail").inner_text().split() == ["b"]
    prose = _run_cell(page, 3)
    expect(prose.locator(".jp-OutputArea")).to_contain_text("filled: dataset_name='penguins.csv'")
    expect(prose.locator(".vm0-live-tail")).to_contain_text("Summarise penguins.csv.")
    prose.screenshot(path=str(tmp_path / "echo-filled.png"))


def test_dollar_signs_are_never_typeset_as_maths(lab: Lab, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    prompt = "for i in $(seq 3); do echo step $i; done"
    _open(page, lab, [
        "%load_ext vm0_notebook",
        f"%%vm0 run shell -o r\n{prompt}",
        "%vm0 runs --limit 3",
        "r.logs()",
        "%vm0 browser",
        # the control: MathJax is on, and typesets this once it has seen the outputs above
        'from IPython.display import HTML\nHTML("control: $y^2$")',
    ])
    _run_cell(page, 0)
    for index in range(1, 6):
        _run_cell(page, index)
    control = page.locator(CELL).nth(5).locator(".jp-OutputArea")
    expect(control.locator("mjx-container")).to_have_count(1)
    browser = page.locator(CELL).nth(4).locator(".vm0-browser")
    row = browser.locator(".vm0-run-row").first
    expect(row.locator(".vm0-cell").last).to_have_text(prompt)  # the prompt's cell, as written
    row.click()
    expect(browser.locator(".vm0-run")).to_contain_text(prompt)
    card = page.locator(CELL).nth(1).locator(".vm0-run")
    expect(card).to_contain_text(prompt)
    # -o r: the next steps may name r
    expect(page.locator(CELL).nth(1).locator(".vm0-live-summary")).to_contain_text(
        'r.follow_up("...")'
    )
    runs = page.locator(CELL).nth(2).locator("table.dataframe")
    expect(runs).to_contain_text(prompt)
    expect(page.locator(CELL).nth(3).locator("table.dataframe")).to_be_visible()
    for index in range(5):
        assert page.locator(CELL).nth(index).locator("mjx-container").count() == 0, index
    # the compact runs table, text read from the left
    assert runs.locator("thead tr").first.locator("th").all_inner_texts()[1:] == [
        "status", "agent", "started", "duration", "prompt"]
    align = runs.locator("tbody td").last.evaluate("e => getComputedStyle(e).textAlign")
    assert align == "left"
    page.locator(CELL).nth(1).screenshot(path=str(tmp_path / "card-with-dollars.png"))
    runs.screenshot(path=str(tmp_path / "runs-with-dollars.png"))
    browser.screenshot(path=str(tmp_path / "browser-with-dollars.png"))


# -- failures, stderr, cancelled runs -----------------------------------------------------------


def test_stderr_exit_codes_and_cancelled_runs_read_true(
    lab: Lab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _open(page, lab, [
        "%load_ext vm0_notebook",
        "%%vm0 run shell\necho partial\necho 'warming up' >&2\necho 'about to fail' >&2\nexit 3",
        "%%vm0 run shell -o c\nfor i in $(seq 47); do echo line $i; done\nsleep 60",
        "print(c.status, c.output.count('line '))",
        "%vm0 browser",
    ])
    _run_cell(page, 0)
    failed = _run_cell(page, 1)
    view = failed.locator(".vm0-live")
    expect(view.locator(".vm0-live-header")).to_contain_text("failed")
    stderr = view.locator(".vm0-live-tail span", has_text="warming up")
    expect(stderr).to_be_visible()
    assert stderr.evaluate("e => getComputedStyle(e).color") != view.evaluate(
        "e => getComputedStyle(e).color")  # dimmed
    expect(view.locator(".vm0-live-closing")).to_contain_text("about to fail (exit code 3)")
    expect(failed.locator(".jp-OutputArea")).to_contain_text(
        re.compile(r"RunFailed: run run_\w+ failed: about to fail \(exit code 3\)")
    )
    failed.screenshot(path=str(tmp_path / "failed-with-stderr.png"))

    cancelled = _start_cell(page, 2)
    view = cancelled.locator(".vm0-live")
    expect(view.locator(".vm0-live-tail")).to_contain_text("line 47")
    page.keyboard.press("Escape")
    page.keyboard.press("i")
    page.keyboard.press("i")  # i, i: interrupt the kernel, as a user stops a cell
    expect(view.locator(".vm0-live-header")).to_contain_text("cancelled")
    expect(view.locator(".vm0-live-closing")).to_contain_text("✗ cancelled")
    assert "failed" not in view.inner_text()
    cancelled.screenshot(path=str(tmp_path / "cancelled.png"))
    expect(_run_cell(page, 3).locator(".jp-OutputArea")).to_contain_text("cancelled 47")

    browser = _run_cell(page, 4).locator(".vm0-browser")
    row = browser.locator(".vm0-run-row").first
    expect(row.locator(".vm0-status-cancelled")).to_have_text("cancelled")
    row.click()
    output = browser.locator(".vm0-run-output")
    expect(output).to_contain_text("line 1\n")
    expect(output).to_contain_text("line 47")
    browser.screenshot(path=str(tmp_path / "browser-cancelled.png"))


def test_help_opens_with_worked_examples_in_plain_text(
    lab: Lab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _open(page, lab, ["%load_ext vm0_notebook", "%vm0?"])
    _run_cell(page, 0)
    shown = _run_cell(page, 1).locator(".jp-OutputArea")
    expect(shown).to_contain_text("Examples")
    text = shown.inner_text()
    assert text.index("1. Ask an agent") < text.index("5. Look back") < text.index("Commands")
    assert "::" not in text and "%%vm0 run [-o VAR]" in text
    shown.screenshot(path=str(tmp_path / "help.png"))


# -- colours: theme variables, 4.5:1 in the light and the dark theme ----------------------------

# The contrast of each element with text of its own in `root`, against its effective background
# (the first opaque one above it, with any translucent ones composited over it), per WCAG 2.
_CONTRASTS = """root => {
  const parse = s => {
    let m = s.match(/^rgba?\\(([^)]*)\\)$/);
    if (m) {
      const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    }
    m = s.match(/^color\\(srgb ([^)]*)\\)$/);
    if (m) {
      const p = m[1].split(/[\\s\\/]+/).filter(Boolean).map(Number);
      return [p[0] * 255, p[1] * 255, p[2] * 255, p.length > 3 ? p[3] : 1];
    }
    throw new Error("unread colour " + s);
  };
  const over = (top, under) => [0, 1, 2].map(i => top[i] * top[3] + under[i] * (1 - top[3]))
    .concat([1]);
  const lum = c => c.slice(0, 3).map(v => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const hex = c => "#" + c.slice(0, 3).map(v => Math.round(v).toString(16).padStart(2, "0"))
    .join("");
  const out = [];
  for (const el of [root, ...root.querySelectorAll("*")]) {
    const own = Array.from(el.childNodes).filter(n => n.nodeType === 3)
      .map(n => n.textContent).join("").trim();
    if (!own || el.tagName === "SCRIPT" || el.tagName === "STYLE") continue;
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c[3] > 0) layers.push(c);
      if (c[3] >= 1) break;
    }
    let bg = [255, 255, 255, 1];
    for (const c of layers.reverse()) bg = over(c, bg);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    out.push({text: own.slice(0, 40), tag: el.tagName.toLowerCase(),
              color: hex(fg), background: hex(bg), ratio: (hi + 0.05) / (lo + 0.05)});
  }
  return out;
}"""
_SAMPLE_EVENTS = Path(__file__).with_name("agent-stream.jsonl").read_text().splitlines()[:7]
# A failing run that prints each kind of line: text, a tool call, a tool result ok and one
# failed, an info line, stderr, and the failed result naming the exit code.
_EVERY_KIND = (
    "%%vm0 run shell -o failing\ncat <<'EOF'\n" + "\n".join(_SAMPLE_EVENTS)
    + "\nEOF\necho 'warming up' >&2\nexit 3"
)


def _measure(cells: list[Any]) -> list[dict[str, Any]]:
    found = []
    for cell in cells:
        for root in cell.locator(".vm0-live, .vm0-run, .vm0-runs-table").all():
            found.extend(root.evaluate(_CONTRASTS))
    return found


def _use_theme(page: Any, name: str) -> None:
    """Pick ``name`` from JupyterLab's Settings > Theme menu, as a user does."""
    from playwright.sync_api import expect

    page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Theme$")).hover()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{name}$")).click()
    expect(page.locator("body")).to_have_attribute("data-jp-theme-name", name)
    light = "true" if "Light" in name else "false"
    expect(page.locator("body")).to_have_attribute("data-jp-theme-light", light)


def test_every_coloured_line_and_card_meets_4_5_to_1_in_light_and_dark(
    lab: Lab, page: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _open(page, lab, [
        "%load_ext vm0_notebook",
        _EVERY_KIND,
        "failing",
        "%%vm0 run shell -o fine\necho all good",
        "fine",
        "%vm0 browser",
    ])
    _run_cell(page, 0)
    cells = [_run_cell(page, index) for index in range(1, 6)]
    expect(cells[0].locator(".vm0-live-closing")).to_contain_text("exit code 3")
    expect(cells[1].locator(".vm0-run")).to_contain_text("failed")
    expect(cells[3].locator(".vm0-run")).to_contain_text("completed")
    # the table: a completed row, and the failed run's row selected (tinted)
    table = cells[4].locator(".vm0-runs-table")
    expect(table.locator(".vm0-run-row").first.locator(".vm0-status-completed")).to_be_visible()
    failed_row = table.locator(".vm0-run-row").nth(1)
    expect(failed_row.locator(".vm0-status-failed")).to_be_visible()
    failed_row.click()
    expect(failed_row).to_have_class(re.compile(r"\bvm0-selected\b"))
    expect(cells[4].locator(".vm0-run")).to_contain_text("failed")
    page.keyboard.press("Escape")
    measured: dict[str, list[dict[str, Any]]] = {}
    try:
        for theme in ("JupyterLab Light", "JupyterLab Dark"):
            _use_theme(page, theme)
            found = measured[theme] = _measure(cells)
            # the failed run, its card, a completed run, the browser
            for index, cell in enumerate([*cells[:3], cells[4]]):
                shot = tmp_path / f"colours-{theme.split()[-1].lower()}-{index}.png"
                cell.screenshot(path=str(shot))
            texts = " | ".join(item["text"] for item in found)
            for wanted in ("→ Bash", "✓ ", "✗ error", "warming up", "started: ",
                           "I'll start", "(exit code", "failed", "completed", "error"):
                assert wanted in texts, f"{wanted!r} not measured in {theme}"
            status_cells = {item["text"] for item in found if item["tag"] == "button"}
            assert {"failed", "completed"} <= status_cells, f"status cells not measured in {theme}"
    finally:
        (tmp_path / "contrast.json").write_text(json.dumps(measured, indent=1))
        _use_theme(page, "JupyterLab Light")
    low = [(theme, item) for theme, found in measured.items() for item in found
           if item["ratio"] < 4.5]
    assert not low, low
    dark = {item["color"] for item in measured["JupyterLab Dark"]}
    assert dark != {item["color"] for item in measured["JupyterLab Light"]}  # the theme's own
