"""The metrics collector: HAProxy's per-request log lines -> SageMaker metrics at 1 s resolution.

Why the access log and not the stats socket: the stats counters give per-server request and
status counts, but latency only as a moving average of the last 1024 requests (`rtime`,
`ttime`), so no per-second Average, Maximum or percentile. HAProxy logs every request
(config.py `log-format`): backend, status, the model's own status (before the 424 ModelError
rewrite), Tr (model latency) and Ta (total), the variant and the endpoint.

Why a ring and a stream, not one datagram per request: HAProxy writes each line into an
in-memory ring (`ring` section, no system call per request) and forwards the ring over one
unix stream connection per worker, newline-separated, to the socket this collector listens
on. A datagram socket cost a system call per request on both sides and, worse, Linux queues
at most `net.unix.max_dgram_qlen` (10 here) datagrams on a unix socket: under load HAProxy
dropped most lines and the metrics undercounted. The stream is read in large chunks a few
times a second, and identical lines (same backend, status, millisecond timings: most of them
under steady load) are parsed once and counted n times, so the Python side costs little per
request. If the collector stalls, the ring (4 MB, ~10 s at 10k req/s) absorbs it; HAProxy never
blocks on it. Measured cost in bench/dataplane_bench.py.

Per second and per (endpoint, variant) and (endpoint, variant, EndpointConfigName):
Invocations; Invocation4XXErrors and Invocation5XXErrors as 0/1 per request (count = requests,
sum = errors); ModelLatency and OverheadLatency in microseconds with a bounded sample.
Memory is bounded: seconds are flushed once complete, samples are capped, and the cumulative
counters exposed to Prometheus forget series idle for an hour.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import select
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from greenshift.metrics.model import (
    INVOCATION_4XX,
    INVOCATION_5XX,
    INVOCATIONS,
    MODEL_LATENCY,
    OVERHEAD_LATENCY,
    Datapoint,
    MetricSink,
)
from greenshift.metrics.prometheus import Dims, Totals, render

log = logging.getLogger(__name__)

LOG_TAG = "GS2"  # greenshift.dataplane.config.LOG_TAG (kept literal: metrics must not need it)
SAMPLE_PER_SECOND = 256
SERIES_IDLE_SECONDS = 3600.0
READ_INTERVAL = 0.05  # seconds between reads: batches of lines, not one wake-up per request
READ_CHUNK = 1 << 18
MAX_CONNECTIONS = 64  # one per HAProxy worker (old ones live on during a reload)


@dataclass(frozen=True)
class Request:
    """One request as HAProxy logged it."""

    backend: str
    status: int  # what the model answered (its status before the ModelError rewrite)
    model_ms: int  # Tr: -1 when the model never answered
    total_ms: int  # Ta
    variant: str
    endpoint: str


def parse_line(line: str) -> Request | None:
    """`GS2 <backend> <ST> <Tr> <Ta> <ostatus> <variant> <endpoint>`; None for anything else
    (requests that never reached a fleet: unknown endpoint, bad variant...)."""
    parts = line.strip().split(" ", 7)
    if len(parts) != 8 or parts[0] != LOG_TAG or not parts[1].startswith("f."):
        return None
    try:
        status = int(parts[2])
        if parts[5] not in ("-", "", "0"):
            status = int(parts[5])
        return Request(
            backend=parts[1],
            status=status,
            model_ms=int(parts[3]),
            total_ms=int(parts[4]),
            variant=parts[6],
            endpoint=parts[7],
        )
    except ValueError:
        return None


def split_lines(pending: bytes, data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines of a stream chunk, and the incomplete tail to prepend to the next one."""
    lines = (pending + data).split(b"\n")
    return lines[:-1], lines[-1]


