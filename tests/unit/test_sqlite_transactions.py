"""The registry's transactions on SQLite (database.py): a write takes the database's write lock
when it begins, before it reads (BEGIN IMMEDIATE), and commits or rolls back as a whole; a read
holds no transaction; and no connection event is left on the engine, which would make
SQLAlchemy dispatch events around every statement."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text

from greenshift.registry.database import create_registry_engine, reader, write_transaction


def _other(path: Path) -> sqlite3.Connection:
    """Another process's view of the file: no busy wait, its own transactions."""
    return sqlite3.connect(path, timeout=0, isolation_level=None)


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "registry.db"
    engine = create_registry_engine(f"sqlite:///{path}")
    with write_transaction(engine) as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    engine.dispose()
    return path


def test_a_write_holds_the_lock_from_its_start_and_commits_at_its_end(database: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{database}")
    with contextlib.closing(_other(database)) as other:
        with write_transaction(engine) as conn:
            conn.execute(text("SELECT count(*) FROM t")).scalar()  # read first: already locked
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            conn.execute(text("INSERT INTO t VALUES (1)"))
            assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert other.execute("SELECT count(*) FROM t").fetchone() == (1,)
        other.execute("BEGIN IMMEDIATE")  # released
        other.execute("ROLLBACK")
    engine.dispose()


def test_a_write_that_raises_writes_nothing_and_releases_the_lock(database: Path) -> None:
    engine = create_registry_engine(f"sqlite:///{database}")
    with pytest.raises(RuntimeError, match="refused"):
        with write_transaction(engine) as conn:
            conn.execute(text("INSERT INTO t VALUES (1)"))
            raise RuntimeError("refused")
    with contextlib.closing(_other(database)) as other:
        assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
    engine.dispose()


def test_a_read_holds_no_transaction_and_the_engine_dispatches_no_statement_events(
    database: Path,
) -> None:
    engine = create_registry_engine(f"sqlite:///{database}")
    with reader(engine).connect() as conn:
        conn.execute(text("SELECT count(*) FROM t")).scalar()
        assert conn.connection.dbapi_connection.in_transaction is False  # type: ignore[union-attr]
    assert engine._has_events is False  # only the pool's "connect" hook
    engine.dispose()
