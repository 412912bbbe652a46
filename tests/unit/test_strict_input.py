"""Strict input (SEMANTICS.md 8): non-finite numbers are a SerializationException wherever a
request is parsed, and the workflows' parse refuses unknown members at any depth, naming them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from greenshift.contracts import sagemaker_shapes as sm
from greenshift.contracts.validation import SerializationError, parse_request
from greenshift.errors import ValidationError

UPDATE = {"EndpointName": "e1", "EndpointConfigName": "c2"}


def weights(weight: Any) -> dict[str, Any]:
    return {
        "EndpointName": "e1",
        "DesiredWeightsAndCapacities": [{"VariantName": "A", "DesiredWeight": weight}],
    }


@pytest.mark.parametrize("text", ["Infinity", "-Infinity", "NaN", "1e999", "-1e999"])
def test_non_finite_numbers_are_serialization_exceptions(text: str) -> None:
    document = json.loads(json.dumps(weights(0.5)).replace("0.5", text))
    with pytest.raises(SerializationError) as exc:
        parse_request(sm.UpdateEndpointWeightsAndCapacitiesInput, document)
    assert exc.value.code == "SerializationException"
    assert "desiredWeightsAndCapacities.1.member.desiredWeight" in exc.value.message


def test_non_finite_number_in_a_member_no_shape_has_is_refused_too() -> None:
    with pytest.raises(SerializationError):
        parse_request(sm.DescribeEndpointInput, {"EndpointName": "e1", "Extra": float("inf")})


def test_finite_numbers_pass() -> None:
    parsed = parse_request(sm.UpdateEndpointWeightsAndCapacitiesInput, weights(1e300))
    assert parsed.DesiredWeightsAndCapacities[0].DesiredWeight == 1e300


def test_unknown_top_level_member_is_named_in_botocores_words() -> None:
    doc = {**UPDATE, "DeploymentConifg": {"BlueGreenUpdatePolicy": {}}}
    # The API is lenient, as AWS: the member is simply not part of the request.
    assert parse_request(sm.UpdateEndpointInput, doc).DeploymentConfig is None
    with pytest.raises(ValidationError) as exc:
        parse_request(sm.UpdateEndpointInput, doc, forbid_unknown=True)
    assert exc.value.code == "ValidationException"
    assert exc.value.message.startswith(
        'Unknown parameter in input: "DeploymentConifg", must be one of: EndpointName, '
    )
    assert "DeploymentConfig" in exc.value.message


def test_unknown_members_at_any_depth_name_their_path() -> None:
    doc = {
        **UPDATE,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSecs": 5}
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "a"}, {"AlarmNmae": "b"}]},
        },
    }
    with pytest.raises(ValidationError) as exc:
        parse_request(sm.UpdateEndpointInput, doc, forbid_unknown=True)
    message = exc.value.message
    assert (
        "Unknown parameter in DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration: "
        '"WaitIntervalInSecs"' in message
    )
    assert (
        'Unknown parameter in DeploymentConfig.AutoRollbackConfiguration.Alarms[1]: "AlarmNmae"'
        in message
    )


def test_map_keys_are_not_members() -> None:
    doc = {
        "ModelName": "m1",
        "PrimaryContainer": {"Image": "greenshift/model-server", "Environment": {"ANY_KEY": "v"}},
    }
    assert parse_request(sm.CreateModelInput, doc, forbid_unknown=True).ModelName == "m1"


def test_cloudwatch_requests_refuse_non_finite_numbers_too() -> None:
    from greenshift.contracts import cloudwatch_shapes as cw

    alarm = {
        "AlarmName": "a",
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanThreshold",
        "Threshold": json.loads("Infinity"),
    }
    with pytest.raises(SerializationError) as exc:
        parse_request(cw.PutMetricAlarmInput, alarm)
    assert "'threshold'" in exc.value.message
