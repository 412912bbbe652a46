"""The CloudWatch wire codec: what the pinned botocore sends, and errors botocore can parse."""

from __future__ import annotations

import json

import botocore.session
import pytest
from botocore.parsers import create_parser

from greenshift.errors import ServiceUnavailable
from greenshift.metrics.cloudwatch_api import (
    AlarmNotFoundError,
    SerializationFailureError,
    decode_request,
    encode_response,
)


def test_pinned_botocore_resolves_cloudwatch_to_json_10() -> None:
    model = botocore.session.get_session().get_service_model("cloudwatch")
    assert model.resolved_protocol == "json"
    assert model.metadata["targetPrefix"] == "GraniteServiceVersion20100801"


def test_decode_json_10() -> None:
    headers = {"X-Amz-Target": "GraniteServiceVersion20100801.DescribeAlarms"}
    assert decode_request("/", headers, b'{"AlarmNames": ["a"]}') == (
        "DescribeAlarms",
        {"AlarmNames": ["a"]},
    )
    assert decode_request("/", headers, b"") == ("DescribeAlarms", {})


def test_other_requests_are_not_cloudwatch() -> None:
    assert decode_request("/", {"X-Amz-Target": "SageMaker.ListEndpoints"}, b"{}") is None


@pytest.mark.parametrize("body", [b"{nope", b"[1]", b'{"a": ' + b"[" * 5000 + b"]" * 5000 + b"}"])
def test_bad_bodies_are_serialization_errors(body: bytes) -> None:
    headers = {"x-amz-target": "GraniteServiceVersion20100801.ListMetrics"}
    with pytest.raises(SerializationFailureError):
        decode_request("/", headers, body)


def test_cbor_is_refused_with_a_clear_error() -> None:
    with pytest.raises(SerializationFailureError, match=r"JSON 1\.0"):
        decode_request("/service/GraniteServiceVersion20100801/operation/ListMetrics", {}, b"")


def parse_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, str]:
    model = botocore.session.get_session().get_service_model("cloudwatch")
    parser = create_parser("json")
    response = {
        "status_code": status,
        "headers": {k.lower(): v for k, v in headers.items()},
        "body": body,
    }
    error: dict[str, str] = parser.parse(
        response, model.operation_model("SetAlarmState").output_shape
    )["Error"]
    return error


def test_errors_parse_in_botocore_with_the_query_code() -> None:
    status, headers, body = encode_response(AlarmNotFoundError("Alarm x not found"))
    assert status == 404 and headers["x-amzn-query-error"] == "ResourceNotFound;Sender"
    error = parse_error(status, headers, body)
    assert error["Code"] == "ResourceNotFound" and error["Message"] == "Alarm x not found"


def test_unexpected_exceptions_hide_internals() -> None:
    status, headers, body = encode_response(RuntimeError("secret detail"))
    assert status == 500 and b"secret" not in body
    assert parse_error(status, headers, body)["Code"] == "InternalServiceError"


def test_unavailable_is_retryable_503() -> None:
    status, _, body = encode_response(ServiceUnavailable("db down"))
    assert status == 503 and json.loads(body)["__type"] == "ServiceUnavailable"


def test_success_is_json_10() -> None:
    status, headers, body = encode_response({"MetricAlarms": []})
    assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(body) == {"MetricAlarms": []}
