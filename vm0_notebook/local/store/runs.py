"""Runs, sessions, checkpoints and idempotency keys in the local server's database.

A run belongs to a session: a working folder kept between the session's runs. A new run gets a
new session unless it continues one (``session_id``); resuming a checkpoint starts a new session
whose folder is restored from the checkpoint's snapshot. A session runs one run at a time: a
second run on a busy session is refused with ``invalid_state`` rather than queued behind it, so a
caller never waits on a run it cannot see.

Secrets are never stored here: they live in the run host's memory until the run ends.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from vm0_notebook.contract import ACTIVE_STATUSES, OUTPUT_TRUNCATED, now_iso, parse_iso
from vm0_notebook.local.errors import invalid, not_found
from vm0_notebook.local.store.db import Database, Where

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    agent_id TEXT NOT NULL,
    agent_name TEXT NOT NULL,
    agent_version_id TEXT NOT NULL,
    status TEXT NOT NULL,
    prompt TEXT NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    error TEXT,
    output TEXT,
    output_truncated INTEGER NOT NULL DEFAULT 0,
    exit_code INTEGER,
    sandbox TEXT,
    session_id TEXT NOT NULL,
    checkpoint_id TEXT,
    resumed_from TEXT,
    artifact_name TEXT,
    artifact_version TEXT,
    volumes TEXT NOT NULL,
    variables TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status);
CREATE INDEX IF NOT EXISTS runs_by_session ON runs (session_id, status);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL,
    source_checkpoint_id TEXT,
    artifact_name TEXT,
    volumes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS checkpoints (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    agent_id TEXT NOT NULL,
    agent_version_id TEXT NOT NULL,
    tree_id TEXT NOT NULL,
    artifact_name TEXT,
    volumes TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    created REAL NOT NULL,
    body_hash TEXT
);
"""

IDEMPOTENCY_TTL_S = 24 * 3600
INTERRUPTED = "The local server stopped before this run finished"


def run_json(row: sqlite3.Row) -> dict[str, Any]:
    """A run detail; lists show the same (the extra fields cost nothing locally)."""
    return {
        "id": row["id"], "agent_id": row["agent_id"], "agent_name": row["agent_name"],
        "status": row["status"], "prompt": row["prompt"], "created_at": row["created_at"],
        "started_at": row["started_at"], "completed_at": row["completed_at"],
        "error": row["error"], "execution_time_ms": _elapsed_ms(row),
        "checkpoint_id": row["checkpoint_id"], "session_id": row["session_id"],
        "artifact_name": row["artifact_name"], "artifact_version": row["artifact_version"],
        "volumes": json.loads(row["volumes"]), "agent_version_id": row["agent_version_id"],
        "output": row["output"], OUTPUT_TRUNCATED: bool(row["output_truncated"]),
        "sandbox": row["sandbox"],
    }


def _elapsed_ms(row: sqlite3.Row) -> int | None:
    if not row["started_at"] or not row["completed_at"]:
        return None
    start, end = (parse_iso(row[k]) for k in ("started_at", "completed_at"))
    return max(int((end - start).total_seconds() * 1000), 0)


def _same_request(key: str, stored_hash: str | None, body_hash: str) -> None:
    """A key comes back only with the body it was first used with (as Stripe answers)."""
    if stored_hash is not None and stored_hash != body_hash:
        raise invalid(
            f"Idempotency-Key {key[:100]!r} was already used with a different request body. "
            "Send the same body to get the run it created, or use a new key for a new run",
            "Idempotency-Key", "idempotency_key_reused",
        )


