"""Temporal as a door (issue 14 item 1): a workflow started directly on Temporal, never meeting
the API, is held to the API's quotas and bounds by its prepare activity, with the API's message,
before any side effect."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.status import EndpointStatus
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from tests.workflow.harness import World, variant
from worker.build import Dependencies, build_worker


@asynccontextmanager
async def limited_world(client: Client, tmp: Path, **limits: int) -> AsyncIterator[World]:
    settings = Settings(home=tmp, task_queue=f"greenshift-{uuid.uuid4().hex[:8]}", **limits)
    registry = SqlRegistry(f"sqlite:///{tmp / 'registry.db'}", arn_for=settings.arn)
    w = World(
        client, settings, registry, FakeFleet(), FakeRouter(), FakeAlarms(), settings.task_queue
    )
    deps = Dependencies(
        settings=settings, registry=registry, fleet=w.fleet, router=w.router, alarms=w.alarms
    )
    try:
        async with build_worker(client, deps):
            try:
                yield w
            finally:
                await w.terminate_running()
    finally:
        registry.close()


async def refused(w: World, workflow: str, request: dict[str, Any]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failure:
        await w.run(workflow, request)
    cause = failure.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


@pytest.mark.parametrize("count", [5, 2**64])
async def test_weights_and_capacities_beyond_the_quota_are_refused(
    env: WorkflowEnvironment, tmp_path: Path, count: int
) -> None:
    async with limited_world(env.client, tmp_path, max_instances_per_endpoint=3) as w:
        await w.create("e1", "c1", variant(count=1))
        calls = len(w.fleet.calls)
        cause = await refused(
            w,
            "UpdateEndpointWeightsAndCapacities",
            {
                "EndpointName": "e1",
                "DesiredWeightsAndCapacities": [
                    {"VariantName": "A", "DesiredInstanceCount": count}
                ],
            },
        )
        assert cause.type in ("ResourceLimitExceeded", "ValidationException")
        if count == 5:
            assert cause.type == "ResourceLimitExceeded"
            assert "max_instances_per_endpoint" in cause.message
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        assert endpoint.current_deployment_id is None
        assert endpoint.variants[0].desired_instance_count == 1
        assert len(w.fleet.calls) == calls  # nothing launched


async def test_an_update_beyond_the_endpoint_instance_limit_is_refused(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with limited_world(env.client, tmp_path, max_instances_per_endpoint=3) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))  # blue/green peak: 4 > 3
        cause = await refused(
            w, "UpdateEndpoint", {"EndpointName": "e1", "EndpointConfigName": "c2"}
        )
        assert cause.type == "ResourceLimitExceeded"
        assert "max_instances_per_endpoint" in cause.message
        assert "rolling update" in cause.message  # the API's hint: rolling would fit
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.config_name == "c1"


async def test_a_create_beyond_the_endpoint_limit_is_refused(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with limited_world(env.client, tmp_path, max_endpoints=1) as w:
        await w.create("e1", "c1", variant(count=1))
        cause = await refused(
            w, "CreateEndpoint", {"EndpointName": "e2", "EndpointConfigName": "c1"}
        )
        assert cause.type == "ResourceLimitExceeded"
        assert "max_endpoints" in cause.message
        assert w.registry.get_endpoint("e2") is None
