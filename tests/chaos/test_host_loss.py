"""The chaos suite's host-loss trial (issue 16): three agents on 127.0.0.2/.3/.4; during a CANARY
update under steady traffic one whole host is SIGKILLed (its agent and every instance it runs).
The lost instances are replaced on the surviving hosts, the deployment ends as its alarm says
(on the new config, or rolled back if the new fleet's 5xx tripped it), the invariants of the
chaos suite hold over every host's processes, the only failed requests are ones in flight on the
killed host at the kill (counted and bounded), and the healer's events say what it did."""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from greenshift.hosts import replacement
from greenshift.loadgen import SteadyLoad
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.e2e.agents import Agents, spread, wait_hosts
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack, processes_mentioning, running_stack
from tests.harness.chaos.invariants import (
    Snapshot,
    haproxy_servers,
    model_server_instances,
    violations,
)
from tests.harness.chaos.killers import haproxy_pids

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(360)]

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
VICTIM = HOSTS[-1]
LOST_AFTER = 3.0
TRIAL_BOUND = 120.0  # seconds from UpdateEndpoint to every check passed
RATE = 40.0
# Requests in flight on the killed host's instances at the kill: at RATE req/s with replies in
# milliseconds, one or two; the bound leaves room for a slow moment on a loaded machine.
IN_FLIGHT_BOUND = 6
ENDPOINT = "hostloss"
ALARM = "hostloss-green-5xx"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Agents]]:
    root = tmp_path_factory.mktemp("host-loss")
    env = {
        "GREENSHIFT_WORKER_AGENT": "false",
        "GREENSHIFT_HOST_LOST_AFTER_SECONDS": str(LOST_AFTER),
    }
    with running_stack(root / "stack", extra_env=env) as stack:
        agents = Agents(stack, root)
        try:
            for address in HOSTS:
                agents.start(address)
            yield stack, agents
        finally:
            _delete_endpoints(stack)
            agents.stop_all()
    assert processes_mentioning(str(root)) == []


def _delete_endpoints(stack: Stack) -> None:
    """While the surviving agents still run, so they stop their own instances."""
    sm = stack.client("sagemaker")
    for endpoint in sm.list_endpoints()["Endpoints"]:
        with contextlib.suppress(Exception):
            sm.delete_endpoint(EndpointName=endpoint["EndpointName"])
            sm.get_waiter("endpoint_deleted").wait(
                EndpointName=endpoint["EndpointName"], WaiterConfig={"Delay": 1, "MaxAttempts": 90}
            )


def _snapshot(stack: Stack, agents: Agents, registry: SqlRegistry, config: str) -> Snapshot:
    """The chaos suite's facts, with the model-server processes of every host's home."""
    record = registry.get_endpoint(ENDPOINT)
    assert record is not None
    processes: Counter[str] = Counter()
    for address in HOSTS:
        processes += model_server_instances(Settings(home=agents.home(address)))
    return Snapshot(
        status=str(getattr(record.status, "value", record.status)),
        config_name=record.config_name or "",
        expected_config=config,
        expected_count=6,
        fleets={
            f.fleet_id: (f.config_name, f.desired_count)
            for f in registry.list_fleets(ENDPOINT)
            if not f.retired
        },
        instances={
            i.instance_id: (i.fleet_id, i.state) for i in registry.list_instances(endpoint=ENDPOINT)
        },
        processes=set(processes),
        duplicates=tuple(iid for iid, n in processes.items() if n > 1),
        servers=haproxy_servers(stack.settings),
        haproxy_groups=len({os.getpgid(pid) for pid in haproxy_pids(stack.settings)}),
    )


