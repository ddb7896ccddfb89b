"""Two widgets for working with runs without writing code: a launcher and a runs browser.

    %vm0 launcher        # a form: agent, prompt, volumes, artifact, variables -> a live run
    %vm0 browser         # recent runs: filter, page, select one to see its card and output

or from Python::

    from vm0_notebook.notebook.widgets import RunLauncher, RunsBrowser
    launcher = RunLauncher()     # vm0_notebook.Client() unless a client is given
    launcher                     # pick, type, Launch; then launcher.run is the Run
    browser = RunsBrowser()
    browser                      # select a run; browser.selected is that Run

The launcher streams the run into its own output area with the same rate-limited live view as
``%%vm0 run`` (from a background thread, so the Cancel button stays responsive). Everything shown
passes through a :class:`~.masking.SecretMasker`; secrets are given by the *names* of the
kernel's environment variables, never typed into the form (widget state can be saved with the
notebook). ipywidgets is imported when a widget is built, not when this module is.
"""

from __future__ import annotations

import contextlib
import dataclasses
import html
import os
import re
import threading
from collections.abc import Callable, Iterator
from datetime import UTC
from typing import Any

from ..api.errors import MagicError
from .args import check_env_name
from .masking import SecretMasker

#: Run statuses, in the order the status filter lists them.
STATUSES = ("pending", "running", "completed", "failed", "timeout", "cancelled")
#: Rows on one page of the runs browser.
PAGE_SIZE = 15
#: Characters of ``run.output`` the browser shows; ``browser.selected.output`` has them all.
OUTPUT_CHARS = 50_000
# Characters of a prompt in a table row.
_ROW_PROMPT_CHARS = 60
_NBSP = "\u00a0"  # <option> text collapses spaces; these keep the columns aligned
_LABEL_STYLE = {"description_width": "5.5em"}
_MESSAGE_STYLES = {"error": "color:#c62828", "ok": "color:#2e7d32", "info": "opacity:0.75"}


def _connect(client: Any) -> Any:
    if client is not None:
        return client
    from ..api.client import Client

    return Client()


def widget_masker(client: Any, masker: SecretMasker | None = None) -> SecretMasker:
    """``masker`` (the kernel's, from the magics) or a new one, knowing the client's API key."""
    masker = masker if masker is not None else SecretMasker()
    for value in client.secret_values():
        masker.add(value)
    masker.add(os.environ.get("VM0_API_KEY"))
    return masker


def display_bundle(obj: Any, masker: SecretMasker) -> dict[str, Any]:
    """``obj`` as a display bundle (the kernel's formatters where there are some), text masked."""
    if hasattr(obj, "iloc"):  # a DataFrame: mask cells before pandas cuts long ones short
        obj = masker.mask_frame(obj)
    from IPython import get_ipython
    from IPython.core.formatters import DisplayFormatter

    shell = get_ipython()
    # the kernel's formatters (with the user's settings), else IPython's defaults
    formatter = shell.display_formatter if shell is not None else DisplayFormatter()
    data, _ = formatter.format(obj)
    data = {mime: masker.mask(v) if isinstance(v, str) else v for mime, v in data.items()}
    if "text/plain" not in data:
        data["text/plain"] = masker.mask(repr(obj))
    return data


def show_in(output: Any, data: dict[str, Any]) -> None:
    """Replace what an ``ipywidgets.Output`` shows with one display bundle (any thread)."""
    output.outputs = ({"output_type": "display_data", "data": data, "metadata": {}},)


class _Panel:
    """What both widgets share: a client, a masker, a message line and error reporting."""

    widget: Any

    def __init__(self, client: Any, masker: SecretMasker | None) -> None:
        import ipywidgets as w

        self.client = _connect(client)
        self.masker = widget_masker(self.client, masker)
        self.message = w.HTML()

    def say(self, text: str, kind: str = "info") -> None:
        """Show one short line (masked) under the controls; empty ``text`` clears it."""
        style = _MESSAGE_STYLES.get(kind, "")
        body = html.escape(self.masker.mask(text))
        self.message.value = f'<span style="{style}">{body}</span>' if text else ""

    def _guard(self, action: Callable[[], Any]) -> Callable[..., None]:
        """A widget callback running ``action``: its errors show in the message line, since
        an exception in a callback would otherwise only reach the browser's log console."""

        def callback(*_: Any) -> None:
            try:
                action()
            except Exception as exc:
                from ..api.errors import VM0Error

                # the client's and the form's messages say what to do; others need their type
                known = isinstance(exc, MagicError | VM0Error)
                self.say(str(exc) if known else f"{type(exc).__name__}: {exc}", "error")

        return callback

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    def close(self) -> None:
        """Close the widget and everything in it (their comms with the frontend)."""
        for child in _descendants(self.widget):
            child.close()


def _descendants(widget: Any) -> Iterator[Any]:
    for child in getattr(widget, "children", ()):
        yield from _descendants(child)
    yield widget


