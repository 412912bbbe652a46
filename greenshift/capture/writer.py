"""The capture writer: receives capture.lua's batches on a unix socket and writes them as
SageMaker capture files, off the request path.

Two threads with a bounded queue between them: the reader only splits lines (so HAProxy's send
never waits on a disk), the writer turns them into records and writes one file per batch and
destination directory every `flush_seconds`. A full queue drops records and counts them
(`dropped`): memory stays bounded whatever the disk does, and HAProxy's own queue (capture.lua)
is bounded the same way when this process does not read.

No record is lost silently: every sampled invocation ends up written, or counted in one of
`dropped` (either queue full, or a batch capture.lua could not send), `cut` (a batch whose
connection died before all its announced lines arrived), `malformed`, `unrouted`
(its fleet is unknown or no longer captures), `failed` (the destination refused its batch) or
`nolines`. The counts are logged as a warning whenever one of them grows and written to
`stats_path` (JSON) at every flush, which `greenshift capture --stats` prints.
"""

from __future__ import annotations

import collections
import json
import logging
import selectors
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from greenshift.capture.reading import STATS_FILE
from greenshift.capture.rules import event_ids, parse_line, record_text, relative_path
from greenshift.capture.source import FleetCapture, FleetCaptures

log = logging.getLogger(__name__)


class Destination:
    """Where a batch file goes: `file://` (a local directory) or `s3://bucket/prefix` (boto3
    with the environment's credentials and endpoint)."""

    def __init__(self) -> None:
        self._s3: Any = None

    def write(self, uri: str, relative: str, data: bytes) -> None:
        if uri.startswith("file://"):
            path = Path(uri.removeprefix("file://")) / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.rename(path)  # readers never see half a file
            return
        if uri.startswith("s3://"):
            bucket, _, prefix = uri.removeprefix("s3://").partition("/")
            if self._s3 is None:
                import boto3

                self._s3 = boto3.client("s3")
            key = f"{prefix}/{relative}" if prefix else relative
            self._s3.put_object(Bucket=bucket, Key=key, Body=data)
            return
        raise ValueError(f"unsupported capture destination {uri!r}")


