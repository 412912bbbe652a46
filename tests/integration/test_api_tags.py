"""Tags through boto3 (SEMANTICS.md 8: Tags are honoured): AddTags, ListTags with paging,
DeleteTags on models, endpoint configs and endpoints; the Tags of the create requests; AWS's
limits (50 per resource, key and value patterns, the reserved `aws:` prefix)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    IMAGE,
    Api,
    api_factory_fixture,
    api_fixture,
    in_service,
    make_config,
    make_model,
    sm_fixture,
)

ARN = "arn:aws:sagemaker:us-east-1:000000000000"


def tags_of(sm: Any, arn: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = sm.list_tags(ResourceArn=arn)["Tags"]
    return out


def code_and_message(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


def test_create_time_tags_are_stored_and_listed_for_each_kind(api: Api, sm: Any) -> None:
    model_arn = sm.create_model(
        ModelName="m1",
        PrimaryContainer={"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"},
        Tags=[{"Key": "team", "Value": "ml"}, {"Key": "cost-center", "Value": "42"}],
    )["ModelArn"]
    config_arn = sm.create_endpoint_config(
        EndpointConfigName="c1",
        ProductionVariants=[
            {
                "VariantName": "A",
                "ModelName": "m1",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
        Tags=[{"Key": "stage", "Value": "dev"}],
    )["EndpointConfigArn"]
    endpoint_arn = sm.create_endpoint(
        EndpointName="E1", EndpointConfigName="c1", Tags=[{"Key": "owner", "Value": "me@x"}]
    )["EndpointArn"]
    assert tags_of(sm, model_arn) == [
        {"Key": "team", "Value": "ml"},
        {"Key": "cost-center", "Value": "42"},
    ]
    assert tags_of(sm, config_arn) == [{"Key": "stage", "Value": "dev"}]
    assert tags_of(sm, endpoint_arn) == [{"Key": "owner", "Value": "me@x"}]
    # Tags are not part of the Describe answers, as on AWS.
    assert "Tags" not in sm.describe_model(ModelName="m1")


def test_add_overwrites_list_pages_delete_removes(api: Api, sm: Any) -> None:
    in_service(api, sm)
    arn = f"{ARN}:endpoint/e1"
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i:02}", "Value": str(i)} for i in range(30)])
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k05", "Value": "five"}, {"Key": "z", "Value": ""}])
    everything = [t for page in sm.get_paginator("list_tags").paginate(ResourceArn=arn,
        PaginationConfig={"PageSize": 50}) for t in page["Tags"]]  # fmt: skip
    assert len(everything) == 31
    assert everything[5] == {"Key": "k05", "Value": "five"}  # kept its place
    assert everything[-1] == {"Key": "z", "Value": ""}
    first = sm.list_tags(ResourceArn=arn, MaxResults=50)
    assert "NextToken" not in first and len(first["Tags"]) == 31
    sm.delete_tags(ResourceArn=arn, TagKeys=["k00", "k01", "not-there"])
    keys = [t["Key"] for t in tags_of(sm, arn)]
    assert "k00" not in keys and "k01" not in keys and len(keys) == 29


def test_paging_bounds(api: Api, sm: Any) -> None:
    """botocore's MaxResults minimum (50) equals the per-resource limit, so one page holds every
    tag; the bounds and the token are still checked server-side."""
    make_model(sm)
    arn = f"{ARN}:model/m1"
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i:02}", "Value": "v"} for i in range(50)])
    page = sm.list_tags(ResourceArn=arn, MaxResults=50)
    assert len(page["Tags"]) == 50 and "NextToken" not in page
    small = api.post("SageMaker.ListTags", f'{{"ResourceArn": "{arn}", "MaxResults": 10}}')
    assert small.json()["__type"] == "ValidationException"
    assert "greater than or equal to 50" in small.json()["message"]
    bad = api.post("SageMaker.ListTags", f'{{"ResourceArn": "{arn}", "NextToken": "zz"}}')
    assert bad.json()["__type"] == "ValidationException"


def test_limits_and_reserved_prefix(api: Api, sm: Any) -> None:
    make_model(sm)
    arn = f"{ARN}:model/m1"
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i:02}", "Value": "v"} for i in range(50)])
    with pytest.raises(ClientError) as exc:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "one-more", "Value": "v"}])
    code, message = code_and_message(exc)
    assert code == "ValidationException" and "at most 50 tags" in message
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "k00", "Value": "overwrite is fine at 50"}])
    with pytest.raises(ClientError) as exc:
        sm.add_tags(ResourceArn=arn, Tags=[{"Key": "aws:owner", "Value": "v"}])
    assert "reserved for AWS" in code_and_message(exc)[1]
    with pytest.raises(ClientError) as exc:
        sm.create_model(
            ModelName="m2",
            PrimaryContainer={"Image": IMAGE},
            Tags=[{"Key": "AWS:x", "Value": "v"}],
        )
    assert "reserved for AWS" in code_and_message(exc)[1]
    assert api.registry.get_model("m2") is None


def test_patterns_are_checked_server_side(api: Api) -> None:
    make_model(api.client())
    body = (
        '{"ResourceArn": "arn:aws:sagemaker:us-east-1:000000000000:model/m1", '
        '"Tags": [{"Key": "bad#key", "Value": "v"}]}'
    )
    response = api.post("SageMaker.AddTags", body)
    assert response.status_code == 400
    doc = response.json()
    assert doc["__type"] == "ValidationException"
    assert "tags.1.member.key" in doc["message"] and "regular expression pattern" in doc["message"]


def test_unknown_resources(api: Api, sm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sm.list_tags(ResourceArn=f"{ARN}:endpoint/nope")
    assert code_and_message(exc) == (
        "ValidationException",
        f'Could not find endpoint "{ARN}:endpoint/nope".',
    )
    with pytest.raises(ClientError) as exc:
        sm.add_tags(ResourceArn=f"{ARN}:training-job/t", Tags=[{"Key": "a", "Value": "b"}])
    assert code_and_message(exc)[0] == "ValidationException"


def test_a_resource_created_again_does_not_inherit_old_tags(api: Api, sm: Any) -> None:
    make_model(sm)
    arn = f"{ARN}:model/m1"
    sm.add_tags(ResourceArn=arn, Tags=[{"Key": "old", "Value": "1"}])
    sm.delete_model(ModelName="m1")
    make_model(sm)
    assert tags_of(sm, arn) == []