def test_a_host_killed_mid_canary_under_load_is_replaced_and_the_update_ends_as_its_alarm_says(
    fleet: tuple[Stack, Agents],
) -> None:
    stack, agents = fleet
    sm = stack.client("sagemaker")
    registry = SqlRegistry(stack.settings.registry_url)
    try:
        wait_hosts(stack, 3)
        create_model(sm, "hl-v1", "echo-v1")
        create_model(sm, "hl-v2", "echo-v2")
        create_config(sm, "hl-c1", "hl-v1", count=6)
        create_config(sm, "hl-c2", "hl-v2", count=6)
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="hl-c1")
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=ENDPOINT, WaiterConfig={"Delay": 1, "MaxAttempts": 180}
        )
        assert spread(registry, ENDPOINT, "hl-c1") == {h: 2 for h in HOSTS}
        cw = stack.client("cloudwatch")
        cw.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[
                {"Name": "EndpointName", "Value": ENDPOINT},
                {"Name": "VariantName", "Value": "AllTraffic"},
                {"Name": "EndpointConfigName", "Value": "hl-c2"},
            ],
            Statistic="Sum",
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            Period=10,
            EvaluationPeriods=1,
        )

        load = SteadyLoad(stack.settings.runtime_url, ENDPOINT, rate=RATE, duration=240).start()
        statuses: set[str] = set()
        try:
            began = time.monotonic()
            sm.update_endpoint(
                EndpointName=ENDPOINT,
                EndpointConfigName="hl-c2",
                DeploymentConfig={
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 2},
                            "WaitIntervalInSeconds": 10,
                        },
                        "TerminationWaitInSeconds": 2,
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": ALARM}]},
                },
            )
            # Kill the host once the canary bakes: both fleets have 2 instances on it.
            deadline = began + 60
            while True:
                d = sm.describe_endpoint(EndpointName=ENDPOINT)
                statuses.add(d["EndpointStatus"])
                pending = d.get("PendingDeploymentSummary", {}).get("ProductionVariants", [])
                if any(
                    s.get("Status") == "Baking" for v in pending for s in v.get("VariantStatus", [])
                ):
                    break
                assert time.monotonic() < deadline, d
                time.sleep(0.2)
            assert spread(registry, ENDPOINT, "hl-c2").get(VICTIM) == 2
            killed_at = time.monotonic()
            agents.kill(VICTIM, registry)

            replaced_after: float | None = None
            deadline = began + TRIAL_BOUND
            while True:
                d = sm.describe_endpoint(EndpointName=ENDPOINT)
                statuses.add(d["EndpointStatus"])
                settled = d["EndpointStatus"] == "InService" and "PendingDeploymentSummary" not in d
                serving = d["EndpointConfigName"] if settled else "hl-c2"
                replaced = spread(registry, ENDPOINT, serving) == {HOSTS[0]: 3, HOSTS[1]: 3}
                if replaced and replaced_after is None:
                    replaced_after = time.monotonic() - killed_at
                if settled and replaced:
                    break
                assert time.monotonic() < deadline, (d, spread(registry, ENDPOINT, serving))
                time.sleep(0.3)
            settled_after = time.monotonic() - began
            time.sleep(1)
        finally:
            report = load.stop()
        assert statuses <= {"InService", "Updating", "RollingBack"}, statuses
        # The alarm decides: the canary completes unless the green fleet's 5xx tripped it.
        history = cw.describe_alarm_history(AlarmName=ALARM, HistoryItemType="StateUpdate")
        tripped = any("to ALARM" in h["HistorySummary"] for h in history["AlarmHistoryItems"])
        expected = "hl-c1" if tripped else "hl-c2"
        assert d["EndpointConfigName"] == expected, (d.get("FailureReason"), history)
        if tripped:
            assert ALARM in d["FailureReason"], d["FailureReason"]
        else:
            assert "FailureReason" not in d, d["FailureReason"]

        # The suite's invariants, over every host's processes: one config serving, 6 InService
        # instances each with exactly one process, nothing orphaned, HAProxy agreeing.
        assert violations(_snapshot(stack, agents, registry, expected)) == []
        other = "hl-c2" if expected == "hl-c1" else "hl-c1"
        assert spread(registry, ENDPOINT, other) == Counter()

        # Requests: none lost but those in flight on the killed host at the kill.
        kill = killed_at - load.started_at
        in_flight = [a for a in report.failed if a.at - 0.05 <= kill <= a.at + a.latency + 0.05]
        assert report.sent > RATE * 15
        assert [a for a in report.failed if a not in in_flight] == [], report.failed[:5]
        assert len(in_flight) <= IN_FLIGHT_BOUND, in_flight
        assert {"v1", "v2"} <= set(report.by_version())

        # The healer's report: both fleets' loss, the serving fleet's replacement.
        events = [
            e
            for deployment in registry.list_deployments(ENDPOINT)
            for e in registry.list_events(deployment.deployment_id)
            if e.actor == "healer"
        ]
        serving_fleet = next(
            f.fleet_id for f in registry.list_fleets(ENDPOINT) if f.config_name == expected
        )
        lost = [e for e in events if e.type == replacement.HOST_LOST]
        assert sorted(e.detail["instances"] for e in lost) == [2, 2], events
        assert all(e.message.startswith(f"Host {VICTIM} lost") for e in lost)
        replacements = [
            e
            for e in events
            if e.type == replacement.INSTANCES_REPLACED and e.detail["fleet_id"] == serving_fleet
        ]
        assert len(replacements) == 1, events
        assert "back to 6 of 6 healthy instance(s)" in replacements[0].message
        assert not [e for e in events if e.type == replacement.REPLACEMENT_ABANDONED]
        print(
            f"host loss mid-CANARY: 6/6 on the survivors {replaced_after:.1f} s after the kill; "
            f"settled on {expected} (alarm tripped: {tripped}) {settled_after:.1f} s after "
            "UpdateEndpoint; "
            f"{report.sent} requests, {len(report.failed)} failed (in flight at the kill); "
            f"healer: {[(e.type, e.message) for e in events]}"
        )
    finally:
        registry.close()
