"""The runs browser: recent runs in a table to filter, page through, select and inspect.

    %vm0 browser                 # or, from Python:
    browser = RunsBrowser()      # vm0_notebook.Client() unless a client is given
    browser                      # click a run; browser.selected is that Run

The table is a grid of plain ipywidgets (each cell a button, so a click anywhere on a row selects
its run; no frontend extension needed), its status cells in the theme's status colours. A run
that is still going streams live below, with the same view as ``%%vm0 run``; when it ends, its
card and its row show how.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

from ...api.errors import MagicError
from ...cards import DIM_COLOR, STATUS_CSS
from ...contract import STATUSES
from ..masking import SecretMasker
from .panel import LABEL_STYLE, LiveOutput, Panel, display_bundle, set_options, show_in

#: Rows on one page of the runs browser.
PAGE_SIZE = 15
#: Characters of ``run.output`` the browser shows; ``browser.selected.output`` has them all.
OUTPUT_CHARS = 50_000
# Characters of a prompt's first line in a table row (its tooltip has the line whole).
_ROW_PROMPT_CHARS = 120
# The columns: name shown in the header, width (None: the rest of the row), monospace?
_COLUMNS = (
    ("status", "7.5em", False),
    ("agent", "9em", False),
    ("created (UTC)", "9.5em", True),
    ("duration", "6.5em", False),
    ("run", "18em", True),
    ("prompt", None, False),
)


class RunsBrowser(Panel):
    """Recent runs, newest first: filter by status and agent, page through them, click one to
    see its card and output (live while it runs), and show its logs or metrics.

        browser = RunsBrowser()            # or %vm0 browser
        browser                            # click a run in the table
        browser.selected.logs()            # the selected Run, for code
    """

    def __init__(
        self, client: Any = None, *, masker: SecretMasker | None = None,
        page_size: int = PAGE_SIZE, tail_lines: int = 100, max_updates_per_second: float = 10.0,
    ) -> None:
        import ipywidgets as w

        super().__init__(client, masker)
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.page_size = page_size
        self.page = 0
        self.selected: Any = None
        self._source: Iterator[Any] = iter(())
        self._loaded: list[Any] = []
        self._more = False
        self.status = w.Dropdown(
            description="Status", options=[("any", ""), *((s, s) for s in STATUSES)],
            style=LABEL_STYLE, layout=w.Layout(width="15em"),
        )
        self.agent = w.Dropdown(
            description="Agent", options=[("any", "")], style=LABEL_STYLE,
            layout=w.Layout(width="17em"),
        )
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.prev_button = w.Button(icon="chevron-left", tooltip="Newer runs",
                                    layout=w.Layout(width="3em"))
        self.next_button = w.Button(icon="chevron-right", tooltip="Older runs",
                                    layout=w.Layout(width="3em"))
        self.page_label = w.Label()
        # a row per place on the page, made once: a new page only changes their texts
        self._rows = [_RunRow(self._clicked) for _ in range(page_size)]
        self.table = w.VBox(
            [w.HTML(_table_css(), layout=w.Layout(display="none")), _header_row(),
             *(row.box for row in self._rows)],
            layout=w.Layout(width="100%", overflow="hidden"),
        )
        self.table.add_class("vm0-runs-table")
        self.card = w.HTML()
        self.run_output = w.Output(layout=w.Layout(width="100%"))
        self.logs_button = w.Button(description="Logs", icon="list", disabled=True)
        self.metrics_button = w.Button(description="Metrics", icon="table", disabled=True)
        self.plot_button = w.Button(description="Plot metrics", icon="line-chart", disabled=True)
        self.cancel_button = w.Button(
            description="Cancel run", icon="stop", button_style="danger", disabled=True
        )
        self.frame = w.Output(layout=w.Layout(width="100%", overflow="auto"))
        self._live = LiveOutput(
            self.run_output, self.masker, say=self.say, on_end=self._followed_to_the_end,
            on_status=self._status_moved, tail_lines=tail_lines,
            max_updates_per_second=max_updates_per_second,
        )

        self.refresh_button.on_click(self._guard(self.refresh))
        self.prev_button.on_click(self._guard(lambda: self.go(self.page - 1)))
        self.next_button.on_click(self._guard(lambda: self.go(self.page + 1)))
        self.logs_button.on_click(self._guard(self.show_logs))
        self.metrics_button.on_click(self._guard(self.show_metrics))
        self.plot_button.on_click(self._guard(self.plot_metrics))
        self.cancel_button.on_click(self._guard(self.cancel_selected))
        for control in (self.status, self.agent):
            control.observe(self._guard(self.refresh), names="value")

        self.widget = w.VBox(
            [
                w.HBox([self.status, self.agent, self.refresh_button, self.prev_button,
                        self.page_label, self.next_button],
                       layout=w.Layout(align_items="center", flex_flow="row wrap")),
                self.table,
                self.message,
                self.card,
                self.run_output,
                w.HBox([self.logs_button, self.metrics_button, self.plot_button,
                        self.cancel_button]),
                self.frame,
            ],
            layout=w.Layout(max_width="80em"),
        )
        self._mark("vm0-browser")
        self._load_agents()
        self.refresh()

    # -- the table ----------------------------------------------------------------------------

    @property
    def runs(self) -> list[Any]:
        """The runs on the current page."""
        start = self.page * self.page_size
        return self._loaded[start : start + self.page_size]

    @property
    def table_rows(self) -> list[_RunRow]:
        """The table's rows on the current page, in order (``row.texts()``, ``row.click()``)."""
        return self._rows[: len(self.runs)]

    @property
    def following(self) -> bool:
        """True while the selected run streams live below the table."""
        return self._live.running

    def refresh(self) -> None:
        """List the runs again from the newest (filters applied), keeping the selection."""
        agent_id = self.agent.value or None
        self._source = iter(
            self.client.runs.list(status=self.status.value or None, agent_id=agent_id)
        )
        self._loaded, self._more = [], True
        self.go(0)
        if self.selected is not None:
            self.select(self.selected.id)

    def go(self, page: int) -> None:
        """Show page ``page`` (0 is the newest runs)."""
        page = max(0, page)
        start = page * self.page_size
        self._fetch(start + self.page_size + 1)  # one more, to know whether a next page exists
        if page and start >= len(self._loaded):
            page, start = self.page, self.page * self.page_size
        self.page = page
        rows = self.runs
        for index, row in enumerate(self._rows):
            if index < len(rows):
                self._show_row(row, rows[index])
            else:
                row.hide()
        self.prev_button.disabled = page == 0
        self.next_button.disabled = len(self._loaded) <= start + self.page_size
        self.page_label.value = (
            f"runs {start + 1}–{start + len(rows)}" if rows else "no runs match"
        )

    def _fetch(self, count: int) -> None:
        while self._more and len(self._loaded) < count:
            try:
                self._loaded.append(next(self._source))
            except StopIteration:
                self._more = False

    def _show_row(self, row: _RunRow, run: Any) -> None:
        texts, prompt = _row_texts(run, self.masker.mask)
        selected = self.selected is not None and self.selected.id == run.id
        row.show(run.id, run.status, texts, prompt_tip=prompt, selected=selected)

    def _update_row(self, run: Any) -> None:
        """Put the newer state of ``run`` into the loaded runs and into its row, if shown."""
        for index, loaded in enumerate(self._loaded):
            if loaded.id == run.id:
                self._loaded[index] = run
        for row, shown in zip(self._rows, self.runs, strict=False):
            if shown.id == run.id:
                self._show_row(row, run)

    def _highlight(self, run_id: str | None) -> None:
        for row in self.table_rows:
            row.highlight(row.run_id == run_id)

    def _load_agents(self) -> None:
        agents = sorted(self.client.agents.list(), key=lambda a: a.name)
        set_options(self.agent, [("any", ""), *((a.name, a.id) for a in agents)])

    # -- the selected run ---------------------------------------------------------------------

    def _clicked(self, run_id: str) -> None:
        self._guard(lambda: self.select(run_id))()

    def select(self, run_id: str) -> Any:
        """Show run ``run_id`` (its card, its output or, while it runs, its live view, and the
        buttons) and return it as a Run. Stops following the run selected before."""
        run = self.client.runs.get(run_id)
        self._live.stop()
        self.selected = run
        self.say("")
        self._highlight(run.id)
        self._update_row(run)  # its status may have moved on since the list was read
        self._show_card(run)
        for button in (self.logs_button, self.metrics_button, self.plot_button):
            button.disabled = False
        self.frame.outputs = ()
        if run.finished:
            show_in(self.run_output, self._output_bundle(run))
        else:
            self._live.start(run)
        return run

    def _show_card(self, run: Any) -> None:
        from ...cards import run_html

        self.card.value = self.masker.mask(run_html(self._masked(run)))
        self.cancel_button.disabled = run.finished

    def _followed_to_the_end(self, run: Any) -> None:
        """The followed run ended (``run`` refreshed): its card and its row say how."""
        self._update_row(run)
        if self.selected is not None and self.selected.id == run.id:
            self.selected = run
            self._show_card(run)

    def _status_moved(self, run: Any, status: str) -> None:
        """The followed run's stream says it is ``status`` now (pending, then running)."""
        for row in self.table_rows:
            if row.run_id == run.id:
                row.set_status(status)

    def _masked(self, run: Any) -> Any:
        """A copy of ``run`` with its prompt and error masked whole (the card cuts them)."""
        mask = self.masker.mask
        return dataclasses.replace(
            run.detail, prompt=run.prompt and mask(run.prompt), error=run.error and mask(run.error)
        )

    def _output_bundle(self, run: Any) -> dict[str, str]:
        """A finished run's output (the first OUTPUT_CHARS of it), masked."""
        text = self.masker.mask(run.fetch_output() or "")
        if not text:
            return {"text/plain": "no output",
                    "text/html": f'<div style="color:{DIM_COLOR}">no output</div>'}
        note = ""
        if len(text) > OUTPUT_CHARS:
            note = (
                f"the first {OUTPUT_CHARS:,} of {len(text):,} characters; "
                f"%vm0 logs {run.id} has every line"
            )
            text = text[:OUTPUT_CHARS]
        shown = (
            '<div style="font-weight:600;margin-top:4px">output</div>'
            '<pre class="vm0-run-output" style="max-height:18em;overflow:auto;'
            'white-space:pre-wrap;margin:2px 0;padding:4px 6px;'
            'border:1px solid rgba(128,128,128,.3);border-radius:3px">'
            f"{html.escape(text)}</pre>"
        )
        if note:
            shown += f'<div style="color:{DIM_COLOR}">{html.escape(note)}</div>'
        return {"text/plain": f"{text}\n{note}".rstrip(), "text/html": shown}

    def _need_selected(self) -> Any:
        if self.selected is None:
            raise MagicError("select a run in the table first")
        return self.selected

    def show_logs(self) -> None:
        """Show the selected run's logs as a DataFrame below."""
        show_in(self.frame, display_bundle(self._need_selected().logs(), self.masker))

    def show_metrics(self) -> None:
        """Show the selected run's metrics as a DataFrame below."""
        show_in(self.frame, display_bundle(self._need_selected().metrics(), self.masker))

    def plot_metrics(self) -> None:
        """Show a plot of the selected run's CPU and memory below."""
        show_in(self.frame, display_bundle(self._need_selected().plot_metrics(), self.masker))

    def cancel_selected(self) -> None:
        """Cancel the selected run, then show it (and the table) again."""
        run = self._need_selected()
        run.cancel()
        self.refresh()
        self.say(f"{run.id} {run.status}", "ok")


