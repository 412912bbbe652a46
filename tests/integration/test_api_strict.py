"""Strict input at the API: non-finite numbers on the wire are a SerializationException (they
once wedged an endpoint: stored, its workflow could not decode its own arguments), and a NUL in
an Environment variable is refused when the model is created, naming the variable."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    Api,
    api_factory_fixture,
    api_fixture,
    in_service,
    sm_fixture,
    snapshot,
)


@pytest.mark.parametrize("number", ["Infinity", "NaN", "1e999", "-Infinity"])
def test_non_finite_weight_is_refused_at_the_wire(api: Api, sm: Any, number: str) -> None:
    in_service(api, sm)
    before = snapshot(api.registry)
    body = (
        '{"EndpointName": "e1", "DesiredWeightsAndCapacities": '
        f'[{{"VariantName": "A", "DesiredWeight": {number}}}]}}'
    )
    response = api.post("SageMaker.UpdateEndpointWeightsAndCapacities", body)
    assert response.status_code == 400
    assert response.json()["__type"] == "SerializationException"
    assert "desiredWeight" in response.json()["message"]
    assert snapshot(api.registry) == before
    assert len(api.starter.starts) == 1  # the create only


def test_non_finite_variant_weight_in_a_config_is_refused(api: Api, sm: Any) -> None:
    in_service(api, sm)
    body = (
        '{"EndpointConfigName": "c9", "ProductionVariants": [{"VariantName": "A", '
        '"ModelName": "m1", "InstanceType": "ml.m5.large", "InitialInstanceCount": 1, '
        '"InitialVariantWeight": Infinity}]}'
    )
    response = api.post("SageMaker.CreateEndpointConfig", body)
    assert response.json()["__type"] == "SerializationException"
    assert api.registry.get_endpoint_config("c9") is None


def test_nul_in_an_environment_value_is_refused(sm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        sm.create_model(
            ModelName="m-nul",
            PrimaryContainer={"Image": "greenshift/model-server", "Environment": {"A": "x\x00y"}},
        )
    err = exc.value.response["Error"]
    assert err["Code"] == "ValidationException"
    assert "'A'" in err["Message"] and "NUL" in err["Message"]
    with pytest.raises(ClientError):
        sm.describe_model(ModelName="m-nul")