@dataclass
class _Acc:
    count: int = 0
    e4: int = 0
    e5: int = 0
    model: list[float] = field(default_factory=list)
    model_n: int = 0
    model_sum: float = 0.0
    model_min: float = math.inf
    model_max: float = -math.inf
    over: list[float] = field(default_factory=list)
    over_sum: float = 0.0
    over_min: float = math.inf
    over_max: float = -math.inf

    def add(self, r: Request, rng: random.Random, n: int = 1) -> None:
        """Add `n` identical requests."""
        self.count += n
        self.e4 += n * (400 <= r.status < 500)
        self.e5 += n * (r.status >= 500)
        if r.model_ms < 0:
            return
        model_us = r.model_ms * 1000.0
        over_us = max(0, r.total_ms - r.model_ms) * 1000.0
        seen = self.model_n
        self.model_n += n
        self.model_sum += n * model_us
        self.model_min = min(self.model_min, model_us)
        self.model_max = max(self.model_max, model_us)
        self.over_sum += n * over_us
        self.over_min = min(self.over_min, over_us)
        self.over_max = max(self.over_max, over_us)
        # Reservoir sampling: a uniform sample of the second, whatever its rate.
        for k in range(seen + 1, seen + n + 1):
            if len(self.model) < SAMPLE_PER_SECOND:
                self.model.append(model_us)
                self.over.append(over_us)
            else:
                j = rng.randrange(k)
                if j < SAMPLE_PER_SECOND:
                    self.model[j] = model_us
                    self.over[j] = over_us


class Aggregator:
    """Pure bookkeeping: requests in, per-second Datapoints out (no I/O, no clock)."""

    def __init__(self, config_of: Callable[[str], tuple[str, str] | None], seed: int = 0) -> None:
        # backend name -> (endpoint, EndpointConfigName) from the registry's fleet records
        self._config_of = config_of
        self._seconds: dict[int, dict[Dims, _Acc]] = {}
        self.totals: dict[Dims, Totals] = {}
        self._rng = random.Random(seed)

    def add(self, r: Request, second: int, n: int = 1) -> None:
        """Add `n` identical requests of `second`."""
        fleet = self._config_of(r.backend)
        endpoint = fleet[0] if fleet else r.endpoint
        base = (("EndpointName", endpoint), ("VariantName", r.variant))
        keys: list[Dims] = [base]
        if fleet and fleet[1]:
            keys.append((*base, ("EndpointConfigName", fleet[1])))
        bucket = self._seconds.setdefault(second, {})
        for key in keys:
            bucket.setdefault(key, _Acc()).add(r, self._rng, n)
            t = self.totals.setdefault(key, Totals())
            t.invocations += n
            t.errors_4xx += n * (400 <= r.status < 500)
            t.errors_5xx += n * (r.status >= 500)
            if r.model_ms >= 0:
                t.latency_count += n
                t.model_latency_us_sum += n * r.model_ms * 1000.0
                t.overhead_latency_us_sum += n * max(0, r.total_ms - r.model_ms) * 1000.0
            t.last_seen = float(second)

    def flush(self, before_second: int) -> list[Datapoint]:
        """Datapoints of every second < before_second (each second is delivered once)."""
        points: list[Datapoint] = []
        for second in sorted(s for s in self._seconds if s < before_second):
            for dims, acc in self._seconds.pop(second).items():
                points.extend(_points(dict(dims), second, acc))
        idle = [
            k for k, t in self.totals.items() if t.last_seen < before_second - SERIES_IDLE_SECONDS
        ]
        for k in idle:
            del self.totals[k]
        return points


def _points(dims: dict[str, str], second: int, acc: _Acc) -> list[Datapoint]:
    def point(
        name: str, count: float, total: float, lo: float, hi: float, values: list[float]
    ) -> Datapoint:
        return Datapoint(
            metric_name=name,
            dimensions=dims,
            timestamp=second,
            count=count,
            sum=total,
            minimum=lo,
            maximum=hi,
            values=values,
        )

    n = acc.count
    out = [
        point(INVOCATIONS, n, n, 1, 1, []),
        # 0/1 per request: minimum is 0 unless every request failed, maximum 1 if any did.
        point(INVOCATION_4XX, n, acc.e4, float(acc.e4 == n), float(acc.e4 > 0), []),
        point(INVOCATION_5XX, n, acc.e5, float(acc.e5 == n), float(acc.e5 > 0), []),
    ]
    if acc.model_n:
        out.append(
            point(
                MODEL_LATENCY,
                acc.model_n,
                acc.model_sum,
                acc.model_min,
                acc.model_max,
                sorted(acc.model),
            )
        )
        out.append(
            point(
                OVERHEAD_LATENCY,
                acc.model_n,
                acc.over_sum,
                acc.over_min,
                acc.over_max,
                sorted(acc.over),
            )
        )
    return out


