"""The runs table: a data folder from before a column still opens."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from vm0_notebook.local.store import runs
from vm0_notebook.local.store.db import Database


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
