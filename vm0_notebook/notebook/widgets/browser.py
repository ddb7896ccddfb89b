"""The runs browser: recent runs in a table to filter, page through, select and inspect.

    %vm0 browser                 # or, from Python:
    browser = RunsBrowser()      # vm0_notebook.Client() unless a client is given
    browser                      # select a run; browser.selected is that Run
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Iterator
from datetime import UTC
from typing import Any

from ...api.errors import MagicError
from ...cards import DIM_COLOR
from ...contract import STATUSES
from ..masking import SecretMasker
from .panel import LABEL_STYLE, Panel, display_bundle, set_options, show_in

#: Rows on one page of the runs browser.
PAGE_SIZE = 15
#: Characters of ``run.output`` the browser shows; ``browser.selected.output`` has them all.
OUTPUT_CHARS = 50_000
# Characters of a prompt in a table row.
_ROW_PROMPT_CHARS = 60
_NBSP = "\u00a0"  # <option> text collapses spaces; these keep the columns aligned


class RunsBrowser(Panel):
    """Recent runs, newest first: filter by status and agent, page through them, select one
    to see its card and output, and show its logs or metrics.

        browser = RunsBrowser()            # or %vm0 browser
        browser                            # select a run in the table
        browser.selected.logs()            # the selected Run, for code
    """

    def __init__(
        self, client: Any = None, *, masker: SecretMasker | None = None,
        page_size: int = PAGE_SIZE,
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
        self.header = w.HTML(_TABLE_STYLE + _header_html())
        self.table = w.Select(rows=page_size, layout=w.Layout(width="100%"))
        self.table.add_class("vm0-runs-table")
        self.card = w.HTML()
        self.run_output = w.HTML()
        self.logs_button = w.Button(description="Logs", icon="list", disabled=True)
        self.metrics_button = w.Button(description="Metrics", icon="table", disabled=True)
        self.plot_button = w.Button(description="Plot metrics", icon="line-chart", disabled=True)
        self.cancel_button = w.Button(
            description="Cancel run", icon="stop", button_style="danger", disabled=True
        )
        self.frame = w.Output(layout=w.Layout(width="100%", overflow="auto"))

        self.refresh_button.on_click(self._guard(self.refresh))
        self.prev_button.on_click(self._guard(lambda: self.go(self.page - 1)))
        self.next_button.on_click(self._guard(lambda: self.go(self.page + 1)))
        self.logs_button.on_click(self._guard(self.show_logs))
        self.metrics_button.on_click(self._guard(self.show_metrics))
        self.plot_button.on_click(self._guard(self.plot_metrics))
        self.cancel_button.on_click(self._guard(self.cancel_selected))
        for control in (self.status, self.agent):
            control.observe(self._guard(self.refresh), names="value")
        self.table.observe(self._on_select, names="value")

        self.widget = w.VBox(
            [
                w.HBox([self.status, self.agent, self.refresh_button, self.prev_button,
                        self.page_label, self.next_button],
                       layout=w.Layout(align_items="center", flex_flow="row wrap")),
                self.header,
                self.table,
                self.message,
                self.card,
                self.run_output,
                w.HBox([self.logs_button, self.metrics_button, self.plot_button,
                        self.cancel_button]),
                self.frame,
            ],
            layout=w.Layout(max_width="72em"),
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
        keep = self.table.value
        self.table.options = [(self._row(run), run.id) for run in rows]
        self.table.rows = max(3, len(rows))  # no tall empty box for a short list
        if keep in {run.id for run in rows}:
            self.table.value = keep
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

    def _row(self, run: Any) -> str:
        from ...cards import format_duration

        created = "-"
        if run.created_at:
            created = run.created_at.astimezone(UTC).strftime("%m-%d %H:%M:%S")
        ms = run.execution_time_ms
        duration = format_duration(ms / 1000) if isinstance(ms, int | float) else "-"
        mask = self.masker.mask
        # masked before it is cut short, so no start of a secret is left at the cut
        prompt = _fit(mask(" ".join((run.prompt or "").split())), _ROW_PROMPT_CHARS)
        cells = [run.status or "-", _fit(run.agent_name or "-", 14), created, duration, run.id]
        text = "  ".join(c.ljust(w) for c, w in zip(cells, _COLUMN_WIDTHS, strict=True))
        return mask(f"{text}  {prompt}").replace(" ", _NBSP)

    def _load_agents(self) -> None:
        agents = sorted(self.client.agents.list(), key=lambda a: a.name)
        set_options(self.agent, [("any", ""), *((a.name, a.id) for a in agents)])

    # -- the selected run ---------------------------------------------------------------------

    def _on_select(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._guard(lambda: self.select(change["new"]))()

    def select(self, run_id: str) -> Any:
        """Show run ``run_id`` (its card, output and buttons) and return it as a Run."""
        from ...cards import run_html

        run = self.client.runs.get(run_id)
        self.selected = run
        self.say("")
        self.card.value = self.masker.mask(run_html(self._masked(run)))
        self.run_output.value = self._output_html(run)
        for button in (self.logs_button, self.metrics_button, self.plot_button):
            button.disabled = False
        self.cancel_button.disabled = run.finished
        self.frame.outputs = ()
        return run

    def _masked(self, run: Any) -> Any:
        """A copy of ``run`` with its prompt and error masked whole (the card cuts them)."""
        mask = self.masker.mask
        return dataclasses.replace(
            run.detail, prompt=run.prompt and mask(run.prompt), error=run.error and mask(run.error)
        )

    def _output_html(self, run: Any) -> str:
        if not run.finished:
            return (
                f'<div style="color:{DIM_COLOR}">{html.escape(run.status)}: its output shows when '
                f"it ends (Refresh), or follow it live with %vm0 attach {html.escape(run.id)}</div>"
            )
        text = self.masker.mask(run.fetch_output() or "")
        if not text:
            return f'<div style="color:{DIM_COLOR}">no output</div>'
        note = ""
        if len(text) > OUTPUT_CHARS:
            note = (
                f'<div style="color:{DIM_COLOR}">the first {OUTPUT_CHARS:,} of {len(text):,} '
                f"characters; %vm0 logs {html.escape(run.id)} has every line</div>"
            )
            text = text[:OUTPUT_CHARS]
        return (
            '<div style="font-weight:600;margin-top:4px">output</div>'
            '<pre class="vm0-run-output" style="max-height:18em;overflow:auto;'
            'white-space:pre-wrap;margin:2px 0;padding:4px 6px;'
            'border:1px solid rgba(128,128,128,.3);border-radius:3px">'
            f"{html.escape(text)}</pre>{note}"
        )

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


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_COLUMNS = ("status", "agent", "created (UTC)", "duration", "run")
_COLUMN_WIDTHS = (9, 14, 14, 9, 28)
_TABLE_STYLE = (
    "<style>.vm0-runs-table select, .vm0-runs-header {"
    "font-family: var(--jp-code-font-family, monospace); font-size: 12px}</style>"
)


def _header_html() -> str:
    cells = "  ".join(c.ljust(w) for c, w in zip(_COLUMNS, _COLUMN_WIDTHS, strict=True))
    text = f"{cells}  prompt".replace(" ", "&nbsp;")
    return f'<div class="vm0-runs-header" style="font-weight:600;padding-left:6px">{text}</div>'
