"""The AWS message form, wrong JSON types, the operation table, speed, and the stale-file guard."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pydantic
import pytest

from greenshift.contracts import cloudwatch_shapes, sagemaker_shapes
from greenshift.contracts.operations import CLOUDWATCH, SAGEMAKER, lookup
from greenshift.contracts.sagemaker_shapes import (
    CreateEndpointConfigInput,
    CreateModelInput,
    UpdateEndpointInput,
)
from greenshift.contracts.validation import (
    SerializationError,
    format_validation_error,
    parse_body,
    parse_request,
)
from greenshift.errors import ValidationError

ROOT = Path(__file__).resolve().parents[2]

CANARY = {
    "EndpointName": "my-endpoint",
    "EndpointConfigName": "config-v2",
    "DeploymentConfig": {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 120,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]},
    },
}


def refused(shape: Any, doc: Any) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        parse_request(shape, doc)
    return info.value


def test_valid_request_parses() -> None:
    parsed = parse_request(UpdateEndpointInput, CANARY)
    assert parsed.DeploymentConfig is not None
    assert parsed.to_wire() == CANARY


def test_one_error_in_aws_form() -> None:
    err = refused(UpdateEndpointInput, {**CANARY, "EndpointName": "bad_name"})
    assert err.code == "ValidationException" and err.http_status == 400
    assert err.message == (
        "1 validation error detected: Value 'bad_name' at 'endpointName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_several_errors_in_aws_form() -> None:
    doc = {
        "EndpointName": "e" * 64,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "SOMETIMES", "WaitIntervalInSeconds": -1}
            }
        },
    }
    err = refused(UpdateEndpointInput, doc)
    prefix = "deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration"
    assert err.message == (
        "4 validation errors detected: "
        f"Value '{'e' * 64}' at 'endpointName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63; "
        "Value null at 'endpointConfigName' failed to satisfy constraint: "
        "Member must not be null; "
        f"Value 'SOMETIMES' at '{prefix}.type' failed to satisfy constraint: "
        "Member must satisfy enum value set: [ALL_AT_ONCE, CANARY, LINEAR]; "
        f"Value '-1' at '{prefix}.waitIntervalInSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 0"
    )


def test_list_items_are_one_based_members() -> None:
    doc = {
        "EndpointConfigName": "c",
        "ProductionVariants": [
            {"VariantName": "ok", "InitialInstanceCount": 1},
            {"VariantName": "ok2", "InitialInstanceCount": 0},
        ],
    }
    err = refused(CreateEndpointConfigInput, doc)
    assert err.message == (
        "1 validation error detected: Value '0' at 'productionVariants.2.member."
        "initialInstanceCount' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1"
    )


def test_map_keys_and_empty_lists() -> None:
    doc = {"ModelName": "m", "PrimaryContainer": {"Environment": {"1BAD": "v"}}}
    err = refused(CreateModelInput, doc)
    assert err.message == (
        "1 validation error detected: Value '{1BAD=v}' at 'primaryContainer.environment' "
        "failed to satisfy constraint: Map keys must satisfy constraint: "
        "[Member must satisfy regular expression pattern: [a-zA-Z_][a-zA-Z0-9_]*]"
    )
    err = refused(CreateEndpointConfigInput, {"EndpointConfigName": "c", "ProductionVariants": []})
    assert err.message.endswith(
        "Value '[]' at 'productionVariants' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )


def test_explicit_null_for_required_member_is_not_null_error() -> None:
    err = refused(UpdateEndpointInput, {**CANARY, "EndpointConfigName": None})
    assert err.message == (
        "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy "
        "constraint: Member must not be null"
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {**CANARY, "EndpointConfigName": 5},
            "NUMBER_VALUE can not be converted to a String at 'endpointConfigName'",
        ),
        (
            {**CANARY, "RetainAllVariantProperties": "true"},
            "STRING_VALUE can not be converted to a Boolean at 'retainAllVariantProperties'",
        ),
        (
            {**CANARY, "EndpointName": {"a": 1}},
            "Start of structure or map found where not expected. at 'endpointName'",
        ),
        (
            {**CANARY, "ExcludeRetainedVariantProperties": "DesiredWeight"},
            "STRING_VALUE can not be converted to a List at 'excludeRetainedVariantProperties'",
        ),
    ],
)
def test_wrong_json_types_are_serialization_errors(doc: Any, message: str) -> None:
    err = refused(UpdateEndpointInput, doc)
    assert isinstance(err, SerializationError)
    assert (err.code, err.http_status, err.message) == ("SerializationException", 400, message)


@pytest.mark.parametrize("epoch", [10**30, 2**63, 1e308, -1e20])
def test_timestamps_out_of_range_are_serialization_errors(epoch: float) -> None:
    # datetime.fromtimestamp raised OverflowError/OSError, which became a 500 (found by fuzzing).
    err = refused(cloudwatch_shapes.DescribeAlarmHistoryInput, {"StartDate": epoch})
    assert isinstance(err, SerializationError)
    assert err.message == "NUMBER_VALUE can not be converted to a Timestamp at 'startDate'"


def test_strings_are_not_coerced_to_numbers() -> None:
    doc = {
        "EndpointConfigName": "c",
        "ProductionVariants": [{"VariantName": "v", "InitialInstanceCount": "2"}],
    }
    err = refused(CreateEndpointConfigInput, doc)
    assert err.message == (
        "STRING_VALUE can not be converted to an Integer at "
        "'productionVariants.1.member.initialInstanceCount'"
    )


def test_bodies() -> None:
    assert parse_body(UpdateEndpointInput, b'{"EndpointName":"e","EndpointConfigName":"c"}')
    with pytest.raises(SerializationError, match="not valid JSON"):
        parse_body(UpdateEndpointInput, b"{nope")
    with pytest.raises(SerializationError, match="Start of list"):
        parse_body(UpdateEndpointInput, b"[]")
    err = refused(UpdateEndpointInput, {})
    assert err.message.startswith("2 validation errors detected: Value null at 'endpointName'")
    with pytest.raises(ValidationError, match=r"^2 validation errors"):
        parse_body(UpdateEndpointInput, b"")


def test_format_validation_error_from_pydantic() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        UpdateEndpointInput.model_validate({"EndpointName": "a_b", "EndpointConfigName": "c"})
    assert format_validation_error(info.value, UpdateEndpointInput) == (
        "1 validation error detected: Value 'a_b' at 'endpointName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )


def test_operation_table_covers_every_operation() -> None:
    assert set(SAGEMAKER) == set(sagemaker_shapes.OPERATIONS)
    assert set(CLOUDWATCH) == set(cloudwatch_shapes.OPERATIONS)
    shape_in, shape_out, name = SAGEMAKER["UpdateEndpoint"]
    assert (shape_in, shape_out.__name__ if shape_out else None, name) == (
        UpdateEndpointInput,
        "UpdateEndpointOutput",
        "UpdateEndpoint",
    )
    assert SAGEMAKER["DeleteEndpoint"].output is None
    assert lookup("sagemaker", "CreateTrainingJob") is None
    assert lookup("cloudwatch", "PutMetricAlarm") is CLOUDWATCH["PutMetricAlarm"]


def test_validation_is_fast() -> None:
    runs = 2000
    start = time.perf_counter()
    for _ in range(runs):
        parse_request(UpdateEndpointInput, CANARY)
    per_call = (time.perf_counter() - start) / runs
    print(f"UpdateEndpoint request validation: {per_call * 1e6:.1f} us per request")
    assert per_call < 1e-3


@pytest.mark.parametrize("service", ["sagemaker", "cloudwatch"])
def test_generated_shapes_are_current(service: str) -> None:
    spec = importlib.util.spec_from_file_location("gen_contracts", ROOT / "tools/gen_contracts.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    committed = (ROOT / f"greenshift/contracts/{service}_shapes.py").read_text()
    assert committed == gen.render(service), "stale: run `make contracts` and commit the result"


def test_model_data_url_accepts_local_file_urls_as_a_local_extension() -> None:
    """DESIGN.md: `file://` is a local extension of ModelDataUrl; other schemes stay refused with
    AWS's own pattern in the message."""
    from greenshift.contracts.sagemaker_shapes import CreateModelInput
    from greenshift.contracts.validation import parse_request
    from greenshift.errors import ValidationError

    for url in ("file:///srv/models/echo", "file:///tmp/model.tar.gz", "s3://bucket/key"):
        parsed = parse_request(
            CreateModelInput, {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": url}}
        )
        assert parsed.PrimaryContainer is not None
        assert parsed.PrimaryContainer.ModelDataUrl == url
    with pytest.raises(ValidationError) as refused:
        parse_request(
            CreateModelInput,
            {"ModelName": "m", "PrimaryContainer": {"ModelDataUrl": "ftp://host/model"}},
        )
    assert "regular expression pattern: (https|s3)://([^/]+)/?(.*)" in refused.value.message
