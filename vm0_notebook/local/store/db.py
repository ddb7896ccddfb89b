"""The local server's SQLite store: one file, WAL mode, one connection behind a lock.

Each module that keeps state declares its own ``SCHEMA`` (``CREATE TABLE IF NOT EXISTS ...``)
and the app opens the database with all of them::

    db = Database(data_dir / "vm0.db", [runs_schema, storage_schema])
    with db.tx() as c:
        c.execute("INSERT INTO agents ...", (...))
    row = db.one("SELECT * FROM agents WHERE id = ?", (agent_id,))

Writes go through ``tx()``, which commits or rolls back as a whole, so a failed request leaves
nothing half-written. WAL with ``synchronous=NORMAL`` keeps every committed transaction across a
SIGKILL of the server (only an OS crash can lose the last ones).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any


class Where:
    """The conditions of a list query, joined with AND, and their parameters in order.

        where = Where("run_id = ?", run_id)
        where.add("level = ?", level)
        db.all(f"SELECT * FROM run_logs WHERE {where} LIMIT ?", (*where.params, 20))
    """

    def __init__(self, condition: str = "1 = 1", *params: Any) -> None:
        self.conditions, self.params = [condition], list(params)

    def add(self, condition: str, *params: Any) -> None:
        """One more condition and its parameters."""
        self.conditions.append(condition)
        self.params.extend(params)

    def __str__(self) -> str:
        return " AND ".join(self.conditions)


class Database:
    """The server's SQLite store: one WAL connection shared by the loop and threads under a lock."""
    def __init__(self, path: Path, schemas: Iterable[str] = ()) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # The server touches the store from the event loop and from worker threads; one
        # connection serialised by a lock is simpler than a pool and fast enough for SQLite.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._lock = threading.RLock()
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.execute("PRAGMA busy_timeout=5000")
            for schema in schemas:
                self._conn.executescript(schema)
        path.chmod(0o600)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: everything inside commits together or not at all."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        """The first row of a query, or None."""
        with self._lock:
            return self._conn.execute(sql, params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = (), raw: bool = False) -> list[Any]:
        """Every row of a query (plain tuples with ``raw``: no per-row object, for hot paths)."""
        with self._lock:
            cursor = self._conn.execute(sql, params)
            if raw:
                cursor.row_factory = None
            return cursor.fetchall()

    def columns(self, table: str) -> set[str]:
        """The names of a table's columns."""
        return {row["name"] for row in self.all(f"PRAGMA table_info({table})")}

    def close(self) -> None:
        """Close the connection (under the lock, so no query is cut off midway)."""
        with self._lock:
            self._conn.close()
