"""Everything that rolls a deployment back: an alarm in any kind of bake (by signal or by the
pull check), an alarm already in ALARM, a provision that never gets healthy, the deadline, and a
rollback that itself fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.testing import WorkflowEnvironment

from greenshift import naming
from greenshift.status import DeploymentOutcome, EndpointStatus
from tests.fakes import FleetFaults
from tests.workflow.harness import (
    World,
    all_at_once,
    bake_indices,
    canary,
    linear,
    plan_of,
    rolling,
    variant,
    wait_for,
    world,
)
from workflows.messages import ALARM_TRIPPED, PAUSE, AlarmTripped, ControlRequest

DEPLOYMENT = "dep-0001-rollback"


async def start_update(w: World, count: int, config: dict[str, Any] | None) -> Any:
    await w.create("e1", "c1", variant(count=count))
    w.add_config("c2", variant(model="m2", count=count))
    request: dict[str, Any] = {"EndpointName": "e1", "EndpointConfigName": "c2"}
    if config is not None:
        request["DeploymentConfig"] = config
    return await w.start("UpdateEndpoint", request, DEPLOYMENT)


async def expect_rolled_back(w: World, handle: Any, blue: str, count: int, reason: str) -> None:
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    assert reason in str(failure.value.cause)
    endpoint = w.endpoint("e1")
    assert endpoint.status is EndpointStatus.IN_SERVICE
    assert endpoint.config_name == "c1"
    assert endpoint.variants[0].fleet_id == blue
    assert reason in (endpoint.failure_reason or "")
    assert endpoint.pending is None
    green = naming.fleet_id("e1", DEPLOYMENT, "A")
    assert w.fleet.sizes[blue] == count and w.fleet.sizes.get(green, 0) == 0
    assert w.router.shares("e1") == {blue: 1.0}
    deployment = w.registry.get_deployment(DEPLOYMENT)
    assert deployment is not None and deployment.outcome is DeploymentOutcome.ROLLED_BACK
    assert endpoint.last_deployment_config == deployment.request.get("DeploymentConfig")


@pytest.mark.parametrize(
    ("config", "count", "bake", "by_signal"),
    [
        (canary(alarms=("errors",)), 4, 0, True),  # the canary bake
        (canary(alarms=("errors",)), 4, 1, False),  # the final bake (both waits)
        (all_at_once(alarms=("errors",)), 2, 0, False),
        (linear(percent=25, alarms=("errors",)), 4, 2, True),  # a middle linear step
        (rolling(batch=1, alarms=("errors",)), 3, 1, True),  # the second rolling batch
    ],
)
async def test_alarm_in_a_bake_rolls_back(
    env: WorkflowEnvironment,
    tmp_path: Path,
    config: dict[str, Any],
    count: int,
    bake: int,
    by_signal: bool,
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        handle = await start_update(w, count, config)
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        index = bake_indices(await plan_of(w, DEPLOYMENT))[bake]
        await wait_for(handle, lambda v: v.baking and v.step_index == index, env)
        w.alarms.set_state("errors", "ALARM", "5XX errors above 1%")
        if by_signal:  # what the worker's alarm watcher sends; rollback starts mid-bake
            await handle.signal(ALARM_TRIPPED, AlarmTripped(name="errors", reason="5XX"))
            await wait_for(handle, lambda v: v.rolling_back)
        await expect_rolled_back(w, handle, blue, count, "Alarm errors was in ALARM")


async def test_every_traffic_write_carries_its_place_in_the_deployment(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Forward traffic steps are fenced by their plan index, every rollback step after all of
    them (RoutingFence; tests/unit/test_routing_fence.py shows what the fence refuses)."""
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        handle = await start_update(w, 4, canary(alarms=("errors",)))
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        plan = await plan_of(w, DEPLOYMENT)
        await wait_for(handle, lambda v: v.baking and v.step_index == bake_indices(plan)[0], env)
        w.alarms.set_state("errors", "ALARM")
        await expect_rolled_back(w, handle, blue, 4, "Alarm errors")
        fences = [(d, step) for d, step in w.router.state.data["fences"] if d == DEPLOYMENT]
        canary_step = next(p.index for p in plan.steps if p.step.kind == "traffic")
        assert fences[0] == (DEPLOYMENT, canary_step)
        assert fences[1:] and set(fences[1:]) == {(DEPLOYMENT, len(plan.steps))}


