"""Reading the magic line and filling the prompt: good input works, bad input says what to fix."""

from __future__ import annotations

import pytest

from vm0_notebook.notebook.args import fill, parse_pairs, parse_ref, split_line
from vm0_notebook.notebook.errors import MagicError


def test_split_line_groups_quoted_words() -> None:
    assert split_line("run echo 'a b' --var X=\"c d\"") == ["run", "echo", "a b", "--var", "X=c d"]
    with pytest.raises(MagicError, match="no closing quotation"):
        split_line('run echo "open')


def test_pairs() -> None:
    assert parse_pairs(["A=1", "B=x=y", "C="], "--var") == {"A": "1", "B": "x=y", "C": ""}
    for bad in ("A", "=1", "1A=2", "A-B=1"):
        with pytest.raises(MagicError, match=r"bad --var .*: write --var NAME=VALUE"):
            parse_pairs([bad], "--var")


def test_refs() -> None:
    assert parse_ref("data", "--volume") == ("data", None)
    assert parse_ref("data@abcdef12", "--volume") == ("data", "abcdef12")
    for bad in ("@v1", "data@", ""):
        with pytest.raises(MagicError, match="write --volume NAME or NAME@VERSION"):
            parse_ref(bad, "--volume")


def test_fill_evaluates_expressions_and_keeps_double_braces() -> None:
    ns = {"name": "penguins", "rows": [1, 2, 3]}
    assert fill("{name}: {len(rows)} rows, {{literal}} {rows[1:]}", ns) == (
        "penguins: 3 rows, {literal} [2, 3]"
    )


@pytest.mark.parametrize("template", ["{missing}", "{1 +}", "a { b"])
def test_fill_errors_are_one_line(template: str) -> None:
    with pytest.raises(MagicError) as info:
        fill(template, {})
    message = str(info.value)
    assert "\n" not in message and "--raw" in message
