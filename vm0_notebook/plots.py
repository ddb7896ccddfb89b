"""Matplotlib figures of runs: one run's resources, several runs compared, run durations.

    run.plot_metrics()                               # CPU and memory of one run
    vm0.compare_metrics([run_a, run_b])              # several runs overlaid
    vm0.plot_runs(client.runs.list().to_pandas())    # durations over time, by status

Each function returns a :class:`matplotlib.figure.Figure` made without pyplot, so a notebook
shows it once (as the cell's value) rather than twice, and nothing is left open in pyplot's
figure registry. Save one with ``fig.savefig("run.png")``.

This module imports matplotlib; it is itself imported only when a plot is asked for.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from .cards import STATUS_COLORS

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from pandas import DataFrame

__all__ = ["NotebookFigure", "compare_metrics", "plot_metrics", "plot_runs"]


class NotebookFigure(Figure):
    """A Figure that a notebook shows as an image even if pyplot was never imported.

    IPython only learns to draw figures when pyplot sets up its inline backend; without that a
    bare Figure shows as ``<Figure size ...>``. Where IPython does know figures, its own
    formatter takes precedence, so the image still appears once.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png", bbox_inches="tight")
        return buf.getvalue()


_CPU = "#1f77b4"
_MEMORY = "#d62728"


def _figure(rows: int = 1, *, height: float = 4.0) -> tuple[Figure, list[Axes]]:
    fig = NotebookFigure(figsize=(8, height), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes,
            fontsize=12, color="0.45")
    ax.set_yticks([])
    ax.set_xticks([])


# (unit, seconds in it): spans up to 5 of a unit read in the one below (90 s, 40 min)
_UNITS = (("seconds", 1.0), ("minutes", 60.0), ("hours", 3600.0))
_SHORT = {"seconds": "s", "minutes": "min", "hours": "h"}


def _unit(span_s: float) -> tuple[str, float]:
    """The time unit that reads best for a span of ``span_s`` seconds."""
    name, size = _UNITS[0]
    for name_, size_ in _UNITS[1:]:
        if span_s >= 5 * size_:
            name, size = name_, size_
    return name, size


def _elapsed(frame: DataFrame, start: Any = None) -> Any:
    """The frame's timestamps as seconds since ``start`` (default: its first sample)."""
    if frame.empty:
        return frame.index.to_numpy(dtype=float)
    origin = _utc(start) if start is not None else frame.index[0]
    return (frame.index - origin).total_seconds().to_numpy()


def _utc(value: Any) -> Any:
    import pandas as pd

    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp


def _run_seconds(run: Any) -> float | None:
    """How long a finished run ran; None until it has both started and finished."""
    started, completed = getattr(run, "started_at", None), getattr(run, "completed_at", None)
    if started is None or completed is None:
        return None
    return max((_utc(completed) - _utc(started)).total_seconds(), 0.0)


def _metrics_axes(axes: list[Axes]) -> tuple[Axes, Axes]:
    cpu, memory = axes
    cpu.set_ylabel("CPU (%)")
    memory.set_ylabel("memory (MB)")
    memory.set_xlabel("seconds since start")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return cpu, memory


def _time_axis(axes: list[Axes], span_s: float) -> float:
    """Label the shared x axis in the unit that suits ``span_s``; return that unit's size."""
    name, size = _unit(span_s)
    axes[-1].set_xlabel(f"{name} since start")
    return size


def _limits(axes: list[Axes], first_s: float, span_s: float, size: float) -> None:
    """Once drawn: x from the start (or an earlier sample) to the run's end, y from zero."""
    axes[-1].set_xlim(min(first_s, 0.0) / size, max(span_s, 1.0) / size * 1.02)
    for ax in axes:
        ax.set_ylim(bottom=0)


def _metrics_of(run: Any, call: str) -> DataFrame:
    """``run.metrics()``; a run of an AsyncClient must be awaited, which a plot cannot do."""
    if getattr(getattr(run, "_client", None), "is_sync", True) is False:
        fix = {
            "plot_metrics": "vm0_notebook.plots.plot_metrics(run, await run.metrics())",
            "compare_metrics": "vm0_notebook.compare_metrics(runs, "
                               "[await run.metrics() for run in runs])",
        }[call]
        raise TypeError(
            f"{call} cannot await an AsyncClient's run.metrics(): fetch the samples first "
            f"and pass them: {fix}"
        )
    return run.metrics()


def _run_label(run: Any) -> str:
    return " · ".join(str(p) for p in (run.agent_name or run.agent_id, run.id) if p)


