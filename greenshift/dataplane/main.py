"""The data-plane process: HAProxy supervised by the router controller, plus the metrics
collector. `python -m greenshift.dataplane`; `greenshift up` runs `run_dataplane` too."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from greenshift.capture.writer import CaptureWriter
from greenshift.dataplane.controller import RouterController
from greenshift.dataplane.haproxy import HAProxyProcess
from greenshift.dataplane.relay import start_relays
from greenshift.heartbeat import HealthReporter
from greenshift.metrics.collector import MetricsCollector
from greenshift.metrics.model import MetricSink
from greenshift.registry.api import Registry
from greenshift.settings import Settings

log = logging.getLogger(__name__)


class FleetConfigs:
    """Backend name -> (endpoint, EndpointConfigName) from the registry's fleet records, cached
    (a fleet's config never changes); unknown fleets are asked again at most every 5 s."""

    def __init__(self, registry: Registry, clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self._clock = clock
        self._known: dict[str, tuple[str, str]] = {}
        self._missing: dict[str, float] = {}

    def __call__(self, backend: str) -> tuple[str, str] | None:
        found = self._known.get(backend)
        if found is not None:
            return found
        if self._clock() - self._missing.get(backend, -1e9) < 5.0:
            return None
        fleet = self.registry.get_fleet(backend.removeprefix("f."))
        if fleet is None:
            self._missing[backend] = self._clock()
            return None
        self._known[backend] = (fleet.endpoint, fleet.config_name)
        return self._known[backend]


def run_dataplane(
    settings: Settings,
    stop: threading.Event,
    registry: Registry | None = None,
    sink: MetricSink | None = None,
) -> None:
    """Run until `stop` is set: start HAProxy from the registry, keep it equal to the registry
    (restarting it if it dies), and turn its access log into metrics."""
    if registry is None:
        from greenshift.registry.sql import SqlRegistry

        registry = SqlRegistry(settings.registry_url)
    if sink is None:
        from greenshift.metrics.store import MetricStore

        sink = MetricStore(settings.registry_url)
    haproxy = HAProxyProcess(settings.home_dir / "dataplane")
    collector = MetricsCollector(
        haproxy.paths.log_socket,
        sink,
        FleetConfigs(registry),
        prometheus_file=haproxy.paths.root / "metrics.prom",
    )
    collector.bind()
    controller = RouterController(registry, haproxy, settings, access_log=True)
    collecting = threading.Thread(
        target=collector.run, args=(stop,), name="metrics-collector", daemon=True
    )
    collecting.start()
    # Data capture (greenshift/capture): HAProxy's capture.lua sends sampled invocations here.
    capture = CaptureWriter(haproxy.paths.capture_socket, controller.captures)
    capture.bind()
    capturing = threading.Thread(target=capture.run, args=(stop,), name="capture", daemon=True)
    capturing.start()
    # Response streams go through the stream relay; with SigV4 on, signed bodies too large for
    # HAProxy's buffer through the body-hash relay (relay.py).
    relaying = start_relays(haproxy.paths, controller.listen.sigv4, stop)
    log.info("data plane on %s (stats :%d)", settings.runtime_url, settings.stats_port)
    try:
        controller.run(stop, report=HealthReporter(settings, "dataplane"))
    finally:
        stop.set()
        haproxy.stop()
        collecting.join(5)
        capturing.join(15)
        for thread in relaying:
            thread.join(5)


def main() -> None:
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    run_dataplane(Settings(), stop)


if __name__ == "__main__":
    main()
