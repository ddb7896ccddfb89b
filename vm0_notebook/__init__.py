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

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:  # pragma: no cover
    from .api.client import AsyncClient, Client
    from .api.errors import *  # noqa: F403
    from .api.models import Run
    from .plots import compare_metrics, plot_runs

# name -> module that defines it; resolved on first attribute access (PEP 562).
_LAZY = {
    "Client": ".api.client",
    "AsyncClient": ".api.client",
    "Run": ".api.models",
    "plot_runs": ".plots",
    "compare_metrics": ".plots",
}
_ERRORS_MODULE = ".api.errors"

__all__ = ["AsyncClient", "Client", "Run", "__version__", "compare_metrics", "plot_runs"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        errors = importlib.import_module(_ERRORS_MODULE, __name__)
        if name in getattr(errors, "__all__", ()):
            return getattr(errors, name)
        raise AttributeError(f"module 'vm0_notebook' has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%vm0`` and ``%%vm0`` (``%load_ext vm0_notebook``)."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove what ``%load_ext vm0_notebook`` registered (``%unload_ext vm0_notebook``)."""
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)