def plot_metrics(run: Any, frame: DataFrame | None = None) -> Figure:
    """CPU and memory of one run over the time since it started, on aligned axes.

    ``frame`` is ``run.metrics()`` when not given (pass it to plot what you already fetched,
    or with an ``AsyncClient``). The time axis runs to the run's end, in seconds, minutes or
    hours as its length suits. The title names the agent, the run and its status; a run with
    no samples yet says so instead of drawing empty axes.

        fig = run.plot_metrics()
        fig.savefig("metrics.png")
    """
    if frame is None:
        frame = _metrics_of(run, "plot_metrics")
    fig, axes = _figure(2, height=5.0)
    cpu, memory = _metrics_axes(axes)
    fig.suptitle(f"{_run_label(run)} · {run.status}")
    if frame.empty:
        _empty(cpu, "no samples yet")
        _empty(memory, "no samples yet")
        return fig
    x = _elapsed(frame, getattr(run, "started_at", None))
    # the axis covers the whole run, not only up to the last sample
    span = max(_run_seconds(run) or 0.0, float(x.max()))
    size = _time_axis(axes, span)
    x = x / size
    marker = "." if len(frame) < 30 else None  # a few samples read better as points
    cpu.plot(x, frame["cpu_percent"], color=_CPU, marker=marker)
    used, total = frame["memory_used_mb"], frame["memory_total_mb"]
    label = "used"
    if total.notna().any():
        # a total far above what was used would flatten the used line: name it instead
        if total.max() <= 3 * max(used.fillna(0).max(), 1):
            memory.plot(x, total, color=_MEMORY, linestyle="--", alpha=0.5, label="total")
        else:
            label = f"used (of {total.max():,.0f} MB)"
    memory.plot(x, used, color=_MEMORY, label=label, marker=marker)
    memory.legend(loc="best", fontsize="small")
    _limits(axes, float(x.min()) * size, span, size)
    return fig


def compare_metrics(runs: Iterable[Any], frames: Iterable[DataFrame] | None = None) -> Figure:
    """CPU and memory of several runs overlaid, each over the time since its own start.

    Each run's ``metrics()`` is fetched here; with an ``AsyncClient`` fetch them first and pass
    them as ``frames``, in the same order as ``runs``.

        vm0.compare_metrics([run_small, run_large])
        vm0.compare_metrics(runs, [await run.metrics() for run in runs])   # AsyncClient
    """
    runs = list(runs)
    given = None if frames is None else list(frames)
    if given is not None and len(given) != len(runs):
        raise ValueError(f"compare_metrics got {len(runs)} runs but {len(given)} frames")
    samples = given if given is not None else [_metrics_of(run, "compare_metrics")
                                               for run in runs]
    fig, axes = _figure(2, height=5.0 + 0.22 * len(runs))
    cpu, memory = _metrics_axes(axes)
    fig.suptitle(f"{len(runs)} run{'s' if len(runs) != 1 else ''} compared")
    if not runs:
        _empty(cpu, "no runs")
        _empty(memory, "no runs")
        return fig
    starts = [_elapsed(frame, getattr(run, "started_at", None)) for run, frame in
              zip(runs, samples, strict=True)]
    span = max([_run_seconds(run) or 0.0 for run in runs]
               + [float(x.max()) for x in starts if len(x)])
    size = _time_axis(axes, span)
    for run, frame, x in zip(runs, samples, starts, strict=True):
        label = f"{_run_label(run)} · {run.status}" + ("" if len(frame) else " (no samples)")
        marker = "." if len(frame) < 30 else None
        (line,) = cpu.plot(x / size, frame["cpu_percent"], label=label, marker=marker)
        memory.plot(x / size, frame["memory_used_mb"], color=line.get_color(), marker=marker)
    if not any(len(frame) for frame in samples):
        for ax in axes:
            _empty(ax, "no samples yet")
    else:
        _limits(axes, min(float(x.min()) for x in starts if len(x)), span, size)
    # one run per legend row (the figure grows to fit): two long run ids side by side may not
    fig.legend(loc="outside lower center", fontsize="small")
    return fig


_RUN_COLUMNS = ("status", "duration", "created_at")


def plot_runs(frame: DataFrame) -> Figure:
    """Run durations over time, one point per run, coloured by status.

    ``frame`` is a runs frame (``client.runs.list().to_pandas()``); runs still going have no
    duration yet and are counted in the title rather than drawn.

        vm0.plot_runs(client.runs.list(agent_id=agent.id).to_pandas())
    """
    import matplotlib.dates as mdates

    missing = [c for c in _RUN_COLUMNS if c not in getattr(frame, "columns", ())]
    if missing:
        raise ValueError(
            "plot_runs needs a runs frame such as client.runs.list().to_pandas(); "
            f"missing column(s): {', '.join(missing)}"
        )
    fig, (ax,) = _figure(1)
    ax.set_ylabel("duration (s)")
    ax.set_xlabel("started (UTC)")
    ax.grid(True, alpha=0.3)
    when = frame["started_at"].fillna(frame["created_at"]) if "started_at" in frame else frame[
        "created_at"]
    done = frame["duration"].notna() & when.notna()
    waiting = int((~done).sum())
    title = f"{len(frame)} run{'s' if len(frame) != 1 else ''}"
    ax.set_title(title + (f" ({waiting} without a duration yet)" if waiting else ""))
    if not done.any():
        _empty(ax, "no finished runs" if len(frame) else "no runs")
        return fig
    x = when[done].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    y = frame.loc[done, "duration"].dt.total_seconds().to_numpy()
    unit, size = _unit(float(y.max()))
    y = y / size
    status = frame.loc[done, "status"].astype(str).to_numpy()
    for name in dict.fromkeys([*STATUS_COLORS, *sorted(set(status))]):
        picked = status == name
        if picked.any():
            ax.scatter(x[picked], y[picked], label=f"{name} ({int(picked.sum())})", s=28,
                       color=STATUS_COLORS.get(name, "0.4"), alpha=0.85)
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_ylabel(f"duration ({_SHORT[unit]})")
    ax.set_ylim(bottom=-0.04 * max(y.max(), 1))  # runs of about 0 s stay visible
    # beside the axes, where it never hides a run
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1), title="status")
    return fig
