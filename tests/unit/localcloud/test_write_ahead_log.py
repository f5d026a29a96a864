"""localcloud.dynamodb_local.use_write_ahead_log: the journal mode DynamoDB Local's persistent
database is put in before the JVM opens it (no JVM here: the file is plain SQLite)."""

from __future__ import annotations

import logging
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from localcloud.dynamodb_local import SHARED_DB_FILE, journal_mode, use_write_ahead_log


def test_a_new_database_is_created_in_write_ahead_log_mode_and_a_second_call_keeps_it(tmp_path: Path) -> None:
    assert use_write_ahead_log(tmp_path / SHARED_DB_FILE) == "wal"
    assert journal_mode(tmp_path / SHARED_DB_FILE) == "wal"
    assert use_write_ahead_log(tmp_path / SHARED_DB_FILE) == "wal"


def test_a_rollback_journal_database_is_converted_with_its_rows(tmp_path: Path) -> None:
    database = tmp_path / SHARED_DB_FILE
    with closing(sqlite3.connect(database)) as conn:
        conn.execute("CREATE TABLE items (pk TEXT PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [("a", "1"), ("b", "2")])
        conn.commit()
    assert journal_mode(database) == "delete"

    assert use_write_ahead_log(tmp_path / SHARED_DB_FILE) == "wal"
    with closing(sqlite3.connect(database)) as conn:
        assert conn.execute("SELECT pk, body FROM items ORDER BY pk").fetchall() == [("a", "1"), ("b", "2")]


def test_a_file_that_is_not_a_database_is_left_alone_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = tmp_path / SHARED_DB_FILE
    database.write_bytes(b"not a database, " * 512)
    with caplog.at_level(logging.WARNING, logger="localcloud.dynamodb_local"):
        assert use_write_ahead_log(tmp_path / SHARED_DB_FILE) == "unknown"
    assert str(database) in caplog.text and "journal mode" in caplog.text
    assert database.read_bytes() == b"not a database, " * 512
