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
        # Data capture is built; encrypting what it writes with KMS is not.
        (config(DataCaptureConfig={**CAPTURE, "KmsKeyId": "k1"}), "DataCaptureConfig.KmsKeyId"),
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


@pytest.mark.parametrize("kind", ["models", "endpoint_configs"])
def test_list_members_of_models_and_configs(api: Api, sm: Any, kind: str) -> None:
    """Every List* member of ListModels / ListEndpointConfigs changes the answer."""
    from datetime import timedelta

    make_model(sm, "m1")
    for i in range(5):
        if kind == "models":
            make_model(sm, f"keep-{i}")
        else:
            sm.create_endpoint_config(EndpointConfigName=f"keep-{i}", ProductionVariants=[VARIANT])
    call = getattr(sm, f"list_{kind}")
    key = "Models" if kind == "models" else "EndpointConfigs"
    name = "ModelName" if kind == "models" else "EndpointConfigName"

    def names(**kwargs: Any) -> tuple[list[str], str | None]:
        page = call(**kwargs)
        return [item[name] for item in page[key]], page.get("NextToken")

    first, token = names(NameContains="KEEP", SortBy="Name", SortOrder="Descending", MaxResults=2)
    assert first == ["keep-4", "keep-3"] and token
    rest, token = names(NameContains="keep", SortBy="Name", SortOrder="Descending", NextToken=token)
    assert rest == ["keep-2", "keep-1", "keep-0"] and token is None
    created = next(item["CreationTime"] for item in call(NameContains="keep-2")[key])
    # botocore sends whole epoch seconds: bounds a few seconds around the creation time.
    after, _ = names(NameContains="keep", CreationTimeAfter=created - timedelta(seconds=5))
    before, _ = names(NameContains="keep", CreationTimeBefore=created + timedelta(seconds=5))
    assert "keep-2" in after and "keep-2" in before
    assert names(NameContains="keep", CreationTimeAfter=created + timedelta(hours=1))[0] == []
    assert names(NameContains="keep", CreationTimeBefore=created - timedelta(hours=1))[0] == []


def test_list_endpoints_time_filters(api: Api, sm: Any) -> None:
    from datetime import timedelta

    in_service(api, sm, name="e1")
    described = sm.describe_endpoint(EndpointName="e1")
    created, modified = described["CreationTime"], described["LastModifiedTime"]

    def names(**kwargs: Any) -> list[str]:
        return [e["EndpointName"] for e in sm.list_endpoints(**kwargs)["Endpoints"]]

    hour, margin = timedelta(hours=1), timedelta(seconds=5)  # botocore sends whole seconds
    assert names(CreationTimeAfter=created - margin, CreationTimeBefore=created + margin) == ["e1"]
    assert names(CreationTimeAfter=created + hour) == []
    assert names(CreationTimeBefore=created - hour) == []
    assert names(LastModifiedTimeAfter=modified - margin) == ["e1"]
    assert names(LastModifiedTimeAfter=modified + hour) == []
    assert names(LastModifiedTimeBefore=modified - hour) == []
