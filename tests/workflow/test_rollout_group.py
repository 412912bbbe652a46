"""RolloutGroup on the time-skipping server: waves of the real UpdateEndpoint workflow as child
workflows, with the registry, fakes of the fleet, routing and alarms."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from greenshift.errors import ResourceInUse
from greenshift.groups.model import GroupStatus, GroupView, group_workflow_id
from greenshift.registry.records import DeploymentRecord
from greenshift.status import EndpointStatus
from tests.workflow.harness import NOW, World, canary, variant, wait_for, world
from workflows.messages import ABORT, ControlRequest, ControlResult
from workflows.rollout_group import GROUP_QUERY

ALARM = "group-5xx"


async def three_endpoints(w: World) -> list[str]:
    """Three endpoints on v1 configs, each with a v2 config to move to."""
    suffix = uuid.uuid4().hex[:6]
    names = [f"{n}-{suffix}" for n in ("model", "features", "ranker")]
    for name in names:
        await w.create(name, f"{name}-v1", variant(model=f"{name}-m1", count=2))
        w.add_config(f"{name}-v2", variant(model=f"{name}-m2", count=2))
    return names


def group_input(names: list[str], wait: int = 60) -> dict[str, Any]:
    def update(name: str) -> dict[str, Any]:
        return {
            "EndpointName": name,
            "EndpointConfigName": f"{name}-v2",
            "DeploymentConfig": canary(wait=wait, final=wait),
        }

    return {
        "RolloutGroupName": f"g-{uuid.uuid4().hex[:8]}",
        "Waves": [
            {"Updates": [update(names[0]), update(names[1])]},
            {"Updates": [update(names[2])]},
        ],
        "Alarms": [{"AlarmName": ALARM}],
    }


async def start_group(w: World, doc: dict[str, Any]) -> WorkflowHandle:
    handle = await w.client.start_workflow(
        "RolloutGroup", doc, id=group_workflow_id(doc["RolloutGroupName"]), task_queue=w.task_queue
    )
    w.started.append(handle)
    return handle


async def group_view(handle: WorkflowHandle) -> GroupView:
    return await handle.query(GROUP_QUERY, result_type=GroupView)


async def moving(handle: WorkflowHandle, endpoint: str, within: float = 30.0) -> None:
    """Until the group has started `endpoint`'s update (no time is skipped meanwhile)."""
    deadline = time.monotonic() + within
    while True:
        view = await group_view(handle)
        if any(o.EndpointName == endpoint and o.Status != "Pending" for o in view.Endpoints):
            return
        assert time.monotonic() < deadline, view
        await asyncio.sleep(0.02)


def types(view: GroupView, prefix: str) -> list[str | None]:
    return [e.EndpointName for e in view.Events if e.Type == prefix]


async def test_a_group_of_three_in_two_waves_moves_them_all(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=[ALARM]) as w:
        names = await three_endpoints(w)
        handle = await start_group(w, group_input(names))
        view = GroupView.model_validate(await handle.result())
        assert view.Status is GroupStatus.SUCCEEDED, view
        for name in names:
            assert w.endpoint(name).config_name == f"{name}-v2"
            assert w.registry.endpoint_holder(name) is None
        # Wave 2 started only once both endpoints of wave 1 had moved.
        kinds = [(e.Type, e.EndpointName) for e in view.Events]
        wave2 = kinds.index(("WaveStarted", None), kinds.index(("WaveSucceeded", None)))
        assert {n for t, n in kinds[:wave2] if t == "EndpointSucceeded"} == set(names[:2])
        assert [o.Status for o in view.Endpoints] == ["Succeeded"] * 3
        # The group's alarm was watched by every update.
        for name in names:
            deployment = w.registry.list_deployments(name, 1)[0]
            assert ALARM in deployment.alarms


async def test_an_alarm_in_the_second_wave_rolls_back_all_three_newest_first(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=[ALARM]) as w:
        names = await three_endpoints(w)
        handle = await start_group(w, group_input(names, wait=300))
        child = w.client.get_workflow_handle(f"endpoint/{names[2]}")
        while (await group_view(handle)).Wave < 2:
            await env.sleep(30)
        await moving(handle, names[2])
        await wait_for(child, lambda v: v.baking, within=30)
        w.alarms.set_state(ALARM, "ALARM", "5XX rate 12%")
        view = GroupView.model_validate(await handle.result())
        assert view.Status is GroupStatus.ROLLED_BACK, view
        assert view.Reason is not None and f"Alarm {ALARM}" in view.Reason
        assert names[2] in view.Reason
        # The second wave's endpoint rolled itself back; the first wave's were moved back,
        # newest first.
        assert types(view, "EndpointReverting") == list(reversed(types(view, "EndpointSucceeded")))
        assert set(types(view, "EndpointReverted")) == set(names[:2])
        for name in names:
            record = w.endpoint(name)
            assert record.config_name == f"{name}-v1"
            assert record.status is EndpointStatus.IN_SERVICE
            assert w.registry.endpoint_holder(name) is None


async def test_endpoints_are_held_for_the_group_and_abort_rolls_it_back(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=[ALARM]) as w:
        names = await three_endpoints(w)
        doc = group_input(names, wait=300)
        handle = await start_group(w, doc)
        first = w.client.get_workflow_handle(f"endpoint/{names[0]}")
        await moving(handle, names[0])
        await wait_for(first, lambda v: v.baking, within=30)
        # A direct UpdateEndpoint on the wave-2 endpoint (InService, not yet moving) is refused.
        assert w.registry.endpoint_holder(names[2]) == doc["RolloutGroupName"]
        direct = await w.start(
            "UpdateEndpoint", {"EndpointName": names[2], "EndpointConfigName": f"{names[2]}-v2"}
        )
        # No time may pass while it is refused: skipped time would end wave 1's bakes, and the
        # abort below would then meet an update mid-step instead of baking (the time-skipping
        # server can hang on a cancel that races an activity's completion).
        with env.auto_time_skipping_disabled(), pytest.raises(WorkflowFailureError) as refused:
            await direct.result()
        assert "holds it until the group ends" in str(refused.value.cause)
        with pytest.raises(ResourceInUse, match="rollout group"):
            w.registry.begin_operation(
                names[2],
                {EndpointStatus.IN_SERVICE},
                EndpointStatus.UPDATING,
                DeploymentRecord(
                    deployment_id="api-1",
                    endpoint=names[2],
                    operation="UpdateEndpoint",
                    workflow_id="endpoint/x",
                    request={},
                    started_at=NOW,
                ),
            )
        result = await handle.execute_update(
            ABORT, ControlRequest(actor="ops", reason="bad day"), result_type=ControlResult
        )
        assert result.accepted
        view = GroupView.model_validate(await handle.result())
        assert view.Status is GroupStatus.ROLLED_BACK
        assert view.Reason == "The group was aborted by ops: bad day"
        for name in names:
            assert w.endpoint(name).config_name == f"{name}-v1"
            assert w.registry.endpoint_holder(name) is None


async def test_a_group_that_cannot_hold_all_its_endpoints_changes_nothing(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path, alarms=[ALARM]) as w:
        names = await three_endpoints(w)
        doc = group_input(names)
        doc["Waves"][1]["Updates"].append(
            {"EndpointName": "ghost", "EndpointConfigName": "ghost-v2"}
        )
        handle = await start_group(w, doc)
        with pytest.raises(WorkflowFailureError) as failed:
            await handle.result()
        assert 'Could not find endpoint "' in str(failed.value.cause)
        for name in names:
            assert w.registry.endpoint_holder(name) is None
            assert w.endpoint(name).config_name == f"{name}-v1"
