"""What a run used, read from its agent's ``result`` event: turns, tokens, cost, duration.

    >>> usage_from_result({"type": "result", "num_turns": 2, "total_cost_usd": 0.01,
    ...     "usage": {"input_tokens": 900, "output_tokens": 40}})["input_tokens"]
    900

``run.usage``, the live view's closing line and the Run card all read this one dict, so they
carry the same figures. Claude Code reports tokens twice: ``usage`` (snake_case, the whole run)
and ``modelUsage`` (camelCase, per model, with each model's cost); ``usage`` wins where both
say, ``modelUsage`` fills what ``usage`` lacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["TOKEN_KEYS", "usage_from_result"]

#: The token counts a usage dict carries (Anthropic's names), each an int (0 when not reported).
TOKEN_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
)
# modelUsage's names for the same counts
_MODEL_KEYS = {
    "inputTokens": "input_tokens",
    "outputTokens": "output_tokens",
    "cacheReadInputTokens": "cache_read_input_tokens",
    "cacheCreationInputTokens": "cache_creation_input_tokens",
}


def _count(value: Any) -> int | None:
    # bool is an int to Python, never a count
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    return None


def _models(model_usage: Any) -> dict[str, dict[str, Any]]:
    models: dict[str, dict[str, Any]] = {}
    if not isinstance(model_usage, Mapping):
        return models
    for name, figures in model_usage.items():
        if not isinstance(figures, Mapping):
            continue
        entry: dict[str, Any] = {}
        for key, ours in _MODEL_KEYS.items():
            count = _count(figures.get(key, figures.get(ours)))
            if count is not None:
                entry[ours] = count
        cost = _number(figures.get("costUSD", figures.get("cost_usd")))
        if cost is not None:
            entry["cost_usd"] = cost
        models[str(name)] = entry
    return models


def usage_from_result(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The usage of a ``result`` stream-JSON object; None for any other object.

    Keys: ``duration_ms`` (the agent's own measure; the run's is ``run.execution_time_ms``),
    ``num_turns`` (None unless a model reported usage or a cost), ``total_cost_usd`` (None when
    not reported), the :data:`TOKEN_KEYS` (0 when not reported) and ``models`` (per model: its
    tokens and ``cost_usd``; empty if not given).
    """
    if not isinstance(event, Mapping) or event.get("type") != "result":
        return None
    reported = event.get("usage")
    from_model = isinstance(reported, Mapping)
    reported = reported if from_model else {}
    models = _models(event.get("modelUsage", event.get("model_usage")))
    cost = _number(event.get("total_cost_usd"))
    usage: dict[str, Any] = {
        "duration_ms": _count(event.get("duration_ms")),
        # turns only from a model (usage or a cost reported): a command's output is not a
        # conversation, whatever turn count its stand-in result carries
        "num_turns": _count(event.get("num_turns")) if from_model or cost is not None else None,
        "total_cost_usd": cost,
    }
    for key in TOKEN_KEYS:
        count = _count(reported.get(key))
        if count is None:  # only per model: their sum
            count = sum(m.get(key, 0) for m in models.values())
        usage[key] = count
    if usage["total_cost_usd"] is None and any("cost_usd" in m for m in models.values()):
        usage["total_cost_usd"] = sum(m.get("cost_usd", 0.0) for m in models.values())
    usage["models"] = models
    return usage