async def test_rolling_rollback_moves_back_in_batches(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        handle = await start_update(w, 4, rolling(batch=1, rollback_batch=1, alarms=("errors",)))
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        index = bake_indices(await plan_of(w, DEPLOYMENT))[2]  # three of four batches are new
        await wait_for(handle, lambda v: v.baking and v.step_index == index, env)
        changes_before = len(w.fleet.changes)
        routes_before = len(w.router.applied)
        w.alarms.set_state("errors", "ALARM")
        await expect_rolled_back(w, handle, blue, 4, "Alarm errors")
        green = naming.fleet_id("e1", DEPLOYMENT, "A")
        rollback = w.fleet.changes[changes_before:]
        # Old capacity comes back one instance at a time, and the new goes one at a time.
        assert all(abs(after - before) == 1 for _, _, before, after in rollback), rollback
        assert [c for c in rollback if c[1] == green][-1][3] == 0
        shares = [
            sum(f.share for v in r.variants for f in v.fleets if f.fleet_id == green)
            for _, r in w.router.applied[routes_before:]
        ]
        assert len(shares) >= 3 and shares == sorted(shares, reverse=True) and shares[-1] == 0


async def test_alarm_already_in_alarm_fails_before_any_instance(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=["errors"]) as w:
        w.alarms.set_state("errors", "ALARM", "already bad")
        handle = await start_update(w, 2, canary(alarms=("errors",)))
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        await expect_rolled_back(w, handle, blue, 2, "Alarm errors was in ALARM before")
        green = naming.fleet_id("e1", DEPLOYMENT, "A")
        assert all(c[1] != green for c in w.fleet.changes)


async def test_provision_never_healthy_rolls_back(env: WorkflowEnvironment, tmp_path: Path) -> None:
    faults = FleetFaults(never_healthy_models={"m2"})
    async with world(env.client, tmp_path, faults=faults) as w:
        handle = await start_update(w, 2, canary())
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        await expect_rolled_back(w, handle, blue, 2, "did not pass the ping health check")


async def test_create_that_never_gets_healthy_fails_clean(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    faults = FleetFaults(never_healthy_models={"m1"})
    async with world(env.client, tmp_path, faults=faults) as w:
        w.add_config("c1", variant(count=2))
        handle = await w.start("CreateEndpoint", {"EndpointName": "e1", "EndpointConfigName": "c1"})
        with pytest.raises(WorkflowFailureError):
            await handle.result()
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.FAILED
        assert "production variant A did not pass the ping health check" in (
            endpoint.failure_reason or ""
        )
        assert all(size == 0 for size in w.fleet.sizes.values())


async def test_deadline_rolls_back_even_when_paused(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        handle = await start_update(w, 2, canary(wait=300, final=300, timeout=1200))
        blue = w.endpoint("e1").variants[0].fleet_id
        assert blue is not None
        await wait_for(handle, lambda v: v.baking)
        await handle.execute_update(PAUSE, ControlRequest(actor="bob", reason="look first"))
        # Paused forever: only the deadline (a timer inside the workflow) can end it.
        await expect_rolled_back(w, handle, blue, 2, "MaximumExecutionTimeoutInSeconds")


async def test_failed_rollback_is_update_rollback_failed(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    green = naming.fleet_id("e1", DEPLOYMENT, "A")
    faults = FleetFaults(failing_scale_down={green})
    async with world(env.client, tmp_path, faults=faults, alarms=["errors"]) as w:
        handle = await start_update(w, 3, rolling(batch=1, alarms=("errors",)))
        await wait_for(handle, lambda v: v.baking)
        w.alarms.set_state("errors", "ALARM")
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        assert "RollbackFailed" in repr(failure.value.cause)
        endpoint = w.endpoint("e1")
        assert endpoint.status is EndpointStatus.UPDATE_ROLLBACK_FAILED
        assert "The rollback failed" in (endpoint.failure_reason or "")
        deployment = w.registry.get_deployment(DEPLOYMENT)
        assert deployment is not None
        assert deployment.outcome is DeploymentOutcome.ROLLBACK_FAILED
