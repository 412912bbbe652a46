"""The state the fuzz suite works against: one model, config, endpoint (1 instance) and alarm,
named so that generated documents often hit them (deeper validation paths, real lookups)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

MODEL, CONFIG, ENDPOINT, ALARM = "fz-model", "fz-config", "fz-ep", "fz-alarm"
NAMES = [MODEL, CONFIG, ENDPOINT, ALARM, "AllTraffic"]


def create(sm: Any, cloudwatch: Any, model_dir: Path, timeout: float = 120) -> None:
    """Create the fixtures with boto3 clients and wait until the endpoint is InService."""
    sm.create_model(
        ModelName=MODEL,
        PrimaryContainer={
            "Image": "greenshift/model-server",
            "ModelDataUrl": f"file://{model_dir}",
        },
    )
    sm.create_endpoint_config(
        EndpointConfigName=CONFIG,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": MODEL,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=CONFIG)
    cloudwatch.put_metric_alarm(
        AlarmName=ALARM,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}],
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    deadline = time.monotonic() + timeout
    while sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] != "InService":
        if time.monotonic() > deadline:
            raise TimeoutError(f"{ENDPOINT} not InService in {timeout} s")
        time.sleep(0.5)
