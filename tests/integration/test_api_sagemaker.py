"""The SageMaker operations through real boto3 clients: CRUD, paging, lifecycle, and every row
of SEMANTICS.md section 2 with its code and message."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from greenshift.errors import ServiceUnavailable
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.integration.test_api_env import (  # noqa: F401 - fixtures
    Api,
    api_factory_fixture,
    api_fixture,
    in_service,
    make_config,
    make_model,
    sm_fixture,
    snapshot,
)

ARN = "arn:aws:sagemaker:us-east-1:000000000000"


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    err = exc.value.response["Error"]
    return err["Code"], err["Message"]


# --- models and configs ------------------------------------------------------------------------


def test_model_create_describe_list_delete(sm: Any) -> None:
    assert make_model(sm, "My-Model") == f"{ARN}:model/my-model"
    described = sm.describe_model(ModelName="My-Model")
    assert described["ModelName"] == "My-Model"
    assert described["PrimaryContainer"]["Image"] == "greenshift/builtin"
    assert described["CreationTime"].year >= 2024
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["My-Model"]
    sm.delete_model(ModelName="My-Model")
    with pytest.raises(ClientError) as exc:
        sm.describe_model(ModelName="My-Model")
    assert error(exc) == ("ValidationException", f'Could not find model "{ARN}:model/my-model".')


def test_missing_resources_are_validation_exceptions(sm: Any) -> None:
    cases = [
        (sm.describe_model, {"ModelName": "nope"}, f'Could not find model "{ARN}:model/nope".'),
        (sm.delete_model, {"ModelName": "nope"}, f'Could not find model "{ARN}:model/nope".'),
        (
            sm.describe_endpoint_config,
            {"EndpointConfigName": "nope"},
            f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".',
        ),
        (
            sm.delete_endpoint_config,
            {"EndpointConfigName": "nope"},
            f'Could not find endpoint configuration "{ARN}:endpoint-config/nope".',
        ),
        (
            sm.describe_endpoint,
            {"EndpointName": "Nope"},
            f'Could not find endpoint "{ARN}:endpoint/nope".',
        ),
        (
            sm.delete_endpoint,
            {"EndpointName": "nope"},
            f'Could not find endpoint "{ARN}:endpoint/nope".',
        ),
        (
            sm.update_endpoint,
            {"EndpointName": "nope", "EndpointConfigName": "c"},
            f'Could not find endpoint "{ARN}:endpoint/nope".',
        ),
    ]
    for call, kwargs, message in cases:
        with pytest.raises(ClientError) as exc:
            call(**kwargs)
        assert error(exc) == ("ValidationException", message), call


def test_create_existing_is_refused_for_each_kind(api: Api, sm: Any) -> None:
    make_model(sm)
    with pytest.raises(ClientError) as exc:
        make_model(sm, "M1")
    assert error(exc) == (
        "ValidationException",
        f'Cannot create already existing model "{ARN}:model/m1".',
    )
    make_config(sm)
    with pytest.raises(ClientError) as exc:
        make_config(sm)
    assert error(exc) == (
        "ValidationException",
        f'Cannot create already existing endpoint configuration "{ARN}:endpoint-config/c1".',
    )
    in_service(api, sm)
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint(EndpointName="E1", EndpointConfigName="c1")
    assert error(exc) == (
        "ValidationException",
        f'Cannot create already existing endpoint "{ARN}:endpoint/e1".',
    )
    # Also while the old one is still Deleting.
    sm.delete_endpoint(EndpointName="e1")
    assert sm.describe_endpoint(EndpointName="e1")["EndpointStatus"] == "Deleting"
    with pytest.raises(ClientError) as exc:
        sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
    assert error(exc) == (
        "ValidationException",
        f'Cannot create already existing endpoint "{ARN}:endpoint/e1".',
    )


def test_config_needs_existing_model(sm: Any) -> None:
    with pytest.raises(ClientError) as exc:
        make_config(sm, model="ghost")
    assert error(exc) == ("ValidationException", f'Could not find model "{ARN}:model/ghost".')


def test_names_are_validated_server_side(api: Api) -> None:
    r = api.post(
        "SageMaker.CreateEndpoint", '{"EndpointName": "bad_name", "EndpointConfigName": "c1"}'
    )
    assert r.status_code == 400
    body = r.json()
    assert body["__type"] == "ValidationException"
    assert body["message"].startswith("1 validation error detected: Value 'bad_name' at ")
    assert "endpointName" in body["message"]


def test_delete_config_in_use_is_accepted_and_loses_nothing(api: Api, sm: Any) -> None:
    """SEMANTICS.md 2: accepted as AWS accepts it (the SageMaker SDK's delete_endpoint() relies
    on it); the endpoint keeps its snapshot and can still be updated, rolled back and deleted."""
    in_service(api, sm)
    sm.delete_endpoint_config(EndpointConfigName="c1")
    with pytest.raises(ClientError) as exc:
        sm.describe_endpoint_config(EndpointConfigName="c1")
    assert error(exc) == (
        "ValidationException",
        f'Could not find endpoint configuration "{ARN}:endpoint-config/c1".',
    )
    described = sm.describe_endpoint(EndpointName="e1")
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "c1"
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    # An update to a new config is accepted; a rollback returns to the deleted config's fleet.
    make_config(sm, "c2")
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    assert api.starter.starts[-1].workflow == "UpdateEndpoint"
    # The config a deployment in flight moves to may be deleted too, as on AWS.
    sm.delete_endpoint_config(EndpointConfigName="c2")
    record = api.registry.get_endpoint("e1")
    assert record is not None and record.config_name == "c1"
    assert record.config_snapshot["EndpointConfig"]["EndpointConfigName"] == "c1"


# --- endpoint lifecycle ------------------------------------------------------------------------


def test_create_starts_the_workflow_and_returns_at_once(api: Api, sm: Any) -> None:
    make_model(sm)
    make_config(sm)
    dc = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
        }
    }
    arn = sm.create_endpoint(EndpointName="E1", EndpointConfigName="c1", DeploymentConfig=dc)[
        "EndpointArn"
    ]
    assert arn == f"{ARN}:endpoint/e1"
    [call] = api.starter.starts
    assert call.workflow == "CreateEndpoint"
    assert call.workflow_id == "endpoint/E1"
    assert call.request["EndpointName"] == "E1"
    described = sm.describe_endpoint(EndpointName="E1")
    assert described["EndpointStatus"] == "Creating"
    assert described["EndpointConfigName"] == "c1"
    assert described["LastDeploymentConfig"] == dc
    record = api.registry.get_endpoint("E1")
    assert record is not None and record.current_deployment_id == call.deployment_id
    api.finish("E1")
    described = sm.describe_endpoint(EndpointName="e1")
    assert described["EndpointStatus"] == "InService"
    [variant] = described["ProductionVariants"]
    assert variant["VariantName"] == "A" and variant["CurrentInstanceCount"] == 2
    sm.get_waiter("endpoint_in_service").wait(
        EndpointName="E1", WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )


def test_update_starts_the_workflow(api: Api, sm: Any) -> None:
    in_service(api, sm)
    make_config(sm, "c2", count=3)
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    call = api.starter.starts[-1]
    assert (call.workflow, call.workflow_id) == ("UpdateEndpoint", "endpoint/e1")
    assert call.request == {"EndpointName": "e1", "EndpointConfigName": "c2"}
    described = sm.describe_endpoint(EndpointName="e1")
    # The serving fleet stays at top level while the deployment runs.
    assert described["EndpointStatus"] == "Updating"
    assert described["EndpointConfigName"] == "c1"
    deployment = api.registry.get_deployment(call.deployment_id)
    assert deployment is not None
    assert (deployment.from_config, deployment.to_config) == ("c1", "c2")
    api.finish("e1", config_name="c2")
    assert sm.describe_endpoint(EndpointName="e1")["EndpointConfigName"] == "c2"


def test_update_while_in_progress_is_refused(api: Api, sm: Any) -> None:
    in_service(api, sm)
    make_config(sm, "c2")
    make_config(sm, "c3")
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    message = f'Cannot update in-progress endpoint "{ARN}:endpoint/e1".'
    calls = [
        lambda: sm.update_endpoint(EndpointName="e1", EndpointConfigName="c3"),
        lambda: sm.delete_endpoint(EndpointName="e1"),
        lambda: sm.update_endpoint_weights_and_capacities(
            EndpointName="e1",
            DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredWeight": 2.0}],
        ),
    ]
    for call in calls:
        with pytest.raises(ClientError) as exc:
            call()
        assert error(exc) == ("ValidationException", message)


def test_update_while_creating_and_rolling_back_is_refused(api: Api, sm: Any) -> None:
    make_model(sm)
    make_config(sm)
    make_config(sm, "c2")
    sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    assert error(exc) == (
        "ValidationException",
        f'Cannot update in-progress endpoint "{ARN}:endpoint/e1".',
    )
    api.finish("e1")
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    record = api.registry.get_endpoint("e1")
    assert record is not None and record.current_deployment_id
    api.registry.set_status(
        "e1", record.current_deployment_id, EndpointStatus.ROLLING_BACK, "alarm"
    )
    with pytest.raises(ClientError) as exc:
        sm.delete_endpoint(EndpointName="e1")
    assert error(exc) == (
        "ValidationException",
        f'Cannot update in-progress endpoint "{ARN}:endpoint/e1".',
    )


def test_update_of_failed_endpoint_is_refused(api: Api, sm: Any) -> None:
    make_model(sm)
    make_config(sm)
    make_config(sm, "c2")
    sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")
    api.finish(
        "e1",
        status=EndpointStatus.FAILED,
        outcome=DeploymentOutcome.FAILED,
        failure_reason=(
            "The primary container for production variant A did not pass the ping health check."
        ),
    )
    described = sm.describe_endpoint(EndpointName="e1")
    assert described["EndpointStatus"] == "Failed"
    assert "ping health check" in described["FailureReason"]
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")
    assert error(exc) == (
        "ValidationException",
        f'Cannot update failed endpoint "{ARN}:endpoint/e1". Delete it and create it again.',
    )
    sm.delete_endpoint(EndpointName="e1")  # only DeleteEndpoint is accepted
    assert api.starter.starts[-1].workflow == "DeleteEndpoint"


def test_update_to_the_deployed_config_is_refused(api: Api, sm: Any) -> None:
    in_service(api, sm)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="c1")
    code, message = error(exc)
    assert code == "ValidationException"
    assert "create a new EndpointConfig" in message


def test_update_to_missing_config(api: Api, sm: Any) -> None:
    in_service(api, sm)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="ghost")
    assert error(exc) == (
        "ValidationException",
        f'Could not find endpoint configuration "{ARN}:endpoint-config/ghost".',
    )


def test_planner_refusals_are_validation_exceptions(api: Api, sm: Any) -> None:
    in_service(api, sm)
    make_config(sm, "c2", count=1)
    canary = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 60,
                "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
            }
        }
    }
    before = snapshot(api.registry)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2", DeploymentConfig=canary)
    assert error(exc)[0] == "ValidationException"
    assert snapshot(api.registry) == before


def test_alarms_must_exist(api: Api, sm: Any) -> None:
    in_service(api, sm)
    make_config(sm, "c2")
    dc = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 60}
        },
        "AutoRollbackConfiguration": {
            "Alarms": [{"AlarmName": "latency-ok"}, {"AlarmName": "ghost"}]
        },
    }
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2", DeploymentConfig=dc)
    code, message = error(exc)
    assert code == "ValidationException" and '"ghost"' in message and "latency-ok" not in message
    dc["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": "latency-ok"}]}
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2", DeploymentConfig=dc)
    deployment = api.registry.get_deployment(api.starter.starts[-1].deployment_id)
    assert deployment is not None and deployment.alarms == ["latency-ok"]


def test_delete_and_the_endpoint_deleted_waiter(api: Api, sm: Any) -> None:
    in_service(api, sm)
    sm.delete_endpoint(EndpointName="e1")
    assert api.starter.starts[-1].workflow == "DeleteEndpoint"
    assert sm.describe_endpoint(EndpointName="e1")["EndpointStatus"] == "Deleting"
    api.remove("e1")
    sm.get_waiter("endpoint_deleted").wait(
        EndpointName="e1", WaiterConfig={"Delay": 1, "MaxAttempts": 2}
    )
    # The name is free again.
    sm.create_endpoint(EndpointName="e1", EndpointConfigName="c1")


def test_weights_unknown_and_duplicate_variants(api: Api, sm: Any) -> None:
    in_service(api, sm)
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint_weights_and_capacities(
            EndpointName="e1",
            DesiredWeightsAndCapacities=[{"VariantName": "Z", "DesiredWeight": 1.0}],
        )
    code, message = error(exc)
    assert code == "ValidationException" and '"Z"' in message and "not present" in message
    with pytest.raises(ClientError) as exc:
        sm.update_endpoint_weights_and_capacities(
            EndpointName="e1",
            DesiredWeightsAndCapacities=[
                {"VariantName": "A", "DesiredWeight": 1.0},
                {"VariantName": "A", "DesiredInstanceCount": 3},
            ],
        )
    code, message = error(exc)
    assert code == "ValidationException" and "more than once" in message
    sm.update_endpoint_weights_and_capacities(
        EndpointName="e1",
        DesiredWeightsAndCapacities=[{"VariantName": "A", "DesiredInstanceCount": 3}],
    )
    assert api.starter.starts[-1].workflow == "UpdateEndpointWeightsAndCapacities"
    [variant] = sm.describe_endpoint(EndpointName="e1")["ProductionVariants"]
    # Desired* show the request at once; Current* follow.
    assert (variant["DesiredInstanceCount"], variant["CurrentInstanceCount"]) == (3, 2)


# --- Temporal down: nothing half-done -------------------------------------------------------


def test_failed_workflow_start_undoes_the_registry_write(api: Api, sm: Any) -> None:
    in_service(api, sm)
    make_config(sm, "c2")
    before = sm.describe_endpoint(EndpointName="e1")
    api.starter.fail_with = ServiceUnavailable("Temporal is unavailable; retry shortly.")
    for call in (
        lambda: sm.create_endpoint(EndpointName="e2", EndpointConfigName="c1"),
        lambda: sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2"),
        lambda: sm.delete_endpoint(EndpointName="e1"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert error(exc)[0] == "ServiceUnavailable"
    with pytest.raises(ClientError):
        sm.describe_endpoint(EndpointName="e2")
    after = sm.describe_endpoint(EndpointName="e1")
    assert after["EndpointStatus"] == "InService"
    assert after["EndpointConfigName"] == before["EndpointConfigName"]
    assert api.registry.get_endpoint("e1").current_deployment_id is None  # type: ignore[union-attr]
    failed = [
        d for d in api.registry.list_deployments(limit=10) if d.outcome == DeploymentOutcome.FAILED
    ]
    assert len(failed) == 3
    assert all("could not be started" in (d.failure_reason or "") for d in failed)
    # Temporal is back: the retry goes through from a clean state.
    api.starter.fail_with = None
    sm.update_endpoint(EndpointName="e1", EndpointConfigName="c2")


# --- paging and filters -----------------------------------------------------------------------


def test_list_endpoints_paging_and_filters(api: Api, sm: Any) -> None:
    make_model(sm)
    make_config(sm)
    names = [f"ep-{i:02d}" for i in range(23)]
    for name in names:
        sm.create_endpoint(EndpointName=name, EndpointConfigName="c1")
    for name in names[:5]:
        api.finish(name)
    seen: list[str] = []
    token: str | None = None
    for _ in range(10):
        kwargs: dict[str, Any] = {"MaxResults": 10, "SortBy": "Name", "SortOrder": "Ascending"}
        if token:
            kwargs["NextToken"] = token
        page = sm.list_endpoints(**kwargs)
        seen += [e["EndpointName"] for e in page["Endpoints"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == names
    paginated = [
        e["EndpointName"]
        for page in sm.get_paginator("list_endpoints").paginate(PaginationConfig={"PageSize": 7})
        for e in page["Endpoints"]
    ]
    assert sorted(paginated) == names
    in_service_names = sm.list_endpoints(StatusEquals="InService", MaxResults=100)["Endpoints"]
    assert sorted(e["EndpointName"] for e in in_service_names) == names[:5]
    contains = sm.list_endpoints(NameContains="ep-1", MaxResults=100)["Endpoints"]
    assert sorted(e["EndpointName"] for e in contains) == names[10:20]


def test_list_models_and_configs_paging(sm: Any) -> None:
    for i in range(12):
        make_model(sm, f"model-{i:02d}")
    make_config(sm, "cfg-a", model="model-00")
    make_config(sm, "cfg-b", model="model-01")
    models = [
        m["ModelName"]
        for page in sm.get_paginator("list_models").paginate(
            SortBy="Name", SortOrder="Descending", PaginationConfig={"PageSize": 5}
        )
        for m in page["Models"]
    ]
    assert models == [f"model-{i:02d}" for i in reversed(range(12))]
    configs = sm.list_endpoint_configs(NameContains="cfg", SortBy="Name", SortOrder="Ascending")
    assert [c["EndpointConfigName"] for c in configs["EndpointConfigs"]] == ["cfg-a", "cfg-b"]
