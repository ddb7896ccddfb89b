"""What a run leaves behind while it runs: output events, log entries and metric samples.

Output events are numbered per run from 1 without gaps. Each one is also written as an
``agent`` log entry (``message`` = the compact JSON of the stream-JSON object), so a client can
rebuild the output from logs alone.

Writes are batched: rows wait in memory until the event loop has handled the current burst of
callbacks (a pipe chunk can hold hundreds of lines), then go to SQLite in one transaction.
Readers call :meth:`Records.flush` first, so they always see everything numbered so far::

    records = Records(db)
    seq, frame = records.add_output("run_...", "assistant", {...})   # on the event loop
    records.flush()                                                   # before reading
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from typing import TYPE_CHECKING, Any

from vm0_notebook.contract import now_iso
from vm0_notebook.local.store.db import Where

if TYPE_CHECKING:
    from vm0_notebook.local.runtime.spec import MetricSample
    from vm0_notebook.local.store.db import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS run_events (
    run_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    type TEXT NOT NULL,
    frame TEXT NOT NULL,
    PRIMARY KEY (run_id, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_logs (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    type TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    metadata TEXT,
    entry TEXT
);
CREATE INDEX IF NOT EXISTS run_logs_by_run ON run_logs (run_id, id);
CREATE TABLE IF NOT EXISTS run_metrics (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    cpu_percent REAL NOT NULL,
    memory_bytes INTEGER NOT NULL,
    disk_used_bytes INTEGER NOT NULL,
    network_rx_bytes INTEGER,
    network_tx_bytes INTEGER,
    memory_total_bytes INTEGER,
    disk_total_bytes INTEGER
);
CREATE INDEX IF NOT EXISTS run_metrics_by_run ON run_metrics (run_id, id);
"""


