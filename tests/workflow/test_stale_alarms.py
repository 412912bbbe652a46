"""A hung alarm evaluator fails closed (issue 14 item 11): when the alarm states a bake ends on
were not evaluated recently, the deployment does not move traffic forward; it looks again for a
while, then pauses and says why. Fresh states again and a resume: it goes on."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from greenshift import naming
from greenshift.status import EndpointStatus
from tests.workflow.harness import (
    bake_indices,
    canary,
    plan_of,
    variant,
    wait_for,
    world,
)
from workflows.deployment import STALE_RECHECK_SECONDS, STALE_RECHECKS
from workflows.messages import RESUME, ControlRequest, ControlResult

DEPLOYMENT = "dep-0001-stale-alarms"
HUNG_SINCE = datetime(2020, 1, 1, tzinfo=UTC)


async def test_stale_alarms_hold_the_canary_then_pause_and_say_why(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        request = {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(wait=60, final=60, alarms=("errors",)),
        }
        handle = await w.start("UpdateEndpoint", request, DEPLOYMENT)
        green = naming.fleet_id("e1", DEPLOYMENT, "A")
        first = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == first)
        canary_share = w.router.shares("e1")[green]
        assert 0 < canary_share < 1

        w.alarms.evaluated_at = HUNG_SINCE  # the evaluator stopped (SIGSTOP) long ago
        # The bake ends; the states are stale: held, then paused, traffic never moved on.
        await env.sleep(60 + STALE_RECHECK_SECONDS * STALE_RECHECKS + 5)
        view = await wait_for(handle, lambda v: v.paused, env)
        assert view.phase == "Paused"
        assert view.step_index == first
        assert w.router.shares("e1")[green] == canary_share
        pending = w.endpoint("e1").pending
        assert pending is not None and pending.paused
        events = w.registry.list_events(DEPLOYMENT)
        paused = [e for e in events if e.type == "Paused"]
        assert paused, [e.type for e in events]
        assert "errors were last evaluated" in paused[-1].message
        assert "alarm evaluator" in paused[-1].message
        # Much later, still held (nothing moves forward on stale alarms).
        await env.sleep(3600)
        assert (await wait_for(handle, lambda v: True)).paused
        assert w.router.shares("e1")[green] == canary_share

        w.alarms.evaluated_at = None  # evaluated again
        result = await handle.execute_update(
            RESUME,
            ControlRequest(actor="ops", reason="evaluator restarted"),
            result_type=ControlResult,
        )
        assert result.accepted
        await handle.result()
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.IN_SERVICE
        assert endpoint.config_name == "c2"


async def test_alarms_evaluated_again_within_the_wait_go_on_without_a_pause(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        await w.create("e1", "c1", variant(count=2))
        w.add_config("c2", variant(model="m2", count=2))
        request = {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(wait=60, final=0, alarms=("errors",)),
        }
        handle = await w.start("UpdateEndpoint", request, DEPLOYMENT)
        first = bake_indices(await plan_of(w, DEPLOYMENT))[0]
        await wait_for(handle, lambda v: v.baking and v.step_index == first)
        w.alarms.evaluated_at = HUNG_SINCE
        await env.sleep(60 + STALE_RECHECK_SECONDS + 1)  # the bake ended, one look was stale
        reads = w.alarms.reads
        view = await wait_for(handle, lambda v: True)
        assert view.step_index == first and not view.paused
        w.alarms.evaluated_at = None  # a restarted evaluator catches up
        await handle.result()
        assert w.alarms.reads > reads
        assert w.endpoint("e1").config_name == "c2"
        assert not [e for e in w.registry.list_events(DEPLOYMENT) if e.type == "Paused"]
