"""Three hosts on one machine: three `greenshift agent`s on 127.0.0.2/.3/.4, each with a home of
its own, beside a `greenshift up` whose worker holds no agent. Loopback addresses beyond
127.0.0.1 answer on Linux without any setup."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from greenshift.loadgen import SteadyLoad
from greenshift.registry.sql import SqlRegistry
from tests.e2e.agents import Agents, spread, wait_hosts
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack, processes_mentioning, running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(480)]

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
LOST_AFTER = 3.0


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Agents]]:
    root = tmp_path_factory.mktemp("hosts")
    env = {"GREENSHIFT_WORKER_AGENT": "false", "GREENSHIFT_HOST_LOST_AFTER_SECONDS": "3"}
    with running_stack(root / "stack", extra_env=env) as stack:
        agents = Agents(stack, root)
        try:
            for address in HOSTS:
                agents.start(address)
            yield stack, agents
        finally:
            _stop_instances(stack, agents)
            agents.stop_all()
    assert processes_mentioning(str(root)) == []


def _stop_instances(stack: Stack, agents: Agents) -> None:
    """Endpoints deleted while the agents still run, so their instances are stopped by them."""
    sm = stack.client("sagemaker")
    for endpoint in sm.list_endpoints()["Endpoints"]:
        with contextlib.suppress(Exception):
            sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
            sm.get_waiter("endpoint_deleted").wait(
                EndpointName=endpoint["EndpointName"], WaiterConfig={"Delay": 1, "MaxAttempts": 90}
            )


def _registry(stack: Stack) -> SqlRegistry:
    return SqlRegistry(stack.settings.registry_url)


def _canary(sm: object, endpoint: str, config: str) -> None:
    sm.update_endpoint(  # type: ignore[attr-defined]
        EndpointName=endpoint,
        EndpointConfigName=config,
        DeploymentConfig={
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2},
                    "WaitIntervalInSeconds": 3,
                },
                "TerminationWaitInSeconds": 1,
            }
        },
    )


def _wait_config(sm: object, endpoint: str, config: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = sm.describe_endpoint(EndpointName=endpoint)  # type: ignore[attr-defined]
        assert d["EndpointStatus"] in ("InService", "Updating"), d.get("FailureReason")
        if d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == config:
            return
        time.sleep(0.3)
    pytest.fail(f"{endpoint} did not reach {config} in {timeout} s")


def test_six_instances_spread_two_per_host_and_a_canary_moves_them_losing_nothing(
    fleet: tuple[Stack, Agents],
) -> None:
    stack, _ = fleet
    sm = stack.client("sagemaker")
    registry = _registry(stack)
    try:
        wait_hosts(stack, 3)
        create_model(sm, "hosts-v1", "echo-v1")
        create_model(sm, "hosts-v2", "echo-v2")
        create_config(sm, "hosts-c1", "hosts-v1", count=6)
        create_config(sm, "hosts-c2", "hosts-v2", count=6)
        sm.create_endpoint(EndpointName="spread", EndpointConfigName="hosts-c1")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName="spread", WaiterConfig={"Delay": 1, "MaxAttempts": 180}
        )
        assert spread(registry, "spread", "hosts-c1") == {h: 2 for h in HOSTS}
        planned = _cli(stack, "plan", "spread", "--endpoint-config", "hosts-c2")
        assert planned.returncode == 0, planned.stdout + planned.stderr
        expected = ", ".join(f"{h}: 2" for h in HOSTS)
        assert f"AllTraffic  ml.m5.large x 6  ->  {expected}" in planned.stdout, planned.stdout

        load = SteadyLoad(stack.settings.runtime_url, "spread", rate=40, duration=180).start()
        try:
            _canary(sm, "spread", "hosts-c2")
            _wait_config(sm, "spread", "hosts-c2")
            time.sleep(1)
        finally:
            report = load.stop()
        assert report.sent > 100
        assert report.failed == [], f"{len(report.failed)} failed: {report.failed[:5]}"
        assert {"v1", "v2"} <= set(report.by_version())
        assert spread(registry, "spread", "hosts-c2") == {h: 2 for h in HOSTS}
    finally:
        registry.close()


def test_a_killed_host_is_replaced_on_the_others_and_nothing_is_orphaned_when_it_returns(
    fleet: tuple[Stack, Agents],
) -> None:
    stack, agents = fleet
    sm = stack.client("sagemaker")
    runtime = stack.client("sagemaker-runtime")
    registry = _registry(stack)
    try:
        wait_hosts(stack, 3)
        assert sm.describe_endpoint(EndpointName="spread")["EndpointStatus"] == "InService"
        before = spread(registry, "spread", "hosts-c2")
        assert before == {h: 2 for h in HOSTS}
        victim = HOSTS[-1]
        load = SteadyLoad(stack.settings.runtime_url, "spread", rate=40, duration=120).start()
        try:
            time.sleep(1)
            killed_at = time.monotonic()
            agents.kill(victim, registry)
            out_by = replaced_by = None
            deadline = killed_at + 60
            while time.monotonic() < deadline:
                d = sm.describe_endpoint(EndpointName="spread")
                assert d["EndpointStatus"] == "InService"
                placed = spread(registry, "spread", "hosts-c2")
                if out_by is None and placed.get(victim, 0) == 0:
                    out_by = time.monotonic() - killed_at
                if sum(placed.values()) == 6 and victim not in placed:
                    replaced_by = time.monotonic() - killed_at
                    break
                time.sleep(0.2)
            assert out_by is not None and out_by <= LOST_AFTER + 3, out_by
            assert replaced_by is not None, "the lost host's instances were not replaced in 60 s"
            time.sleep(1)
        finally:
            report = load.stop()
        print(f"host loss: out of rotation in {out_by:.1f} s, replaced in {replaced_by:.1f} s")
        assert spread(registry, "spread", "hosts-c2") == {HOSTS[0]: 3, HOSTS[1]: 3}
        # Only requests in flight at the kill may fail (the data plane retries on connect).
        assert len(report.failed) <= 5, report.failed[:5]
        answer = runtime.invoke_endpoint(EndpointName="spread", Body=json.dumps({"x": 1}))
        assert json.loads(answer["Body"].read())["version"] == "v2"

        agents.start(victim)  # the host returns: its stale instances are stopped, not doubled
        deadline = time.monotonic() + 60
        while registry.list_instances(host=victim):
            assert time.monotonic() < deadline, "the returned host kept its stale instances"
            time.sleep(0.3)
        assert spread(registry, "spread", "hosts-c2") == {HOSTS[0]: 3, HOSTS[1]: 3}
        assert processes_mentioning(str(agents.home(victim) / "instances")) == []
    finally:
        registry.close()


def _cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "greenshift", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_drain_under_traffic_loses_nothing_and_a_drain_that_cannot_fit_changes_nothing(
    fleet: tuple[Stack, Agents],
) -> None:
    from greenshift.hosts.store import HostStore

    stack, _ = fleet
    registry = _registry(stack)
    store = HostStore(stack.settings.registry_url)
    try:
        wait_hosts(stack, 3)
        assert sum(spread(registry, "spread", "hosts-c2").values()) == 6
        drained = HOSTS[0]
        load = SteadyLoad(stack.settings.runtime_url, "spread", rate=40, duration=200).start()
        try:
            done = _cli(stack, "hosts", "drain", drained)
            time.sleep(1)
        finally:
            report = load.stop()
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"{drained} drained" in done.stdout
        assert report.sent > 50
        assert report.failed == [], f"{len(report.failed)} failed: {report.failed[:5]}"
        placed = spread(registry, "spread", "hosts-c2")
        assert drained not in placed and sum(placed.values()) == 6, placed
        assert registry.list_instances(host=drained) == []

        listing = _cli(stack, "hosts")
        assert listing.returncode == 0, listing.stderr
        assert "Draining" in listing.stdout and "Alive" in listing.stdout

        # The last open host cannot be drained: nothing would hold its instances.
        store.set_draining(HOSTS[2], True)
        before = sorted((r.instance_id, r.host, r.state) for r in registry.list_instances())
        refused = _cli(stack, "hosts", "drain", HOSTS[1])
        assert refused.returncode != 0
        assert "ResourceLimitExceeded" in refused.stderr and f"Cannot drain {HOSTS[1]}" in (
            refused.stderr
        )
        host = store.get(HOSTS[1])
        assert host is not None and not host.draining
        assert sorted((r.instance_id, r.host, r.state) for r in registry.list_instances()) == (
            before
        )
    finally:
        store.close()
        registry.close()


def test_a_host_killed_in_the_middle_of_a_linear_update_ends_on_one_config(
    fleet: tuple[Stack, Agents],
) -> None:
    from greenshift.hosts.store import HostStore

    stack, agents = fleet
    sm = stack.client("sagemaker")
    registry = _registry(stack)
    store = HostStore(stack.settings.registry_url)
    try:
        for address in HOSTS:  # undo the drains of the test before
            store.set_draining(address, False)
        victim = HOSTS[1]
        sm.update_endpoint(
            EndpointName="spread",
            EndpointConfigName="hosts-c1",
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 34},
                        "WaitIntervalInSeconds": 3,
                    },
                    "TerminationWaitInSeconds": 1,
                }
            },
        )
        deadline = time.monotonic() + 60
        while "PendingDeploymentSummary" not in sm.describe_endpoint(EndpointName="spread"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        time.sleep(2)
        agents.kill(victim, registry)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            d = sm.describe_endpoint(EndpointName="spread")
            assert d["EndpointStatus"] in ("Updating", "InService"), d.get("FailureReason")
            if d["EndpointStatus"] == "InService":
                break
            time.sleep(0.5)
        else:
            pytest.fail("the LINEAR update did not settle in 240 s")
        serving = d["EndpointConfigName"]
        assert serving in ("hosts-c1", "hosts-c2")
        other = "hosts-c2" if serving == "hosts-c1" else "hosts-c1"
        deadline = time.monotonic() + 60
        while sum(spread(registry, "spread", serving).values()) != 6:
            assert time.monotonic() < deadline, spread(registry, "spread", serving)
            time.sleep(0.3)
        assert victim not in spread(registry, "spread", serving)
        assert spread(registry, "spread", other) == Counter()
        print(f"LINEAR with a host killed mid-way ended on {serving}: {d.get('FailureReason')}")
    finally:
        store.close()
        registry.close()