class _RunRow:
    """One row of the table: a button per cell, so a click anywhere on the row selects its run;
    its status cell carries the status's class (coloured by the table's style sheet)."""

    def __init__(self, on_click: Callable[[str], None]) -> None:
        import ipywidgets as w

        self.run_id: str | None = None
        self._status_class = ""
        self.cells: dict[str, Any] = {}
        for name, width, mono in _COLUMNS:
            cell = w.Button(layout=_cell_layout(width))
            cell.add_class("vm0-cell")
            if mono:
                cell.add_class("vm0-mono")
            cell.on_click(lambda _: self.run_id and on_click(self.run_id))
            self.cells[name] = cell
        self.box = w.HBox(list(self.cells.values()), layout=w.Layout(display="none"))
        self.box.add_class("vm0-run-row")

    def show(
        self, run_id: str, status: str | None, texts: dict[str, str], *, prompt_tip: str,
        selected: bool,
    ) -> None:
        """Show one run: ``texts`` per column (already masked)."""
        self.run_id = run_id
        for name, text in texts.items():
            self.cells[name].description = text
        self.cells["prompt"].tooltip = prompt_tip or None
        self.set_status(status)
        self.highlight(selected)
        self.box.layout.display = None

    def set_status(self, status: str | None) -> None:
        """Show ``status`` in the status cell, in its colour."""
        cell = self.cells["status"]
        cell.description = status or "-"
        status_class = f"vm0-status-{status if status in STATUS_CSS else 'other'}"
        if status_class != self._status_class:
            if self._status_class:
                cell.remove_class(self._status_class)
            cell.add_class(status_class)
            self._status_class = status_class

    def hide(self) -> None:
        self.run_id = None
        self.box.layout.display = "none"

    def highlight(self, on: bool) -> None:
        """Mark the row as the selected one (or not)."""
        if on:
            self.box.add_class("vm0-selected")
        else:
            self.box.remove_class("vm0-selected")

    def texts(self) -> dict[str, str]:
        """What each cell shows, by column."""
        return {name: cell.description for name, cell in self.cells.items()}

    def click(self) -> None:
        """Select the row's run, as a click on it does."""
        self.cells["prompt"].click()


