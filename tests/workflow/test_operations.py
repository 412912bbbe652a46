"""Input handling and the other operations: invalid input fails fast, one operation per endpoint
even under another workflow id, DeleteEndpoint, UpdateEndpointWeightsAndCapacities, and the
history-size bound of the longest deployment the API allows."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from greenshift import names, naming
from greenshift.registry.records import DeploymentRecord
from greenshift.status import EndpointStatus
from tests.workflow.harness import canary, linear, rolling, variant, wait_for, world


def application_error(failure: pytest.ExceptionInfo[WorkflowFailureError]) -> ApplicationError:
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


@pytest.mark.parametrize(
    ("request_doc", "code", "field"),
    [
        (
            {"EndpointName": "bad_name", "EndpointConfigName": "c2"},
            "ValidationException",
            "endpointName",
        ),
        ({"EndpointName": "e1"}, "ValidationException", "endpointConfigName"),
        (
            {"EndpointName": "e1", "EndpointConfigName": 7},
            "SerializationException",
            "endpointConfigName",
        ),
        ("not an object", "SerializationException", ""),
    ],
)
async def test_invalid_input_fails_at_once(
    env: WorkflowEnvironment, tmp_path: Path, request_doc: Any, code: str, field: str
) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await w.client.start_workflow(
            "UpdateEndpoint", request_doc, id=f"bad-{code}-{field}", task_queue=w.task_queue
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        error = application_error(failure)
        assert error.type == code and error.non_retryable
        assert field in error.message
        history = await handle.fetch_history()
        assert not any(
            e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events
        )


async def test_registry_refusals_are_validation_exceptions(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        cases: list[tuple[dict[str, Any], str]] = [
            ({"EndpointName": "nope", "EndpointConfigName": "c1"}, "Could not find endpoint"),
            ({"EndpointName": "e1", "EndpointConfigName": "c1"}, "already runs"),
            ({"EndpointName": "e1", "EndpointConfigName": "ghost"}, "Could not find endpoint conf"),
            (
                {
                    "EndpointName": "e1",
                    "EndpointConfigName": "c2",
                    "DeploymentConfig": canary(alarms=("errors", "ghost")),
                },
                "ghost",
            ),
        ]
        await w.create("e1", "c1")
        w.add_config("c2", variant(model="m2"))
        for request_doc, message in cases:
            with pytest.raises(WorkflowFailureError) as failure:
                await w.run("UpdateEndpoint", request_doc)
            error = application_error(failure)
            assert error.type == "ValidationException" and message in error.message
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.pending is None


async def test_second_operation_is_refused_even_under_another_workflow_id(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1")
        w.add_config("c2", variant(model="m2"))
        w.add_config("c3", variant(model="m3"))
        first = await w.start(
            "UpdateEndpoint",
            {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": canary()},
        )
        await wait_for(first, lambda v: v.baking)
        with pytest.raises(WorkflowFailureError) as failure:
            await w.run("UpdateEndpoint", {"EndpointName": "e1", "EndpointConfigName": "c3"})
        assert application_error(failure).message == (
            f'Cannot update in-progress endpoint "{w.endpoint("e1").arn}".'
        )
        await first.result()
        assert w.endpoint("e1").config_name == "c2"


async def test_weights_and_capacities_in_place(env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1", variant("A", count=2), variant("B", model="m2", count=1))
        fleets = {v.variant: v.fleet_id for v in w.endpoint("e1").variants}
        await w.run(
            "UpdateEndpointWeightsAndCapacities",
            {
                "EndpointName": "e1",
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "A", "DesiredInstanceCount": 3, "DesiredWeight": 3.0},
                    {"VariantName": "B", "DesiredWeight": 1.0},
                ],
            },
        )
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        by_name = {v.variant: v for v in endpoint.variants}
        assert {v: s.fleet_id for v, s in by_name.items()} == fleets  # in place
        assert by_name["A"].current_instance_count == 3 and by_name["A"].current_weight == 3.0
        assert w.fleet.sizes[str(fleets["A"])] == 3
        routing = w.router.routing("e1")
        assert routing is not None
        assert {v.variant: v.weight for v in routing.variants} == {"A": 3.0, "B": 1.0}


async def test_delete_removes_routing_fleets_and_record(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1", variant(count=2))
        handle = await w.start("DeleteEndpoint", {"EndpointName": "e1"})
        await handle.result()
        assert w.registry.get_endpoint("e1") is None
        assert all(size == 0 for size in w.fleet.sizes.values())
        routing = w.router.routing("e1")
        assert routing is not None and routing.variants == []
        # The registry writes and the routing cleared run locally; stopping instances (placed
        # over the hosts, if any) are the activities (issue 17).
        scheduled = {
            e.activity_task_scheduled_event_attributes.activity_type.name
            for e in (await handle.fetch_history()).events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        assert names.RETIRE_FLEETS in scheduled
        local = {names.PREPARE_DELETE, names.CLEAR_ROUTING, names.REMOVE_ENDPOINT}
        assert not scheduled & local


@pytest.mark.parametrize(
    "config",
    [
        rolling(batch=1, wait=1400, timeout=28800, alarms=("errors",)),  # 20 batches
        linear(percent=10, wait=2600, final=2000, timeout=28800, alarms=("errors",)),
    ],
    ids=["rolling-20-batches", "linear-10-steps"],
)
async def test_longest_deployment_history_stays_small(
    env: WorkflowEnvironment, tmp_path: Path, config: dict[str, object]
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        await w.create("e1", "c1", variant(count=20))
        w.add_config("c2", variant(model="m2", count=20))
        handle = await w.start(
            "UpdateEndpoint",
            {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": config},
        )
        await handle.result()
        events = len((await handle.fetch_history()).events)
        assert w.endpoint("e1").config_name == "c2"
        print(f"history events for a 28,800 s deployment: {events}")
        assert events < 10_000


async def test_api_path_reserved_endpoint_and_memo_deployment_id(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The API takes the endpoint (plan not stored) and passes its deployment id in the memo;
    the workflow adopts that reservation, stores the plan, and reports progress under it."""
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        await w.create("e1", "c1")
        w.add_config("c2", variant(model="m2"))
        request = {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(alarms=("errors",)),
        }
        w.registry.begin_operation(
            "e1",
            [EndpointStatus.IN_SERVICE],
            EndpointStatus.UPDATING,
            DeploymentRecord(
                deployment_id="api-dep-1",
                endpoint="e1",
                operation="UpdateEndpoint",
                workflow_id="endpoint/e1",
                request=request,
                started_at=datetime.now(UTC),
            ),
        )
        handle = await w.client.start_workflow(
            "UpdateEndpoint",
            request,
            id="endpoint/e1",
            task_queue=w.task_queue,
            memo={"deployment_id": "api-dep-1"},
        )
        w.started.append(handle)
        await wait_for(handle, lambda v: v.baking)
        deployment = w.registry.get_deployment("api-dep-1")
        assert deployment is not None and deployment.plan is not None
        assert deployment.alarms == ["errors"]  # what the alarm watcher reads
        assert w.endpoint("e1").pending is not None
        await handle.result()
        endpoint = w.endpoint("e1")
        assert endpoint.config_name == "c2" and endpoint.current_deployment_id is None
        assert str(endpoint.variants[0].fleet_id).endswith(naming.short_deployment("api-dep-1"))


