"""The magic line and the cell body, turned into API arguments.

    >>> split_line('run echo "hello world" --var MODE=fast')
    ['run', 'echo', 'hello world', '--var', 'MODE=fast']
    >>> parse_pairs(["MODE=fast"], "--var")
    {'MODE': 'fast'}
    >>> parse_ref("input-data@3f2a9c1d", "--volume")
    ('input-data', '3f2a9c1d')
    >>> fill("Summarise {name} in {{braces}}", {"name": "penguins"})
    'Summarise penguins in {braces}'
    >>> filled_line([("name", "penguins")])
    "filled: name='penguins'"

Every function raises :class:`~.errors.MagicError` with one line saying what to fix.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Iterable, Mapping
from typing import Any

from ..api.errors import MagicError

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_line(line: str) -> list[str]:
    """Split a magic line into words as a shell would (quotes group words and are removed)."""
    try:
        return shlex.split(line)
    except ValueError as exc:  # "No closing quotation"
        raise MagicError(f"cannot read the magic line: {str(exc).lower()}") from None


def parse_pairs(items: Iterable[str] | None, option: str) -> dict[str, str]:
    """``["K=V", ...]`` -> ``{K: V}``; ``K`` must be a valid environment variable name."""
    pairs: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not _ENV_NAME.match(key):
            raise MagicError(f"bad {option} {item!r}: write {option} NAME=VALUE")
        pairs[key] = value
    return pairs


def check_env_name(name: str, option: str) -> str:
    """``name`` if it can be an environment variable name, else a MagicError."""
    if not _ENV_NAME.match(name):
        raise MagicError(f"bad {option} {name!r}: give the NAME of an environment variable")
    return name


def parse_ref(ref: str, option: str) -> tuple[str, str | None]:
    """``NAME[@VERSION]`` -> ``(NAME, VERSION or None)``."""
    name, sep, version = ref.partition("@")
    if not name or (sep and not version):
        raise MagicError(f"bad {option} {ref!r}: write {option} NAME or NAME@VERSION")
    return name, version or None


def fill(
    template: str, namespace: Mapping[str, Any], filled: list[tuple[str, Any]] | None = None
) -> str:
    """Fill each ``{python expression}`` of ``template`` (a prompt or a word of the magic line)
    from ``namespace``; ``{{`` and ``}}`` stay literal braces, as in an f-string. Each
    expression and its value are appended to ``filled``, when given.
    """
    if "{" not in template and "}" not in template:
        return template
    out: list[str] = []
    try:
        for literal, field, spec, conversion in string.Formatter().parse(template):
            out.append(literal)
            if field is None:
                continue
            expression = f"{field}:{spec}" if spec else field  # a slice, as in IPython
            value = eval(expression, dict(namespace))  # the user's own notebook namespace
            if filled is not None:
                filled.append((expression, value))
            out.append(_CONVERSIONS.get(conversion or "s", str)(value))
    except Exception as exc:
        raise MagicError(
            f"cannot fill in {{...}}: {type(exc).__name__}: {exc}. Write {{{{ and }}}} for "
            "literal braces, or add --raw to send the prompt as it is"
        ) from None
    return "".join(out)


_CONVERSIONS = {"s": str, "r": repr, "a": ascii}
#: Longest value shown in the ``filled:`` line; the prompt itself has all of it.
FILLED_VALUE_CHARS = 60


def filled_line(filled: list[tuple[str, Any]]) -> str:
    """``filled: dataset_name='penguins.csv', n=3``: what ``fill`` put into a prompt."""
    parts = []
    for expression, value in filled:
        text = repr(value)
        if len(text) > FILLED_VALUE_CHARS:
            text = text[: FILLED_VALUE_CHARS - 1] + "…"
        parts.append(f"{expression}={text}")
    return "filled: " + ", ".join(parts)
