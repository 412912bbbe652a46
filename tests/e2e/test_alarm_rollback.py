"""End to end, real processes: a CANARY deployment to a faulty model trips a CloudWatch alarm on
the new fleet's 5XX errors and rolls itself back, fast, with only the canary's share failing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from greenshift.client import GreenshiftClient
from greenshift.loadgen import SteadyLoad
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

RATE = 40.0  # requests/s of the steady load
REACTION_LIMIT_SECONDS = 2.0  # alarm in ALARM -> rollback's first traffic step


def alarm_on_fleet(cw: Any, name: str, endpoint: str, config: str, **extra: Any) -> None:
    """The issue's alarm: Invocation5XXErrors Sum >= 1 over one 10 s period on one fleet."""
    cw.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
            {"Name": "EndpointConfigName", "Value": config},
        ],
        Statistic="Sum",
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        Period=10,
        EvaluationPeriods=1,
        **extra,
    )


def canary(alarm: str, wait: int = 60) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": wait,
            },
            "TerminationWaitInSeconds": 0,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": alarm}]},
    }


def wait_settled(sm: Any, endpoint: str, limit: float = 90) -> dict[str, Any]:
    """Poll until the endpoint has no deployment in flight (bounded)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        d: dict[str, Any] = sm.describe_endpoint(EndpointName=endpoint)
        if d["EndpointStatus"] not in ("Updating", "RollingBack", "Creating"):
            return d
        time.sleep(0.3)
    pytest.fail(f"{endpoint} did not settle in {limit} s")


def describe_deployment(stack: Stack, endpoint: str) -> dict[str, Any]:
    """Greenshift.DescribeDeployment of the endpoint's latest deployment (record and events)."""
    client = GreenshiftClient(stack.settings)
    try:
        return client.call("DescribeDeployment", {"EndpointName": endpoint})
    finally:
        client.close()


def first_alarm_time(cw: Any, alarm: str) -> float:
    history = cw.describe_alarm_history(AlarmName=alarm, HistoryItemType="StateUpdate")
    to_alarm = [
        h["Timestamp"].timestamp()
        for h in history["AlarmHistoryItems"]
        if h["HistorySummary"].endswith("to ALARM")
    ]
    assert to_alarm, history["AlarmHistoryItems"]
    return min(to_alarm)


