"""A run at a glance: an HTML card for notebooks and the same facts as plain text elsewhere.

    run              # in a notebook: the card (Run._repr_html_ -> run_html)
    print(run)       # in a terminal: run_text

The card shows the status in its colour, the agent, the run id, its times and duration, the
error, and what it used and made (session, checkpoint, artifact and volume versions), so a
result can be traced and reproduced. Everything that came from a user or an agent (prompt,
error, names) is escaped. Pure string work: no IPython, pandas or matplotlib here.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DIM_COLOR",
    "NO_MATH",
    "STATUS_COLORS",
    "STATUS_CSS",
    "UNSANDBOXED",
    "format_duration",
    "format_usage",
    "run_html",
    "run_text",
    "theme_color",
    "unsandboxed",
]

#: One colour per run status, shared by the card and the plots; each meets 4.5:1 on white.
STATUS_COLORS = {
    "pending": "#757575",
    "running": "#1565c0",
    "completed": "#2e7d32",
    "failed": "#c62828",
    "timeout": "#ad1457",
    "cancelled": "#b45309",
}


def theme_color(variable: str, fallback: str) -> str:
    """A CSS colour from JupyterLab's theme ``variable``, moved a quarter of the way towards the
    theme's text colour so it keeps 4.5:1 on the light and the dark background (the themes'
    own warn and success colours do not); ``fallback`` where the variables are absent."""
    text = "var(--jp-content-font-color0, #000)"
    return f"color-mix(in srgb, var({variable}, {fallback}) 75%, {text})"


#: The status colours for HTML: the theme's, with STATUS_COLORS where there is no theme.
STATUS_CSS = {
    status: theme_color(variable, STATUS_COLORS[status])
    for status, variable in (
        ("pending", "--jp-content-font-color2"),
        ("running", "--jp-brand-color1"),
        ("completed", "--jp-success-color1"),
        ("failed", "--jp-error-color1"),
        ("timeout", "--jp-error-color0"),
        ("cancelled", "--jp-warn-color0"),
    )
}
#: Secondary text (labels, stderr, notes): the theme's dimmed text colour, not opacity, so it
#: keeps 4.5:1 on either background, a table's striped rows included.
DIM_COLOR = theme_color("--jp-content-font-color2", "#616161")
_OTHER_COLOR = STATUS_CSS["pending"]
# The badge's text is the page's background colour: its contrast is the status colour's.
_ON_COLOR = "var(--jp-layout-color0, #fff)"
#: Classes that keep MathJax (JupyterLab's and the classic Notebook's) from typesetting what
#: is inside: a ``$`` in a prompt or an output is text, never maths.
NO_MATH = "tex2jax_ignore mathjax_ignore"

# Prompts can be pages long; the card shows the start, run.prompt has all of it.
PROMPT_CHARS = 300
PROMPT_LINES = 4
# A version id prefix this long is unique in practice and accepted wherever a version is named.
VERSION_CHARS = 12


def format_duration(seconds: float | None) -> str:
    """``4.2 s``, ``3 min 05 s``, ``1 h 02 min``; ``-`` when unknown."""
    if seconds is None or seconds < 0:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_usage(usage: Mapping[str, Any] | None) -> str:
    """``4 turns · 5,400 in / 240 out tokens · $0.0198`` from a usage dict (``run.usage``).

    Only what the agent reported: a local command reports no tokens or cost, and zeros would
    read as "free" rather than "not counted". Cached input shows as ``(+N cache)``.
    """
    if not usage:
        return ""
    parts = []
    turns = usage.get("num_turns")
    if isinstance(turns, int) and turns > 0:
        parts.append(f"{turns} turn{'s' if turns != 1 else ''}")
    tokens_in, tokens_out = usage.get("input_tokens") or 0, usage.get("output_tokens") or 0
    cache = (usage.get("cache_read_input_tokens") or 0) + (
        usage.get("cache_creation_input_tokens") or 0
    )
    if tokens_in or tokens_out or cache:
        cached = f" (+{cache:,} cache)" if cache else ""
        parts.append(f"{tokens_in:,} in{cached} / {tokens_out:,} out tokens")
    cost = usage.get("total_cost_usd")
    if isinstance(cost, int | float) and cost > 0:
        parts.append(f"${cost:.4f}")
    return " · ".join(parts)


#: The note on every card of a run no sandbox held (and said once per kernel by the magics).
UNSANDBOXED = "agents run unsandboxed"


def unsandboxed(sandbox: str | None) -> bool:
    """True when ``sandbox`` (a run's, or the server's ``/health`` one) isolates nothing."""
    return sandbox in ("process", "none")


def _time(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _duration(run: Any) -> str | None:
    ms = getattr(run, "execution_time_ms", None)
    if ms is not None:
        return format_duration(ms / 1000)
    started, completed = getattr(run, "started_at", None), getattr(run, "completed_at", None)
    if started is None:
        return None
    seconds = ((completed or datetime.now(UTC)) - started).total_seconds()
    return format_duration(seconds) + ("" if completed else " so far")


def _short(version: str | None) -> str:
    return version[:VERSION_CHARS] if version else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _excerpt(prompt: str) -> str:
    """The prompt's first lines, as written (a program keeps its shape), clipped."""
    lines = [line.rstrip() for line in prompt.strip("\n").splitlines()]
    short = _clip("\n".join(lines[:PROMPT_LINES]), PROMPT_CHARS)
    return short + " …" if len(lines) > PROMPT_LINES and not short.endswith("…") else short


