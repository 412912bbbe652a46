"""SigV4 on and off, the loopback-only rule, and a fuzz test of malformed requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    KEY,
    SECRET,
    Api,
    ApiFactory,
    api_factory_fixture,
    api_fixture,
    in_service,
    snapshot,
)


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    response = exc.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Code"]


def test_sigv4_accepts_signed_requests_and_refuses_the_rest(api_factory: ApiFactory) -> None:
    api = api_factory(access_keys=f"{KEY}:{SECRET}")
    assert api.client().list_endpoints()["Endpoints"] == []
    with pytest.raises(ClientError) as exc:
        api.client(secret="wrong").list_endpoints()
    assert _code(exc) == (403, "InvalidSignatureException")
    with pytest.raises(ClientError) as exc:
        api.client(key="AKIDUNKNOWN").list_endpoints()
    assert _code(exc) == (403, "UnrecognizedClientException")
    unsigned = api.post("SageMaker.ListEndpoints", "{}")
    assert unsigned.status_code == 403
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    # The Greenshift extensions are behind the same check.
    assert api.post("Greenshift.ListDeployments", "{}").status_code == 403


def _signed_post(api: Api, target: str, body: bytes, service: str) -> httpx.Response:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(
        method="POST",
        url=api.url + "/",
        data=body,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials(KEY, SECRET), service, api.settings.region).add_auth(request)
    return httpx.post(
        api.url + "/", content=body, headers=dict(request.headers.items()), timeout=10
    )


def test_signature_scoped_to_another_service_is_refused(api_factory: ApiFactory) -> None:
    api = api_factory(access_keys=f"{KEY}:{SECRET}")
    assert _signed_post(api, "SageMaker.ListEndpoints", b"{}", "sagemaker").status_code == 200
    # A CloudWatch signature is no SageMaker authorisation, and the other way round.
    refused = _signed_post(api, "SageMaker.ListEndpoints", b"{}", "monitoring")
    assert refused.status_code == 403
    assert refused.json()["__type"] == "InvalidSignatureException"
    assert "correct service: 'sagemaker'" in refused.json()["message"]
    cloudwatch = _signed_post(
        api, "GraniteServiceVersion20100801.DescribeAlarms", b"{}", "sagemaker"
    )
    assert cloudwatch.status_code == 403
    assert cloudwatch.json()["__type"] == "InvalidSignatureException"


def test_sigv4_refuses_requests_older_than_five_minutes(api_factory: ApiFactory) -> None:
    # The server's clock runs 6 minutes ahead of the client's: the request is 6 minutes old.
    api = api_factory(
        access_keys=f"{KEY}:{SECRET}", clock=lambda: datetime.now(UTC) + timedelta(minutes=6)
    )
    with pytest.raises(ClientError) as exc:
        api.client().list_endpoints()
    assert _code(exc) == (403, "InvalidSignatureException")


def test_without_keys_any_signature_is_accepted(api: Api) -> None:
    assert api.client(key="anything", secret="goes").list_endpoints()["Endpoints"] == []


def test_refuses_to_listen_beyond_loopback_without_keys(tmp_path: Any) -> None:
    env = {
        **os.environ,
        "GREENSHIFT_HOST": "0.0.0.0",
        "GREENSHIFT_HOME": str(tmp_path),
        "GREENSHIFT_ACCESS_KEYS": "",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "greenshift.api"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Refusing to listen on 0.0.0.0" in proc.stderr
    assert "GREENSHIFT_ACCESS_KEYS" in proc.stderr


# --- fuzz -------------------------------------------------------------------------------------

OPERATIONS = [
    "SageMaker.CreateModel",
    "SageMaker.CreateEndpointConfig",
    "SageMaker.CreateEndpoint",
    "SageMaker.UpdateEndpoint",
    "SageMaker.DeleteEndpoint",
    "SageMaker.DeleteEndpointConfig",
    "SageMaker.DeleteModel",
    "SageMaker.UpdateEndpointWeightsAndCapacities",
    "SageMaker.DescribeEndpoint",
    "SageMaker.ListEndpoints",
    "Greenshift.PlanDeployment",
    "Greenshift.AbortDeployment",
    "Greenshift.DescribeDeployment",
]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=80),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=20), inner, max_size=4)
    ),
    max_leaves=12,
)
# Members near the real ones, so the fuzz gets past the first check now and then.
documents = st.fixed_dictionaries(
    {},
    optional={
        "EndpointName": st.sampled_from(["e1", "E1", "", "bad_name", "x" * 70])
        | st.text(max_size=70),
        "EndpointConfigName": st.sampled_from(["c1", "c2", ""]) | st.text(max_size=10),
        "ModelName": st.sampled_from(["m1", "-m", ""]) | json_values,
        "ProductionVariants": json_values,
        "DesiredWeightsAndCapacities": st.lists(
            st.fixed_dictionaries(
                {"VariantName": st.sampled_from(["A", "B", ""])},
                optional={"DesiredWeight": json_values, "DesiredInstanceCount": json_values},
            ),
            max_size=3,
        ),
        "DeploymentConfig": json_values,
        "MaxResults": json_values,
        "NextToken": st.text(max_size=40),
        "DeploymentId": json_values,
    },
)
bodies = (
    documents.map(lambda d: json.dumps(d).encode())
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=200)
)
# Printable ASCII without surrounding blanks: what an HTTP client can send at all.
header_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=120
).map(str.strip)
targets = st.sampled_from(OPERATIONS) | header_values


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(target=targets, body=bodies, content_type=header_values)
def test_fuzz_never_5xx_and_rejections_change_nothing(
    api: Api, target: str, body: bytes, content_type: str
) -> None:
    if api.registry.get_endpoint("e1") is None:
        in_service(api, api.client())
    before = snapshot(api.registry)
    r = httpx.post(
        api.url + "/",
        content=body,
        timeout=10,
        headers={"X-Amz-Target": target, "Content-Type": content_type},
    )
    assert r.status_code < 500, r.text
    assert r.headers["x-amzn-RequestId"]
    if r.status_code >= 400:
        assert set(r.json()) == {"__type", "message"}
        assert snapshot(api.registry) == before


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(authorization=header_values, amz_date=header_values, target=st.sampled_from(OPERATIONS))
def test_fuzz_signatures_are_refused_with_403(
    api_factory: ApiFactory, authorization: str, amz_date: str, target: str
) -> None:
    api = _signed_api(api_factory)
    before = snapshot(api.registry)
    r = api.post(
        target,
        '{"EndpointName": "e1", "EndpointConfigName": "c1", "ModelName": "m9"}',
        headers={"Authorization": authorization, "X-Amz-Date": amz_date},
    )
    assert r.status_code == 403, r.text
    assert snapshot(api.registry) == before


_signed: dict[int, Api] = {}


def _signed_api(api_factory: ApiFactory) -> Api:
    # One server per test function, not per example (hypothesis reuses the fixture).
    key = id(api_factory)
    if key not in _signed:
        _signed.clear()
        _signed[key] = api_factory(access_keys=f"{KEY}:{SECRET}")
    return _signed[key]