@pytest.mark.parametrize(
    ("exclude", "count", "weight"),
    [(None, 4, 1.0), (["DesiredInstanceCount"], 2, 1.0), (["DesiredWeight"], 4, 0.5)],
)
async def test_retained_variant_properties(
    env: WorkflowEnvironment,
    tmp_path: Path,
    exclude: list[str] | None,
    count: int,
    weight: float,
) -> None:
    """SEMANTICS.md section 4's table: A runs 4 instances at weight 1; the new config says 2 at
    0.5."""
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1", variant(count=4))
        w.add_config("c2", variant(model="m2", count=2, weight=0.5))
        request: dict[str, Any] = {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "RetainAllVariantProperties": True,
        }
        if exclude:
            request["ExcludeRetainedVariantProperties"] = [
                {"VariantPropertyType": p} for p in exclude
            ]
        await w.run("UpdateEndpoint", request)
        (state,) = w.endpoint("e1").variants
        assert (state.desired_instance_count, state.desired_weight) == (count, weight)
        assert w.fleet.sizes[str(state.fleet_id)] == count


async def test_reserved_endpoint_is_released_when_prepare_refuses(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The API reserved e1, then the workflow's own check refuses (the alarm is gone): the
    endpoint must not stay Updating."""
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1")
        w.add_config("c2", variant(model="m2"))
        request = {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(alarms=("deleted-meanwhile",)),
        }
        w.registry.begin_operation(
            "e1",
            [EndpointStatus.IN_SERVICE],
            EndpointStatus.UPDATING,
            DeploymentRecord(
                deployment_id="api-dep-2",
                endpoint="e1",
                operation="UpdateEndpoint",
                workflow_id="endpoint/e1",
                request=request,
                started_at=datetime.now(UTC),
            ),
        )
        handle = await w.start("UpdateEndpoint", request, "api-dep-2")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert "deleted-meanwhile" in application_error(failure).message
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        assert endpoint.current_deployment_id is None and endpoint.config_name == "c1"
        assert "deleted-meanwhile" in (endpoint.failure_reason or "")