class MetricsCollector:
    """Listens for HAProxy's log streams, aggregates, and pushes each complete second to the
    sink."""

    def __init__(
        self,
        socket_path: Path,
        sink: MetricSink,
        config_of: Callable[[str], tuple[str, str] | None],
        prometheus_file: Path | None = None,
    ) -> None:
        self.socket_path = socket_path
        self.sink = sink
        self.aggregator = Aggregator(config_of)
        self.prometheus_file = prometheus_file
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self.received = 0

    def bind(self) -> None:
        """Listen before HAProxy starts (its ring keeps lines and reconnects meanwhile)."""
        self.socket_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        sock.listen(MAX_CONNECTIONS)
        sock.setblocking(False)
        self._sock = sock

    def run(self, stop: threading.Event) -> None:
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        listener = self._sock
        pending: dict[socket.socket, bytes] = {}  # connection -> incomplete last line
        next_flush = math.floor(time.time()) + 1
        try:
            while not stop.is_set():
                ready, _, _ = select.select([listener, *pending], [], [], 0.2)
                if listener in ready:
                    self._accept(listener, pending)
                lines: list[bytes] = []
                for conn in ready:
                    if conn is not listener:
                        self._read(conn, pending, lines)
                if lines:
                    self._add(lines)
                now = time.time()
                if now >= next_flush:
                    self.flush(math.floor(now))
                    next_flush = math.floor(now) + 1
                stop.wait(READ_INTERVAL)
        finally:
            self.flush(math.floor(time.time()) + 1)
            for conn in pending:
                conn.close()
            listener.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    @staticmethod
    def _accept(listener: socket.socket, pending: dict[socket.socket, bytes]) -> None:
        with contextlib.suppress(BlockingIOError):
            while len(pending) < MAX_CONNECTIONS:
                conn, _ = listener.accept()
                conn.setblocking(False)
                pending[conn] = b""

    @staticmethod
    def _read(conn: socket.socket, pending: dict[socket.socket, bytes], out: list[bytes]) -> None:
        """What the connection has queued; a closed one (a stopped worker) is forgotten."""
        chunks = []
        closed = False
        while True:
            try:
                data = conn.recv(READ_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                closed = True
                break
            if not data:
                closed = True
                break
            chunks.append(data)
            if len(data) < READ_CHUNK:
                break
        lines, pending[conn] = split_lines(pending[conn], b"".join(chunks))
        out.extend(lines)
        if closed:
            del pending[conn]
            conn.close()

    def _add(self, lines: list[bytes]) -> None:
        """Parse each distinct line once; one clock read for the batch."""
        second = math.floor(time.time())
        counted = [
            (request, n)
            for line, n in Counter(lines).items()
            if (request := parse_line(line.decode(errors="replace"))) is not None
        ]
        with self._lock:
            for request, n in counted:
                self.aggregator.add(request, second, n)
                self.received += n

    def flush(self, before_second: int) -> None:
        with self._lock:
            points = self.aggregator.flush(before_second)
            text = None
            if self.prometheus_file is not None:
                text = render(self.aggregator.totals)
        if points:
            try:
                self.sink.put(points)
            except Exception:  # a sink hiccup must not stop collection; that second is lost
                log.exception("metric sink refused %d datapoints", len(points))
        if text is not None and self.prometheus_file is not None:
            tmp = self.prometheus_file.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.replace(self.prometheus_file)

    def prometheus_text(self) -> str:
        with self._lock:
            return render(self.aggregator.totals)
