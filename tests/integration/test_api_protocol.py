"""Protocol edges (targets, bodies, request ids), quotas, the Greenshift extension operations,
CloudWatch on the same port, and the AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    KEY,
    SECRET,
    Api,
    ApiFactory,
    api_factory_fixture,
    api_fixture,
    in_service,
    make_config,
    make_model,
    sm_fixture,
    snapshot,
)

ROOT = Path(__file__).resolve().parents[2]


def test_every_response_has_a_request_id(api: Api) -> None:
    ok = api.post("SageMaker.ListEndpoints", "{}")
    assert ok.status_code == 200 and ok.headers["x-amzn-RequestId"]
    assert ok.headers["content-type"].startswith("application/x-amz-json-1.1")
    bad = api.post("SageMaker.DescribeEndpoint", '{"EndpointName": "nope"}')
    assert bad.status_code == 400 and bad.headers["x-amzn-RequestId"]
    assert ok.headers["x-amzn-RequestId"] != bad.headers["x-amzn-RequestId"]


def test_unknown_operation_and_missing_target(api: Api) -> None:
    for target in ("SageMaker.CreateTrainingJob", "Nope.ListEndpoints", None, "SageMaker"):
        r = api.post(target, "{}")
        assert r.status_code == 400, target
        assert r.json()["__type"] == "UnknownOperationException"


def test_malformed_json_is_a_serialization_exception(api: Api) -> None:
    deep = '{"EndpointName": ' + "[" * 5000 + "]" * 5000 + "}"
    for body in ("{", "[1, 2]", '"text"', "\xff\xfe", deep):
        r = api.post("SageMaker.ListEndpoints", body.encode("latin-1"))
        assert r.status_code == 400
        assert r.json()["__type"] == "SerializationException", body
    # Wrong JSON types are refused by the contracts, never a 500.
    r = api.post("SageMaker.DescribeEndpoint", '{"EndpointName": 5}')
    assert r.status_code == 400 and r.json()["__type"] in {
        "SerializationException",
        "ValidationException",
    }


def test_timestamps_are_epoch_seconds(api: Api, sm: Any) -> None:
    in_service(api, sm)
    raw = api.post("SageMaker.DescribeEndpoint", '{"EndpointName": "e1"}').json()
    assert isinstance(raw["CreationTime"], float) and raw["CreationTime"] > 1.7e9


# --- quotas -----------------------------------------------------------------------------------


def test_endpoint_quota(api_factory: ApiFactory) -> None:
    api = api_factory(max_endpoints=1)
    sm = api.client()
    in_service(api, sm)
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint(EndpointName="e2", EndpointConfigName="c1")
    err = exc.value.response["Error"]
    assert err["Code"] == "ResourceLimitExceeded"
    assert "max_endpoints" in err["Message"] and "is 1 endpoint(s)" in err["Message"]
    assert "utilization of 1" in err["Message"]


def test_instance_quota_names_limit_use_and_request(api_factory: ApiFactory) -> None:
    api = api_factory(max_instances=6)
    sm = api.client()
    make_model(sm)
    make_config(sm, "c7", count=7)
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint(EndpointName="big", EndpointConfigName="c7")
    err = exc.value.response["Error"]
    assert err["Code"] == "ResourceLimitExceeded"
    assert "max_instances" in err["Message"] and "is 6 instance(s)" in err["Message"]
    assert "request delta of 7" in err["Message"]
    assert api.registry.get_endpoint("big") is None


def test_blue_green_over_quota_says_rolling_would_fit(api_factory: ApiFactory) -> None:
    api = api_factory(max_instances=7)
    sm = api.client()
    in_service(api, sm)
    # The quota counts instance records (the fleet agent's): e1's 2 and 2 of another endpoint.
    _add_instances(api, "e1", 2)
    _add_instances(api, "e1", 2, fleet="other.A.test")
    make_config(sm, "c2", count=4)
    before = snapshot(api.registry)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    err = exc.value.response["Error"]
    assert err["Code"] == "ResourceLimitExceeded"
    message = err["Message"]
    # 4 in use + 4 more for green = 8 > 7; rolling peaks at 2 + 4 + 1 = 7.
    assert "is 7 instance(s)" in message and "utilization of 4" in message
    assert "request delta of 4" in message
    assert "blue/green keeps both fleets" in message
    assert "A rolling update" in message and "would fit" in message
    assert snapshot(api.registry) == before


def test_per_endpoint_quota(api_factory: ApiFactory) -> None:
    api = api_factory(max_instances_per_endpoint=3)
    sm = api.client()
    in_service(api, sm)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint_weights_and_capacities(
            EndpointName="e1",
            DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredInstanceCount": 5}],
        )
    err = exc.value.response["Error"]
    assert err["Code"] == "ResourceLimitExceeded"
    assert "max_instances_per_endpoint" in err["Message"] and "needs 5" in err["Message"]


def _add_instances(api: Api, endpoint: str, count: int, fleet: str = "") -> None:
    """Instance records as the fleet agent writes them: what count_instances counts."""
    from greenshift.registry.records import FleetRecord, InstanceRecord

    record = api.registry.get_endpoint(endpoint)
    assert record is not None
    now = record.created_at
    fleet = fleet or f"{endpoint}.A.test"
    api.registry.upsert_fleet(
        FleetRecord(
            fleet_id=fleet,
            endpoint=endpoint,
            deployment_id="d",
            variant="A",
            config_name=record.config_name,
            model_name="m1",
            instance_type="ml.m5.large",
            model_spec={},
            desired_count=count,
            created_at=now,
        )
    )
    for i in range(count):
        api.registry.upsert_instance(
            InstanceRecord(
                instance_id=f"{fleet}.{i}",
                fleet_id=fleet,
                endpoint=endpoint,
                variant="A",
                index=i,
                state="InService",
                updated_at=now,
            )
        )


# --- Greenshift extension operations ----------------------------------------------------------


def _gs(api: Api, operation: str, doc: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    r = api.post(f"Greenshift.{operation}", json.dumps(doc))
    return r.status_code, r.json()


def test_plan_deployment_shows_the_plan_and_starts_nothing(api: Api, sm: Any) -> None:
    in_service(api, sm)
    make_config(sm, "c2", count=4)
    starts = len(api.starter.starts)
    status, body = _gs(
        api,
        "PlanDeployment",
        {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "CANARY",
                        "WaitIntervalInSeconds": 60,
                        "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                    }
                }
            },
        },
    )
    assert status == 200, body
    assert body["Plan"]["strategy"] == "CANARY"
    assert body["PeakInstances"] == 6 and body["WithinLimits"] and body["CanStartNow"]
    assert len(api.starter.starts) == starts


def test_deployment_controls_go_to_the_running_workflow(api: Api, sm: Any) -> None:
    in_service(api, sm)
    status, body = _gs(api, "PauseDeployment", {"EndpointName": "e1"})
    assert status == 400 and "No deployment is in progress" in body["message"]
    make_config(sm, "c2")
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    for op, update in [
        ("PauseDeployment", "pause"),
        ("ResumeDeployment", "resume"),
        ("PromoteDeployment", "promote"),
        ("AbortDeployment", "abort"),
    ]:
        status, body = _gs(api, op, {"EndpointName": "e1", "Reason": "testing", "Actor": "ann"})
        assert status == 200, body
        assert api.starter.updates[-1] == (
            "endpoint/e1",
            update,
            {"actor": "ann", "reason": "testing"},
        )
        assert body["DeploymentId"] == api.starter.starts[-1].deployment_id


def test_describe_and_list_deployments(api: Api, sm: Any) -> None:
    from greenshift.registry.records import DeploymentEvent

    in_service(api, sm)
    make_config(sm, "c2")
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    did = api.starter.starts[-1].deployment_id
    record = api.registry.get_deployment(did)
    assert record is not None
    api.registry.append_event(
        DeploymentEvent(
            deployment_id=did,
            endpoint="e1",
            at=record.started_at,
            type="Paused",
            message="Paused by ann: testing",
            actor="ann",
            key="k1",
        )
    )
    status, body = _gs(api, "DescribeDeployment", {"DeploymentId": did})
    assert status == 200, body
    assert body["Deployment"]["Operation"] == "UpdateEndpoint"
    assert body["Deployment"]["ToEndpointConfigName"] == "c2"
    assert [(e["Type"], e.get("Actor")) for e in body["Events"]] == [("Paused", "ann")]
    status, latest = _gs(api, "DescribeDeployment", {"EndpointName": "e1"})
    assert latest["Deployment"]["DeploymentId"] == did
    status, listed = _gs(api, "ListDeployments", {"EndpointName": "e1"})
    assert [d["Operation"] for d in listed["Deployments"]] == ["UpdateEndpoint", "CreateEndpoint"]
    status, body = _gs(api, "DescribeDeployment", {"DeploymentId": "nope"})
    assert status == 400 and body["__type"] == "ValidationException"


# --- CloudWatch on the same port --------------------------------------------------------------


def test_cloudwatch_requests_reach_the_cloudwatch_handler(api_factory: ApiFactory) -> None:
    # Without a CloudWatch handler mounted, CloudWatch targets are unknown, not a crash.
    api = api_factory()
    r = api.post("GraniteServiceVersion20100801.DescribeAlarms", "{}")
    assert r.status_code == 400 and r.json()["__type"] == "UnknownOperationException"


# --- the AWS CLI ------------------------------------------------------------------------------


def test_aws_cli_lists_and_describes(api: Api, sm: Any, tmp_path: Path) -> None:
    in_service(api, sm)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "none"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
    }
    aws = str(Path(sys.executable).parent / "aws")
    listed = subprocess.run(
        [aws, "sagemaker", "list-endpoints", "--endpoint-url", api.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [e["EndpointName"] for e in json.loads(listed.stdout)["Endpoints"]] == ["e1"]
    missing = subprocess.run(
        [
            aws,
            "sagemaker",
            "describe-endpoint",
            "--endpoint-name",
            "ghost",
            "--endpoint-url",
            api.url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode != 0
    assert "ValidationException" in missing.stderr and "Could not find endpoint" in missing.stderr
