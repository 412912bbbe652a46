"""`python -m greenshift.api` as a real process with its real dependencies: the SageMaker and
CloudWatch protocols on one port, and Temporal down answered as ServiceUnavailable with nothing
left behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.api_process import running_api
from tests.harness.api_testing import free_port


@pytest.fixture
def api_process(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "GREENSHIFT_HOME": str(tmp_path),
        "GREENSHIFT_API_PORT": str(port),
        # Nothing listens there: Temporal is "down".
        "GREENSHIFT_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
    }
    env.pop("GREENSHIFT_ACCESS_KEYS", None)
    env.pop("GREENSHIFT_DATABASE_URL", None)
    with running_api(env, port) as api:
        yield api.url
    stderr = api.stderr
    assert "authentication is off" in stderr


def _client(service: str, url: str) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(retries={"total_max_attempts": 1}),
    )


def test_real_process_serves_sagemaker_and_cloudwatch(api_process: str) -> None:
    sm = _client("sagemaker", api_process)
    sm.create_model(ModelName="m1", PrimaryContainer={"Image": "img"})
    sm.create_endpoint_config(
        EndpointConfigName="c1",
        ProductionVariants=[
            {
                "VariantName": "A",
                "ModelName": "m1",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert exc.value.response["Error"]["Code"] == "ServiceUnavailable"
    assert sm.list_endpoints()["Endpoints"] == []  # the insert was undone

    cw = _client("cloudwatch", api_process)
    cw.put_metric_alarm(
        AlarmName="errors",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Statistic="Average",
        Period=60,
        EvaluationPeriods=1,
        Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold",
        Dimensions=[{"Name": "EndpointName", "Value": "e1"}, {"Name": "VariantName", "Value": "A"}],
    )
    assert [a["AlarmName"] for a in cw.describe_alarms()["MetricAlarms"]] == ["errors"]
