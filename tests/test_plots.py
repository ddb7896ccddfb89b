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
from vm0_notebook.api.run import Run
from vm0_notebook.cards import STATUS_COLORS

# the shared module_client fixture
pytest_plugins = ["tests.frames_support"]

matplotlib.use("Agg")
PNG = b"\x89PNG\r\n\x1a\n"
# Set to a folder to keep the rendered figures for a look.
KEEP = os.environ.get("VM0_TEST_FIGURES")

BUSY = "import time\nend = time.time() + {s}\nwhile time.time() < end:\n    sum(range(10_000))\n"


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
    assert all(label.endswith(" · completed") for label in labels)
    # the legend of three long run ids fits in the saved figure, not cut at its edges
    three = vm0.compare_metrics([*busy_runs, busy_runs[0]])
    png(three, "compare-three")
    legend = three.legends[0].get_window_extent()
    assert three.bbox.x0 <= legend.x0 and legend.x1 <= three.bbox.x1
    assert three.bbox.y0 <= legend.y0
    # each run over its own start: both begin near zero
    assert all(line.get_xdata()[0] < 5 for line in cpu.lines)
    assert texts(vm0.compare_metrics([])) == ["no runs", "no runs"]
    none_yet = busy_runs[0].metrics().iloc[:0]
    fig = vm0.compare_metrics(busy_runs, [none_yet, none_yet])
    png(fig, "compare-empty")
    assert texts(fig) == ["no samples yet", "no samples yet"]
    assert all(t.get_text().endswith("(no samples)") for t in fig.legends[0].get_texts())


def test_plot_runs_colours_durations_by_status(module_client, busy_runs) -> None:
    failed = module_client.runs.create(agent="python", prompt="raise SystemExit(3)")
    failed.wait(timeout=60)
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


def test_runs_of_an_async_client_pass_their_frames(busy_runs, local_server) -> None:
    import asyncio

    from vm0_notebook import AsyncClient

    async def go() -> tuple[Figure, Figure]:
        async with AsyncClient(api_url=local_server.url, api_key=local_server.token) as aclient:
            runs = [await aclient.runs.get(run.id) for run in busy_runs]
            with pytest.raises(TypeError, match=r"cannot await an AsyncClient's run\.metrics\(\)"
                               r".*plot_metrics\(run, await run\.metrics\(\)\)"):
                plots.plot_metrics(runs[0])
            with pytest.raises(TypeError, match=r"compare_metrics\(runs, \[await run\.metrics"):
                vm0.compare_metrics(runs)
            samples = [await run.metrics() for run in runs]
            with pytest.raises(ValueError, match="2 runs but 1 frames"):
                vm0.compare_metrics(runs, samples[:1])
            return plots.plot_metrics(runs[0], samples[0]), vm0.compare_metrics(runs, samples)

    one, several = asyncio.run(go())
    assert len(one.axes[0].lines) == 1
    assert len(several.axes[0].lines) == len(busy_runs)


def test_the_time_axis_covers_the_run_in_a_readable_unit(busy_runs) -> None:
    run = busy_runs[0]
    frame = run.metrics()
    run_s = (run.completed_at - run.started_at).total_seconds()
    fig = plots.plot_metrics(run, frame)
    cpu, memory = fig.axes
    assert memory.get_xlim()[1] >= run_s  # up to the run's end, not only its last sample
    assert cpu.get_ylim()[1] >= frame["cpu_percent"].max()  # limits set after drawing
    # the same samples spread over 20 minutes read in minutes
    stretched = frame.set_axis(frame.index[0] + (frame.index - frame.index[0]) * 480)
    fig = plots.plot_metrics(run, stretched)
    cpu, memory = fig.axes
    png(fig, "metrics-minutes")
    assert memory.get_xlabel() == "minutes since start"
    minutes = (stretched.index[-1] - pd.Timestamp(run.started_at)).total_seconds() / 60
    assert cpu.lines[0].get_xdata()[-1] == pytest.approx(minutes)


def test_plot_runs_of_long_runs_reads_in_minutes(module_client, busy_runs) -> None:
    df = module_client.runs.list().to_pandas()
    df["duration"] = df["duration"] * 600  # seconds become ten-minute runs
    fig = vm0.plot_runs(df)
    (ax,) = fig.axes
    assert ax.get_ylabel() == "duration (min)"
    longest = df["duration"].max().total_seconds() / 60
    assert max(c.get_offsets()[:, 1].max() for c in ax.collections) == pytest.approx(longest)
