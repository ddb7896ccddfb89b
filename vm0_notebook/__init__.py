"""Run VM0 agents from Jupyter.

    %load_ext vm0_notebook

    %%vm0 run echo -o run
    Summarise {dataset_name}.

or from Python::

    import vm0_notebook as vm0
    client = vm0.Client()          # VM0_API_KEY / VM0_API_URL, else the embedded local server
    run = client.runs.create(agent="echo", prompt="hello").wait()
    run.logs()                     # a pandas DataFrame

Importing this package is cheap: the client, pandas, matplotlib and the widgets load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._lazy import lazy_exports
from ._version import __version__
from .api.errors import __all__ as _ERRORS  # stdlib only: cheap

if TYPE_CHECKING:  # pragma: no cover
    from .api.client import AsyncClient, Client
    from .api.errors import *  # noqa: F403
    from .api.model_env import NO_MODEL_NOTE, model_configured, model_options
    from .api.run import Run
    from .notebook.widgets import RunLauncher, RunsBrowser
    from .plots import compare_metrics, plot_runs

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "Client": ".api.client",
    "AsyncClient": ".api.client",
    "Run": ".api.run",
    "plot_runs": ".plots",
    "compare_metrics": ".plots",
    "model_configured": ".api.model_env",
    "model_options": ".api.model_env",
    "NO_MODEL_NOTE": ".api.model_env",
    "RunLauncher": ".notebook.widgets",
    "RunsBrowser": ".notebook.widgets",
    **dict.fromkeys(_ERRORS, ".api.errors"),
}

__all__ = [
    "NO_MODEL_NOTE", "AsyncClient", "Client", "Run", "RunLauncher", "RunsBrowser",
    "__version__", "compare_metrics", "model_configured", "model_options", "plot_runs",
    *_ERRORS,
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, __all__)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%vm0`` and ``%%vm0`` (``%load_ext vm0_notebook``)."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove what ``%load_ext vm0_notebook`` registered (``%unload_ext vm0_notebook``)."""
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)
