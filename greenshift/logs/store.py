"""Where shipped log events live: a small interface, and a SQLite file of its own.

The store is separate from the registry (its own file, `<home>/instance-logs.db`): log lines are
high-volume, append-only and disposable, the registry is the record of deployments, and a
PostgreSQL registry should not receive every line a model prints. Events, the streams' summary
(first/last timestamps, stored bytes) and the shipper's file cursors are written in one
transaction, so a restarted shipper resumes exactly where the last committed batch ended: no
line is stored twice and none is skipped.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from greenshift.logs.model import EVENT_OVERHEAD_BYTES, LogEvent, LogGroup, LogStream, StreamRef

Direction = Literal["forward", "backward"]


@dataclass(frozen=True)
class Cursor:
    """How far the shipper has read one file: its inode and the bytes already stored."""

    inode: int
    offset: int


@dataclass(frozen=True)
class Batch:
    """Lines read from one file at one time, and the cursor to record with them. `previous` is
    the cursor the lines were read from (None: the file was new to the shipper); the batch is
    stored only if that is still the stored cursor, so two shippers over one home (an API
    started twice) never store a line twice."""

    path: str
    ref: StreamRef
    messages: Sequence[str]
    cursor: Cursor
    previous: Cursor | None = None


class LogStore(Protocol):
    """What the shipper writes to and the CloudWatch Logs API reads from."""

    def append(self, batches: Sequence[Batch], now_ms: int) -> list[str]: ...
    def cursors(self) -> dict[str, Cursor]: ...
    def forget_cursors(self, paths: Sequence[str]) -> None: ...
    def groups(self) -> list[LogGroup]: ...
    def streams(self, group: str) -> list[LogStream] | None: ...
    def last_seq(self) -> int: ...
    def read(
        self,
        group: str,
        stream: str,
        direction: Direction,
        bound: int,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[LogEvent]: ...
    def scan(
        self,
        group: str,
        streams: Sequence[str],
        after: tuple[int, int],
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[LogEvent]: ...
    def prune(self, now_ms: int, max_age_ms: int, max_bytes_per_stream: int) -> int: ...
    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_groups (
    name TEXT PRIMARY KEY,
    creation_time INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log_streams (
    id INTEGER PRIMARY KEY,
    group_name TEXT NOT NULL REFERENCES log_groups(name),
    name TEXT NOT NULL,
    creation_time INTEGER NOT NULL,
    first_event_timestamp INTEGER,
    last_event_timestamp INTEGER,
    last_ingestion_time INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (group_name, name)
);
CREATE TABLE IF NOT EXISTS log_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id INTEGER NOT NULL REFERENCES log_streams(id),
    timestamp INTEGER NOT NULL,
    ingestion_time INTEGER NOT NULL,
    size INTEGER NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (stream_id, seq);
CREATE INDEX IF NOT EXISTS log_events_by_time ON log_events (stream_id, timestamp, seq);
CREATE TABLE IF NOT EXISTS file_cursors (
    path TEXT PRIMARY KEY,
    inode INTEGER NOT NULL,
    "offset" INTEGER NOT NULL
);
"""

_EVENT_COLUMNS = "e.seq, s.name, e.timestamp, e.ingestion_time, e.message"


