"""AbortDeployment on an endpoint whose deployment's workflow was just terminated is accepted
at once, before any reconciler acts: the API starts SettleEndpoint itself (issue 14 item 10;
until now it answered "no deployment is running" for the reconciler's first ~20 s)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from greenshift import naming
from greenshift.api.context import ApiContext
from greenshift.api.deployments import abort_deployment
from greenshift.api.errors import NoDeploymentInProgressError
from greenshift.api.workflows import TemporalStarter, WorkflowNotRunningError
from greenshift.names import MEMO_DEPLOYMENT_ID
from greenshift.orphans import WorkflowState, settle_now
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.workflow.harness import World, bake_indices, canary, plan_of, variant, wait_for, world

DEPLOYMENT = "dep-0002-aborted"


async def start_as_the_api_does(w: World) -> Any:
    """The deployment under the endpoint's own workflow id with the deployment id in its memo,
    as the API starts it."""
    await w.create("e1", "c1", variant(count=2))
    w.add_config("c2", variant(model="m2", count=2))
    request = {
        "EndpointName": "e1",
        "EndpointConfigName": "c2",
        "DeploymentConfig": canary(wait=300),
    }
    handle = await w.client.start_workflow(
        "UpdateEndpoint",
        request,
        id=naming.workflow_id("e1"),
        task_queue=w.task_queue,
        memo={MEMO_DEPLOYMENT_ID: DEPLOYMENT},
    )
    w.started.append(handle)
    return handle


async def test_abort_right_after_a_terminate_settles_the_endpoint_at_once(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await start_as_the_api_does(w)
        blue = w.endpoint("e1").variants[0].fleet_id
        index = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == index)
        green = naming.fleet_id("e1", DEPLOYMENT, "A")
        assert 0 < w.router.shares("e1").get(green, 0) < 1
        await handle.terminate("operator ran temporal workflow terminate")

        # No reconciler runs in this test: only the API can settle the endpoint.
        starter = TemporalStarter(w.settings, client=env.client)
        ctx = ApiContext(settings=w.settings, registry=w.registry, starter=starter)
        out = await abort_deployment(ctx, {"EndpointName": "e1", "Reason": "stuck", "Actor": "ops"})
        assert out["DeploymentId"] == DEPLOYMENT
        assert out["Result"]["accepted"] is True

        settle = env.client.get_workflow_handle(naming.workflow_id("e1"))
        assert await settle.result() == "rollback"
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        assert endpoint.config_name == "c1"
        assert endpoint.current_deployment_id is None
        assert "TERMINATED" in (endpoint.failure_reason or "")
        assert w.router.shares("e1") == {blue: 1.0}
        assert w.fleet.sizes.get(green, 0) == 0
        deployment = w.registry.get_deployment(DEPLOYMENT)
        assert deployment is not None and deployment.outcome is DeploymentOutcome.ROLLED_BACK
        events = [e.message for e in w.registry.list_events(DEPLOYMENT)]
        assert any("Aborted by ops: stuck" in m for m in events), events

        # Settled: a second abort is refused as on any endpoint with no deployment.
        with pytest.raises(NoDeploymentInProgressError):
            await abort_deployment(ctx, {"EndpointName": "e1"})


async def test_pause_of_a_terminated_deployment_is_still_refused(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    # Only an abort asks for what settling does; pause/resume/promote have nothing to steer.
    async with world(env.client, tmp_path) as w:
        handle = await start_as_the_api_does(w)
        index = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == index)
        await handle.terminate("gone")
        starter = TemporalStarter(w.settings, client=env.client)
        ctx = ApiContext(settings=w.settings, registry=w.registry, starter=starter)
        from greenshift.api.deployments import pause_deployment

        with pytest.raises(WorkflowNotRunningError):
            await pause_deployment(ctx, {"EndpointName": "e1"})
        description = await env.client.get_workflow_handle(naming.workflow_id("e1")).describe()
        assert description.status is WorkflowExecutionStatus.TERMINATED  # nothing started
        assert w.endpoint("e1").status is EndpointStatus.UPDATING


def test_the_rule_waits_out_the_grace_unless_the_closed_run_is_the_deployments_own() -> None:
    closed_own = WorkflowState(WorkflowExecutionStatus.TERMINATED, "d1")
    closed_other = WorkflowState(WorkflowExecutionStatus.COMPLETED, "d0")  # the previous deploy
    missing = WorkflowState(None)
    running = WorkflowState(WorkflowExecutionStatus.RUNNING, "d1")
    assert settle_now(closed_own, "d1", held_for=0.1, grace=15)
    # The API reserves the endpoint a moment before it starts the workflow: within the grace a
    # missing run, or the previous deployment's closed one, is no proof.
    assert not settle_now(closed_other, "d1", held_for=0.1, grace=15)
    assert not settle_now(missing, "d1", held_for=0.1, grace=15)
    assert settle_now(closed_other, "d1", held_for=15, grace=15)
    assert settle_now(missing, "d1", held_for=20, grace=15)
    assert not settle_now(running, "d1", held_for=100, grace=15)


async def test_the_reconciler_settles_a_proven_orphan_without_waiting_for_the_grace(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    from worker.reconciler import Reconciler

    async with world(env.client, tmp_path) as w:
        handle = await start_as_the_api_does(w)
        index = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == index)
        reconciler = Reconciler(env.client, w.registry, w.task_queue, grace_seconds=3600)
        assert await reconciler.poll_once() == []  # running: nothing to do
        await handle.terminate("lost")
        # The closed run carries the deployment's id in its memo: proof enough, no grace.
        assert [h.endpoint for h in await reconciler.poll_once()] == ["e1"]
        settle = env.client.get_workflow_handle(naming.workflow_id("e1"))
        assert await settle.result() == "rollback"
        assert w.endpoint("e1").status is EndpointStatus.IN_SERVICE


async def test_the_reconciler_waits_out_the_grace_without_proof(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    from worker.reconciler import Reconciler

    async with world(env.client, tmp_path) as w:
        # As `temporal workflow start` or the SDK would: the deployment id as an argument, no
        # memo, so a closed run proves nothing about this deployment.
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        request = {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": canary()}
        handle = await w.start("UpdateEndpoint", request, DEPLOYMENT)
        index = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == index)
        await handle.terminate("lost")
        reconciler = Reconciler(env.client, w.registry, w.task_queue, grace_seconds=3600)
        # Its workflow id has no run of this deployment's memo: within the grace, no action.
        assert await reconciler.poll_once() == []
        assert w.endpoint("e1").status is EndpointStatus.UPDATING


async def test_abort_never_settles_a_deployment_running_under_another_workflow_id(
    env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import greenshift.orphans

    # No grace at all (-inf: the test server's clock, which stamps the deployment's start, runs
    # ahead of the wall clock): only the deployment's own workflow, alive under its own id
    # (started from the SDK, not as `endpoint/<name>`), keeps the API from settling it.
    monkeypatch.setattr(greenshift.orphans, "GRACE_SECONDS", float("-inf"))
    async with world(env.client, tmp_path) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        request = {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": canary()}
        handle = await w.start("UpdateEndpoint", request, DEPLOYMENT)
        index = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == index)
        starter = TemporalStarter(w.settings, client=env.client)
        ctx = ApiContext(settings=w.settings, registry=w.registry, starter=starter)
        with pytest.raises(WorkflowNotRunningError):
            await abort_deployment(ctx, {"EndpointName": "e1"})
        assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
        assert w.endpoint("e1").status is EndpointStatus.UPDATING
        # Once it is terminated, the same abort settles the endpoint.
        await handle.terminate("gone")
        out = await abort_deployment(ctx, {"EndpointName": "e1"})
        assert out["Result"]["accepted"] is True
        settle = env.client.get_workflow_handle(naming.workflow_id("e1"))
        assert await settle.result() == "rollback"
