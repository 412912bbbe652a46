"""Engines for the registry, with the per-backend settings that make it safe for several
processes at once (the API, the worker and the router controller share one database).

SQLite: WAL (readers never block the writer), a busy timeout instead of instant "database is
locked" errors, foreign keys on, and writes that start with `BEGIN IMMEDIATE` so a transaction
takes the write lock before it reads: a compare-and-set cannot be won by two processes, and a
reader cannot fail late when it upgrades to a writer. pysqlite's own transaction handling is
turned off so that we can say exactly which BEGIN we mean (SQLAlchemy's documented recipe).

Write transactions are begun by `write_transaction`, not by a "begin" event listener: any
connection event on an engine has SQLAlchemy dispatch events around every statement of every
connection, reads included (issue 17: ~30 µs a read).

PostgreSQL: a plain pool with pre-ping (a restarted server does not break the next call); the
compare-and-set is done with `SELECT ... FOR UPDATE` in the repository.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL, Connection

BUSY_TIMEOUT_SECONDS = 10.0
WAL_RETRY_SECONDS = 0.02


def create_registry_engine(url: str | URL) -> Engine:
    """One engine (and connection pool) per registry object; reuse it for every call."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        return _sqlite_engine(sa_url)
    return create_engine(sa_url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


# One write lock per SQLite file in this process (see `local_write_lock`), by resolved path;
# kept as long as an engine's owner holds it.
_FILE_LOCKS: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_FILE_LOCKS_GUARD = threading.Lock()


def local_write_lock(engine: Engine) -> AbstractContextManager[Any]:
    """What a write transaction on `engine` takes first, in this process.

    SQLite has one writer per file. Threads of a process queue on this lock, which hands over
    at once, instead of on SQLite's busy handler, which sleeps 1, 2, 5 ... 25 ms between tries:
    with dozens of activity threads that made every write wait for idle sleeps. Every engine of
    the process on the same file shares one lock (the registry's and the host store's): a
    placement's transaction on its own engine otherwise sent the registry's writers, holding
    their lock, to sleep in the busy handler, and everything queued behind them (issue 17:
    three quarters of the time the lock was held). Other processes still meet the busy
    timeout. Reentrant: a write begun inside another on the same thread fails on SQLite's busy
    timeout, as it always did, rather than hanging. PostgreSQL locks rows, not the database:
    its writers run in parallel, under no lock of ours."""
    if not is_sqlite(engine):
        return nullcontext()
    database = engine.url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        key = f"{database}@{id(engine)}"  # a database of this engine's own
    else:
        key = str(Path(database).expanduser().resolve())
    with _FILE_LOCKS_GUARD:
        lock = _FILE_LOCKS.get(key)
        if lock is None:
            lock = _FILE_LOCKS[key] = threading.RLock()
        return lock


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction on `engine`: committed when the block ends, rolled back if it raises.
    On SQLite it starts with `BEGIN IMMEDIATE` (the driver's own transaction handling is off)."""
    if not is_sqlite(engine):
        with engine.begin() as conn:
            yield conn
        return
    with engine.connect() as conn:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.rollback()
            raise
        conn.commit()


def reader(engine: Engine) -> Engine:
    """A view of `engine` (same pool) for single-statement reads: autocommit, so a read costs
    one round trip instead of BEGIN, SELECT, ROLLBACK. (On SQLite a read never begins one.)"""
    if is_sqlite(engine):
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def switch_to_wal(cursor: Any, within: float = BUSY_TIMEOUT_SECONDS) -> None:
    """`PRAGMA journal_mode = WAL`, tried again while the database is locked, for `within`
    seconds. Connections opening a new database together can each hold the shared lock and want
    the exclusive one: SQLite then answers "database is locked" at once, without waiting out the
    busy timeout (it would deadlock), so the busy timeout alone does not cover it (seen: 2 in 20
    runs of 8 registries starting together)."""
    deadline = time.monotonic() + within
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
        time.sleep(WAL_RETRY_SECONDS)


def _sqlite_engine(url: URL) -> Engine:
    database = url.database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Autocommit at the driver level: write_transaction issues BEGIN itself, and a read is
        # one statement, without BEGIN and ROLLBACK around it.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            # busy_timeout first: switching to WAL needs a lock another process may hold.
            cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
            switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    return engine
