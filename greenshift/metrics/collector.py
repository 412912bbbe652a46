"""The metrics collector: HAProxy's per-request log lines -> SageMaker metrics at 1 s resolution.

Why the access log and not the stats socket: the stats counters give per-server request and
status counts, but latency only as a moving average of the last 1024 requests (`rtime`,
`ttime`), so no per-second Average, Maximum or percentile. HAProxy instead sends one datagram
per request (config.py `log-format`, format raw) to a unix socket this collector binds: backend,
status, the model's own status (before the 424 ModelError rewrite), Tr (model latency) and Ta
(total). Losing a datagram under overload loses a sample, never blocks HAProxy (datagram
sockets drop), and the stats socket remains the count source for `haproxy -> Prometheus`
scraping (its exporter on the stats port). Measured cost in bench/dataplane_bench.py.

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

LOG_TAG = "GS1"  # greenshift.dataplane.config.LOG_TAG (kept literal: metrics must not need it)
SAMPLE_PER_SECOND = 256
SERIES_IDLE_SECONDS = 3600.0


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
    """`GS1 <backend> <server> <ST> <Tr> <Ta> <Tw> <Tc> <ostatus> <variant> <endpoint>`; None for
    anything else (requests that never reached a fleet: unknown endpoint, bad variant...)."""
    parts = line.strip().split(" ", 10)
    if len(parts) != 11 or parts[0] != LOG_TAG or not parts[1].startswith("f."):
        return None
    try:
        status = int(parts[3])
        if parts[8] not in ("-", "", "0"):
            status = int(parts[8])
        return Request(
            backend=parts[1],
            status=status,
            model_ms=int(parts[4]),
            total_ms=int(parts[5]),
            variant=parts[9],
            endpoint=parts[10],
        )
    except ValueError:
        return None


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

    def add(self, r: Request, rng: random.Random) -> None:
        self.count += 1
        self.e4 += 400 <= r.status < 500
        self.e5 += r.status >= 500
        if r.model_ms < 0:
            return
        model_us = r.model_ms * 1000.0
        over_us = max(0, r.total_ms - r.model_ms) * 1000.0
        self.model_n += 1
        self.model_sum += model_us
        self.model_min = min(self.model_min, model_us)
        self.model_max = max(self.model_max, model_us)
        self.over_sum += over_us
        self.over_min = min(self.over_min, over_us)
        self.over_max = max(self.over_max, over_us)
        # Reservoir sampling: a uniform sample of the second, whatever its rate.
        if len(self.model) < SAMPLE_PER_SECOND:
            self.model.append(model_us)
            self.over.append(over_us)
        else:
            j = rng.randrange(self.model_n)
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

    def add(self, r: Request, second: int) -> None:
        fleet = self._config_of(r.backend)
        endpoint = fleet[0] if fleet else r.endpoint
        base = (("EndpointName", endpoint), ("VariantName", r.variant))
        keys: list[Dims] = [base]
        if fleet and fleet[1]:
            keys.append((*base, ("EndpointConfigName", fleet[1])))
        bucket = self._seconds.setdefault(second, {})
        for key in keys:
            bucket.setdefault(key, _Acc()).add(r, self._rng)
            t = self.totals.setdefault(key, Totals())
            t.invocations += 1
            t.errors_4xx += 400 <= r.status < 500
            t.errors_5xx += r.status >= 500
            if r.model_ms >= 0:
                t.latency_count += 1
                t.model_latency_us_sum += r.model_ms * 1000.0
                t.overhead_latency_us_sum += max(0, r.total_ms - r.model_ms) * 1000.0
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
    """Binds the access-log socket, aggregates, and pushes each complete second to the sink."""

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
        """Bind before HAProxy starts logging (it drops lines while nobody listens)."""
        self.socket_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        sock.bind(str(self.socket_path))
        self._sock = sock

    def run(self, stop: threading.Event) -> None:
        if self._sock is None:
            self.bind()
        assert self._sock is not None
        next_flush = math.floor(time.time()) + 1
        sock = self._sock
        sock.setblocking(False)
        try:
            while not stop.is_set():
                ready, _, _ = select.select([sock], [], [], 0.2)
                if ready:
                    self._drain(sock)
                now = time.time()
                if now >= next_flush:
                    self.flush(math.floor(now))
                    next_flush = math.floor(now) + 1
        finally:
            self.flush(math.floor(time.time()) + 1)
            self._sock.close()
            self._sock = None
            with contextlib.suppress(OSError):
                self.socket_path.unlink()

    def _drain(self, sock: socket.socket, budget: int = 2000) -> None:
        """Read what is queued (bounded, so flushing is never starved), one clock read."""
        second = math.floor(time.time())
        requests = []
        for _ in range(budget):
            try:
                data = sock.recv(4096)
            except BlockingIOError:
                break
            request = parse_line(data.decode(errors="replace"))
            if request is not None:
                requests.append(request)
        with self._lock:
            for request in requests:
                self.aggregator.add(request, second)
            self.received += len(requests)

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