class SqliteLogStore:
    """`LogStore` on one SQLite file (WAL), safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # Set before the tables exist (a new file): pruned pages go back to the file system
        # (`incremental_vacuum` after each prune), so retention bounds the disk used too.
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- writing (the shipper) ----------------------------------------------------------------

    def append(self, batches: Sequence[Batch], now_ms: int) -> list[str]:
        """Store every batch's lines with `now_ms` as timestamp and ingestion time, and its
        cursor, in one transaction. Returns the paths of the batches refused because their
        `previous` cursor is no longer the stored one (somebody else stored those lines)."""
        refused: list[str] = []
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for batch in batches:
                    row = db.execute(
                        'SELECT inode, "offset" FROM file_cursors WHERE path = ?', (batch.path,)
                    ).fetchone()
                    if (None if row is None else Cursor(*row)) != batch.previous:
                        refused.append(batch.path)
                        continue
                    if batch.messages:
                        stream_id = self._ensure_stream(batch.ref, now_ms)
                        rows = [
                            (stream_id, now_ms, now_ms, len(m.encode()) + EVENT_OVERHEAD_BYTES, m)
                            for m in batch.messages
                        ]
                        db.executemany(
                            "INSERT INTO log_events (stream_id, timestamp, ingestion_time, size,"
                            " message) VALUES (?, ?, ?, ?, ?)",
                            rows,
                        )
                        db.execute(
                            "UPDATE log_streams SET"
                            " first_event_timestamp = COALESCE(first_event_timestamp, ?),"
                            " last_event_timestamp = ?, last_ingestion_time = ?,"
                            " stored_bytes = stored_bytes + ? WHERE id = ?",
                            (now_ms, now_ms, now_ms, sum(r[3] for r in rows), stream_id),
                        )
                    db.execute(
                        'INSERT INTO file_cursors (path, inode, "offset") VALUES (?, ?, ?)'
                        " ON CONFLICT (path) DO UPDATE SET inode = excluded.inode,"
                        ' "offset" = excluded."offset"',
                        (batch.path, batch.cursor.inode, batch.cursor.offset),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return refused

    def _ensure_stream(self, ref: StreamRef, now_ms: int) -> int:
        self._db.execute(
            "INSERT OR IGNORE INTO log_groups (name, creation_time) VALUES (?, ?)",
            (ref.group, now_ms),
        )
        self._db.execute(
            "INSERT OR IGNORE INTO log_streams (group_name, name, creation_time) VALUES (?, ?, ?)",
            (ref.group, ref.stream, now_ms),
        )
        row = self._db.execute(
            "SELECT id FROM log_streams WHERE group_name = ? AND name = ?", (ref.group, ref.stream)
        ).fetchone()
        return int(row[0])

    def cursors(self) -> dict[str, Cursor]:
        with self._lock:
            rows = self._db.execute('SELECT path, inode, "offset" FROM file_cursors').fetchall()
        return {path: Cursor(inode, offset) for path, inode, offset in rows}

    def forget_cursors(self, paths: Sequence[str]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM file_cursors WHERE path = ?", [(p,) for p in paths])

    def prune(self, now_ms: int, max_age_ms: int, max_bytes_per_stream: int) -> int:
        """Retention: drop events older than `max_age_ms`, then each stream's oldest events
        beyond `max_bytes_per_stream`; streams left empty and older than the age go too, and
        groups left without streams. Returns the number of events dropped."""
        cutoff = now_ms - max_age_ms
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                dropped = db.execute(
                    "DELETE FROM log_events WHERE timestamp < ?", (cutoff,)
                ).rowcount
                over = db.execute(
                    "SELECT id FROM log_streams WHERE stored_bytes > ?", (max_bytes_per_stream,)
                ).fetchall()
                for (stream_id,) in over:
                    # The newest seq that no longer fits: it and everything older go.
                    row = db.execute(
                        "SELECT seq FROM (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS kept"
                        " FROM log_events WHERE stream_id = ?) WHERE kept > ?"
                        " ORDER BY seq DESC LIMIT 1",
                        (stream_id, max_bytes_per_stream),
                    ).fetchone()
                    if row is not None:
                        dropped += db.execute(
                            "DELETE FROM log_events WHERE stream_id = ? AND seq <= ?",
                            (stream_id, row[0]),
                        ).rowcount
                if dropped:
                    db.execute(
                        "UPDATE log_streams SET"
                        " stored_bytes = COALESCE((SELECT SUM(size) FROM log_events"
                        "   WHERE stream_id = log_streams.id), 0),"
                        " first_event_timestamp = (SELECT MIN(timestamp) FROM log_events"
                        "   WHERE stream_id = log_streams.id)"
                    )
                db.execute(
                    "DELETE FROM log_streams WHERE stored_bytes = 0 AND creation_time < ?"
                    " AND NOT EXISTS (SELECT 1 FROM log_events WHERE stream_id = log_streams.id)",
                    (cutoff,),
                )
                db.execute(
                    "DELETE FROM log_groups WHERE NOT EXISTS"
                    " (SELECT 1 FROM log_streams WHERE group_name = log_groups.name)"
                    " AND creation_time < ?",
                    (cutoff,),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            if dropped:
                # executescript steps the pragma to completion (execute frees one page).
                db.executescript("PRAGMA incremental_vacuum;")
        return int(dropped)

    # --- reading (the API) --------------------------------------------------------------------

    def groups(self) -> list[LogGroup]:
        with self._lock:
            rows = self._db.execute(
                "SELECT g.name, g.creation_time, COALESCE(SUM(s.stored_bytes), 0)"
                " FROM log_groups g LEFT JOIN log_streams s ON s.group_name = g.name"
                " GROUP BY g.name ORDER BY g.name"
            ).fetchall()
        return [LogGroup(name, created, int(size)) for name, created, size in rows]

    def streams(self, group: str) -> list[LogStream] | None:
        """The group's streams, or None when the group does not exist."""
        with self._lock:
            exists = self._db.execute(
                "SELECT 1 FROM log_groups WHERE name = ?", (group,)
            ).fetchone()
            if exists is None:
                return None
            rows = self._db.execute(
                "SELECT name, creation_time, first_event_timestamp, last_event_timestamp,"
                " last_ingestion_time, stored_bytes FROM log_streams WHERE group_name = ?"
                " ORDER BY name",
                (group,),
            ).fetchall()
        return [LogStream(group, *row) for row in rows]

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM log_events").fetchone()
        return int(row[0] or 0)

    def read(
        self,
        group: str,
        stream: str,
        direction: Direction,
        bound: int,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[LogEvent]:
        """Up to `limit` events of one stream next to `bound` (exclusive), ascending: the first
        ones after it (`forward`) or the last ones before it (`backward`), within [start, end)."""
        where, args = _time_range(start, end)
        if direction == "forward":
            sql = f"e.seq > ?{where} ORDER BY e.seq ASC"
        else:
            sql = f"e.seq < ?{where} ORDER BY e.seq DESC"
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM log_events e JOIN log_streams s"
                f" ON s.id = e.stream_id WHERE s.group_name = ? AND s.name = ? AND {sql} LIMIT ?",
                (group, stream, bound, *args, limit),
            ).fetchall()
        events = [LogEvent(*row) for row in rows]
        return events if direction == "forward" else events[::-1]

    def scan(
        self,
        group: str,
        streams: Sequence[str],
        after: tuple[int, int],
        start: int | None,
        end: int | None,
        limit: int,
    ) -> list[LogEvent]:
        """Up to `limit` events of the named streams ordered by (timestamp, seq), strictly after
        the position `after`, within [start, end)."""
        if not streams:
            return []
        where, args = _time_range(start, end)
        marks = ",".join("?" * len(streams))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_EVENT_COLUMNS} FROM log_events e JOIN log_streams s"
                f" ON s.id = e.stream_id WHERE s.group_name = ? AND s.name IN ({marks})"
                f" AND (e.timestamp > ? OR (e.timestamp = ? AND e.seq > ?)){where}"
                " ORDER BY e.timestamp, e.seq LIMIT ?",
                (group, *streams, after[0], after[0], after[1], *args, limit),
            ).fetchall()
        return [LogEvent(*row) for row in rows]


def _time_range(start: int | None, end: int | None) -> tuple[str, list[int]]:
    # CloudWatch: startTime inclusive, endTime exclusive.
    where, args = "", []
    if start is not None:
        where += " AND e.timestamp >= ?"
        args.append(start)
    if end is not None:
        where += " AND e.timestamp < ?"
        args.append(end)
    return where, args
