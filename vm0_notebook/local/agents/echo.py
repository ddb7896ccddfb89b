"""The echo agent under its old module path.

A data folder made before the layered layout stores the built-in ``echo`` agent with the command
``python -m vm0_notebook.local.agents.echo``; this keeps that agent running.
"""

from vm0_notebook.local.runtime.frameworks.echo import main

if __name__ == "__main__":
    raise SystemExit(main())
