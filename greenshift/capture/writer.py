"""The capture writer: receives capture.lua's batches on a unix socket and writes them as
SageMaker capture files, off the request path.

Two threads with a bounded queue between them: the reader only splits lines (so HAProxy's send
never waits on a disk), the writer turns them into records and writes one file per batch and
destination directory every `flush_seconds`. A full queue drops records and counts them
(`dropped`): memory stays bounded whatever the disk does, and HAProxy's own queue (capture.lua)
is bounded the same way when this process does not read.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

from greenshift.capture.rules import dumps, parse_line, record, relative_path
from greenshift.capture.source import FleetCaptures

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
        self.pending: queue.Queue[str] = queue.Queue(max_pending)
        self.destination = destination or Destination()
        self.dropped = 0  # here and in HAProxy's queue (capture.lua reports its own)
        self.written = 0
        self.received = 0
        self.lua_queued = 0
        self.lua_nolines = 0
        self._server: socket.socket | None = None

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
                        continue
                    *lines, partial[conn] = (partial[conn] + data).split(b"\n")
                    for line in lines:
                        if line.startswith(b"#nolines\t"):
                            self.lua_nolines = int(line.split(b"\t", 1)[1])
                            continue
                        if line.startswith(b"#queued\t"):
                            self.lua_queued = int(line.split(b"\t", 1)[1])
                            continue
                        if line.startswith(b"#dropped\t"):
                            self.dropped += int(line.split(b"\t", 1)[1] or 0)
                            continue
                        self._enqueue(line.decode("latin-1"))
        finally:
            for conn in partial:
                conn.close()
            sel.close()

    def _enqueue(self, line: str) -> None:
        self.received += 1
        try:
            self.pending.put_nowait(line)
        except queue.Full:
            self.dropped += 1

    # --- writing -----------------------------------------------------------------------------
    def _write_loop(self, stop: threading.Event) -> None:
        while not stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

    def flush(self) -> int:
        """Write what is pending: one file per destination directory. Returns records written."""
        lines: list[str] = []
        while True:
            try:
                lines.append(self.pending.get_nowait())
            except queue.Empty:
                break
        # (destination, directory) -> the batch file's name (its first record's time), lines
        files: dict[tuple[str, str], tuple[str, list[str]]] = {}
        batch_id = uuid.uuid4().hex[:12]
        for line in lines:
            captured = parse_line(line)
            if captured is None:
                continue
            fleet = self.captures.get(captured.backend.removeprefix("f."))
            if fleet is None or fleet.rule is None:
                continue
            rec = record(captured, fleet.rule, fleet.config_name, fleet.fleet_id)
            rel = relative_path(fleet.endpoint, fleet.variant, captured.time_ms, batch_id)
            key = (fleet.rule.destination, str(rel.parent))
            files.setdefault(key, (rel.name, []))[1].append(dumps(rec))
        count = 0
        for (uri, folder), (name, entries) in files.items():
            body = "".join(e + "\n" for e in entries)
            try:
                self.destination.write(uri, f"{folder}/{name}", body.encode())
            except Exception:  # a failing destination loses this batch, never the process
                log.exception("capture batch to %s failed", uri)
                continue
            count += body.count("\n")
        self.written += count
        return count
