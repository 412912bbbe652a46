"""DescribeEndpoint rendering (pure), checked against botocore's output shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from greenshift.contracts.sagemaker_shapes import DescribeEndpointOutput
from greenshift.registry.records import (
    EndpointRecord,
    PendingDeployment,
    PendingVariant,
    VariantState,
    VariantStatusEntry,
)
from greenshift.render import MAX_VARIANT_STATUSES, describe_endpoint
from greenshift.status import EndpointStatus

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ARN = "arn:aws:sagemaker:us-east-1:000000000000:endpoint/e1"


def _record(**changes: object) -> EndpointRecord:
    base = EndpointRecord(
        name="E1",
        arn=ARN,
        status=EndpointStatus.IN_SERVICE,
        config_name="c1",
        config_snapshot={},
        variants=[
            VariantState(
                variant="A",
                model_name="m1",
                instance_type="ml.m5.large",
                current_weight=1.0,
                desired_weight=1.0,
                current_instance_count=3,
                desired_instance_count=3,
                image="img:1",
            )
        ],
        created_at=T0,
        last_modified=T0 + timedelta(seconds=90),
    )
    return base.model_copy(update=changes)


def test_in_service_endpoint() -> None:
    doc = describe_endpoint(_record())
    assert doc["EndpointStatus"] == "InService"
    assert doc["CreationTime"] == T0.timestamp()
    assert doc["ProductionVariants"][0]["DeployedImages"] == [
        {"SpecifiedImage": "img:1", "ResolvedImage": "img:1"}
    ]
    assert "PendingDeploymentSummary" not in doc and "FailureReason" not in doc
    DescribeEndpointOutput.model_validate(doc)  # the wire shape botocore expects


def test_deployment_in_flight_keeps_blue_on_top_and_shows_pending() -> None:
    statuses = [
        VariantStatusEntry(status=s, message=f"step {i}", start_time=T0 + timedelta(seconds=i))
        for i, s in enumerate(["Creating", "ActivatingTraffic", "Baking"] * 3)
    ]
    pending = PendingDeployment(
        config_name="c2",
        start_time=T0,
        variants=[
            PendingVariant(
                variant="A",
                model_name="m2",
                instance_type="ml.m5.large",
                current_weight=0.1,
                desired_weight=1.0,
                current_instance_count=1,
                desired_instance_count=3,
                statuses=statuses,
            )
        ],
        phase="bake",
    )
    dc = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
            }
        }
    }
    doc = describe_endpoint(
        _record(status=EndpointStatus.UPDATING, pending=pending, last_deployment_config=dc)
    )
    assert doc["EndpointConfigName"] == "c1"  # the serving fleet
    summary = doc["PendingDeploymentSummary"]
    assert summary["EndpointConfigName"] == "c2"
    [variant] = summary["ProductionVariants"]
    assert variant["InstanceType"] == "ml.m5.large"
    # botocore allows at most 5 statuses: the latest are kept.
    assert len(variant["VariantStatus"]) == MAX_VARIANT_STATUSES
    assert variant["VariantStatus"][-1]["Status"] == "Baking"
    assert doc["LastDeploymentConfig"] == dc
    DescribeEndpointOutput.model_validate(doc)


def test_creating_endpoint_has_no_variants_yet_and_failure_reason_is_capped() -> None:
    doc = describe_endpoint(
        _record(status=EndpointStatus.FAILED, variants=[], failure_reason="x" * 2000)
    )
    assert "ProductionVariants" not in doc
    assert len(doc["FailureReason"]) == 1024
    DescribeEndpointOutput.model_validate(doc)
