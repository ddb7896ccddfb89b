"""Where the tests find the real Claude Code CLI, and why they skip without it.

``make test`` installs ``@anthropic-ai/claude-code`` once into :data:`CACHE` with npm and points
``$VM0_TEST_CLAUDE`` at it. Without that variable the tests look in :data:`CACHE`, then for
``claude`` on the PATH. The path is read when this module is imported (the test session's
fixtures clear every ``VM0_*`` variable later).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CACHE = Path.home() / ".cache" / "vm0-notebook-test" / "claude-code"
VARIABLE = "VM0_TEST_CLAUDE"


def _candidates() -> list[str]:
    found = [os.environ.get(VARIABLE, ""), str(CACHE / "node_modules" / ".bin" / "claude")]
    # Should npm have skipped the wrapper's postinstall, the platform package's binary works.
    found += sorted(str(p) for p in CACHE.glob("node_modules/@anthropic-ai/claude-code-*/claude"))
    found.append(shutil.which("claude") or "")
    return [c for c in found if c]


def _find() -> tuple[str | None, str]:
    tried = []
    for candidate in _candidates():
        try:
            done = subprocess.run([candidate, "--version"], capture_output=True, text=True,
                                  timeout=30, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            tried.append(f"{candidate}: {exc}")
            continue
        if done.returncode == 0 and "Claude Code" in done.stdout:
            return candidate, done.stdout.strip()
        tried.append(f"{candidate}: exit {done.returncode}")
    where = "; ".join(tried) or "nothing found"
    return None, (f"Claude Code CLI not installed ({where}): `make test` installs it with npm "
                  f"into {CACHE}, or set ${VARIABLE} to a claude executable")


# The path as found (for npm, its symlink: the server must follow it itself).
EXECUTABLE, VERSION_OR_REASON = _find()

needs_claude = pytest.mark.skipif(EXECUTABLE is None, reason=VERSION_OR_REASON)
