"""End to end, real processes: a built-in judge alarm (ERROR_JUDGE over the new and old fleets'
Invocation5XXErrors), put with plain boto3, judges each bake. A faulty canary under steady
traffic is rolled back and the verdict with its figures is an event; a canary with too little
traffic is not passed: its bake is extended, each look an event, and an abort rolls it back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from greenshift.client import GreenshiftClient
from greenshift.loadgen import SteadyLoad
from greenshift.metrics.judge import Z_BOUNDARY
from greenshift.metrics.verdicts import EXTENDED_EVENT, VERDICT_EVENT
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack
from tests.e2e.test_alarm_rollback import canary, describe_deployment, wait_settled
from tests.e2e.test_metric_math_e2e import fleet_5xx_rate

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def put_judge(cw: Any, name: str, endpoint: str, new: str, old: str) -> None:
    cw.put_metric_alarm(
        AlarmName=name,
        Metrics=[
            {"Id": "new", "MetricStat": fleet_5xx_rate(endpoint, new), "ReturnData": False},
            {"Id": "old", "MetricStat": fleet_5xx_rate(endpoint, old), "ReturnData": False},
            {"Id": "verdict", "Expression": "ERROR_JUDGE(new, old)", "ReturnData": True},
        ],
        EvaluationPeriods=6,
        DatapointsToAlarm=1,
        Threshold=Z_BOUNDARY,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="missing",
    )


def events_of(stack: Stack, endpoint: str, kind: str) -> list[dict[str, Any]]:
    events = describe_deployment(stack, endpoint)["Events"]
    return [e for e in events if e["Type"] == kind]


@pytest.fixture(scope="module")
def models(stack: Stack) -> None:
    sm = stack.client("sagemaker")
    create_model(sm, "jd-echo", "echo-v1")
    create_model(sm, "jd-faulty", "faulty")


def test_the_judge_rolls_back_a_faulty_canary_and_records_its_verdict(
    stack: Stack, models: None
) -> None:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    create_config(sm, "jd-v1", "jd-echo", count=3)
    create_config(sm, "jd-bad", "jd-faulty", count=3)
    sm.create_endpoint(EndpointName="jd", EndpointConfigName="jd-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="jd", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    put_judge(cw, "jd-judge", "jd", "jd-bad", "jd-v1")
    load = SteadyLoad(stack.settings.runtime_url, "jd", rate=40, duration=100).start()
    try:
        time.sleep(1.0)
        sm.update_endpoint(
            EndpointName="jd", EndpointConfigName="jd-bad", DeploymentConfig=canary("jd-judge")
        )
        started = time.monotonic()
        settled = wait_settled(sm, "jd")
        took = time.monotonic() - started
    finally:
        load.stop()
    assert settled["EndpointConfigName"] == "jd-v1"
    assert "jd-judge" in settled.get("FailureReason", ""), settled
    assert took < 55, took  # within the canary's 60 s bake
    (verdict,) = events_of(stack, "jd", VERDICT_EVENT)
    assert verdict["Detail"]["Verdict"] == "Fail", verdict
    assert verdict["Detail"]["NewRequests"] >= 100 and verdict["Detail"]["Z"] > Z_BOUNDARY
    assert "the new fleet is worse" in verdict["Message"]
    print(f"judge rollback: {took:.1f} s; {verdict['Message']}")


def test_a_canary_with_too_little_traffic_is_extended_not_passed(
    stack: Stack, models: None
) -> None:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    create_config(sm, "jq-v1", "jd-echo", count=2)
    create_config(sm, "jq-v2", "jd-echo", count=2)
    sm.create_endpoint(EndpointName="jq", EndpointConfigName="jq-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="jq", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    put_judge(cw, "jq-judge", "jq", "jq-v2", "jq-v1")
    load = SteadyLoad(stack.settings.runtime_url, "jq", rate=2, duration=100).start()
    try:
        sm.update_endpoint(
            EndpointName="jq",
            EndpointConfigName="jq-v2",
            DeploymentConfig=canary("jq-judge", wait=5),
        )
        deadline = time.monotonic() + 90
        while not events_of(stack, "jq", EXTENDED_EVENT):
            assert time.monotonic() < deadline, describe_deployment(stack, "jq")
            time.sleep(0.5)
        described = sm.describe_endpoint(EndpointName="jq")
        assert described["EndpointStatus"] == "Updating"  # not passed: still baking
        (verdict,) = events_of(stack, "jq", VERDICT_EVENT)
        assert verdict["Detail"]["Verdict"] == "LacksData", verdict
        assert verdict["Detail"]["NewRequests"] < 100
        assert "not enough data" in verdict["Message"]
        client = GreenshiftClient(stack.settings)
        try:
            client.call("AbortDeployment", {"EndpointName": "jq", "Reason": "quiet canary"})
        finally:
            client.close()
        settled = wait_settled(sm, "jq")
    finally:
        load.stop()
    assert settled["EndpointConfigName"] == "jq-v1"
    assert "quiet canary" in settled.get("FailureReason", ""), settled
