"""Agents and their versions in the local server's database.

An agent is a name plus a current version; every config change makes a new version numbered
from 1. The local server reads ``config`` as the recipe for a local process (see
``vm0-api.md``, "Local agents")::

    agents = AgentStore(db)
    row = agents.create("echo", {"command": ["{python}", "-m", "..."]}, "Streams the prompt")
    agents.find("echo")              # by id or by name; 404 ApiError otherwise
    agents.version(row, "v1")        # "latest", a version id or v<number>
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from vm0_notebook.contract import now_iso
from vm0_notebook.local.errors import ApiError, check_name, conflict, invalid, missing, not_found
from vm0_notebook.local.store.db import Database, Where
from vm0_notebook.local.store.ids import new_id

SCHEMA = """
CREATE TABLE IF NOT EXISTS agents (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    current_version_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_versions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    version_number INTEGER NOT NULL,
    config TEXT NOT NULL,
    message TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (agent_id, version_number)
);
-- Built-in agents created once: one the user deleted stays deleted.
CREATE TABLE IF NOT EXISTS builtin_agents (name TEXT PRIMARY KEY);
"""

# Bounds that keep the limits computed from a config (rlimits, timers) within what the OS
# takes: without them "inf" or 1e308 failed at create (500) or at every run.
MAX_MEMORY = 2**50
MAX_TIMEOUT_S = 30 * 24 * 3600
MAX_CPU = 1024
_MEMORY_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
                 "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_memory(value: Any) -> int | None:
    """``"1Gi"``, ``"512Mi"``, ``"2G"`` or a number of bytes -> bytes; None when absent.

    >>> parse_memory("1Gi")
    1073741824
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_MEMORY:
        return value
    if isinstance(value, str):
        text = value.strip().lower().removesuffix("b")
        number = text.rstrip("kmgti")
        unit = text[len(number):]
        try:
            amount = float(number)
        except ValueError:
            amount = -1.0
        if 0 < amount <= MAX_MEMORY and unit in _MEMORY_UNITS:  # inf and nan fail this too
            size = int(amount * _MEMORY_UNITS[unit])
            if size <= MAX_MEMORY:
                return size
    raise ValueError(f"invalid memory size {str(value)[:40]!r} (use e.g. '512Mi' or '1Gi'; "
                     "at most 1 PiB)")


def _positive(value: Any, most: float) -> bool:
    """A number (not a bool) above 0 and at most ``most``: inf and nan are not."""
    return (isinstance(value, int | float) and not isinstance(value, bool)
            and 0 < value <= most)


def check_config(config: Any) -> dict[str, Any]:
    """The agent config, with the fields the local server interprets checked for type.

    Other fields are kept as they are: ``config`` is free-form on the platform.
    """
    if config is None:
        raise missing("config")
    if not isinstance(config, dict):
        raise invalid("'config' must be an object", "config")
    command = config.get("command")
    if command is not None and (
        not isinstance(command, list) or not command
        or not all(isinstance(a, str) and "\0" not in a for a in command)
    ):
        raise invalid("'config.command' must be a non-empty array of strings", "config.command")
    timeout = config.get("timeout_s")
    if timeout is not None and not _positive(timeout, MAX_TIMEOUT_S):
        raise invalid("'config.timeout_s' must be a positive number of seconds, at most "
                      f"{MAX_TIMEOUT_S} (30 days)", "config.timeout_s")
    network = config.get("network")
    if network is not None and not isinstance(network, bool):
        raise invalid("'config.network' must be a boolean", "config.network")
    resources = config.get("resources")
    if resources is not None:
        if not isinstance(resources, dict):
            raise invalid("'config.resources' must be an object", "config.resources")
        try:
            parse_memory(resources.get("memory"))
        except ValueError as exc:
            raise invalid(f"'config.resources.memory': {exc}", "config.resources.memory") from None
        cpu = resources.get("cpu")
        if cpu is not None and not _positive(cpu, MAX_CPU):
            raise invalid(f"'config.resources.cpu' must be a positive number, at most {MAX_CPU}",
                          "config.resources.cpu")
    return config


def _canonical(config: dict[str, Any]) -> str:
    return json.dumps(config, sort_keys=True, separators=(",", ":"))