def _facts(run: Any, sandbox: str | None = None) -> list[tuple[str, str, str]]:
    """(label, short text, full text) for each fact the run has, in display order.

    ``sandbox``: the server's, for runs whose detail does not say their own."""
    facts: list[tuple[str, str, str]] = []

    def add(label: str, value: Any, full: Any = None) -> None:
        if value not in (None, "", {}):
            facts.append((label, str(value), str(full if full is not None else value)))

    agent = getattr(run, "agent_name", None) or getattr(run, "agent_id", None)
    version = getattr(run, "agent_version", None)
    add("agent", f"{agent} ({version})" if agent and version else agent)
    prompt = getattr(run, "prompt", None)
    if prompt:
        add("prompt", _excerpt(prompt), prompt)
    add("created", _time(getattr(run, "created_at", None)))
    add("started", _time(getattr(run, "started_at", None)))
    add("completed", _time(getattr(run, "completed_at", None)))
    add("duration", _duration(run))
    add("usage", format_usage(getattr(run, "usage", None)))
    if unsandboxed(getattr(run, "sandbox", None) or sandbox):
        add("sandbox", f"none: {UNSANDBOXED}")
    add("error", getattr(run, "error", None))
    add("session", getattr(run, "session_id", None))
    add("checkpoint", getattr(run, "checkpoint_id", None))
    artifact = getattr(run, "artifact_name", None)
    if artifact:
        art_version = getattr(run, "artifact_version", None)
        add("artifact", f"{artifact}@{_short(art_version)}" if art_version else artifact,
            f"{artifact}@{art_version}" if art_version else artifact)
    volumes = getattr(run, "volumes", None) or {}
    if volumes:
        add("volumes", ", ".join(f"{k}@{_short(v)}" for k, v in volumes.items()),
            ", ".join(f"{k}@{v}" for k, v in volumes.items()))
    return facts


def run_text(run: Any, sandbox: str | None = None) -> str:
    """The run as aligned plain text, for terminals, logs and text-only notebook frontends;
    ``sandbox`` as for :func:`run_html`.

        >>> print(run_text(run))  # doctest: +SKIP
        Run run_1a2b… · completed
          agent      echo
          duration   1.2 s
    """
    lines = [f"Run {run.id} · {run.status}"]
    for label, short, _ in _facts(run, sandbox):
        short = short.replace("\n", "\n" + " " * 13)  # a prompt's or error's next lines
        lines.append(f"  {label:<10} {short}")
    return "\n".join(lines)


def run_html(run: Any, sandbox: str | None = None) -> str:
    """The run as a small HTML card, coloured by status; every value is escaped.

    ``sandbox``: the server's (``/health``), said on the card when the run's detail does not
    say its own and agents run unsandboxed there."""
    esc = html.escape
    status = str(run.status)
    color = STATUS_CSS.get(status, _OTHER_COLOR)
    rows = []
    for label, short, full in _facts(run, sandbox):
        style = "padding:1px 12px 1px 0;text-align:left;vertical-align:top"
        value_style = style + ";white-space:pre-wrap"
        if label in ("error", "sandbox"):
            value_style += f";color:{STATUS_CSS['failed']}"
        title = f' title="{esc(full)}"' if full != short else ""
        rows.append(
            f'<tr><th style="{style};font-weight:600;color:{DIM_COLOR}">{esc(label)}</th>'
            f'<td style="{value_style}"{title}>{esc(short)}</td></tr>'
        )
    return (
        # "$0.0198" next to another "$" would be typeset as maths: MathJax skips these classes
        f'<div class="vm0-run {NO_MATH}" style="border:1px solid rgba(128,128,128,.35);'
        f"border-left:4px solid {color};border-radius:4px;padding:6px 10px;margin:2px 0;"
        f'max-width:60em;font-size:13px">'
        f'<div style="margin-bottom:4px"><span style="background:{color};color:{_ON_COLOR};'
        f'border-radius:3px;padding:1px 7px;font-weight:600">{esc(status)}</span> '
        f"<code>{esc(str(run.id))}</code></div>"
        f'<table style="border-collapse:collapse;margin:0">{"".join(rows)}</table></div>'
    )