def compact(value: Any) -> str:
    """JSON without spaces, as frames and agent log messages carry it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def log_entry(timestamp: str, type: str, level: str, message: str, metadata: str | None) -> str:
    """The JSON of a log entry as the API serves it, rendered once when it is written so that
    paging through a long log costs a join of stored text (``metadata`` is compact JSON)."""
    meta = f',"metadata":{metadata}' if metadata else ""
    return (f'{{"timestamp":"{timestamp}","type":"{type}","level":"{level}",'
            f'"message":{compact(message)}{meta}}}')


def output_log_level(type: str, data: dict[str, Any]) -> str:
    """``error`` for a failed ``result``, ``info`` for everything else."""
    failed = data.get("subtype") == "error" or data.get("is_error") is True
    return "error" if type == "result" and failed else "info"


def migrate(db: Database) -> None:
    """Bring a data folder made by an older version up to this schema: log rows written
    before the ``entry`` column existed get theirs, once, so reading a page never renders."""
    if "entry" not in db.columns("run_logs"):
        with db.tx() as c:
            c.execute("ALTER TABLE run_logs ADD COLUMN entry TEXT")
            c.create_function("log_entry", 5, log_entry, deterministic=True)
            c.execute("UPDATE run_logs SET entry ="
                      " log_entry(timestamp, type, level, message, metadata)")


class Records:
    """Numbers output events and buffers rows for the three tables."""

    def __init__(self, db: Database) -> None:
        self.db = db
        migrate(db)
        self._last_seq: dict[str, int] = {}
        self._events: list[tuple[str, int, str, str]] = []
        self._logs: list[tuple[str, str, str, str, str, str | None, str]] = []
        self._metrics: list[tuple[Any, ...]] = []
        self._scheduled = False

    def last_sequence(self, run_id: str) -> int:
        """The highest sequence given out for the run (0 before its first output)."""
        if run_id not in self._last_seq:
            row = self.db.one("SELECT MAX(sequence) FROM run_events WHERE run_id = ?", (run_id,))
            self._last_seq[run_id] = row[0] or 0
        return self._last_seq[run_id]

    def outputs(self, run_id: str, after: int, limit: int) -> list[sqlite3.Row]:
        """Up to ``limit`` of the run's ``(sequence, frame)`` output rows after ``after``."""
        self.flush()
        return self.db.all(
            "SELECT sequence, frame FROM run_events WHERE run_id = ? AND sequence > ?"
            " ORDER BY sequence LIMIT ?", (run_id, after, limit),
        )

    def logs(
        self, run_id: str, *, type: str | None, level: str | None, since: str | None,
        until: str | None, order: str, after: int | None, limit: int,
    ) -> list[tuple[int, str]]:
        """Up to ``limit`` of the run's log entries in ``order`` (``asc``/``desc``) after
        ``after``, as ``(id, entry JSON)``; ``since`` and ``until`` are inclusive."""
        where = Where("run_id = ?", run_id)
        if type:
            where.add("type = ?", type)
        if level:
            where.add("level = ?", level)
        if since:
            where.add("timestamp >= ?", since)
        if until:
            where.add("timestamp <= ?", until)
        if after is not None:
            where.add("id > ?" if order == "asc" else "id < ?", after)
        direction = "ASC" if order == "asc" else "DESC"
        self.flush()
        return self.db.all(
            f"SELECT id, entry FROM run_logs WHERE {where} ORDER BY id {direction} LIMIT ?",
            (*where.params, limit), raw=True,
        )

    def metrics(self, run_id: str, *, after: int | None, limit: int) -> list[sqlite3.Row]:
        """Up to ``limit`` of the run's metric samples, oldest first, after ``after``."""
        self.flush()
        return self.db.all(
            "SELECT * FROM run_metrics WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?",
            (run_id, after or 0, limit),
        )

    def metric_totals(self, run_id: str) -> sqlite3.Row:
        """``n``, ``cpu`` (average), ``memory``, ``rx`` and ``tx`` (maxima) over every sample."""
        self.flush()
        row = self.db.one(
            "SELECT COUNT(*) AS n, AVG(cpu_percent) AS cpu, MAX(memory_bytes) AS memory,"
            " MAX(network_rx_bytes) AS rx, MAX(network_tx_bytes) AS tx"
            " FROM run_metrics WHERE run_id = ?", (run_id,),
        )
        assert row is not None  # an aggregate always has a row
        return row

    def add_output(self, run_id: str, type: str, data: dict[str, Any]) -> tuple[int, str]:
        """Number one output event; returns ``(sequence, frame JSON)``."""
        seq = self.last_sequence(run_id) + 1
        self._last_seq[run_id] = seq
        timestamp = now_iso()
        # The object is encoded once and spliced into both the frame and the log entry.
        body, kind = compact(data), compact(type)
        frame = (f'{{"sequence":{seq},"type":{kind},"data":{body},'
                 f'"timestamp":"{timestamp}"}}')
        self._events.append((run_id, seq, type, frame))
        level, metadata = output_log_level(type, data), f'{{"sequence":{seq},"event_type":{kind}}}'
        self._logs.append((
            run_id, timestamp, "agent", level, body, metadata,
            log_entry(timestamp, "agent", level, body, metadata),
        ))
        self._schedule()
        return seq, frame

    def add_log(
        self, run_id: str, type: str, level: str, message: str,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Queue one log line; the batch is written on the next turn of the loop."""
        timestamp, meta = now_iso(), compact(metadata) if metadata else None
        self._logs.append((run_id, timestamp, type, level, message, meta,
                           log_entry(timestamp, type, level, message, meta)))
        self._schedule()

    def add_metric(self, run_id: str, sample: MetricSample) -> None:
        """Queue one resource sample; the batch is written on the next turn of the loop."""
        extra = sample.extra or {}
        self._metrics.append((
            run_id, sample.timestamp, sample.cpu_percent, sample.memory_bytes,
            sample.disk_used_bytes, sample.network_rx_bytes, sample.network_tx_bytes,
            extra.get("memory_total_bytes"), extra.get("disk_total_bytes"),
        ))
        self._schedule()

    def forget(self, run_id: str) -> None:
        """Drop the run's in-memory counter (it has ended)."""
        self._last_seq.pop(run_id, None)

    def flush(self) -> None:
        """Write every buffered row in one transaction."""
        self._scheduled = False
        if not (self._events or self._logs or self._metrics):
            return
        events, logs, metrics = self._events, self._logs, self._metrics
        self._events, self._logs, self._metrics = [], [], []
        with self.db.tx() as c:
            c.executemany("INSERT INTO run_events VALUES (?, ?, ?, ?)", events)
            c.executemany(
                "INSERT INTO run_logs (run_id, timestamp, type, level, message, metadata, entry)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)", logs,
            )
            c.executemany(
                "INSERT INTO run_metrics (run_id, timestamp, cpu_percent, memory_bytes,"
                " disk_used_bytes, network_rx_bytes, network_tx_bytes, memory_total_bytes,"
                " disk_total_bytes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", metrics,
            )

    def _schedule(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop (start-up recovery): write now
                self.flush()
