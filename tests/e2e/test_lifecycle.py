"""End to end, with real processes on 127.0.0.1, driven only through boto3 and the AWS CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from greenshift.loadgen import SteadyLoad
from tests.e2e.conftest import create_config, create_model
from tests.e2e.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


def test_canary_update_under_traffic_loses_no_request(stack: Stack) -> None:
    canary_lifecycle(stack)


def canary_lifecycle(stack: Stack) -> None:
    """Create, invoke, CANARY update under load (no request lost), delete: through boto3 only."""
    sm = stack.client("sagemaker")
    runtime = stack.client("sagemaker-runtime")
    create_model(sm, "echo-v1", "echo-v1")
    create_model(sm, "echo-v2", "echo-v2")
    create_config(sm, "life-v1", "echo-v1", count=2)
    create_config(sm, "life-v2", "echo-v2", count=2)

    sm.create_endpoint(EndpointName="life", EndpointConfigName="life-v1")
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="life", WaiterConfig={"Delay": 1, "MaxAttempts": 120}
    )
    answer = runtime.invoke_endpoint(
        EndpointName="life", Body=json.dumps({"x": 1}), ContentType="application/json"
    )
    assert json.loads(answer["Body"].read()) == {"version": "v1", "input": {"x": 1}}
    assert answer["InvokedProductionVariant"] == "AllTraffic"

    load = SteadyLoad(stack.settings.runtime_url, "life", rate=50, duration=120).start()
    try:
        sm.update_endpoint(
            EndpointName="life",
            EndpointConfigName="life-v2",
            DeploymentConfig={
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                        "WaitIntervalInSeconds": 6,
                    },
                    "TerminationWaitInSeconds": 2,
                }
            },
        )
        saw_baking = False
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            d = sm.describe_endpoint(EndpointName="life")
            pending = d.get("PendingDeploymentSummary")
            if pending:
                assert d["EndpointConfigName"] == "life-v1", "top level shows the serving fleet"
                assert pending["EndpointConfigName"] == "life-v2"
                statuses = [
                    s["Status"]
                    for v in pending["ProductionVariants"]
                    for s in v.get("VariantStatus", [])
                ]
                saw_baking = saw_baking or "Baking" in statuses
            if d["EndpointStatus"] == "InService" and d["EndpointConfigName"] == "life-v2":
                break
            time.sleep(0.3)
        else:
            pytest.fail("the CANARY deployment did not finish in 120 s")
        assert saw_baking, "DescribeEndpoint never showed a Baking variant during the bake"
        assert "PendingDeploymentSummary" not in d
        assert (
            d["LastDeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"][
                "Type"
            ]
            == "CANARY"
        )
        time.sleep(1)
    finally:
        report = load.stop()
    assert report.sent > 100
    assert report.failed == [], f"{len(report.failed)} failed: {report.failed[:5]}"
    assert {"v1", "v2"} <= set(report.by_version())

    sm.delete_endpoint(EndpointName="life")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="life", WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    with pytest.raises(ClientError) as missing:
        sm.describe_endpoint(EndpointName="life")
    assert missing.value.response["Error"]["Code"] == "ValidationException"


def _aws(stack: Stack, *args: str) -> dict:
    aws = Path(sys.executable).parent / "aws"
    done = subprocess.run(
        [
            str(aws),
            "sagemaker",
            *args,
            "--endpoint-url",
            stack.settings.api_url,
            "--output",
            "json",
        ],
        env={
            **stack.env(),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": stack.settings.region,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout) if done.stdout.strip() else {}


def test_lifecycle_through_the_aws_cli(stack: Stack) -> None:
    echo = Path(__file__).resolve().parents[2] / "examples" / "models" / "echo-v1"
    _aws(
        stack,
        "create-model",
        "--model-name",
        "cli-model",
        "--primary-container",
        json.dumps({"Image": "greenshift/model-server", "ModelDataUrl": f"file://{echo}"}),
    )
    _aws(
        stack,
        "create-endpoint-config",
        "--endpoint-config-name",
        "cli-config",
        "--production-variants",
        json.dumps(
            [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "cli-model",
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ]
        ),
    )
    created = _aws(
        stack,
        "create-endpoint",
        "--endpoint-name",
        "cli-ep",
        "--endpoint-config-name",
        "cli-config",
    )
    assert created["EndpointArn"].endswith(":endpoint/cli-ep")
    _aws(stack, "wait", "endpoint-in-service", "--endpoint-name", "cli-ep")
    described = _aws(stack, "describe-endpoint", "--endpoint-name", "cli-ep")
    assert described["EndpointStatus"] == "InService"
    listed = _aws(stack, "list-endpoints")
    assert "cli-ep" in [e["EndpointName"] for e in listed["Endpoints"]]
    _aws(stack, "delete-endpoint", "--endpoint-name", "cli-ep")
    _aws(stack, "wait", "endpoint-deleted", "--endpoint-name", "cli-ep")