class CaptureWriter:
    def __init__(
        self,
        socket_path: Path,
        captures: FleetCaptures,
        flush_seconds: float = 1.0,
        max_pending: int = 50_000,
        destination: Destination | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.captures = captures
        self.flush_seconds = flush_seconds
        # A deque: append and popleft are atomic (one reader thread appends, the writer
        # pops), without queue.Queue's lock and condition per record.
        self.pending: collections.deque[str] = collections.deque()
        self.max_pending = max_pending
        self.destination = destination or Destination()
        self.stats_path = socket_path.with_name(STATS_FILE)
        self.dropped = 0  # here and in HAProxy's queue (capture.lua reports its own)
        self.written = 0
        self.received = 0
        self.malformed = 0
        self.unrouted = 0
        self.failed = 0
        self.cut = 0  # announced by a batch header, never arrived (its connection died)
        self.lua_queued = 0  # sums of capture.lua's counts, over its threads and connections
        self.lua_dropped = 0
        self.lua_nolines = 0
        self.heard_at = 0.0  # time.time() of capture.lua's last batch (one a second at least)
        self._reported = 0
        self._ids = event_ids()
        self._server: socket.socket | None = None

    @property
    def lost(self) -> int:
        """Sampled invocations that will never be written (every way of losing one)."""
        counted = (self.dropped, self.cut, self.malformed, self.unrouted, self.failed)
        return sum(counted) + self.lua_nolines

    def stats(self) -> dict[str, float]:
        return {
            "received": self.received,
            "written": self.written,
            "lost": self.lost,
            "dropped": self.dropped,
            "dropped_in_haproxy": self.lua_dropped,
            "cut": self.cut,
            "malformed": self.malformed,
            "unrouted": self.unrouted,
            "failed": self.failed,
            "nolines": self.lua_nolines,
            "queued_in_haproxy": self.lua_queued,
            "heard_at": self.heard_at,
            "updated_at": time.time(),
        }

    def bind(self) -> None:
        """Listen before HAProxy starts, so its first batch finds the socket."""
        self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.socket_path))
        server.listen(16)
        server.setblocking(False)
        self._server = server

    def run(self, stop: threading.Event) -> None:
        """Read and write until `stop` is set; what is pending then is written."""
        if self._server is None:
            self.bind()
        writing = threading.Thread(target=self._write_loop, args=(stop,), daemon=True)
        writing.start()
        try:
            self._read_loop(stop)
        finally:
            writing.join(10)
            assert self._server is not None
            self._server.close()

    # --- reading -----------------------------------------------------------------------------
    def _read_loop(self, stop: threading.Event) -> None:
        assert self._server is not None
        sel = selectors.DefaultSelector()
        sel.register(self._server, selectors.EVENT_READ, None)
        partial: dict[socket.socket, bytes] = {}
        expected: dict[socket.socket, int] = {}  # lines still to come of the current batch
        try:
            while not stop.is_set():
                for key, _ in sel.select(0.2):
                    if key.data is None:
                        conn, _ = self._server.accept()
                        conn.setblocking(False)
                        sel.register(conn, selectors.EVENT_READ, "conn")
                        partial[conn] = b""
                        continue
                    conn = key.fileobj  # type: ignore[assignment]
                    try:
                        data = conn.recv(1 << 20)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(conn)
                        conn.close()
                        partial.pop(conn, None)
                        # A batch cut by a connection that died: what it announced and did not
                        # bring is lost (its cut last line included).
                        self.cut += expected.pop(conn, 0)
                        continue
                    *lines, partial[conn] = (partial[conn] + data).split(b"\n")
                    for line in lines:
                        if line.startswith(b"#"):
                            if line.startswith(b"#batch\t"):
                                self.cut += expected.get(conn, 0)
                                expected[conn] = int(line[7:] or 0)
                            else:
                                self._status(line)
                        else:
                            expected[conn] = expected.get(conn, 0) - 1
                            self._enqueue(line.decode("latin-1"))
        finally:
            for conn in partial:
                conn.close()
            sel.close()

    def _status(self, line: bytes) -> None:
        """capture.lua's counts since its previous batch (deltas: they add up over HAProxy's
        threads, reconnections and reloads)."""
        name, _, value = line.partition(b"\t")
        try:
            n = int(value or 0)
        except ValueError:
            return
        self.heard_at = time.time()
        if name == b"#queued":
            self.lua_queued += n
        elif name == b"#dropped":
            self.lua_dropped += n
            self.dropped += n
        elif name == b"#nolines":
            self.lua_nolines += n

    def _enqueue(self, line: str) -> None:
        self.received += 1
        if len(self.pending) >= self.max_pending:
            self.dropped += 1
        else:
            self.pending.append(line)

    # --- writing -----------------------------------------------------------------------------
    def _write_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write what is pending: one file per destination directory. Returns records written."""
        pending = self.pending
        lines = [pending.popleft() for _ in range(len(pending))]
        # (destination, fleet, hour) -> the batch file's relative path (its first record's
        # time), lines: one file per batch, fleet and hour directory, the path worked out once.
        # Each file has its own id: two fleets of one variant (a canary's blue and green) share
        # a directory, and their first records often share a millisecond.
        files: dict[tuple[str, str, int], tuple[str, list[str]]] = {}
        fleets: dict[str, FleetCapture | None] = {}
        for line in lines:
            captured = parse_line(line, next(self._ids))
            if captured is None:
                self.malformed += 1
                continue
            fleet_id = captured.backend.removeprefix("f.")
            if fleet_id not in fleets:
                fleets[fleet_id] = self.captures.get(fleet_id)
            fleet = fleets[fleet_id]
            if fleet is None or fleet.rule is None:
                self.unrouted += 1
                continue
            key = (fleet.rule.destination, fleet_id, captured.time_ms // 3_600_000)
            entry = files.get(key)
            if entry is None:
                rel = relative_path(
                    fleet.endpoint, fleet.variant, captured.time_ms, uuid.uuid4().hex
                )
                entry = files[key] = (str(rel), [])
            entry[1].append(record_text(captured, fleet.rule, fleet.config_name, fleet.fleet_id))
        count = 0
        for (uri, _, _), (relative, entries) in files.items():
            body = "\n".join(entries) + "\n"
            try:
                self.destination.write(uri, relative, body.encode())
            except Exception:  # a failing destination loses this batch, never the process
                log.exception("capture batch to %s failed", uri)
                self.failed += len(entries)
                continue
            count += len(entries)
        self.written += count
        self._report()
        return count

    def _report(self) -> None:
        """Warn when records were lost since the last report; write the counts for the CLI."""
        if self.lost > self._reported:
            log.warning(
                "data capture lost %d records (%d in all: dropped %d, of them %d in HAProxy's "
                "queue; cut in transit %d, malformed %d, unrouted %d, failed writes %d, "
                "without a line %d); written %d",
                self.lost - self._reported,
                self.lost,
                self.dropped,
                self.lua_dropped,
                self.cut,
                self.malformed,
                self.unrouted,
                self.failed,
                self.lua_nolines,
                self.written,
            )
            self._reported = self.lost
        try:
            tmp = self.stats_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.stats()))
            tmp.rename(self.stats_path)
        except OSError:
            log.exception("capture stats not written to %s", self.stats_path)
