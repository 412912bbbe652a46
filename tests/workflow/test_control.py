"""Manual control of a running deployment: pause, resume, promote, abort (Temporal updates with
validators), and the progress query."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from greenshift.status import EndpointStatus
from tests.workflow.harness import World, canary, variant, wait_for, world
from workflows.messages import (
    ABORT,
    ALARM_TRIPPED,
    PAUSE,
    PROMOTE,
    RESUME,
    AlarmTripped,
    ControlRequest,
    ControlResult,
)

ALICE = ControlRequest(actor="alice", reason="checking dashboards")


async def start(w: World, config: dict[str, Any]) -> Any:
    await w.create("e1", "c1", variant(count=2))
    w.add_config("c2", variant(model="m2", count=2))
    return await w.start(
        "UpdateEndpoint",
        {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": config},
    )


async def refused(handle: Any, update: str, message: str) -> None:
    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(update, ALICE, result_type=ControlResult)
    assert message in str(error.value.cause)


async def test_pause_holds_at_the_next_step_and_resume_goes_on(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await start(w, canary(wait=300, final=300))
        first = await wait_for(handle, lambda v: v.baking)
        await refused(handle, RESUME, "not paused")
        pending = w.endpoint("e1").pending  # what DescribeEndpoint shows mid-bake
        assert pending is not None and pending.config_name == "c2"
        (status,) = pending.variants[0].statuses
        assert status.status == "Baking"
        assert status.message.startswith("Baking for 300 seconds (WaitIntervalInSeconds)")
        assert pending.variants[0].current_instance_count == 2
        result = await handle.execute_update(PAUSE, ALICE, result_type=ControlResult)
        assert result.accepted
        await refused(handle, PAUSE, "already paused")
        # The bake still runs to its end, then the deployment holds.
        view = await wait_for(handle, lambda v: v.phase == "Paused", env)
        assert view.step_index == first.step_index
        await env.sleep(3600)
        assert (await wait_for(handle, lambda v: True)).phase == "Paused"
        endpoint = w.endpoint("e1")
        assert endpoint.pending is not None and endpoint.pending.paused
        await handle.execute_update(RESUME, ALICE, result_type=ControlResult)
        await handle.result()
        assert w.endpoint("e1").config_name == "c2"
        events = w.registry.list_events(w.registry.list_deployments("e1")[0].deployment_id)
        assert [(e.type, e.actor) for e in events if e.actor] == [
            ("Paused", "alice"),
            ("Resumed", "alice"),
        ]


async def test_an_update_that_arrives_with_the_start_is_told_the_deployment_is_being_prepared(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The preparation is a local activity in the first workflow task: an update delivered in
    that task (here with the start itself) is refused by name, and the deployment goes on."""
    async with world(dev_env.client, tmp_path) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        request = {"EndpointName": "e1", "EndpointConfigName": "c2"}
        start_op = WithStartWorkflowOperation(
            "UpdateEndpoint",
            request,
            id=f"endpoint/e1/{uuid.uuid4().hex[:6]}",
            task_queue=w.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        with pytest.raises(WorkflowUpdateFailedError) as error:
            await w.client.execute_update_with_start_workflow(
                RESUME, ALICE, start_workflow_operation=start_op, result_type=ControlResult
            )
        assert "still being prepared" in str(error.value.cause)
        handle = await start_op.workflow_handle()
        w.started.append(handle)
        await handle.result()
        assert w.endpoint("e1").config_name == "c2"


async def test_promote_ends_the_bake_now(env: WorkflowEnvironment, tmp_path: Path) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await start(w, canary(wait=3000, final=600, timeout=7200))
        first = await wait_for(handle, lambda v: v.baking)
        await handle.execute_update(PAUSE, ALICE, result_type=ControlResult)
        await wait_for(handle, lambda v: v.phase == "Paused", env)
        await refused(handle, PROMOTE, "not baking")
        await handle.execute_update(RESUME, ALICE, result_type=ControlResult)
        bake = await wait_for(
            handle, lambda v: v.baking and (v.step_index or 0) > (first.step_index or 0)
        )
        before = await env.get_current_time()
        await handle.execute_update(PROMOTE, ALICE, result_type=ControlResult)
        # Without any time passing, the deployment moves past the bake.
        after = await wait_for(handle, lambda v: (v.step_index or 0) > (bake.step_index or 0))
        assert not after.rolling_back
        assert (await env.get_current_time() - before).total_seconds() < 60


async def test_abort_rolls_back_and_cannot_be_repeated(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await start(w, canary())
        await wait_for(handle, lambda v: v.baking)
        await handle.execute_update(ABORT, ALICE, result_type=ControlResult)
        await refused(handle, ABORT, "rolling back")
        await refused(handle, PAUSE, "rolling back")
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE and endpoint.config_name == "c1"
        assert endpoint.failure_reason == (
            "The deployment was aborted by alice: checking dashboards"
        )


async def test_paused_deployment_still_rolls_back_on_alarm(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        handle = await start(w, canary(alarms=("errors",)))
        await wait_for(handle, lambda v: v.baking)
        await handle.execute_update(PAUSE, ALICE, result_type=ControlResult)
        await wait_for(handle, lambda v: v.phase == "Paused", env)
        w.alarms.set_state("errors", "ALARM")
        await handle.signal(ALARM_TRIPPED, AlarmTripped(name="errors"))
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        assert "Alarm errors" in (w.endpoint("e1").failure_reason or "")


async def test_signal_for_an_alarm_not_watched_is_ignored(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        handle = await start(w, canary(alarms=("errors",)))
        await wait_for(handle, lambda v: v.baking)
        await handle.signal(ALARM_TRIPPED, AlarmTripped(name="someone-elses"))
        await handle.result()
        assert w.endpoint("e1").config_name == "c2"
