"""Two widgets for working with runs without writing code: a launcher and a runs browser.

    %vm0 launcher        # a form: agent, prompt, volumes, artifact, variables -> a live run
    %vm0 browser         # recent runs: filter, page, select one to see its card and output

or from Python::

    from vm0_notebook.notebook.widgets import RunLauncher, RunsBrowser
    launcher = RunLauncher()     # vm0_notebook.Client() unless a client is given
    launcher                     # pick, type, Launch; then launcher.run is the Run
    browser = RunsBrowser()
    browser                      # select a run; browser.selected is that Run

Everything shown passes through a :class:`~vm0_notebook.notebook.masking.SecretMasker`.
ipywidgets is imported when a widget is built, not when this package is.
"""

from .browser import RunsBrowser
from .launcher import RunLauncher, parse_variables, read_secrets
from .panel import Panel, display_bundle, show_in, widget_masker

__all__ = [
    "Panel",
    "RunLauncher",
    "RunsBrowser",
    "display_bundle",
    "parse_variables",
    "read_secrets",
    "show_in",
    "widget_masker",
]
