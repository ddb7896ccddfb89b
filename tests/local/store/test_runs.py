"""The run store on a real SQLite file: old databases open, idempotency keys."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from vm0_notebook.local.errors import ApiError
from vm0_notebook.local.store import runs
from vm0_notebook.local.store.db import Database
from vm0_notebook.local.store.runs import SCHEMA, RunStore

OLD_KEYS = "CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, run_id TEXT NOT NULL," \
           " created REAL NOT NULL);"


def test_a_database_without_output_truncated_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "vm0.db"
    before = runs.SCHEMA.replace("    output_truncated INTEGER NOT NULL DEFAULT 0,\n", "")
    assert before != runs.SCHEMA
    with sqlite3.connect(path) as old:
        old.executescript(before)
    db = Database(path, [runs.SCHEMA])
    runs.RunStore(db)
    runs.RunStore(db)  # opening it again changes nothing
    columns = [row["name"] for row in db.all("PRAGMA table_info(runs)")]
    assert columns.count("output_truncated") == 1
    db.close()


def test_a_database_from_before_body_hashes_gets_the_column(tmp_path):
    path = tmp_path / "vm0.db"
    old = sqlite3.connect(path)
    old.executescript(OLD_KEYS)
    old.execute("INSERT INTO idempotency_keys VALUES ('k', 'run_1', ?)", (time.time(),))
    old.commit()
    old.close()
    db = Database(path, [SCHEMA])
    RunStore(db)
    RunStore(db)  # and once it is there, nothing more happens
    columns = [row[1] for row in db.all("PRAGMA table_info(idempotency_keys)")]
    assert columns == ["key", "run_id", "created", "body_hash"]
    assert db.one("SELECT body_hash FROM idempotency_keys WHERE key = 'k'")[0] is None
    db.close()


def test_a_key_answers_only_the_body_it_came_with(tmp_path):
    db = Database(tmp_path / "vm0.db", [SCHEMA])
    store = RunStore(db)
    with db.tx() as c:
        c.execute("INSERT INTO idempotency_keys VALUES ('k', 'run_1', ?, 'aaa')", (time.time(),))
        c.execute("INSERT INTO idempotency_keys VALUES ('old', 'run_1', ?, NULL)",
                  (time.time(),))
    with pytest.raises(ApiError) as caught:
        store.insert({"id": "run_2"}, None, ("k", "bbb"))
    assert caught.value.code == "idempotency_key_reused" and caught.value.status == 400
    assert caught.value.param == "Idempotency-Key"
    # The same body finds the key's run (here there is no row for it, so nothing comes back),
    # and a key stored without a hash matches any body.
    assert store.insert({"id": "run_2"}, None, ("k", "aaa")) is None
    assert store.insert({"id": "run_2"}, None, ("old", "anything")) is None
    db.close()
