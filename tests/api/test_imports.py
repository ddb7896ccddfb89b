"""The client imports no notebook or data-frame machinery at module level (it loads on first use).

import-linter cannot say this: it counts imports inside functions too, and those are the point.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("IPython", "ipywidgets", "pandas", "matplotlib")

_PROBE = """
import json, pkgutil, sys
import vm0_notebook.api as api
names = [m.name for m in pkgutil.walk_packages(api.__path__, api.__name__ + ".")]
for name in names:
    __import__(name)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r})
print(json.dumps({{"modules": names, "heavy": heavy}}))
"""


def test_importing_every_api_module_loads_no_notebook_or_dataframe_library() -> None:
    # A fresh interpreter: this test process has pandas and friends loaded already.
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=set(HEAVY))],
        capture_output=True, text=True, timeout=60, check=True,
    )
    found = json.loads(done.stdout)
    assert "vm0_notebook.api.client" in found["modules"]  # the walk did reach the submodules
    assert found["heavy"] == []
