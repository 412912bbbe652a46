"""The data-plane process (run_dataplane): controller loop, traffic router confirm, metrics."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import urllib3

from greenshift.dataplane.main import run_dataplane
from greenshift.dataplane.router import RegistryTrafficRouter, RoutingNotAppliedError
from greenshift.heartbeat import problem_of
from greenshift.metrics.model import Datapoint
from greenshift.registry.records import EndpointRouting, FleetRecord, FleetRoute, VariantRoute
from greenshift.supervisor.components import components
from greenshift.supervisor.status_report import component_health
from tests.integration.dataplane_support import Dataplane, runtime_client, wait_for

pytestmark = pytest.mark.timeout(120)


class ListSink:
    def __init__(self) -> None:
        self.points: list[Datapoint] = []
        self.lock = threading.Lock()

    def put(self, points: list[Datapoint]) -> None:
        with self.lock:
            self.points.extend(points)

    def total(self, metric: str, **dims: str) -> tuple[float, float]:
        with self.lock:
            chosen = [p for p in self.points if p.metric_name == metric and p.dimensions == dims]
        return sum(p.count for p in chosen), sum(p.sum for p in chosen)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Dataplane, ListSink]]:
    dp = Dataplane(tmp_path, relays=False)  # run_dataplane serves them
    sink = ListSink()
    stop = threading.Event()
    thread = threading.Thread(
        target=run_dataplane, args=(dp.settings, stop, dp.registry, sink), daemon=True
    )
    thread.start()
    try:
        yield dp, sink
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive()
        dp.close()


def _fleet(fleet_id: str, variant: str, config: str) -> FleetRecord:
    return FleetRecord(
        fleet_id=fleet_id,
        endpoint="Shop",
        deployment_id="d-1",
        variant=variant,
        config_name=config,
        model_name="m",
        instance_type="ml.m5.large",
        model_spec={},
        created_at=datetime.now(UTC),
    )


def _routing(fleets: dict[str, str]) -> EndpointRouting:
    """Shop's routing: each variant (weight 1) to its one fleet."""
    return EndpointRouting(
        endpoint="Shop",
        variants=[
            VariantRoute(variant=v, weight=1, fleets=[FleetRoute(fleet_id=f, share=1)])
            for v, f in fleets.items()
        ],
    )


def test_confirm_waits_for_the_controller_and_metrics_flow(
    running: tuple[Dataplane, ListSink],
) -> None:
    dp, sink = running
    dp.registry.upsert_fleet(_fleet("Shop.A.ok", "A", "cfg-ok"))
    dp.registry.upsert_fleet(_fleet("Shop.B.bad", "B", "cfg-bad"))
    dp.instance("Shop", "A", "Shop.A.ok", 0, dp.model("echo-v1"))
    dp.instance("Shop", "B", "Shop.B.bad", 0, dp.model("faulty"))
    router = RegistryTrafficRouter(dp.registry, poll_seconds=0.05)
    messages: list[str] = []
    version = router.apply(_routing({"A": "Shop.A.ok", "B": "Shop.B.bad"}))
    router.confirm("Shop", version, 20, messages.append)
    assert dp.registry.get_routing("Shop").applied_version >= version  # type: ignore[union-attr]
    with pytest.raises(RoutingNotAppliedError):
        router.confirm("Shop", version + 1, 0.3, messages.append)
    assert messages  # progress was reported while waiting

    http = urllib3.PoolManager()
    statuses = []
    for _ in range(40):
        r = http.request("POST", f"{dp.url}/endpoints/Shop/invocations", body=b"{}")
        statuses.append((r.headers["x-Amzn-Invoked-Production-Variant"], r.status))
    ok = statuses.count(("A", 200))
    bad = statuses.count(("B", 424))
    assert ok + bad == 40 and ok > 5 and bad > 5

    def delivered() -> bool:
        return sink.total("Invocations", EndpointName="Shop", VariantName="A")[0] == ok and (
            sink.total("Invocations", EndpointName="Shop", VariantName="B")[0] == bad
        )

    wait_for(delivered, 10, "one second of metrics")
    assert sink.total("Invocation5XXErrors", EndpointName="Shop", VariantName="B") == (bad, bad)
    assert sink.total("Invocation5XXErrors", EndpointName="Shop", VariantName="A") == (ok, 0)
    per_config = sink.total(
        "Invocations", EndpointName="Shop", VariantName="A", EndpointConfigName="cfg-ok"
    )
    assert per_config == (ok, ok)
    with sink.lock:
        latency = [p for p in sink.points if p.metric_name == "ModelLatency"]
    assert latency and all(p.values and p.minimum >= 0 for p in latency)

    prom = dp.haproxy.paths.root / "metrics.prom"
    wait_for(prom.exists, 5, "the Prometheus file")
    text = prom.read_text()
    assert f'sagemaker_invocations_total{{EndpointName="Shop",VariantName="A"}} {ok}' in text


