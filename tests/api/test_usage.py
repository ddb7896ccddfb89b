"""``usage_from_result``: one dict of what a run used, from its agent's result event."""

from __future__ import annotations

import json

import pytest

from tests.sample_agents import CLAUDE_STREAM
from vm0_notebook.api.usage import usage_from_result


def test_a_real_claude_code_result() -> None:
    result = json.loads(CLAUDE_STREAM.read_text().splitlines()[-1])
    assert usage_from_result(result) == {
        "duration_ms": 446, "num_turns": 4, "total_cost_usd": pytest.approx(0.0198),
        "input_tokens": 5400, "output_tokens": 240, "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "models": {"claude-sonnet-4-5": {
            "input_tokens": 5400, "output_tokens": 240, "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0, "cost_usd": pytest.approx(0.0198)}},
    }


def test_per_model_figures_fill_what_usage_lacks() -> None:
    usage = usage_from_result({"type": "result", "modelUsage": {
        "a": {"inputTokens": 10, "outputTokens": 1, "costUSD": 0.5},
        "b": {"inputTokens": 5, "cacheReadInputTokens": 7, "costUSD": 0.25},
        "junk": "not figures"}})
    assert usage is not None
    assert (usage["input_tokens"], usage["output_tokens"], usage["cache_read_input_tokens"]) == (
        15, 1, 7)
    assert usage["total_cost_usd"] == 0.75 and set(usage["models"]) == {"a", "b"}


@pytest.mark.parametrize("event", [{"type": "assistant"}, {}, {"usage": {"input_tokens": 1}}])
def test_other_events_have_none(event: dict) -> None:
    assert usage_from_result(event) is None


def test_odd_values_are_left_out() -> None:
    usage = usage_from_result({"type": "result", "duration_ms": "soon", "num_turns": True,
                               "total_cost_usd": -1, "usage": {"input_tokens": "many"}})
    assert usage is not None
    assert (usage["duration_ms"], usage["num_turns"], usage["total_cost_usd"]) == (None,) * 3
    assert usage["input_tokens"] == 0


def test_turns_count_only_when_a_model_reported_usage_or_a_cost() -> None:
    # the stand-in result of a plain command carries a turn count, but no conversation
    command = {"type": "result", "subtype": "success", "duration_ms": 40, "num_turns": 1}
    assert usage_from_result(command)["num_turns"] is None
    modelled = {**command, "usage": {"input_tokens": 5, "output_tokens": 1}}
    assert usage_from_result(modelled)["num_turns"] == 1
    assert usage_from_result({**command, "total_cost_usd": 0.0})["num_turns"] == 1