# -- the launcher -----------------------------------------------------------------------------


class RunLauncher(_Panel):
    """A form that starts a run and shows it live below; ``launcher.run`` is the last Run.

        launcher = RunLauncher()           # or %vm0 launcher
        launcher                           # choose the agent, write the prompt, Launch
        launcher.wait().output             # after it finished: the run's final text

    Variables are ``NAME=value`` lines. Secrets are names of environment variables of the
    kernel, passed as the run's secrets and masked in everything shown.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        masker: SecretMasker | None = None,
        tail_lines: int = 100,
        max_updates_per_second: float = 10.0,
    ) -> None:
        import ipywidgets as w

        super().__init__(client, masker)
        self.run: Any = None
        self.tail_lines = tail_lines
        self.max_updates_per_second = max_updates_per_second
        self._thread: threading.Thread | None = None
        wide = w.Layout(width="100%")
        self.agent = w.Dropdown(description="Agent", style=_LABEL_STYLE)
        self.prompt = w.Textarea(
            description="Prompt", placeholder="What should the agent do?", style=_LABEL_STYLE,
            layout=w.Layout(width="100%", height="7em"),
        )
        self.volumes = w.SelectMultiple(description="Volumes", rows=3, style=_LABEL_STYLE)
        self.artifact = w.Combobox(
            description="Artifact", placeholder="none, or a name (new or existing)",
            ensure_option=False, style=_LABEL_STYLE,
        )
        self.variables = w.Textarea(
            description="Variables", placeholder="NAME=value, one per line",
            rows=2, style=_LABEL_STYLE, layout=wide,
        )
        self.secrets = w.Text(
            description="Secrets", style=_LABEL_STYLE, layout=wide,
            placeholder="names of the kernel's environment variables, e.g. OPENAI_API_KEY",
        )
        self.launch_button = w.Button(description="Launch", button_style="primary", icon="play")
        self.cancel_button = w.Button(
            description="Cancel", button_style="danger", icon="stop", disabled=True
        )
        self.reload_button = w.Button(
            description="Reload", icon="refresh", tooltip="Reload agents, volumes and artifacts"
        )
        self.output = w.Output(layout=wide)
        self.launch_button.on_click(self._guard(self.launch))
        self.cancel_button.on_click(self._guard(self.cancel))
        self.reload_button.on_click(self._guard(self.reload))
        self.widget = w.VBox(
            [
                w.HBox([self.agent, self.reload_button]),
                self.prompt,
                w.HBox([self.volumes, self.artifact]),
                self.variables,
                self.secrets,
                w.HBox([self.launch_button, self.cancel_button, self.message],
                       layout=w.Layout(align_items="center")),
                self.output,
            ],
            layout=w.Layout(max_width="60em"),
        )
        self.widget.add_class("vm0-launcher")
        self.reload()

    # -- choices ------------------------------------------------------------------------------

    def reload(self) -> None:
        """Fetch the agents, volumes and artifacts again (keeping what is chosen, if it still
        exists)."""
        agents = sorted(a.name for a in self.client.agents.list())
        _set_options(self.agent, agents)
        chosen = set(self.volumes.value)
        self.volumes.options = sorted(v.name for v in self.client.volumes.list())
        self.volumes.value = tuple(n for n in self.volumes.options if n in chosen)
        self.volumes.disabled = not self.volumes.options
        self.volumes.tooltip = (
            "Mounted at their latest version; Ctrl/Cmd-click to pick several"
            if self.volumes.options else "No volumes yet: client.volumes.push(folder, name)"
        )
        self.artifact.options = sorted(a.name for a in self.client.artifacts.list())
        if not agents:
            self.say("no agents yet: create one with client.agents.create(name, config)")

    # -- the run ------------------------------------------------------------------------------

    def request(self) -> dict[str, Any]:
        """The form as keyword arguments of ``client.runs.create``; MagicError if it is
        incomplete. Secret values come from the kernel's environment and join the masker."""
        if not self.agent.value:
            raise MagicError("choose an agent")
        prompt = self.prompt.value
        if not prompt.strip():
            raise MagicError("the prompt is empty: write what the agent should do")
        request: dict[str, Any] = {"agent": self.agent.value, "prompt": prompt}
        variables = parse_variables(self.variables.value)
        if variables:
            request["variables"] = variables
        secrets = read_secrets(self.secrets.value)
        if secrets:
            for value in secrets.values():
                self.masker.add(value)
            request["secrets"] = secrets
        if self.volumes.value:
            request["volumes"] = {name: "latest" for name in self.volumes.value}
        if self.artifact.value.strip():
            request["artifact_name"] = self.artifact.value.strip()
        return request

    @property
    def running(self) -> bool:
        """True while a launched run is being followed."""
        return self._thread is not None and self._thread.is_alive()

    def launch(self) -> Any:
        """Start the run the form describes and follow it live in the output area."""
        if self.running:
            raise MagicError(f"{self.run.id} is still running: cancel it or wait")
        request = self.request()
        self.say("starting…")
        run = self.client.runs.create(**request)
        self.run = run
        self.say("")
        self.output.outputs = ()
        self._set_running(True)
        self._thread = threading.Thread(
            target=self._follow, args=(run,), name="vm0-launcher", daemon=True
        )
        self._thread.start()
        return run

    def cancel(self) -> None:
        """Cancel the run being followed (the live view shows it end as cancelled)."""
        run = self.run
        if run is None or not self.running:
            return
        from ..api.errors import InvalidRequestError

        self.say(f"cancelling {run.id}…")
        with contextlib.suppress(InvalidRequestError):  # it finished in the meantime
            run.cancel()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the launched run's live view is finished; the Run (None if none)."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.run

    def _follow(self, run: Any) -> None:
        from .live import LiveView, error_line
        from .watch import watch

        view = LiveView(
            agent=run.agent_name, run_id=run.id, tail_lines=self.tail_lines,
            max_updates_per_second=self.max_updates_per_second, masker=self.masker,
            handle="launcher.run", started_at=run.started_at, publish=self._publish,
        )
        try:
            outcome = watch(run, view)
            with contextlib.suppress(Exception):  # the summary can do with what the stream said
                run.refresh()
            view.finish(run)
            if outcome.how == "lost":
                self.say(
                    f"lost the event stream ({outcome.reason}); it may still be running: "
                    f"%vm0 attach {run.id}", "error",
                )
            elif not run.ok:  # the view's summary leaves the reason to this line
                detail = f": {error_line(run.error)}" if run.error else ""
                self.say(f"{run.id} {run.status}{detail}", "error")
            else:
                self.say("")
        except Exception as exc:  # a thread has nobody else to tell
            self.say(f"{type(exc).__name__}: {exc}", "error")
        finally:
            self._set_running(False)

    def _publish(self, bundle: dict[str, str], display_id: str, update: bool) -> None:
        show_in(self.output, dict(bundle))

    def _set_running(self, running: bool) -> None:
        self.launch_button.disabled = running
        self.cancel_button.disabled = not running


