"""The built-in agents of the local server, created on its first start.

``BUILTIN_AGENTS`` maps a name to ``{"description": str, "config": {...}}`` in the local agent
config shape of vm0-api.md. In a ``command``, ``"{python}"`` stands for the server's own
interpreter; the host replaces it when it builds the run's spec.

- ``echo`` streams the prompt back as stream-JSON: an ``init`` event, a few ``assistant`` text
  chunks and a ``result`` (:mod:`vm0_notebook.local.runtime.frameworks.echo`).
- ``python`` runs the prompt as Python source, in the working folder.
- ``shell`` runs the prompt with bash, in the working folder.
- ``claude`` runs the Claude Code CLI through the ``claude-code`` framework
  (:mod:`vm0_notebook.local.runtime.frameworks.claude_code`).

A config that names a ``framework`` instead of a ``command`` is turned into the command by that
framework (:data:`FRAMEWORKS`) when a run starts.

    >>> sorted(BUILTIN_AGENTS)
    ['claude', 'echo', 'python', 'shell']
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from vm0_notebook.local.runtime.frameworks import claude_code
from vm0_notebook.local.runtime.spec import AgentCommand, ConfigProblem

PYTHON = "{python}"
# framework name -> its module: ``check(config)``, ``command(config, workdir) -> AgentCommand``
# and ``finish(workdir, secrets)`` (after the run, before its checkpoint)
FRAMEWORKS: dict[str, ModuleType] = {claude_code.NAME: claude_code}


def framework_of(config: Mapping[str, Any]) -> ModuleType | None:
    """The framework module ``config`` names (None for a plain ``command`` config); raises
    :class:`ConfigProblem` for an unknown one."""
    name = config.get("framework")
    if name is None:
        return None
    if name not in FRAMEWORKS:
        known = ", ".join(sorted(FRAMEWORKS))
        raise ConfigProblem(f"unknown framework {name!r} (known: {known})", "config.framework")
    return FRAMEWORKS[name]


def check_framework(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigProblem` when ``config`` names a framework it does not suit."""
    framework = framework_of(config)
    if framework is not None:
        framework.check(config)


def framework_command(config: Mapping[str, Any], workdir: Path) -> AgentCommand | None:
    """The command the config's framework builds for a run in ``workdir`` (blocking), or None
    for a config without a framework."""
    framework = framework_of(config)
    return None if framework is None else framework.command(config, workdir)


def framework_finish(config: Mapping[str, Any], workdir: Path, secrets: Iterable[str]) -> None:
    """Let the config's framework tidy the session folder after a run (blocking)."""
    framework = framework_of(config)
    if framework is not None:
        framework.finish(workdir, secrets)


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
    "claude": {
        "description": "Claude Code (the claude CLI): the model key as the run secret "
                       "ANTHROPIC_API_KEY, another model endpoint as ANTHROPIC_BASE_URL.",
        "config": {"framework": claude_code.NAME},
    },
}
