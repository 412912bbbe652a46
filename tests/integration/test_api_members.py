"""Members through boto3 (SEMANTICS.md 8): what Greenshift does not build is refused by name
and leaves nothing behind; the honoured forms of the partly refused members work."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from greenshift.fleet.modeldata import container_of
from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    IMAGE,
    Api,
    api_factory_fixture,
    api_fixture,
    in_service,
    make_model,
    sm_fixture,
    snapshot,
)

ROLE = "arn:aws:iam::000000000000:role/greenshift"
CONTAINER = {"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}
VARIANT = {
    "VariantName": "A",
    "ModelName": "m1",
    "InstanceType": "ml.m5.large",
    "InitialInstanceCount": 1,
}


def model(**extra: Any) -> tuple[str, dict[str, Any]]:
    return "create_model", {"ModelName": "m9", "PrimaryContainer": CONTAINER, **extra}


def config(variant: dict[str, Any] | None = None, **extra: Any) -> tuple[str, dict[str, Any]]:
    return "create_endpoint_config", {
        "EndpointConfigName": "c9",
        "ProductionVariants": [{**VARIANT, **(variant or {})}],
        **extra,
    }


CAPTURE = {
    "EnableCapture": True,
    "InitialSamplingPercentage": 100,
    "DestinationS3Uri": "s3://b/capture",
    "CaptureOptions": [{"CaptureMode": "Input"}],
}
ASYNC = {"OutputConfig": {"S3OutputPath": "s3://b/out"}}
VPC = {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (model(PrimaryContainer={**CONTAINER, "Mode": "MultiModel"}), "Mode MultiModel"),
        (model(PrimaryContainer=None, Containers=[CONTAINER, CONTAINER]), "more than one"),
        (model(Containers=None, EnableNetworkIsolation=True), "EnableNetworkIsolation true"),
        (model(VpcConfig=VPC), "VpcConfig"),
        (model(InferenceExecutionConfig={"Mode": "Direct"}), "Mode Direct"),
        (config(DataCaptureConfig=CAPTURE), "DataCaptureConfig"),
        (config(AsyncInferenceConfig=ASYNC), "AsyncInferenceConfig"),
        (config({"ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 1}}), "Serverless"),
        (config(EnableNetworkIsolation=True), "EnableNetworkIsolation true"),
        (config(VpcConfig=VPC), "VpcConfig"),
        (config({"VolumeSizeInGB": 10}), "VolumeSizeInGB"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_unsupported_requests_are_refused(
    api: Api, sm: Any, call: tuple[str, dict[str, Any]], named: str
) -> None:
    make_model(sm)
    operation, params = call
    params = {k: v for k, v in params.items() if v is not None}
    before = snapshot(api.registry)
    with pytest.raises(ClientError) as exc:
        getattr(sm, operation)(**params)
    err = exc.value.response["Error"]
    assert err["Code"] == "ValidationException"
    assert err["Message"].startswith("Greenshift does not support ")
    assert named in err["Message"]
    assert snapshot(api.registry) == before


def test_excluding_data_capture_from_retained_properties_is_refused(api: Api, sm: Any) -> None:
    in_service(api, sm)
    sm.create_endpoint_config(EndpointConfigName="c2", ProductionVariants=[VARIANT])
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(
            EndpointName="e1",
            EndpointConfigName="c2",
            RetainAllVariantProperties=True,
            ExcludeRetainedVariantProperties=[{"VariantPropertyType": "DataCaptureConfig"}],
        )
    assert "VariantPropertyType DataCaptureConfig" in exc.value.response["Error"]["Message"]
    assert len(api.starter.starts) == 1  # the create only


def test_execution_role_is_kept_and_described(sm: Any) -> None:
    sm.create_model(ModelName="m1", PrimaryContainer=CONTAINER, ExecutionRoleArn=ROLE)
    assert sm.describe_model(ModelName="m1")["ExecutionRoleArn"] == ROLE


def test_one_container_in_containers_is_the_primary(api: Api, sm: Any) -> None:
    sm.create_model(ModelName="m1", Containers=[CONTAINER])
    assert sm.describe_model(ModelName="m1")["Containers"] == [CONTAINER]
    record = api.registry.get_model("m1")
    assert record is not None
    # What an instance of this model runs: the one container, as if it were PrimaryContainer.
    assert container_of(record.spec) == container_of({"PrimaryContainer": CONTAINER})


def test_serial_inference_execution_of_one_container_is_accepted(sm: Any) -> None:
    sm.create_model(
        ModelName="m1", Containers=[CONTAINER], InferenceExecutionConfig={"Mode": "Serial"}
    )
    described = sm.describe_model(ModelName="m1")
    assert described["InferenceExecutionConfig"] == {"Mode": "Serial"}


def test_network_isolation_false_is_the_default(sm: Any) -> None:
    sm.create_model(ModelName="m1", PrimaryContainer=CONTAINER, EnableNetworkIsolation=False)
    sm.create_endpoint_config(
        EndpointConfigName="c1", ProductionVariants=[VARIANT], EnableNetworkIsolation=False
    )
    assert sm.describe_model(ModelName="m1")["EnableNetworkIsolation"] is False