class RunStore:
    """Reads and writes of runs and what hangs off them."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Data folders made by older versions get the newer columns.
        if "output_truncated" not in db.columns("runs"):
            with db.tx() as c:
                c.execute("ALTER TABLE runs ADD COLUMN output_truncated INTEGER NOT NULL"
                          " DEFAULT 0")
        if "body_hash" not in db.columns("idempotency_keys"):  # NULL: matches any body
            with db.tx() as c:
                c.execute("ALTER TABLE idempotency_keys ADD COLUMN body_hash TEXT")

    def list(
        self, *, status: str | None, agent_id: str | None, since: str | None,
        after: int | None, limit: int,
    ) -> list[sqlite3.Row]:
        """Up to ``limit`` runs, newest first, after position ``after``; ``agent_id`` may be
        the agent's name too."""
        where = Where()
        if status:
            where.add("status = ?", status)
        if agent_id:
            where.add("(agent_id = ? OR agent_name = ?)", agent_id, agent_id)
        if since:
            where.add("created_at >= ?", since)
        if after is not None:
            where.add("seq < ?", after)
        return self.db.all(f"SELECT * FROM runs WHERE {where} ORDER BY seq DESC LIMIT ?",
                           (*where.params, limit))

    def get(self, run_id: str, param: str | None = None) -> sqlite3.Row:
        """The run's row; raises ``not_found`` (naming ``param``) when there is none."""
        row = self.db.one("SELECT * FROM runs WHERE id = ?", (run_id,))
        if row is None:
            raise not_found("run", run_id, param)
        return row

    def require(self, run_id: str) -> None:
        """Raises ``not_found`` when there is no such run (reads no column of it)."""
        if self.db.one("SELECT 1 FROM runs WHERE id = ?", (run_id,)) is None:
            raise not_found("run", run_id)

    def session(self, session_id: str, param: str | None = "session_id") -> sqlite3.Row:
        """The session's row; raises ``not_found`` (naming ``param``) when there is none."""
        row = self.db.one("SELECT * FROM sessions WHERE id = ?", (session_id,))
        if row is None:
            raise not_found("session", session_id, param)
        return row

    def checkpoint(self, checkpoint_id: str, param: str | None = "checkpoint_id") -> sqlite3.Row:
        """The checkpoint's row; raises ``not_found`` (naming ``param``) when there is none."""
        row = self.db.one("SELECT * FROM checkpoints WHERE id = ?", (checkpoint_id,))
        if row is None:
            raise not_found("checkpoint", checkpoint_id, param)
        return row

    def by_idempotency_key(self, key: str, body_hash: str) -> sqlite3.Row | None:
        """The run a key created within the last 24 hours, if any; a 400
        ``idempotency_key_reused`` if it came with another body (``body_hash``)."""
        row = self.db.one(
            "SELECT k.body_hash AS key_body_hash, r.* FROM idempotency_keys k"
            " JOIN runs r ON r.id = k.run_id WHERE k.key = ? AND k.created > ?",
            (key, time.time() - IDEMPOTENCY_TTL_S),
        )
        if row is not None:
            _same_request(key, row["key_body_hash"], body_hash)
        return row

    def insert(
        self, run: dict[str, Any], session: dict[str, Any] | None,
        idempotency: tuple[str, str] | None = None,
    ) -> sqlite3.Row:
        """Store a new pending run (and its new session) in one transaction.

        ``idempotency`` is the request's ``(key, body hash)``. Returns the run a concurrent
        request stored first under the same key and body, if that happened; refuses a run on
        a session that is already busy.
        """
        with self.db.tx() as c:
            if idempotency is not None:
                key, body_hash = idempotency
                found = c.execute(
                    "SELECT run_id, body_hash FROM idempotency_keys WHERE key = ? AND created > ?",
                    (key, time.time() - IDEMPOTENCY_TTL_S),
                ).fetchone()
                if found is not None:
                    _same_request(key, found[1], body_hash)
                    return c.execute("SELECT * FROM runs WHERE id = ?", (found[0],)).fetchone()
                c.execute("DELETE FROM idempotency_keys WHERE key = ? OR created <= ?",
                          (key, time.time() - IDEMPOTENCY_TTL_S))
                c.execute("INSERT INTO idempotency_keys (key, run_id, created, body_hash)"
                          " VALUES (?, ?, ?, ?)", (key, run["id"], time.time(), body_hash))
            if session is not None:
                c.execute(
                    "INSERT INTO sessions VALUES (:id, :agent_id, :source_checkpoint_id,"
                    " :artifact_name, :volumes, :created_at, :created_at)", session,
                )
            else:
                busy = c.execute(
                    "SELECT id, status FROM runs WHERE session_id = ? AND status IN (?, ?)"
                    " LIMIT 1", (run["session_id"], *ACTIVE_STATUSES),
                ).fetchone()
                if busy is not None:
                    raise invalid(
                        f"Session '{run['session_id']}' is busy: run '{busy[0]}' is "
                        f"{busy[1]} and a session runs one run at a time. Wait for it to end "
                        f"or cancel it (POST /v1/runs/{busy[0]}/cancel), then try again; or "
                        "start a new session (leave out session_id)",
                        "session_id", "invalid_state",
                    )
                c.execute(
                    "UPDATE sessions SET artifact_name = ?, volumes = ?, updated_at = ?"
                    " WHERE id = ?",
                    (run["artifact_name"], run["volumes"], run["created_at"], run["session_id"]),
                )
            columns = ", ".join(run)
            c.execute(f"INSERT INTO runs ({columns}) VALUES ({', '.join(':' + k for k in run)})",
                      run)
        return self.get(run["id"])

    def mark_started(self, run_id: str, sandbox: str) -> bool:
        """``running`` from ``pending``; False if the run had already ended."""
        with self.db.tx() as c:
            cur = c.execute(
                "UPDATE runs SET status = 'running', started_at = ?, sandbox = ?"
                " WHERE id = ? AND status = 'pending'", (now_iso(), sandbox, run_id),
            )
        return cur.rowcount == 1

    def mark_finished(
        self, run_id: str, status: str, error: str | None, output: str | None,
        exit_code: int | None, checkpoint_id: str | None, artifact_version: str | None,
        *, output_truncated: bool = False,
    ) -> None:
        """Record the final status and results if the run is still active: the first end wins.

        ``output`` is the final answer; ``output_truncated`` when it is only its tail."""
        with self.db.tx() as c:
            c.execute(
                "UPDATE runs SET status = ?, error = ?, output = ?, output_truncated = ?,"
                " exit_code = ?, checkpoint_id = COALESCE(?, checkpoint_id),"
                " artifact_version = COALESCE(?, artifact_version), completed_at = ?"
                " WHERE id = ? AND status IN (?, ?)",
                (status, error, output, int(output_truncated), exit_code, checkpoint_id,
                 artifact_version, now_iso(), run_id, *ACTIVE_STATUSES),
            )

    def add_checkpoint(self, run: sqlite3.Row, checkpoint_id: str, tree_id: str) -> None:
        """Store a checkpoint of the run: its session, agent version, tree, artifact and volumes."""
        with self.db.tx() as c:
            c.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (checkpoint_id, run["id"], run["session_id"], run["agent_id"],
                 run["agent_version_id"], tree_id, run["artifact_name"], run["volumes"],
                 now_iso()),
            )

    def active(self) -> list[sqlite3.Row]:
        """Runs not yet final, oldest first."""
        return self.db.all("SELECT * FROM runs WHERE status IN (?, ?) ORDER BY seq",
                           ACTIVE_STATUSES)
