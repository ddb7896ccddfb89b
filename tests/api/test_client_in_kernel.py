"""The client inside a running Jupyter kernel, executed top to bottom the way papermill runs a
notebook (nbclient, a real IPython kernel), and a plain import that stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

CELLS = [
    # sync calls while the kernel's own event loop runs
    """
import sys
import vm0_notebook as vm0
client = vm0.Client()   # VM0_API_URL / VM0_API_KEY from the kernel's environment
run = client.runs.create(agent="echo", prompt="hello from a kernel")
run.wait(timeout=60)
events = list(client.runs.events(run.id))
entries = list(client.runs.logs(run.id, type="agent"))
assert run.status == "completed", run.status
assert events[0].event == "status" and events[-1].event == "complete", events[-1]
assert [e.sequence for e in events if e.event == "output"] == [e.sequence for e in entries]
print("sync:", run.output)
""",
    # the same from a run handle, streaming
    """
streamed = client.runs.create(agent="echo", prompt="streamed in a kernel")
kinds = [e.event for e in streamed.stream()]
print("stream:", kinds[0], kinds[-1], streamed.output)
""",
    # top-level await with the async client, on the kernel's loop
    """
async with vm0.AsyncClient() as aclient:
    arun = await aclient.runs.create(agent="echo", prompt="awaited in a kernel")
    await arun.wait(timeout=60)
    aevents = [e async for e in aclient.runs.events(arun.id)]
    aentries = await aclient.runs.logs(arun.id, type="agent").to_list()
assert aevents[-1].event == "complete" and aentries
print("async:", arun.status, arun.output)
""",
    # nothing patched the kernel's loop to get there
    """
print("nest_asyncio:", "nest_asyncio" in sys.modules)
""",
]


@pytest.mark.slow
def test_client_in_a_kernel_run_like_papermill(local_server: Any, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source.strip()) for source in CELLS]
    env = {k: v for k, v in os.environ.items() if not k.startswith("VM0_")}
    env.update(VM0_API_URL=local_server.url, VM0_API_KEY=local_server.token,
               VM0_LOCAL_DIR=str(tmp_path / "unused-local"), VM0_CACHE_DIR=str(tmp_path))
    executor = NotebookClient(nb, timeout=120, kernel_name="python3",
                              resources={"metadata": {"path": str(tmp_path)}})
    executor.execute(env=env)  # raises CellExecutionError if any cell fails
    printed = [
        "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream").strip()
        for cell in nb.cells
    ]
    assert printed == [
        "sync: hello from a kernel",
        "stream: status complete streamed in a kernel",
        "async: completed awaited in a kernel",
        "nest_asyncio: False",
    ]
    saved = nbformat.writes(nb)
    assert local_server.token not in saved
    assert not (tmp_path / "unused-local" / "server.json").exists()  # env was used, not local


def test_import_is_light_and_patches_no_loop() -> None:
    """``import vm0_notebook`` (and touching its API names) loads nothing heavy, no server
    stack, and leaves asyncio alone; a fresh interpreter, so nothing was imported before."""
    code = (
        "import asyncio, sys\n"
        "loop_cls = asyncio.new_event_loop().__class__\n"
        "policy = asyncio.get_event_loop_policy()\n"
        "import vm0_notebook as vm0\n"
        "vm0.Client; vm0.AsyncClient; vm0.Run; vm0.NotFoundError\n"
        "vm0.Client(api_key='vm0_live_x').runs\n"
        "heavy = [m for m in ('pandas', 'matplotlib', 'ipywidgets', 'starlette', 'uvicorn',"
        " 'sse_starlette', 'nest_asyncio', 'IPython', 'numpy', 'tqdm') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'vm0_notebook.local.web.app' not in sys.modules\n"
        "assert asyncio.get_event_loop_policy() is policy\n"
        "loop = asyncio.new_event_loop()\n"
        "assert loop.__class__ is loop_cls and not hasattr(loop, '_nest_patched')\n"
        "assert asyncio.run.__module__ == 'asyncio.runners'\n"
        "loop.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
