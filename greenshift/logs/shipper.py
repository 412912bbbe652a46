"""The shipper: tails every instance's `server.log` into the log store.

Each poll lists `<home>/instances/` and stats each `server.log`; a file whose inode and size are
what the shipper saw last time is not opened, so an idle host costs one directory scan and a
stat per instance. New bytes are read from the file's cursor; complete lines become events
stamped with the time they were read (the instances write plain text, no timestamps of their
own); a partial last line waits for its end, or is stored as it is once the file has been quiet
for `partial_flush_seconds` (an instance that died mid-line). A file that got shorter or has
another inode (truncated, recreated on relaunch) is read again from its start.

It runs inside the control API (a background task of the app's lifespan), which on one host
sees the same home as the fleet agent.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from greenshift.logs.model import MAX_EVENT_BYTES, StreamRef, stream_for_instance
from greenshift.logs.store import Batch, Cursor, LogStore
from greenshift.logs.tailing import flush_partial, is_replaced, split_lines

log = logging.getLogger("greenshift.logs")

LOG_FILE = "server.log"
# Read at most this much of one file per poll, so one chatty instance cannot starve the others.
MAX_READ_BYTES = 4 * 1024 * 1024


@dataclass
class _Seen:
    inode: int
    size: int
    # When the size last changed (monotonic seconds), for the partial-line flush.
    changed_at: float
    # How far the file has been read (complete lines and any partial one after them).
    looked_to: int


class LogShipper:
    def __init__(
        self,
        store: LogStore,
        instances_dir: Path,
        *,
        interval: float = 1.0,
        partial_flush_seconds: float = 5.0,
        retention_ms: int,
        max_bytes_per_stream: int,
        prune_every: float = 60.0,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.instances_dir = instances_dir
        self.interval = interval
        self.partial_flush_seconds = partial_flush_seconds
        self.retention_ms = retention_ms
        self.max_bytes_per_stream = max_bytes_per_stream
        self.prune_every = prune_every
        self.clock_ms = clock_ms
        self.monotonic = monotonic
        self._cursors: dict[str, Cursor] | None = None
        self._seen: dict[str, _Seen] = {}
        self._last_prune = float("-inf")

    async def run(self) -> None:
        """Poll forever (until cancelled); one failed poll is logged, not fatal."""
        while True:
            try:
                await anyio.to_thread.run_sync(self.poll)
            except Exception:
                log.exception("log shipping failed; retrying")
            await anyio.sleep(self.interval)

    def poll(self) -> int:
        """One pass over the instances' log files; returns the number of events stored."""
        if self._cursors is None:
            self._cursors = self.store.cursors()
        cursors = self._cursors
        batches: list[Batch] = []
        present: set[str] = set()
        for folder in self._instance_folders():
            ref = stream_for_instance(folder.name)
            if ref is None:
                continue
            path = str(folder / LOG_FILE)
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            present.add(path)
            batch = self._read(path, ref, st, cursors.get(path))
            if batch is not None:
                batches.append(batch)
        stored = 0
        if batches:
            refused = set(self.store.append(batches, self.clock_ms()))
            for batch in batches:
                if batch.path not in refused:
                    cursors[batch.path] = batch.cursor
                    stored += len(batch.messages)
            if refused:
                # Another shipper moved these cursors: take its view on the next poll.
                log.warning("log cursors moved by another shipper: %s", sorted(refused))
                self._cursors = None
                self._seen.clear()
        gone = [p for p in cursors if p not in present]
        if gone:
            self.store.forget_cursors(gone)
            for path in gone:
                cursors.pop(path, None)
                self._seen.pop(path, None)
        if self.monotonic() - self._last_prune >= self.prune_every:
            self._last_prune = self.monotonic()
            self.store.prune(self.clock_ms(), self.retention_ms, self.max_bytes_per_stream)
        return stored

    def _instance_folders(self) -> list[Path]:
        try:
            with os.scandir(self.instances_dir) as entries:
                return [Path(e.path) for e in entries if e.is_dir()]
        except FileNotFoundError:
            return []

    def _read(
        self, path: str, ref: StreamRef, st: os.stat_result, cursor: Cursor | None
    ) -> Batch | None:
        """The new lines of one file (None: nothing to record). A replaced file's fresh cursor
        is recorded even with no lines, so its old offset is never applied to the new file."""
        now = self.monotonic()
        previous = cursor
        reset = cursor is None or is_replaced(st.st_size, st.st_ino, cursor.offset, cursor.inode)
        if cursor is None or reset:
            cursor = Cursor(st.st_ino, 0)
        seen = self._seen.get(path)
        if seen is None or reset or seen.inode != st.st_ino or seen.size != st.st_size:
            seen = self._seen[path] = _Seen(st.st_ino, st.st_size, now, cursor.offset)
        quiet = now - seen.changed_at >= self.partial_flush_seconds
        # Everything after the cursor was looked at already: it is one unfinished line.
        partial_only = seen.looked_to >= st.st_size
        if st.st_size <= cursor.offset or (partial_only and not quiet):
            return Batch(path, ref, [], cursor, previous) if reset else None
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_ino != cursor.inode:
                    return None  # replaced between stat and open: the next poll reads it
                handle.seek(cursor.offset)
                data = handle.read(MAX_READ_BYTES)
        except FileNotFoundError:
            return None
        lines, used = split_lines(data)
        seen.looked_to = cursor.offset + len(data)
        rest = len(data) - used
        # A partial line is stored as it is once its writer went quiet, or once it is longer
        # than an event can be (it would be split anyway, and a line longer than one read
        # would otherwise never move the cursor).
        if rest and ((quiet and seen.looked_to >= st.st_size) or rest >= MAX_EVENT_BYTES):
            lines += flush_partial(data[used:])
            used = len(data)
        if not used and not reset:
            return None
        return Batch(path, ref, lines, Cursor(cursor.inode, cursor.offset + used), previous)
