"""End to end, real processes: a rollout group of three endpoints in two waves under steady
traffic moves them all with no failed request; a second group whose second wave is a faulty
model trips the group's alarm and moves all three back, newest first."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

import pytest
from click.testing import CliRunner

from greenshift.cli.main import cli
from greenshift.client import GreenshiftClient
from greenshift.loadgen import SteadyLoad
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack
from tests.e2e.test_alarm_rollback import alarm_on_fleet

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ENDPOINTS = ["rg-model", "rg-features", "rg-ranker"]
RATE = 10.0  # requests/s on each endpoint


def all_at_once(wait: int, alarm: str | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": wait},
            "TerminationWaitInSeconds": 0,
        }
    }
    if alarm:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": alarm}]}
    return config


def group(name: str, to: dict[str, str], alarm: str | None, wait: dict[str, int]) -> dict[str, Any]:
    def update(endpoint: str) -> dict[str, Any]:
        return {
            "EndpointName": endpoint,
            "EndpointConfigName": to[endpoint],
            "DeploymentConfig": all_at_once(wait[endpoint]),
        }

    return {
        "RolloutGroupName": name,
        "Waves": [
            {"Updates": [update(ENDPOINTS[0]), update(ENDPOINTS[1])]},
            {"Updates": [update(ENDPOINTS[2])]},
        ],
        "Alarms": [{"AlarmName": alarm}] if alarm else [],
    }


def _t(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["Time"])).timestamp()


def span(view: dict[str, Any]) -> float:
    return _t(view["Events"][-1]) - _t(view["Events"][0])


def wait_group(client: GreenshiftClient, name: str, limit: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        view = client.call("DescribeRolloutGroup", {"RolloutGroupName": name})
        if view["Status"] not in ("Running", "RollingBack"):
            return view
        time.sleep(0.5)
    pytest.fail(f"group {name} did not end in {limit} s")


def test_a_group_moves_three_endpoints_then_a_second_rolls_all_back(stack: Stack) -> None:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    client = GreenshiftClient(stack.settings)
    create_model(sm, "rg-v1", "echo-v1")
    create_model(sm, "rg-v2", "echo-v2")
    create_model(sm, "rg-bad", "faulty")
    for endpoint in ENDPOINTS:
        for version, model in (("v1", "rg-v1"), ("v2", "rg-v2"), ("v3", "rg-v1")):
            create_config(sm, f"{endpoint}-{version}", model, count=1)
    create_config(sm, "rg-ranker-bad", "rg-bad", count=1)
    for endpoint in ENDPOINTS:
        sm.create_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-v1")
    for endpoint in ENDPOINTS:
        sm.get_waiter("endpoint_in_service").wait(
            EndpointName=endpoint, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
    # The group's alarm: 5XX on the faulty fleet of the second wave's endpoint.
    alarm_on_fleet(cw, "rg-5xx", "rg-ranker", "rg-ranker-bad")

    # The group's plan, wave by wave, from `greenshift plan --rollout-group`.
    to = {e: f"{e}-v2" for e in ENDPOINTS}
    where = ["--api-port", str(stack.settings.api_port), "--home", str(stack.settings.home_dir)]
    plan_file = stack.settings.home_dir / "rg-one.json"
    plan_file.write_text(json.dumps(group("rg-one", to, "rg-5xx", dict.fromkeys(ENDPOINTS, 2))))
    planned = CliRunner().invoke(cli, ["plan", "--rollout-group", str(plan_file), *where])
    assert planned.exit_code == 0, planned.output
    assert "=== wave 2 of 2 ===" in planned.output and "--- rg-ranker" in planned.output
    assert "alarms rg-5xx watched throughout" in planned.output

    # 1. Three endpoints, two waves, steady traffic on each: all move, nothing fails.
    loads = [
        SteadyLoad(stack.settings.runtime_url, e, rate=RATE, duration=120).start()
        for e in ENDPOINTS
    ]
    try:
        time.sleep(1.0)
        to = {e: f"{e}-v2" for e in ENDPOINTS}
        client.call("StartRolloutGroup", group("rg-one", to, "rg-5xx", dict.fromkeys(ENDPOINTS, 2)))
        held = sm.update_endpoint(EndpointName=ENDPOINTS[2], EndpointConfigName="rg-ranker-v3")
        pytest.fail(f"a held endpoint took a direct UpdateEndpoint: {held}")
    except Exception as refused:  # botocore's ClientError
        assert "rollout group rg-one holds it" in str(refused), refused
        first = wait_group(client, "rg-one")
        time.sleep(1.0)
    finally:
        reports = [load.stop() for load in loads]
    assert first["Status"] == "Succeeded", first
    for endpoint in ENDPOINTS:
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == f"{endpoint}-v2"
    print(
        f"group 1: {span(first):.1f} s, requests {[r.sent for r in reports]}, "
        f"failed {[len(r.failed) for r in reports]}"
    )
    for report in reports:
        assert report.sent > 50 and report.failed == [], report.failed[:5]
    assert {v for r in reports for v in r.by_version()} >= {"v1", "v2"}

    # 2. The second wave deploys a faulty model: its alarm rolls all three back, newest first.
    load = SteadyLoad(stack.settings.runtime_url, ENDPOINTS[2], rate=20, duration=120).start()
    try:
        to = {ENDPOINTS[0]: "rg-model-v3", ENDPOINTS[1]: "rg-features-v3"}
        to[ENDPOINTS[2]] = "rg-ranker-bad"
        waits = {ENDPOINTS[0]: 1, ENDPOINTS[1]: 1, ENDPOINTS[2]: 60}
        client.call("StartRolloutGroup", group("rg-two", to, "rg-5xx", waits))
        second = wait_group(client, "rg-two")
    finally:
        load.stop()
    rollback = [e for e in second["Events"] if e["Type"] in ("RollbackStarted", "GroupRolledBack")]
    print(
        f"group 2: {span(second):.1f} s, rollback of the first wave "
        f"{_t(rollback[-1]) - _t(rollback[0]):.1f} s; reason: {second['Reason']}"
    )
    assert second["Status"] == "RolledBack", second
    assert "rg-5xx" in second["Reason"], second
    succeeded = [e["EndpointName"] for e in second["Events"] if e["Type"] == "EndpointSucceeded"]
    reverted = [e["EndpointName"] for e in second["Events"] if e["Type"] == "EndpointReverting"]
    assert sorted(succeeded) == sorted(ENDPOINTS[:2]) and reverted == succeeded[::-1], second
    history = CliRunner().invoke(cli, ["rollout-group", "history", "rg-two", *where])
    assert history.exit_code == 0, history.output
    assert "rg-two: RolledBack" in history.output and "EndpointReverted" in history.output
    for endpoint in ENDPOINTS:
        d = sm.describe_endpoint(EndpointName=endpoint)
        assert d["EndpointStatus"] == "InService"
        assert d["EndpointConfigName"] == f"{endpoint}-v2", d

    # 3. StopRolloutGroup mid-wave: the moving updates roll themselves back, the group says who.
    # (No group alarm: rg-5xx may still be in ALARM from the faulty fleet of group 2.)
    to = {e: f"{e}-v3" for e in ENDPOINTS}
    client.call("StartRolloutGroup", group("rg-three", to, None, dict.fromkeys(ENDPOINTS, 60)))
    deadline = time.monotonic() + 60
    while True:
        view = client.call("DescribeRolloutGroup", {"RolloutGroupName": "rg-three"})
        if view["Wave"] == 1 and all(
            sm.describe_endpoint(EndpointName=e)["EndpointStatus"] == "Updating"
            for e in ENDPOINTS[:2]
        ):
            break
        assert time.monotonic() < deadline, view
        time.sleep(0.3)
    stopped = client.call("StopRolloutGroup", {"RolloutGroupName": "rg-three", "Reason": "drill"})
    assert stopped["Result"]["accepted"] is True
    third = wait_group(client, "rg-three")
    assert third["Status"] == "RolledBack", third
    assert third["Reason"].endswith(": drill"), third
    for endpoint in ENDPOINTS:
        assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == f"{endpoint}-v2"
    client.close()
