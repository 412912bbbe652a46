"""An endpoint whose workflow is gone (terminated through the Temporal client, as `temporal
workflow terminate` does) is settled by the worker's reconciler: traffic back on the serving
fleet, the new fleet removed, InService with a FailureReason; AbortDeployment is accepted while
it settles (issue 14 item 10)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

import worker.reconciler as reconciler_module
from greenshift import naming
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.fakes import FleetFaults
from tests.workflow.harness import (
    World,
    bake_indices,
    canary,
    plan_of,
    rolling,
    variant,
    wait_for,
    world,
)
from worker.reconciler import Held, Reconciler, Sightings
from workflows.messages import ABORT, ControlRequest, ControlResult

DEPLOYMENT = "dep-0001-orphaned"


async def start_update(w: World, count: int, config: dict[str, Any]) -> Any:
    await w.create("e1", "c1", variant(count=count))
    w.add_config("c2", variant(model="m2", count=count))
    request = {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": config}
    return await w.start("UpdateEndpoint", request, DEPLOYMENT)


async def settle_started(
    env: WorkflowEnvironment, reconciler: Reconciler, within: float = 20
) -> WorkflowHandle[Any, Any]:
    """Poll until the reconciler starts SettleEndpoint for e1; that run."""
    deadline = time.monotonic() + within
    while not await reconciler.poll_once():
        assert time.monotonic() < deadline, "the reconciler started no settle"
        await asyncio.sleep(0.05)
    started = await env.client.get_workflow_handle(naming.workflow_id("e1")).describe()
    return env.client.get_workflow_handle(naming.workflow_id("e1"), run_id=started.run_id)


async def test_terminated_canary_is_rolled_back_by_the_reconciler(
    env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await start_update(w, 2, canary(wait=300))
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        green = naming.fleet_id("e1", DEPLOYMENT, "A")
        index = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == index)
        assert 0 < w.router.shares("e1").get(green, 0) < 1  # the canary carries traffic
        await handle.terminate("operator ran temporal workflow terminate")

        # The fault: nothing settles it by itself.
        await asyncio.sleep(0.5)
        stuck = w.endpoint("e1")
        assert stuck.status is EndpointStatus.UPDATING
        assert stuck.current_deployment_id == DEPLOYMENT

        reconciler = Reconciler(
            env.client, w.registry, w.task_queue, interval_seconds=0.1, grace_seconds=0
        )
        settle = await settle_started(env, reconciler)
        assert await settle.result() == "rollback"

        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        assert endpoint.config_name == "c1"
        assert endpoint.variants[0].fleet_id == blue
        assert endpoint.pending is None
        assert "TERMINATED" in (endpoint.failure_reason or "")
        assert w.router.shares("e1") == {blue: 1.0}
        assert w.fleet.sizes[blue] == 2 and w.fleet.sizes.get(green, 0) == 0
        deployment = w.registry.get_deployment(DEPLOYMENT)
        assert deployment is not None and deployment.outcome is DeploymentOutcome.ROLLED_BACK
        # Settled: the reconciler finds nothing more to do, and the endpoint takes updates.
        assert await reconciler.poll_once() == []
        # A pass that read the registry just before the settle released e1, and asked Temporal
        # just after its run closed (whose memo names the deployment too), starts no second run.
        stale = [Held("e1", DEPLOYMENT, handle.id)]
        monkeypatch.setattr(reconciler_module, "held_endpoints", lambda registry: stale)
        assert await reconciler.poll_once() == []
        latest = await env.client.get_workflow_handle(naming.workflow_id("e1")).describe()
        assert latest.run_id == settle.run_id


async def test_abort_is_accepted_while_an_orphan_is_settled(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # Rolling retires old instances as it goes, so settling must launch them again: the launch
    # takes real time, long enough to send AbortDeployment meanwhile.
    async with world(env.client, tmp_path, faults=FleetFaults(launch_seconds=1.5)) as w:
        handle = await start_update(w, 3, rolling(batch=1, wait=300))
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        index = bake_indices(await plan_of(w, DEPLOYMENT))[1]
        await wait_for(handle, lambda v: v.baking and v.step_index == index, env, within=60)
        assert w.fleet.sizes[blue] < 3
        await handle.terminate("lost")

        reconciler = Reconciler(env.client, w.registry, w.task_queue, grace_seconds=0)
        assert [h.endpoint for h in await reconciler.poll_once()] == ["e1"]
        settle = env.client.get_workflow_handle(naming.workflow_id("e1"))
        result = await settle.execute_update(
            ABORT, ControlRequest(actor="ops", reason="stuck"), result_type=ControlResult
        )
        assert result.accepted
        assert await settle.result() == "rollback"
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        assert endpoint.config_name == "c1"
        assert w.fleet.sizes[blue] == 3
        assert w.router.shares("e1") == {blue: 1.0}


def test_one_sighting_is_not_enough_within_the_grace() -> None:
    # The API reserves the endpoint a moment before it starts the workflow.
    held = Held("e1", "d1", "endpoint/e1")
    sightings = Sightings(grace=10)
    assert sightings.due({held}, now=100) == []
    assert sightings.due({held}, now=105) == []
    assert sightings.due(set(), now=106) == []  # the workflow showed up: forgotten
    assert sightings.due({held}, now=107) == []
    assert sightings.due({held}, now=117) == [held]
