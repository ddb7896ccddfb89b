"""Figures of real runs, rendered to PNG with Agg: metrics, runs over time, comparisons."""

from __future__ import annotations

import io
import os

import matplotlib
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

import vm0_notebook as vm0
from vm0_notebook import frames, plots
from vm0_notebook.api.models import Run
from vm0_notebook.cards import STATUS_COLORS

matplotlib.use("Agg")
PNG = b"\x89PNG\r\n\x1a\n"
# Set to a folder to keep the rendered figures for a look.
KEEP = os.environ.get("VM0_TEST_FIGURES")

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    sum(range(10_000))\n"


@pytest.fixture(scope="module")
def module_client(local_server):
    """A client for this module's shared runs (the ``client`` fixture is made per test)."""
    from vm0_notebook import Client

    with Client(api_url=local_server.url, api_key=local_server.token) as client:
        yield client


@pytest.fixture(scope="module")
def busy_runs(module_client):
    runs = [module_client.runs.create(agent="python", prompt=BUSY.format(s=s)) for s in (2.5, 1.5)]
    return [run.wait(timeout=60) for run in runs]


def png(fig: Figure, name: str) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    if KEEP:
        with open(os.path.join(KEEP, name + ".png"), "wb") as out:
            out.write(data)
    assert data.startswith(PNG) and len(data) > 5000
    return data


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_plot_metrics_draws_cpu_and_memory_over_seconds_since_start(busy_runs) -> None:
    run = busy_runs[0]
    fig = run.plot_metrics()
    assert isinstance(fig, Figure)
    png(fig, "metrics")
    cpu, memory = fig.axes
    assert cpu.get_shared_x_axes().joined(cpu, memory)
    assert "CPU" in cpu.get_ylabel() and "memory" in memory.get_ylabel()
    assert memory.get_xlabel() == "seconds since start"
    title = fig.get_suptitle()
    assert run.id in title and "python" in title and "completed" in title
    x = cpu.lines[0].get_xdata()
    frame = run.metrics()
    assert len(x) == len(frame) >= 2
    assert 0 <= x[0] < 5 and x[-1] - x[0] >= 1  # seconds, not timestamps
    (used,) = [line for line in memory.lines if line.get_label().startswith("used")]
    assert list(used.get_ydata()) == frame["memory_used_mb"].tolist()


def test_a_run_without_samples_says_so(busy_runs) -> None:
    run = busy_runs[0]
    empty = run.metrics().iloc[:0]
    fig = plots.plot_metrics(run, empty)
    png(fig, "metrics-empty")
    assert texts(fig) == ["no samples yet", "no samples yet"]
    assert all(not ax.lines for ax in fig.axes)


def test_figures_live_outside_pyplot_and_show_once_as_png(busy_runs) -> None:
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = plots.plot_metrics(busy_runs[1])
    assert plt.get_fignums() == before  # pyplot would show it a second time in a notebook
    assert fig._repr_png_().startswith(PNG)


def test_compare_metrics_overlays_each_run(busy_runs) -> None:
    fig = vm0.compare_metrics(busy_runs)
    png(fig, "compare")
    cpu, memory = fig.axes
    assert len(cpu.lines) == len(memory.lines) == 2
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert [run.id in label for run, label in zip(busy_runs, labels, strict=True)] == [True, True]
    # each run over its own start: both begin near zero
    assert all(line.get_xdata()[0] < 5 for line in cpu.lines)
    assert texts(vm0.compare_metrics([])) == ["no runs", "no runs"]


def test_plot_runs_colours_durations_by_status(module_client, busy_runs, client) -> None:
    failed = client.runs.create(agent="python", prompt="raise SystemExit(3)").wait(timeout=60)
    assert failed.status == "failed"
    df = module_client.runs.list().to_pandas()
    fig = vm0.plot_runs(df)
    png(fig, "runs")
    (ax,) = fig.axes
    colours = {to_hex(c.get_facecolor()[0]): c.get_offsets().shape[0] for c in ax.collections}
    finished = df[df["duration"].notna()]
    assert sum(colours.values()) == len(finished)
    assert colours[STATUS_COLORS["completed"]] == (finished["status"] == "completed").sum()
    assert STATUS_COLORS["failed"] in colours
    assert ax.get_ylabel() == "duration (s)"
    assert ax.get_title().startswith(f"{len(df)} runs")


def test_plot_runs_of_no_runs_and_of_a_wrong_frame() -> None:
    fig = plots.plot_runs(frames.records_frame(Run, []))
    png(fig, "runs-empty")
    assert texts(fig) == ["no runs"]
    with pytest.raises(ValueError, match="missing column"):
        plots.plot_runs(pd.DataFrame({"status": ["completed"]}))


def test_lazy_names_resolve_to_the_plots_module() -> None:
    assert vm0.plot_runs is plots.plot_runs
    assert vm0.compare_metrics is plots.compare_metrics


def test_runs_of_an_async_client_pass_their_frame(busy_runs, local_server) -> None:
    import asyncio

    from vm0_notebook import AsyncClient

    async def go() -> Figure:
        async with AsyncClient(api_url=local_server.url, api_key=local_server.token) as aclient:
            run = await aclient.runs.get(busy_runs[0].id)
            with pytest.raises(TypeError, match="belongs to an AsyncClient"):
                plots.plot_metrics(run)
            return plots.plot_metrics(run, await run.metrics())

    fig = asyncio.run(go())
    assert len(fig.axes[0].lines) == 1
