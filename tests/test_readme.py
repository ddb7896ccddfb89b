"""README.md is the manual: every command, option and name it mentions exists.

Magic commands and their options against ``%vm0?``'s text (each command's own help),
``vm0-local`` subcommands and options against the console script's ``--help``, ``make``
targets against the Makefile, ``%config VM0Magics.NAME`` against the traitlets, and
``vm0.NAME(`` against the package's public names.
"""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import vm0_notebook
from vm0_notebook.notebook.magics import _COMMANDS, VM0Magics, _command_help

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z-]*")


def _logical_lines(text: str) -> list[str]:
    """Inline code spans, and lines of fenced blocks with their indented continuations."""
    lines = re.findall(r"(?<!`)`([^`\n]+)`(?!`)", text)
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            if line[:1].isspace() and lines and line.strip().startswith("["):
                lines[-1] += " " + line.strip()  # a synopsis continued on the next line
            else:
                lines.append(line)
    return lines


def _magic_uses() -> list[tuple[str, set[str]]]:
    """(command, options named with it) for each ``%vm0 CMD`` / ``%%vm0 CMD`` in the README."""
    uses = []
    for line in _logical_lines(README):
        for segment in re.split(r"%%?vm0 ", line)[1:]:
            segment = re.split(r"\s{3,}|#", segment)[0]  # the next command on the line, a comment
            names = re.match(r"([a-z]+)((?:\s*\|\s*[a-z]+)*)", segment)
            if not names:
                continue
            words = [names.group(1), *re.findall(r"[a-z]+", names.group(2))]
            options = set(OPTION.findall(segment))
            uses.append((words[0], options))
            uses.extend((word, set()) for word in words[1:])
    return uses


def _magic_options() -> list[tuple[str, list[str]]]:
    """Each command the README names, with every option it names for it (sorted: the same
    test ids in every xdist worker)."""
    named: dict[str, set[str]] = {}
    for command, options in _magic_uses():
        named.setdefault(command, set()).update(options)
    return sorted((command, sorted(options)) for command, options in named.items())


def test_the_readme_names_magic_commands() -> None:
    named = {name for name, _ in _magic_uses()}
    assert {"run", "attach", "runs", "logs", "config", "mount", "push"} <= named


@pytest.mark.parametrize("command,options", _magic_options(), ids=[c for c, _ in _magic_options()])
def test_each_magic_and_option_exists(command: str, options: list[str]) -> None:
    if command in ("status", "start", "stop", "clear", "volume", "artifact"):
        return  # arguments of `local`, `cache`, `mount` (checked as their commands' words)
    assert command in _COMMANDS, f"%vm0 {command} is not a command"
    help_text = _command_help(command, _COMMANDS[command])
    assert help_text in (VM0Magics.vm0.__doc__ or "")  # shown by %vm0?
    for option in options:
        assert option in help_text, f"%vm0 {command} has no {option}"


@cache
def _cli_help(sub: str) -> str:
    script = Path(sys.executable).with_name("vm0-local")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "vm0_notebook.local"]
    done = subprocess.run([*argv, sub, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_each_vm0_local_command_and_option_exists() -> None:
    uses = [line.strip() for line in _logical_lines(README)
            if line.strip().startswith("vm0-local ")]
    assert any(line.startswith("vm0-local serve") for line in uses)
    for line in uses:
        sub = line.split()[1]
        for option in OPTION.findall(line.split("#")[0]):
            assert option in _cli_help(sub), f"vm0-local {sub} has no {option}"


def test_make_targets_config_options_and_public_names_exist() -> None:
    makefile = (ROOT / "Makefile").read_text()
    commands = [line.strip() for line in _logical_lines(README)]
    targets = {line.split()[1] for line in commands if re.match(r"make [a-z]", line)}
    assert {"demo", "test", "bench"} <= targets
    for target in targets:
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"no make {target}"
    traits = set(VM0Magics.class_traits(config=True))
    for name in set(re.findall(r"VM0Magics\.([a-z_]+)", README)):
        assert name in traits, f"no %config VM0Magics.{name}"
    for name in set(re.findall(r"\bvm0\.([A-Za-z_][A-Za-z0-9_]*)", README)):
        if name not in ("ai",):  # vm0.ai, the company's site
            assert hasattr(vm0_notebook, name), f"no vm0.{name}"
