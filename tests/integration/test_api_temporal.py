"""TemporalStarter against a real Temporal dev server (no worker needed): the workflow is
started with the id, task queue, input and memo the workflows expect; a second start of the
same endpoint is ResourceInUse; Temporal unreachable is ServiceUnavailable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from greenshift.api.workflows import MEMO_DEPLOYMENT_ID, TemporalStarter
from greenshift.binaries import SERVER_STARTUP_TIMEOUT, temporal_cli
from greenshift.errors import ResourceInUse, ServiceUnavailable, ValidationError
from greenshift.settings import Settings
from tests.harness.api_testing import free_port


@pytest.fixture
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=temporal_cli(),
        ip="127.0.0.1",
        port=free_port(),
        ui=False,
        dev_server_startup_timeout=SERVER_STARTUP_TIMEOUT,
    )
    try:
        yield env
    finally:
        await env.shutdown()


async def test_start_with_memo_and_one_operation_per_endpoint(
    temporal: WorkflowEnvironment,
) -> None:
    target = temporal.client.service_client.config.target_host
    settings = Settings(temporal_address=target, task_queue="api-test")
    starter = TemporalStarter(settings, settle_seconds=1)
    request = {"EndpointName": "e1", "EndpointConfigName": "c1"}
    await starter.start("CreateEndpoint", request, workflow_id="endpoint/e1", deployment_id="d1")
    handle = temporal.client.get_workflow_handle("endpoint/e1")
    described = await handle.describe()
    assert described.workflow_type == "CreateEndpoint"
    assert described.task_queue == "api-test"
    assert await described.memo_value(MEMO_DEPLOYMENT_ID) == "d1"
    with pytest.raises(ResourceInUse):
        await starter.start(
            "UpdateEndpoint", request, workflow_id="endpoint/e1", deployment_id="d2"
        )
    with pytest.raises(ValidationError):
        await starter.update("endpoint/ghost", "pause", {"actor": "a", "reason": ""})


async def test_unreachable_temporal_is_service_unavailable() -> None:
    settings = Settings(temporal_address=f"127.0.0.1:{free_port()}")
    starter = TemporalStarter(settings, connect_timeout=3)
    with pytest.raises(ServiceUnavailable):
        await starter.start("CreateEndpoint", {}, workflow_id="endpoint/x", deployment_id="d")


async def test_a_start_waits_for_the_previous_run_of_the_endpoint_to_close(
    temporal: WorkflowEnvironment,
) -> None:
    """A client that sees InService and updates at once meets the previous workflow still
    finishing (it has released the endpoint, its last events are being written): the start waits
    for that run to close instead of refusing."""
    target = temporal.client.service_client.config.target_host
    starter = TemporalStarter(Settings(temporal_address=target, task_queue="api-test"))
    request = {"EndpointName": "e2", "EndpointConfigName": "c1"}
    await starter.start("CreateEndpoint", request, workflow_id="endpoint/e2", deployment_id="d1")
    previous = temporal.client.get_workflow_handle("endpoint/e2")

    async def finish_soon() -> None:
        await asyncio.sleep(1.0)
        await previous.terminate("finished")

    finishing = asyncio.create_task(finish_soon())
    await starter.start("UpdateEndpoint", request, workflow_id="endpoint/e2", deployment_id="d2")
    await finishing
    described = await temporal.client.get_workflow_handle("endpoint/e2").describe()
    assert described.workflow_type == "UpdateEndpoint"
    assert await described.memo_value(MEMO_DEPLOYMENT_ID) == "d2"
