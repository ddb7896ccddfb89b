"""The ``claude-code`` framework: an agent config -> the Claude Code CLI command for one run.

    {"framework": "claude-code", "executable": "/opt/claude/bin/claude",
     "model": "claude-sonnet-4-5", "instructions": "You are a careful data analyst.",
     "allowed_tools": ["Bash", "Read", "Write", "Edit"], "env": {"ANTHROPIC_BASE_URL": "..."},
     "network": true, "timeout_s": 1800, "resources": {"memory": "4Gi"}}

becomes ``claude -p --output-format stream-json --verbose --model claude-sonnet-4-5
--append-system-prompt "You are..." --session-id <uuid> --allowedTools Bash Read Write Edit``,
with the prompt on stdin. Every key is optional: the built-in agent ``claude`` is just
``{"framework": "claude-code"}``.

- The executable (default ``claude`` on the server's PATH) is resolved through npm's symlink,
  so the sandbox binds the real file read-only wherever it lives.
- The CLI's home is ``.claude-home/`` in the session folder: its settings and its conversation
  belong to the session, and travel in the session's checkpoints.
- Permissions come from ``--allowedTools`` only. ``--dangerously-skip-permissions`` is never
  used (Claude Code refuses it as root anyway).
- The model key reaches the process only through its environment, as the run secret
  ``ANTHROPIC_API_KEY``: an agent config is stored, so it may not hold one.
- What the agent printed lands in the CLI's conversation file; when the run ends, the run's
  secrets are masked in the CLI's own files, so neither the session folder nor its checkpoints
  keep a key the agent showed.
- The first run of a session starts the conversation with a session id chosen here and kept in
  ``.claude-home/vm0-claude-session``; later runs of the session, and runs resumed from one of
  its checkpoints, ``--resume`` it, so the model receives the earlier turns.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vm0_notebook.contract import SecretMasker
from vm0_notebook.local.runtime.spec import AgentCommand, ConfigProblem

NAME = "claude-code"
INSTALL = "npm install -g @anthropic-ai/claude-code"
DEFAULT_EXECUTABLE = "claude"
# Enough to read data, write and run code and report; a config lists its own to change it.
DEFAULT_TOOLS = ("Bash", "Read", "Write", "Edit", "NotebookEdit")
HOME = ".claude-home"
SESSION_FILE = "vm0-claude-session"
# The variables that carry a model key: they belong in run secrets, never in a stored config.
KEY_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")
# No auto-update, telemetry, error reports or other traffic beyond the model's own requests:
# a run must work offline against a local model server or a gateway.
QUIET_ENV = {"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
# Claude Code names a project's folder after its path: each character other than a letter or
# a digit becomes "-"; longer names are cut and hashed in a way we do not reproduce.
_PROJECT_NAME_MAX = 200
_KEYS = frozenset({"framework", "executable", "model", "instructions", "allowed_tools", "env",
                   "network", "timeout_s", "resources", "description", "prompt"})
# Each argument must stay under exec's 128 KiB limit for one string.
_MAX_ARG = 100_000


def check(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigProblem` for a key of ``config`` this framework cannot use."""
    unknown = sorted(set(config) - _KEYS)
    if "command" in config:
        raise ConfigProblem("a 'claude-code' agent runs the Claude Code CLI: leave out "
                            "'command' (set 'executable' to choose the CLI)", "config.command")
    if unknown:
        raise ConfigProblem(f"unknown key '{unknown[0]}' for framework 'claude-code' (known: "
                            f"{', '.join(sorted(_KEYS - {'framework'}))})", f"config.{unknown[0]}")
    for key in ("executable", "model", "instructions"):
        value = config.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()
                                  or "\0" in value or len(value) > _MAX_ARG):
            raise ConfigProblem(f"'config.{key}' must be a non-empty string", f"config.{key}")
    tools = config.get("allowed_tools")
    if tools is not None and (
        not isinstance(tools, list)
        or not all(isinstance(t, str) and t.strip() and not t.startswith("-") and "\0" not in t
                   for t in tools)
    ):
        raise ConfigProblem("'config.allowed_tools' must be a list of tool names such as "
                            '["Bash", "Read", "Write"]', "config.allowed_tools")
    env = config.get("env")
    if env is not None:
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and k and "=" not in k and "\0" not in k
            and isinstance(v, str) and "\0" not in v for k, v in env.items()
        ):
            raise ConfigProblem("'config.env' must map variable names to strings", "config.env")
        for name in KEY_VARIABLES:
            if name in env:
                raise ConfigProblem(
                    f"'config.env' may not hold {name}: an agent config is stored, a key is "
                    f"not. Pass it as a run secret (secrets={{'{name}': ...}})",
                    f"config.env.{name}")


def command(
    config: Mapping[str, Any], workdir: Path, path: str | None = None
) -> AgentCommand:
    """The CLI command for one run in the session folder ``workdir`` (blocking: it reads and
    writes the session's conversation pointer). ``path`` is where ``claude`` is looked up (the
    server's PATH). Raises :class:`ConfigProblem` when the CLI cannot be found."""
    executable = resolve_executable(config.get("executable"), path)
    home = _own_home(workdir)
    argv = [str(executable), "-p", "--output-format", "stream-json", "--verbose"]
    if config.get("model"):
        argv += ["--model", config["model"]]
    if config.get("instructions"):
        argv += ["--append-system-prompt", config["instructions"]]
    argv += conversation_args(home, workdir)
    tools = config.get("allowed_tools")
    tools = DEFAULT_TOOLS if tools is None else tools
    if tools:
        argv += ["--allowedTools", *tools]
    env = {"HOME": str(home), **QUIET_ENV, **(config.get("env") or {})}
    return AgentCommand(argv=tuple(argv), env=env, binds=_binds(executable),
                        network=bool(config.get("network", True)))