def _row_texts(run: Any, mask: Callable[[str], str]) -> tuple[dict[str, str], str]:
    """The texts of a run's row by column, and its prompt's first line whole (the tooltip)."""
    from ...cards import format_duration

    created = "-"
    if run.created_at:
        created = run.created_at.astimezone(UTC).strftime("%m-%d %H:%M:%S")
    ms = run.execution_time_ms
    duration = format_duration(ms / 1000) if isinstance(ms, int | float) else "-"
    # masked before it is cut short, so no start of a secret is left at the cut
    prompt = _first_line(mask(run.prompt or ""))
    texts = {
        "status": run.status or "-",
        "agent": mask(run.agent_name or "-"),
        "created (UTC)": created,
        "duration": duration,
        "run": mask(run.id),
        "prompt": _fit(prompt, _ROW_PROMPT_CHARS),
    }
    return texts, prompt


def _first_line(text: str) -> str:
    """The first line of ``text`` that says something, spaces squeezed."""
    for line in text.splitlines():
        if line.strip():
            return " ".join(line.split())
    return ""


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _cell_layout(width: str | None) -> Any:
    import ipywidgets as w

    if width is None:  # the prompt takes the rest of the row
        return w.Layout(flex="1 1 0%", min_width="8em", width="auto")
    return w.Layout(width=width, flex="none")


