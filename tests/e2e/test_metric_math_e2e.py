"""End to end, real processes: a metric-math alarm put with plain boto3 (the new fleet's 5XX
rate minus the old fleet's, over 10 s) trips on a faulty canary and rolls it back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from greenshift.loadgen import SteadyLoad
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack
from tests.e2e.test_alarm_rollback import canary, describe_deployment, wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def fleet_5xx_rate(endpoint: str, config: str) -> dict[str, Any]:
    return {
        "Metric": {
            "Namespace": "AWS/SageMaker",
            "MetricName": "Invocation5XXErrors",
            "Dimensions": [
                {"Name": "EndpointName", "Value": endpoint},
                {"Name": "VariantName", "Value": "AllTraffic"},
                {"Name": "EndpointConfigName", "Value": config},
            ],
        },
        "Period": 10,
        "Stat": "Average",
    }


def test_a_metric_math_alarm_on_new_minus_old_5xx_rolls_back_a_faulty_canary(
    stack: Stack,
) -> None:
    sm, cw = stack.client("sagemaker"), stack.client("cloudwatch")
    create_model(sm, "mm-echo", "echo-v1")
    create_model(sm, "mm-faulty", "faulty")
    create_config(sm, "mm-v1", "mm-echo", count=3)
    create_config(sm, "mm-bad", "mm-faulty", count=3)
    sm.create_endpoint(EndpointName="mm", EndpointConfigName="mm-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="mm", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    cw.put_metric_alarm(
        AlarmName="mm-gap",
        Metrics=[
            {"Id": "new", "MetricStat": fleet_5xx_rate("mm", "mm-bad"), "ReturnData": False},
            {"Id": "old", "MetricStat": fleet_5xx_rate("mm", "mm-v1"), "ReturnData": False},
            {
                "Id": "gap",
                "Expression": "FILL(new, 0) - FILL(old, 0)",
                "Label": "new 5XX rate minus old",
                "ReturnData": True,
            },
        ],
        EvaluationPeriods=1,
        Threshold=0.05,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
    )
    described = cw.describe_alarms(AlarmNames=["mm-gap"])["MetricAlarms"][0]
    assert [m["Id"] for m in described["Metrics"]] == ["new", "old", "gap"]

    load = SteadyLoad(stack.settings.runtime_url, "mm", rate=40, duration=100).start()
    try:
        time.sleep(1.0)
        sm.update_endpoint(
            EndpointName="mm", EndpointConfigName="mm-bad", DeploymentConfig=canary("mm-gap")
        )
        started = time.monotonic()
        settled = wait_settled(sm, "mm")
        took = time.monotonic() - started
    finally:
        load.stop()
    assert settled["EndpointStatus"] == "InService"
    assert settled["EndpointConfigName"] == "mm-v1"
    assert "mm-gap" in settled.get("FailureReason", ""), settled
    # Well within the canary's 60 s bake: the alarm, not the bake's end, ended it.
    assert took < 45, took
    deployment = describe_deployment(stack, "mm")["Deployment"]
    assert deployment["Outcome"] == "RolledBack"
    print(f"metric-math rollback: {took:.1f} s from UpdateEndpoint to InService on mm-v1")
