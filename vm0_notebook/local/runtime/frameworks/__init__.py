"""The built-in agents of the local server, created on its first start.

``BUILTIN_AGENTS`` maps a name to ``{"description": str, "config": {...}}`` in the local agent
config shape of vm0-api.md. In a ``command``, ``"{python}"`` stands for the server's own
interpreter; the host replaces it when it builds the run's spec.

- ``echo`` streams the prompt back as stream-JSON: an ``init`` event, a few ``assistant`` text
  chunks and a ``result`` (:mod:`vm0_notebook.local.runtime.frameworks.echo`).
- ``python`` runs the prompt as Python source, in the working folder.
- ``shell`` runs the prompt with bash, in the working folder.

    >>> sorted(BUILTIN_AGENTS)
    ['echo', 'python', 'shell']
"""

from __future__ import annotations

from typing import Any

PYTHON = "{python}"


def _builtin(
    description: str, command: list[str], memory: str, timeout_s: int, prompt: str = "text"
) -> dict[str, Any]:
    resources = {"memory": memory, "cpu": 1}
    config = {"command": command, "timeout_s": timeout_s, "resources": resources, "network": False,
              "prompt": prompt}  # "text" or "code": whether the notebook fills in {...}
    return {"description": description, "config": config}


BUILTIN_AGENTS: dict[str, dict[str, Any]] = {
    "echo": _builtin(
        "Streams the prompt back as stream-JSON events (init, text, result).",
        [PYTHON, "-m", "vm0_notebook.local.runtime.frameworks.echo"],
        memory="512Mi",
        timeout_s=60,
    ),
    "python": _builtin(
        "Runs the prompt as Python source; the working folder is the cwd.",
        # "-" reads the program from stdin, where the prompt arrives.
        [PYTHON, "-u", "-"],
        # An address-space limit: numpy and friends reserve far more than they touch.
        memory="4Gi",
        timeout_s=600,
        prompt="code",
    ),
    "shell": _builtin(
        "Runs the prompt with bash; the working folder is the cwd.",
        # eval rather than `bash -s`: a command reading stdin must not eat the script.
        ["bash", "-c", 'eval "$(cat)"'],
        memory="2Gi",
        timeout_s=600,
        prompt="code",
    ),
}