def test_streams_pass_the_process_stream_relay_and_are_counted_once(
    running: tuple[Dataplane, ListSink],
) -> None:
    """run_dataplane serves the stream relay every response stream passes through; each
    stream is counted once in the metrics, by the private frontend that routes it."""
    dp, sink = running
    dp.registry.upsert_fleet(_fleet("Shop.A.stream", "A", "cfg-stream"))
    dp.instance("Shop", "A", "Shop.A.stream", 0, dp.model("streamer"))
    router = RegistryTrafficRouter(dp.registry, poll_seconds=0.05)
    version = router.apply(_routing({"A": "Shop.A.stream"}))
    router.confirm("Shop", version, 20, lambda _: None)
    client = runtime_client(dp.url, read_timeout=30)
    for _ in range(5):
        answer = client.invoke_endpoint_with_response_stream(
            EndpointName="Shop", ContentType="application/json", Body=b'{"parts": 3, "delay": 0}'
        )
        parts = [event["PayloadPart"]["Bytes"] for event in answer["Body"]]
        assert b"".join(parts) == b"v1:0 v1:1 v1:2 "
    wait_for(
        lambda: sink.total("Invocations", EndpointName="Shop", VariantName="A")[0] >= 5,
        10,
        "the streams' metrics",
    )
    time.sleep(1.5)  # a second count would come with the next flush
    assert sink.total("Invocations", EndpointName="Shop", VariantName="A") == (5, 5)


def test_a_killed_haproxy_is_restarted_by_the_process(running: tuple[Dataplane, ListSink]) -> None:
    dp, _ = running
    dp.instance("Shop", "A", "Shop.A.ok", 0, dp.model("echo-v1"))
    dp.route("Shop", [("A", 1.0, [("Shop.A.ok", 1.0)])])
    http = urllib3.PoolManager(retries=False)

    def answers() -> bool:
        try:
            r = http.request("POST", f"{dp.url}/endpoints/Shop/invocations", body=b"{}")
        except urllib3.exceptions.HTTPError:
            return False
        return r.status == 200 and json.loads(r.data)["version"] == "v1"

    wait_for(answers, 15, "the endpoint")
    pid_file = dp.haproxy.paths.pid_file
    import os
    import signal

    master = int(pid_file.read_text().split()[0]) if pid_file.exists() else None
    assert master is not None
    os.kill(master, signal.SIGKILL)
    started = time.monotonic()
    time.sleep(0.3)
    wait_for(answers, 15, "the restarted endpoint")
    assert time.monotonic() - started < 10


def test_a_runtime_port_held_by_another_program_is_a_problem_status_names(tmp_path: Path) -> None:
    """Another program on the runtime port answers connections, so the port alone looked
    healthy while HAProxy could not start. The data plane says why in its problem file, its
    health check fails, and both clear once the port is free."""
    dp = Dataplane(tmp_path)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", dp.settings.runtime_port))
    squatter.listen()
    [dataplane] = [c for c in components(dp.settings) if c.name == "dataplane"]
    stop = threading.Event()
    thread = threading.Thread(
        target=run_dataplane, args=(dp.settings, stop, dp.registry, ListSink()), daemon=True
    )
    thread.start()
    try:
        wait_for(lambda: problem_of(dp.settings, "dataplane") is not None, 30, "a problem")
        problem = problem_of(dp.settings, "dataplane")
        assert problem is not None, "the problem file went away"
        assert "cannot bind socket (Address already in use)" in problem, problem
        assert str(dp.settings.runtime_port) in problem
        assert not dataplane.health()
        report = component_health(dp.settings)["dataplane"]
        assert report["problem"] == problem
        squatter.close()
        wait_for(lambda: problem_of(dp.settings, "dataplane") is None, 30, "the problem cleared")
        wait_for(dataplane.health, 10, "the data plane healthy")
    finally:
        squatter.close()
        stop.set()
        thread.join(20)
        assert not thread.is_alive()
        dp.close()