def _set_options(dropdown: Any, options: list[Any]) -> None:
    """Replace a dropdown's options, keeping its value when it is still one of them."""
    current = dropdown.value
    dropdown.options = options
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if current in values:
        dropdown.value = current


def parse_variables(text: str) -> dict[str, str]:
    """``NAME=value`` lines -> ``{NAME: value}``; blank lines and ``#`` comments are skipped.

        >>> parse_variables("MODE=fast\\n# note\\nLIMIT=3")
        {'MODE': 'fast', 'LIMIT': '3'}
    """
    variables: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, value = line.partition("=")
        if not sep:
            raise MagicError(f"variables, line {number}: write NAME=value")
        variables[check_env_name(name.strip(), "variable")] = value
    return variables


def read_secrets(names: str) -> dict[str, str]:
    """Names of environment variables (comma or space separated) -> ``{NAME: value}``."""
    secrets: dict[str, str] = {}
    for name in re.split(r"[\s,]+", names.strip()):
        if not name:
            continue
        value = os.environ.get(check_env_name(name, "secret"))
        if not value:
            raise MagicError(
                f"secret {name}: set the environment variable {name} in the kernel "
                "(the form takes names, never values)"
            )
        secrets[name] = value
    return secrets


# -- the browser ------------------------------------------------------------------------------


class RunsBrowser(_Panel):
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
            style=_LABEL_STYLE, layout=w.Layout(width="15em"),
        )
        self.agent = w.Dropdown(
            description="Agent", options=[("any", "")], style=_LABEL_STYLE,
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
        self.widget.add_class("vm0-browser")
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
        from ..cards import format_duration

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
        _set_options(self.agent, [("any", ""), *((a.name, a.id) for a in agents)])

    # -- the selected run ---------------------------------------------------------------------

    def _on_select(self, change: dict[str, Any]) -> None:
        if change["new"]:
            self._guard(lambda: self.select(change["new"]))()

    def select(self, run_id: str) -> Any:
        """Show run ``run_id`` (its card, output and buttons) and return it as a Run."""
        from ..cards import run_html

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
                f'<div style="opacity:.75">{html.escape(run.status)}: its output shows when '
                f"it ends (Refresh), or follow it live with %vm0 attach {html.escape(run.id)}</div>"
            )
        text = self.masker.mask(run.fetch_output() or "")
        if not text:
            return '<div style="opacity:.75">no output</div>'
        note = ""
        if len(text) > OUTPUT_CHARS:
            note = (
                f'<div style="opacity:.75">the first {OUTPUT_CHARS:,} of {len(text):,} '
                "characters; browser.selected.output has them all</div>"
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
