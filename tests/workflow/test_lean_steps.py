"""A deployment in few round trips (issue 17): each provision and terminate step is one activity
that records its own progress; traffic steps and the other registry writes are local
activities; with hosts registered the step still goes to the hosts' own queues."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.exceptions import CancelledError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.errors import heartbeat_progress
from activities.fleet import FleetActivities
from activities.models import BakeStart, PlaceStepInput, PrepareInput, ProgressInput, StepInput
from activities.prepare import PrepareActivities
from activities.recording import RecordingActivities
from activities.traffic import TrafficActivities
from greenshift.errors import ResourceLimitExceeded
from greenshift.hosts.messages import Placement
from greenshift.hosts.service import advertisement
from greenshift.hosts.store import HostStore
from greenshift.names import (
    CHECK_ALARMS,
    HOST_SCALE_DOWN,
    HOST_SCALE_UP,
    PLACE_FLEET,
    PLACE_STEP,
    PREPARE_UPDATE,
    PROVISION,
    RECORD_PROGRESS,
    SHIFT_TRAFFIC,
    TERMINATE,
    host_task_queue,
)
from greenshift.planning.model import ProvisionStep, TrafficStep
from greenshift.registry.records import FleetRecord
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from tests.fakes import FakeAlarms, FakeFleet, FakeRouter
from tests.workflow.harness import World, canary, variant, world
from tests.workflow.test_activities import AT, seed
from workflows.deployment import (
    LEAN_PATCH,
    PLACE_LOCAL_PATCH,
    PREPARE_LOCAL_PATCH,
    PREPARE_PLACE_PATCH,
    TRAFFIC_LOCAL_PATCH,
)


def scheduled_activities(history: WorkflowHistory) -> list[tuple[str, str]]:
    """(activity type, task queue) of every activity the run scheduled, in order."""
    return [
        (
            e.activity_task_scheduled_event_attributes.activity_type.name,
            e.activity_task_scheduled_event_attributes.task_queue.name,
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def marker_bytes(history: WorkflowHistory) -> list[bytes]:
    """Every marker (local activities, patches) serialized: what each names can be searched."""
    return [
        e.marker_recorded_event_attributes.SerializeToString()
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def canary_update(w: World) -> WorkflowHistory:
    """e1 created on 4 instances, then a CANARY update to c2 run to its end: its history."""
    await w.create("e1", "c1", variant(count=4))
    return await canary_to_c2(w)


async def canary_to_c2(w: World) -> WorkflowHistory:
    """A CANARY update of e1 to c2 (4 instances) run to its end: its history."""
    w.add_config("c2", variant(model="m2", count=4))
    handle = await w.start(
        "UpdateEndpoint",
        {
            "EndpointName": "e1",
            "EndpointConfigName": "c2",
            "DeploymentConfig": canary(wait=60, size=1, final=30),
        },
    )
    await handle.result()
    return await handle.fetch_history()


async def test_a_canary_is_one_activity_a_step_and_still_records_every_step(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with world(env.client, tmp_path) as w:
        history = await canary_update(w)
        scheduled = [name for name, _ in scheduled_activities(history)]
        # No preparation, progress, placement, traffic or registry-write activity of its own:
        # the steps that launch and stop instances (no host registered: the shared queue's).
        assert scheduled == [PROVISION, TERMINATE]
        markers = marker_bytes(history)
        # The newest generation's one patch marker implies the earlier patches.
        assert sum(PREPARE_PLACE_PATCH.encode() in m for m in markers) == 1
        assert not any(PLACE_LOCAL_PATCH.encode() in m for m in markers)
        assert not any(TRAFFIC_LOCAL_PATCH.encode() in m for m in markers)
        assert not any(LEAN_PATCH.encode() in m for m in markers)
        assert not any(PREPARE_LOCAL_PATCH.encode() in m for m in markers)
        assert any(PREPARE_UPDATE.encode() in m for m in markers)  # prepared locally
        assert sum(SHIFT_TRAFFIC.encode() in m for m in markers) == 2  # both shifts, locally
        # Provision and terminate each began with their progress and placement, locally: the
        # provision in the preparation (nothing comes between them), the terminate in PlaceStep.
        assert sum(PLACE_STEP.encode() in m for m in markers) == 1
        # Each shift began the bake after it (the last shift's is the final bake, with the
        # termination wait): no bake records its own progress.
        assert not any(RECORD_PROGRESS.encode() in m for m in markers)
        record = w.endpoint("e1")
        assert record.config_name == "c2" and record.pending is None
        deployment = w.registry.list_deployments("e1")[0]
        assert deployment.operation == "UpdateEndpoint" and deployment.plan is not None
        # Both shifts reached the router, each fenced by its place in the plan.
        shifts = [
            [deployment.deployment_id, planned["index"]]
            for planned in deployment.plan["steps"]
            if planned["step"]["kind"] == "traffic"
        ]
        assert len(shifts) == 2
        fences = w.router.state.data["fences"]
        assert [f for f in fences if f[0] == deployment.deployment_id] == shifts
        events = w.registry.list_events(deployment.deployment_id)
        started = [e for e in events if e.type == "StepStarted"]
        # Every step of the plan wrote its progress and StepStarted event, in order.
        assert [e.detail["step"] for e in started] == list(range(len(deployment.plan["steps"])))
        bakes = [e for e in started if e.detail["phase"] == "Baking"]
        assert len(bakes) == 2 and [e.at for e in started] == sorted(e.at for e in started)
        assert events[-1].type == "Finished"


async def test_with_a_host_registered_a_step_is_placed_locally_and_only_the_host_acts(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """As `greenshift up` runs it: the machine is a host, and each provision or terminate step
    is one activity, the host's share on its own queue; its progress and placement are a local
    activity (before: its progress, PlaceFleet and the host's share, three activities)."""
    async with world(env.client, tmp_path, local_host=True) as w:
        history = await canary_update(w)
        scheduled = scheduled_activities(history)
        host_queue = host_task_queue(w.settings.task_queue, w.settings.host)
        assert scheduled == [(HOST_SCALE_UP, host_queue), (HOST_SCALE_DOWN, host_queue)]
        markers = marker_bytes(history)
        assert sum(PLACE_STEP.encode() in m for m in markers) == 1  # the provision: in prepare
        assert not any(PLACE_FLEET.encode() in m for m in markers)
        # The host's agent launched the first fleet, then the new one, and stopped the first.
        changes = w.fleet.changes
        assert [c[0] for c in changes] == ["up", "up", "down"]
        assert changes[2] == ["down", changes[0][1], 4, 0] and changes[1][2:] == [0, 4]
        deployment = w.registry.list_deployments("e1")[0]
        assert deployment.plan is not None
        events = w.registry.list_events(deployment.deployment_id)
        started = [e for e in events if e.type == "StepStarted"]
        assert [e.detail["step"] for e in started] == list(range(len(deployment.plan["steps"])))
        assert w.endpoint("e1").config_name == "c2"


async def test_with_alarms_to_check_first_the_first_step_is_placed_by_itself(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The preparation begins the first step only when nothing comes between them: with alarms,
    their check before the first instance does, and the step's own PlaceStep places it after."""
    async with world(env.client, tmp_path, alarms=["errors"], local_host=True) as w:
        await w.create("e1", "c1", variant(count=4))
        w.add_config("c2", variant(model="m2", count=4))
        config = canary(wait=60, size=1, final=30, alarms=("errors",))
        handle = await w.start(
            "UpdateEndpoint",
            {"EndpointName": "e1", "EndpointConfigName": "c2", "DeploymentConfig": config},
        )
        await handle.result()
        history = await handle.fetch_history()
        assert scheduled_activities(history)[0][0] == CHECK_ALARMS
        assert sum(PLACE_STEP.encode() in m for m in marker_bytes(history)) == 2
        deployment = w.registry.list_deployments("e1")[0]
        assert deployment.plan is not None
        events = w.registry.list_events(deployment.deployment_id)
        started = [e.detail["step"] for e in events if e.type == "StepStarted"]
        assert started == list(range(len(deployment.plan["steps"])))


def test_the_preparation_begins_the_first_step_or_leaves_a_refusal_to_the_step(
    tmp_path: Path,
) -> None:
    """What the preparing activity asks of the placement (the first step's progress and its new
    fleet), and a refusal there (no room) left to the step's own PlaceStep: the deployment is
    prepared all the same, with no placement."""
    settings = Settings()
    registry = SqlRegistry(f"sqlite:///{tmp_path / 'r.db'}", arn_for=settings.arn)
    asked: list[PlaceStepInput] = []

    def begin_step(data: PlaceStepInput) -> Placement:
        asked.append(data)
        if len(asked) > 1:
            raise ResourceLimitExceeded("no host has room for 2 x ml.m5.large")
        return Placement(hosts_registered=True)

    try:
        seed(registry, settings)
        acts = PrepareActivities(registry, settings, FakeAlarms(), begin_step)
        env = ActivityEnvironment()

        def prepare(deployment_id: str) -> Any:
            return env.run(
                acts.prepare_update,
                PrepareInput(
                    request={"EndpointName": "e1", "EndpointConfigName": "c2"},
                    deployment_id=deployment_id,
                    workflow_id="w",
                    started_at=AT,
                    first_step_phase="Provisioning",
                ),
            )

        prepared = prepare("dep-1")
        assert prepared.first_placement == Placement(hosts_registered=True)
        first = prepared.plan.steps[0]
        assert isinstance(first.step, ProvisionStep)
        begun = asked[0]
        assert begun.progress is not None and begun.place is not None
        assert (begun.progress.step_index, begun.progress.phase, begun.progress.at) == (
            0,
            "Provisioning",
            AT,
        )
        assert begun.progress.message == first.step.message
        assert begun.place.fleet_id == prepared.fleets[first.step.fleet.key]
        assert (begun.place.count, begun.place.grow) == (first.step.count, True)
        # Asked again (a retry of the same preparation), the placement is refused this time.
        again = prepare("dep-1")
        assert again.first_placement is None and again.plan == prepared.plan
    finally:
        registry.close()


async def test_a_green_fleet_is_made_with_its_first_count_and_its_placement_writes_no_fleet(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Preparation makes the new fleet's record with the count its provision step brings it to,
    so the step's placement has nothing to write: an update writes its fleets twice, the new
    one made and the old one retired (before: three times)."""
    async with world(env.client, tmp_path, local_host=True) as w:
        await w.create("e1", "c1", variant(count=4))
        blue = w.endpoint("e1").variants[0].fleet_id
        written: list[tuple[str, int, bool]] = []
        upsert = w.registry.upsert_fleet

        def spy(record: FleetRecord) -> None:
            written.append((record.fleet_id, record.desired_count, record.retired))
            upsert(record)

        w.registry.upsert_fleet = spy  # type: ignore[method-assign]
        await canary_to_c2(w)
        green = w.endpoint("e1").variants[0].fleet_id
        assert green != blue
        assert written == [(green, 4, False), (blue, 0, True)]


async def test_a_delete_on_a_registered_host_stops_each_fleet_in_one_activity(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """DeleteEndpoint places each fleet in a local activity: what is scheduled is the host's
    share stopped on its own queue (before: PlaceFleet, then that)."""
    async with world(env.client, tmp_path, local_host=True) as w:
        await w.create("e1", "c1", variant(count=3))
        handle = await w.start("DeleteEndpoint", {"EndpointName": "e1"})
        await handle.result()
        history = await handle.fetch_history()
        scheduled = scheduled_activities(history)
        host_queue = host_task_queue(w.settings.task_queue, w.settings.host)
        assert scheduled == [(HOST_SCALE_DOWN, host_queue)]
        markers = marker_bytes(history)
        assert sum(PLACE_FLEET.encode() in m for m in markers) == 1
        assert [c[0] for c in w.fleet.changes] == ["up", "down"]
        assert w.fleet.changes[1][2:] == [3, 0]
        assert w.registry.get_endpoint("e1") is None
        assert w.registry.list_instances(endpoint="e1") == []


def test_a_step_with_hosts_registered_records_progress_and_leaves_the_work_to_the_hosts(
    tmp_path: Path,
) -> None:
    settings = Settings()
    url = f"sqlite:///{tmp_path / 'r.db'}"
    registry = SqlRegistry(url, arn_for=settings.arn)
    hosts = HostStore(url)
    try:
        seed(registry, settings)
        acts = PrepareActivities(registry, settings, FakeAlarms())
        recording = RecordingActivities(registry)
        env = ActivityEnvironment()
        prepared = env.run(
            acts.prepare_update,
            PrepareInput(
                request={"EndpointName": "e1", "EndpointConfigName": "c2"},
                deployment_id="dep-1",
                workflow_id="w",
                started_at=AT,
            ),
        )
        fleet = FakeFleet()
        fleets = FleetActivities(fleet, registry, hosts, recording.write_progress)
        steps = [p for p in prepared.plan.steps if isinstance(p.step, ProvisionStep)]
        planned = steps[0]

        def step_input(index: int, message: str, phase: str = "Provisioning") -> StepInput:
            return StepInput(
                ref=prepared.ref,
                step=planned.step,
                fleets=prepared.fleets,
                unless_hosts=True,
                progress=ProgressInput(
                    ref=prepared.ref,
                    step_index=index,
                    phase=phase,
                    message=message,
                    at=AT,
                ),
            )

        # No host registered: the shared queue's fleet does it, in this one activity.
        status = env.run(fleets.provision, step_input(planned.index, "one"))
        assert isinstance(planned.step, ProvisionStep)
        assert status is not None and status.healthy == planned.step.count
        assert fleet.changes
        # A host registered: progress is written, nothing is scaled here (None: place it).
        hosts.register(advertisement("127.0.0.2", settings.task_queue))
        calls = len(fleet.calls)
        assert env.run(fleets.provision, step_input(planned.index + 1, "two")) is None
        assert len(fleet.calls) == calls
        record = registry.get_endpoint("e1")
        assert record is not None and record.pending is not None
        assert record.pending.step_index == planned.index + 1
        messages = [e.message for e in registry.list_events("dep-1") if e.type == "StepStarted"]
        assert messages == ["one", "two"]
        # The traffic step records its progress too, then applies and confirms.
        router = FakeRouter()
        traffic = TrafficActivities(router, recording.write_progress)
        shift = next(p for p in prepared.plan.steps if isinstance(p.step, TrafficStep))
        data = step_input(shift.index, "three", "ShiftingTraffic").model_copy(
            update={"step": shift.step, "unless_hosts": False}
        )
        env.run(traffic.shift_traffic, data)
        messages = [e.message for e in registry.list_events("dep-1") if e.type == "StepStarted"]
        assert messages == ["one", "two", "three"]
        # With the bake after it, it begins the bake once the traffic is live: the bake's
        # progress, timed from the workflow's `at` on by what the step took.
        bake = step_input(shift.index + 1, "four", "Baking").progress
        assert bake is not None
        data = data.model_copy(update={"bake_after": BakeStart(progress=bake, seconds=30)})
        router.confirm_delay = 0.2
        env.run(traffic.shift_traffic, data)
        messages = [e.message for e in registry.list_events("dep-1") if e.type == "StepStarted"]
        assert messages == ["one", "two", "three", "four"]
        record = registry.get_endpoint("e1")
        assert record is not None and record.pending is not None
        assert record.pending.phase == "Baking" and record.pending.step_index == shift.index + 1
        assert record.pending.bake_ends_at is not None
        began = record.pending.bake_ends_at - timedelta(seconds=30)
        assert AT + timedelta(seconds=0.2) <= began < AT + timedelta(seconds=5)
    finally:
        hosts.close()
        registry.close()


@pytest.mark.parametrize("local", [False, True])
def test_a_step_heartbeats_only_as_an_activity_and_stops_on_cancel_either_way(local: bool) -> None:
    """A traffic step runs as a local activity: the server knows nothing of it, so a heartbeat
    would only be refused (a warning in the worker's log for every step)."""
    env = ActivityEnvironment()
    env.info = dataclasses.replace(ActivityEnvironment.default_info(), is_local=local)
    beats: list[tuple[object, ...]] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    env.run(lambda: heartbeat_progress()("confirming e1 v2"))
    assert beats == ([] if local else [("confirming e1 v2",)])
    env.cancel()
    with pytest.raises(CancelledError):
        env.run(lambda: heartbeat_progress()("confirming e1 v2"))


async def test_a_traffic_step_slower_than_a_workflow_task_runs_once_and_the_deployment_ends(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A data plane slow to confirm holds the local traffic step past the workflow task's 10 s
    timeout: the worker keeps the task alive meanwhile (a task completed while the step runs),
    so the step is not run again and the deployment goes on."""
    async with world(dev_env.client, tmp_path) as w:
        await w.create("e1", "c1", variant(count=2))

        async def update(config: str, confirm_seconds: float) -> list[EventType.ValueType]:
            w.add_config(config, variant(model=config, count=2))
            w.router.confirm_delay = confirm_seconds
            applied = w.router.calls
            request = {
                "EndpointName": "e1",
                "EndpointConfigName": config,
                "DeploymentConfig": canary(wait=1, size=1, final=0),
            }
            handle = await w.start("UpdateEndpoint", request)
            await asyncio.wait_for(handle.result(), timeout=120)
            assert w.router.calls - applied == 2  # the canary and the rest, each applied once
            assert w.endpoint("e1").config_name == config
            return [e.event_type for e in (await handle.fetch_history()).events]

        quick = await update("c2", 0.0)
        slow = await update("c3", 11.0)
        assert EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT not in slow
        completed = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
        assert slow.count(completed) >= quick.count(completed) + 2  # one more per slow step