@pytest.fixture(scope="module")
def models(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    create_model(sm, "ar-echo-v1", "echo-v1")
    create_model(sm, "ar-faulty", "faulty")


def test_canary_on_a_faulty_model_rolls_back_on_its_alarm(stack: Stack, models: None) -> None:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    create_config(sm, "ar-v1", "ar-echo-v1", count=3)
    create_config(sm, "ar-bad", "ar-faulty", count=3)
    sm.create_endpoint(EndpointName="ar", EndpointConfigName="ar-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="ar", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    alarm_on_fleet(cw, "ar-bad-5xx", "ar", "ar-bad")

    load = SteadyLoad(stack.settings.runtime_url, "ar", rate=RATE, duration=100).start()
    # Wall-clock time of the load's t=0, to place its answers among the deployment's events.
    wall_zero = time.time() - (time.monotonic() - load.started_at)
    try:
        time.sleep(1.0)
        sm.update_endpoint(
            EndpointName="ar", EndpointConfigName="ar-bad", DeploymentConfig=canary("ar-bad-5xx")
        )
        settled = wait_settled(sm, "ar")
        # Traffic is back on v1 once the endpoint settles: the next requests all answer v1.
        settled_at = time.monotonic() - load.started_at
        time.sleep(2.0)
    finally:
        report = load.stop()

    assert settled["EndpointStatus"] == "InService"
    assert settled["EndpointConfigName"] == "ar-v1"
    assert "ar-bad-5xx" in settled.get("FailureReason", ""), settled

    # The alarm went to ALARM, and the rollback's first traffic step came at most 2 s later.
    alarmed_at = first_alarm_time(cw, "ar-bad-5xx")
    deployment = describe_deployment(stack, "ar")
    assert deployment["Deployment"]["Outcome"] == "RolledBack", deployment["Deployment"]
    rollback_traffic = [
        e["Time"]
        for e in deployment["Events"]
        if e["Type"] == "StepStarted"
        and e["Message"].startswith("Rolling back: Moving all traffic")
    ]
    assert rollback_traffic, [(e["Type"], e["Message"]) for e in deployment["Events"]]
    reaction = rollback_traffic[0] - alarmed_at
    assert 0 <= reaction <= REACTION_LIMIT_SECONDS, (reaction, deployment["Events"])

    # Requests that failed are the faulty canary's ModelErrors, and only while the canary had
    # traffic: from its traffic step to the rollback's traffic step being applied (the next step,
    # terminate, starts only once the router confirmed it), give or take a request's latency.
    events = {e["Message"]: e["Time"] for e in deployment["Events"]}
    canary_on = next(t for m, t in events.items() if m.startswith("Activating traffic"))
    canary_off = next(t for m, t in events.items() if m.startswith("Rolling back: Terminating"))
    answers = report.answers
    failed = report.failed
    assert failed, "the canary never got traffic"
    assert {a.error_type for a in failed} == {"ModelError"}, failed[:5]
    slack = 0.5
    outside = [a for a in failed if not canary_on - slack <= wall_zero + a.at <= canary_off + slack]
    assert outside == [], (outside[:5], canary_on - wall_zero, canary_off - wall_zero)
    # The canary (1 instance of the 3 the variant has) gets a third of the requests.
    first, last = min(a.at for a in failed), max(a.at for a in failed)
    window = [a for a in answers if first <= a.at <= last]
    share = len(failed) / len(window)
    assert abs(share - 1 / 3) <= 0.15, (share, len(failed), len(window))
    after = [a for a in answers if a.at > settled_at]
    assert after and all(a.status == 200 and a.version == "v1" for a in after), after[:5]


def test_an_alarm_already_in_alarm_fails_the_deployment_before_any_instance(
    stack: Stack, models: None
) -> None:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    create_config(sm, "pre-v1", "ar-echo-v1", count=2)
    create_config(sm, "pre-v2", "ar-echo-v1", count=2)
    sm.create_endpoint(EndpointName="pre", EndpointConfigName="pre-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="pre", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    # `breaching`: the new fleet has no data yet, so evaluation keeps the alarm in ALARM.
    alarm_on_fleet(cw, "pre-5xx", "pre", "pre-v2", TreatMissingData="breaching")
    cw.set_alarm_state(AlarmName="pre-5xx", StateValue="ALARM", StateReason="test: tripped")
    assert cw.describe_alarms(AlarmNames=["pre-5xx"])["MetricAlarms"][0]["StateValue"] == "ALARM"

    sm.update_endpoint(
        EndpointName="pre", EndpointConfigName="pre-v2", DeploymentConfig=canary("pre-5xx")
    )
    settled = wait_settled(sm, "pre")
    assert settled["EndpointStatus"] == "InService"
    assert settled["EndpointConfigName"] == "pre-v1"
    assert "pre-5xx" in settled.get("FailureReason", ""), settled
    events = describe_deployment(stack, "pre")["Events"]
    launched = [e for e in events if "Launching" in e["Message"]]
    assert launched == [], [(e["Type"], e["Message"]) for e in events]


def test_a_missing_alarm_is_refused_when_the_request_arrives(stack: Stack, models: None) -> None:
    sm = stack.client("sagemaker")
    create_config(sm, "miss-v1", "ar-echo-v1", count=2)
    create_config(sm, "miss-v2", "ar-echo-v1", count=2)
    sm.create_endpoint(EndpointName="miss", EndpointConfigName="miss-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="miss", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    with pytest.raises(ClientError) as refused:
        sm.update_endpoint(
            EndpointName="miss", EndpointConfigName="miss-v2", DeploymentConfig=canary("no-such")
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "no-such" in refused.value.response["Error"]["Message"]
    d = sm.describe_endpoint(EndpointName="miss")
    assert d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "miss-v1"
