"""Switching a new SQLite registry to WAL while other processes open it (database.py,
switch_to_wal): "database is locked" is tried again, within a bound; other errors are not."""

from __future__ import annotations

import sqlite3
import time

import pytest

from greenshift.registry.database import switch_to_wal


class Cursor:
    """A cursor whose first `locked` executes fail as SQLite's do, then succeed."""

    def __init__(self, locked: int, error: str = "database is locked") -> None:
        self.locked = locked
        self.error = error
        self.calls = 0

    def execute(self, sql: str) -> None:
        assert sql == "PRAGMA journal_mode = WAL"
        self.calls += 1
        if self.calls <= self.locked:
            raise sqlite3.OperationalError(self.error)


def test_a_locked_database_is_tried_again_until_the_switch_succeeds() -> None:
    cursor = Cursor(locked=3)
    switch_to_wal(cursor, within=5)
    assert cursor.calls == 4


def test_it_gives_up_after_its_bound_and_never_retries_another_error() -> None:
    forever = Cursor(locked=10**9)
    began = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        switch_to_wal(forever, within=0.2)
    assert 0.2 <= time.monotonic() - began < 2 and forever.calls > 1
    broken = Cursor(locked=1, error="disk I/O error")
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        switch_to_wal(broken, within=5)
    assert broken.calls == 1
