"""The model the built-in ``claude`` agent talks to, as the kernel's environment names it.

Claude Code reads its model settings from its environment, as it does in a terminal: a key
(``ANTHROPIC_API_KEY``, or ``ANTHROPIC_AUTH_TOKEN`` for a gateway that wants a bearer token), an
endpoint (``ANTHROPIC_BASE_URL``: a gateway or a local model server) and a model name
(``ANTHROPIC_MODEL``). A run's process sees only what the run is given, so these travel from the
notebook's environment with the run: the keys as run secrets (masked everywhere, never stored),
the others as run variables::

    import vm0_notebook as vm0
    if vm0.model_configured():
        results = client.map("claude", questions, **vm0.model_options())
    else:
        print(vm0.NO_MODEL_NOTE)

``%%vm0 run claude`` does the same by itself (:func:`with_model`): it passes these settings on,
or, with none set, prints :data:`NO_MODEL_NOTE` and skips the run, so a notebook written for a
model still runs to its end without one. The Python API never reads them on its own: a library
call sends exactly what it is given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

CLAUDE_AGENT = "claude"
SECRET_NAMES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
VARIABLE_NAMES = ("ANTHROPIC_BASE_URL", "ANTHROPIC_MODEL")
NO_MODEL_NOTE = (
    "claude skipped: no model configured. Set ANTHROPIC_API_KEY (or ANTHROPIC_BASE_URL for a "
    "gateway or a local model server) in the kernel's environment and run the cell again."
)


def _set(env: Mapping[str, str] | None, names: tuple[str, ...]) -> dict[str, str]:
    env = os.environ if env is None else env
    return {name: env[name] for name in names if env.get(name)}


def model_configured(env: Mapping[str, str] | None = None) -> bool:
    """Whether ``env`` (default: this process's environment) names a model key or endpoint."""
    return bool(_set(env, SECRET_NAMES) or _set(env, ("ANTHROPIC_BASE_URL",)))


def model_options(env: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """The run options that give a ``claude`` run the model ``env`` names:
    ``{"secrets": {...}, "variables": {...}}``, each only when it has something."""
    options = {"secrets": _set(env, SECRET_NAMES), "variables": _set(env, VARIABLE_NAMES)}
    return {key: value for key, value in options.items() if value}


def with_model(
    request: dict[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, Any] | None:
    """``request`` (keyword arguments of ``runs.create``) for the built-in ``claude`` agent,
    with the model settings of ``env`` added where the request names none of its own; None
    when neither the request nor ``env`` configures a model (the caller says
    :data:`NO_MODEL_NOTE` and skips). Requests for other agents come back unchanged."""
    if request.get("agent") != CLAUDE_AGENT:
        return request
    given = {**(request.get("secrets") or {}), **(request.get("variables") or {})}
    options = model_options(env)
    if not (model_configured(given) or options):
        return None
    merged = dict(request)
    for key, values in options.items():
        merged[key] = {**values, **(request.get(key) or {})}  # what the cell says wins
    return merged
