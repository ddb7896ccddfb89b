"""The model settings of the built-in ``claude`` agent, read from an environment."""

from __future__ import annotations

from vm0_notebook.api.model_env import model_configured, model_options, with_model

KEYED = {"ANTHROPIC_API_KEY": "sk-ant-x", "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000",
         "PATH": "/usr/bin"}


def test_nothing_set_is_no_model() -> None:
    assert not model_configured({"PATH": "/usr/bin", "ANTHROPIC_API_KEY": ""})
    assert model_options({"ANTHROPIC_MODEL": "claude-x"}) == {
        "variables": {"ANTHROPIC_MODEL": "claude-x"}}
    assert not model_configured({"ANTHROPIC_MODEL": "claude-x"})  # a name alone reaches nothing


def test_a_key_or_an_endpoint_is_a_model() -> None:
    assert model_configured({"ANTHROPIC_API_KEY": "k"})
    assert model_configured({"ANTHROPIC_AUTH_TOKEN": "k"})
    assert model_configured({"ANTHROPIC_BASE_URL": "http://127.0.0.1:1"})
    assert model_options(KEYED) == {"secrets": {"ANTHROPIC_API_KEY": "sk-ant-x"},
                                    "variables": {"ANTHROPIC_BASE_URL": "http://127.0.0.1:4000"}}


def test_claude_requests_gain_the_settings_and_keep_their_own() -> None:
    request = {"agent": "claude", "prompt": "hi", "variables": {"ANTHROPIC_BASE_URL": "http://b"}}
    merged = with_model(request, KEYED)
    assert merged == {"agent": "claude", "prompt": "hi",
                      "secrets": {"ANTHROPIC_API_KEY": "sk-ant-x"},
                      "variables": {"ANTHROPIC_BASE_URL": "http://b"}}
    assert request == {"agent": "claude", "prompt": "hi",
                       "variables": {"ANTHROPIC_BASE_URL": "http://b"}}  # not changed in place


def test_claude_without_a_model_is_skipped_other_agents_never() -> None:
    assert with_model({"agent": "claude", "prompt": "hi"}, {}) is None
    given = {"agent": "claude", "prompt": "hi", "secrets": {"ANTHROPIC_API_KEY": "k"}}
    assert with_model(given, {}) == given
    echo = {"agent": "echo", "prompt": "hi"}
    assert with_model(echo, {}) is echo