def _header_row() -> Any:
    import ipywidgets as w

    cells = []
    for name, width, _ in _COLUMNS:
        cell = w.HTML(html.escape(name), layout=_cell_layout(width))
        cell.add_class("vm0-cell")
        cells.append(cell)
    header = w.HBox(cells)
    header.add_class("vm0-runs-head")
    return header


def _table_css() -> str:
    """The table's style sheet: cells as plain text in the output's colour, the selected row
    tinted, status colours from the theme (each keeps 4.5:1 on the rows, tinted or not, in the
    light and the dark theme)."""
    table, cell = ".vm0-runs-table", ".vm0-runs-table .vm0-run-row .vm0-cell.jupyter-button"
    accent = STATUS_CSS["running"]  # the theme's brand colour
    rules = [
        f"{table} .vm0-run-row, {table} .vm0-runs-head {{margin:0;"
        "border-bottom:1px solid rgba(128,128,128,.25)}",
        f"{table} .vm0-cell {{margin:0;padding:0 6px;box-sizing:border-box;height:24px;"
        "line-height:24px;font-size:12px;text-align:left;overflow:hidden;"
        "text-overflow:ellipsis;white-space:nowrap;color:inherit}",
        f"{table} .vm0-runs-head .vm0-cell {{font-weight:600}}",
        # a button's look (grey face, shadow, outline on click) would read as a form, not a table
        f"{cell} {{background:transparent;box-shadow:none;border-radius:0;outline:none}}",
        f"{cell}:focus-visible {{outline:1px solid {accent}}}",
        f"{cell}.vm0-mono {{font-family:var(--jp-code-font-family, monospace)}}",
        f"{table} .vm0-run-row:hover {{background:color-mix(in srgb, {accent} 6%, transparent)}}",
        f"{table} .vm0-run-row.vm0-selected {{"
        f"background:color-mix(in srgb, {accent} 14%, transparent);"
        f"box-shadow:inset 3px 0 0 {accent}}}",
        f"{table} .vm0-run-row.vm0-selected .vm0-cell.jupyter-button {{font-weight:600}}",
        *(f"{cell}.vm0-status-{status} {{color:{color};font-weight:600}}"
          for status, color in STATUS_CSS.items()),
        f"{cell}.vm0-status-other {{color:{DIM_COLOR}}}",
    ]
    return "<style>" + "\n".join(rules) + "</style>"