def finish(workdir: Path, secrets: Iterable[str]) -> int:
    """Mask ``secrets`` in the CLI's own files in its home in ``workdir`` (``.claude/`` and
    ``.claude.json``: its conversations and settings; blocking). Returns how many files
    changed. Each is replaced whole, so none is left half-written."""
    masker = SecretMasker(secrets)
    home = workdir / HOME
    if not masker or home.is_symlink() or not home.is_dir():
        return 0
    state = home / ".claude"
    files = [*home.glob(".claude.json*")]
    if state.is_dir() and not state.is_symlink():
        files += state.rglob("*")
    changed = 0
    for path in files:
        if path.is_symlink() or not path.is_file():
            continue
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        masked = masker.mask(text)
        if masked != text:
            staging = path.with_name(path.name + ".vm0-masking")
            staging.write_text(masked, encoding="utf-8")
            os.replace(staging, path)
            changed += 1
    return changed


def resolve_executable(name: str | None, path: str | None = None) -> Path:
    """The real file behind ``name`` (a path, or a command looked up on ``path``), following
    symbolic links such as the one npm installs; :class:`ConfigProblem` when there is none."""
    name = name or DEFAULT_EXECUTABLE
    if os.sep in name:
        found = name if os.path.isfile(name) and os.access(name, os.X_OK) else None
        where = f"'{name}' is not an executable file"
    else:
        found = shutil.which(name, path=path if path is not None else os.environ.get("PATH"))
        where = f"'{name}' is not on the local server's PATH"
    if found is None:
        raise ConfigProblem(
            f"Claude Code's CLI was not found ({where}): install it with `{INSTALL}`, "
            "or set 'executable' in the agent config to the CLI's path", "config.executable")
    return Path(os.path.realpath(found))


def conversation_args(home: Path, workdir: Path) -> list[str]:
    """``--resume <id>`` when the session's conversation exists, else ``--session-id <id>``.

    A checkpoint restored into a new session folder holds the conversation under the old
    folder's project name; it is moved to the name Claude Code looks under for this one.
    The agent owns this folder between runs, and the server works in it with its own rights:
    no symbolic link in it is followed (one where a folder should be means no conversation)."""
    pointer = home / SESSION_FILE
    session = _read_session(pointer)
    if session is not None:
        transcript = _find_transcript(home, session)
        if transcript is not None:
            here = _project_dir(home, workdir)
            if here is None:
                return ["--resume", str(transcript)]
            if transcript.parent != here:
                _move_project(transcript.parent, here)
            return ["--resume", session]
    session = session or str(uuid.uuid4())
    _write_new(pointer, session + "\n")
    return ["--session-id", session]


def project_name(folder: Path | str) -> str:
    """The name Claude Code gives the project folder of the working folder ``folder``."""
    return re.sub(r"[^a-zA-Z0-9]", "-", os.path.realpath(folder))


def _project_dir(home: Path, workdir: Path) -> Path | None:
    name = project_name(workdir)
    return home / ".claude" / "projects" / name if len(name) <= _PROJECT_NAME_MAX else None


def _own_home(workdir: Path) -> Path:
    """The CLI's home in ``workdir``, a real folder (whatever the agent left in its place)."""
    home = workdir / HOME
    if home.is_symlink() or (home.exists() and not home.is_dir()):
        home.unlink()
    home.mkdir(exist_ok=True)
    return home


def _real_folder(path: Path, home: Path) -> bool:
    """Whether every step from ``home`` down to ``path`` is a folder, not a link."""
    steps = [path, *path.parents]
    return all(step.is_dir() and not step.is_symlink() for step in steps[: steps.index(home)])


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` afresh, never through a link the agent put there."""
    if path.is_symlink() or path.is_dir():
        path.unlink() if path.is_symlink() else shutil.rmtree(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _read_session(pointer: Path) -> str | None:
    if pointer.is_symlink():
        return None
    try:
        text = pointer.read_text().strip()
    except OSError:
        return None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _find_transcript(home: Path, session: str) -> Path | None:
    projects = home / ".claude" / "projects"
    if not _real_folder(projects, home):
        return None
    found = [p for p in sorted(projects.glob(f"*/{session}.jsonl"))
             if _real_folder(p.parent, home) and p.is_file() and not p.is_symlink()]
    return found[0] if found else None


def _move_project(old: Path, new: Path) -> None:
    """Move everything in the project folder ``old`` into ``new`` (kept where both hold it);
    both are in the same checked ``projects`` folder."""
    if new.is_symlink() or (new.exists() and not new.is_dir()):
        new.unlink()
    new.mkdir(exist_ok=True)
    for item in old.iterdir():
        target = new / item.name
        if not target.exists() and not target.is_symlink():
            item.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def _binds(executable: Path) -> tuple[Path, ...]:
    """What the sandbox binds read-only for the CLI: the native binary itself; for a script
    (an older, JavaScript CLI), the package folder around it too."""
    try:
        with executable.open("rb") as f:
            script = f.read(2) == b"#!"
    except OSError:
        script = False
    if not script:
        return (executable,)
    for folder in executable.parents:
        if (folder / "package.json").is_file():
            return (executable, folder)
    return (executable, executable.parent)