def agent_json(row: sqlite3.Row) -> dict[str, Any]:
    """An agent as lists show it."""
    return {
        "id": row["id"], "name": row["name"], "current_version_id": row["current_version_id"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def version_json(row: sqlite3.Row) -> dict[str, Any]:
    """An agent version row as the API shows it (without its config)."""
    return {
        "id": row["id"], "agent_id": row["agent_id"], "version_number": row["version_number"],
        "message": row["message"], "created_by": row["created_by"],
        "created_at": row["created_at"],
    }


class AgentStore:
    """Create, find, update and delete agents; resolve version references."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def list(self, *, name: str | None, after: int | None, limit: int) -> list[sqlite3.Row]:
        """Up to ``limit`` agents in the order they were made, after position ``after``."""
        where = Where()
        if name:
            where.add("name = ?", name)
        if after is not None:
            where.add("seq > ?", after)
        return self.db.all(f"SELECT * FROM agents WHERE {where} ORDER BY seq LIMIT ?",
                           (*where.params, limit))

    def versions(self, agent_id: str, *, after: int | None, limit: int) -> list[sqlite3.Row]:
        """Up to ``limit`` of the agent's versions, newest first, after number ``after``."""
        where = Where("agent_id = ?", agent_id)
        if after is not None:
            where.add("version_number < ?", after)
        return self.db.all(
            f"SELECT * FROM agent_versions WHERE {where} ORDER BY version_number DESC LIMIT ?",
            (*where.params, limit),
        )

    def version_by_id(self, version_id: str) -> sqlite3.Row | None:
        """The ``agent_versions`` row of that id (None once its agent is deleted)."""
        return self.db.one("SELECT * FROM agent_versions WHERE id = ?", (version_id,))

    def find(self, key: str, param: str | None = None) -> sqlite3.Row:
        """An agent by id or by name; 404 naming ``key`` otherwise."""
        row = self.db.one("SELECT * FROM agents WHERE id = ? OR name = ?", (key, key))
        if row is None:
            raise not_found("agent", key, param)
        return row

    def detail(self, row: sqlite3.Row) -> dict[str, Any]:
        """An agent with its description, config and current version."""
        version = self.version_by_id(row["current_version_id"])
        return {
            **agent_json(row),
            "description": row["description"],
            "config": json.loads(version["config"]) if version else {},
            "current_version": version_json(version) if version else None,
        }

    def create(
        self, name: str, config: dict[str, Any], description: str | None = None,
        created_by: str | None = None,
    ) -> sqlite3.Row:
        """A new agent with version 1; 409 when the name is taken."""
        check_name(name)
        check_config(config)
        agent_id, version_id, now = new_id("agt"), new_id("ver"), now_iso()
        try:
            with self.db.tx() as c:
                c.execute(
                    "INSERT INTO agents (id, name, description, current_version_id, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (agent_id, name, description, version_id, now, now),
                )
                c.execute(
                    "INSERT INTO agent_versions VALUES (?, ?, 1, ?, ?, ?, ?)",
                    (version_id, agent_id, _canonical(config), "Created", created_by, now),
                )
        except sqlite3.IntegrityError:
            raise conflict(f"An agent named '{name}' already exists", "name") from None
        return self.find(agent_id)

    def update(
        self, row: sqlite3.Row, config: dict[str, Any], description: str | None = None,
        message: str | None = None,
    ) -> sqlite3.Row:
        """A new current version when ``config`` differs from the current one."""
        check_config(config)
        text, now = _canonical(config), now_iso()
        with self.db.tx() as c:
            current = c.execute("SELECT config FROM agent_versions WHERE id = ?",
                                (row["current_version_id"],)).fetchone()
            if description is not None:
                c.execute("UPDATE agents SET description = ?, updated_at = ? WHERE id = ?",
                          (description, now, row["id"]))
            if current is None or current["config"] != text:
                number = c.execute(
                    "SELECT COALESCE(MAX(version_number), 0) + 1 FROM agent_versions"
                    " WHERE agent_id = ?", (row["id"],),
                ).fetchone()[0]
                version_id = new_id("ver")
                c.execute("INSERT INTO agent_versions VALUES (?, ?, ?, ?, ?, NULL, ?)",
                          (version_id, row["id"], number, text, message, now))
                c.execute("UPDATE agents SET current_version_id = ?, updated_at = ? WHERE id = ?",
                          (version_id, now, row["id"]))
        return self.find(row["id"])

    def delete(self, row: sqlite3.Row) -> None:
        """Delete the agent's row in one transaction."""
        with self.db.tx() as c:
            c.execute("DELETE FROM agents WHERE id = ?", (row["id"],))

    def version(self, agent: sqlite3.Row, ref: str | None, param: str) -> sqlite3.Row:
        """The version ``ref`` names: ``latest`` (or None), a version id, or ``v<number>``."""
        if ref is None or ref == "latest":
            ref = agent["current_version_id"]
        if not isinstance(ref, str):
            raise invalid(f"'{param}' must be a string", param)
        if ref.startswith("v") and ref[1:].isdigit():
            row = self.db.one(
                "SELECT * FROM agent_versions WHERE agent_id = ? AND version_number = ?",
                (agent["id"], int(ref[1:])),
            )
        else:
            row = self.db.one("SELECT * FROM agent_versions WHERE agent_id = ? AND id = ?",
                              (agent["id"], ref))
        if row is None:
            raise not_found(f"version of agent '{agent['name']}'", ref, param)
        return row

    def ensure_builtins(self, builtins: dict[str, dict[str, Any]]) -> None:
        """Create each built-in agent the first time this data folder sees it (a user's own
        agent of the same name is left alone; a deleted built-in is not brought back)."""
        for name, spec in builtins.items():
            if self.db.one("SELECT 1 FROM builtin_agents WHERE name = ?", (name,)):
                continue
            try:
                self.create(name, spec["config"], spec.get("description"), "vm0-local")
            except ApiError as exc:
                if exc.status != 409:  # 409: an agent of that name exists already
                    raise
            with self.db.tx() as c:
                c.execute("INSERT OR IGNORE INTO builtin_agents VALUES (?)", (name,))
