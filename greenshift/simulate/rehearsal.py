"""Run one rehearsal: the endpoint created on its current config, then the UpdateEndpoint
request, driven through its bakes by a clock and a fault script.

The same driver runs against the time-skipping server (`SkippingClock`: each bake is skipped to
the moment that matters) and against a real Temporal server (`WallClock`: the waits really
pass), which is how a test shows that the rehearsal's timeline is the real run's.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from greenshift.names import CREATE_ENDPOINT, UPDATE_ENDPOINT
from greenshift.planning.model import BakeStep, Plan
from greenshift.registry.records import EndpointConfigRecord, ModelRecord
from greenshift.registry.sql import SqlRegistry
from greenshift.settings import Settings
from greenshift.simulate.fakes import SimAlarms, SimFleet, SimJudges, SimRouter
from greenshift.simulate.faults import (
    AlarmFault,
    DeadlineFault,
    Fault,
    FaultError,
    QuietFault,
    StartFault,
    parse_fault,
)
from greenshift.simulate.report import Report, TimelineEntry, instance_usage, offsets
from workflows.messages import (
    ALARM_TRIPPED,
    PAUSE,
    PROGRESS,
    AlarmTripped,
    ControlRequest,
    ProgressView,
)

# Real seconds the driver waits between two looks at a deployment that runs activities.
POLL_SECONDS = 0.005
# How far past a bake's end the driver skips, so its timer has surely fired.
PAST_THE_TIMER = 0.001
SIMULATED_IMAGE = "greenshift/simulated"
# The outcome of a rehearsal whose deployment paused on its own (a judge lacking data) with no
# deadline to end it: the real one would wait there for a resume or an abort.
PAUSED = "Paused"


class Scenario(BaseModel):
    """A rehearsal's input: the endpoint's current config, the new one, the UpdateEndpoint
    request exactly as for the API, and the faults (see greenshift.simulate.faults)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    current_config: dict[str, Any] = Field(alias="CurrentEndpointConfig")
    new_config: dict[str, Any] = Field(alias="NewEndpointConfig")
    request: dict[str, Any] = Field(alias="UpdateEndpoint")
    faults: list[str] = Field(default_factory=list, alias="Faults")
    # Which of the request's alarms are built-in judges (ERROR_JUDGE / LATENCY_JUDGE): each
    # bake's verdicts appear in the timeline. A quiet fault with none named judges the first.
    judges: list[str] = Field(default_factory=list, alias="Judges")

    def parsed_faults(self) -> list[Fault]:
        return [parse_fault(f) for f in self.faults]

    def alarm_names(self) -> list[str]:
        config = self.request.get("DeploymentConfig") or {}
        alarms = (config.get("AutoRollbackConfiguration") or {}).get("Alarms") or []
        return [a["AlarmName"] for a in alarms]

    def judge_names(self) -> list[str]:
        names = self.alarm_names()
        for name in self.judges:
            if name not in names:
                raise FaultError(f"judge {name} is not in the request's AutoRollbackConfiguration")
        if self.judges:
            return list(self.judges)
        if any(isinstance(f, QuietFault) for f in self.parsed_faults()):
            if not names:
                raise FaultError("a quiet fault needs a judge alarm in AutoRollbackConfiguration")
            return names[:1]
        return []


class Clock(Protocol):
    async def now(self) -> datetime: ...
    async def sleep(self, seconds: float) -> None: ...


class SkippingClock:
    """The time-skipping server's clock: `sleep` jumps, firing every timer on the way."""

    def __init__(self, env: WorkflowEnvironment) -> None:
        self.env = env

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def sleep(self, seconds: float) -> None:
        await self.env.sleep(max(seconds, 0.0))


class WallClock:
    """A real Temporal server's clock: the waits really pass."""

    async def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(seconds, 0.0))


@dataclass
class _Script:
    alarms: list[AlarmFault]
    deadline: DeadlineFault | None
    default_alarm: str | None
    bakes_seen: list[int] = field(default_factory=list)
    fired: set[int] = field(default_factory=set)
    paused: bool = False


async def rehearse(
    client: Client, clock: Clock, scenario: Scenario, home: Path, *, within: float = 600.0
) -> Report:
    """Run `scenario` with a worker of the real workflows and activities on a fresh task queue
    of `client`'s server; `within` bounds the real time it may take."""
    from worker.build import Dependencies, build_worker  # the worker imports the activities

    started = time.monotonic()
    faults = scenario.parsed_faults()
    names = scenario.alarm_names()
    for fault in faults:
        if isinstance(fault, AlarmFault) and fault.name is not None and fault.name not in names:
            raise FaultError(
                f"alarm {fault.name} is not in the request's AutoRollbackConfiguration"
            )
        if isinstance(fault, AlarmFault) and fault.name is None and not names:
            raise FaultError("an alarm fault needs an alarm in AutoRollbackConfiguration")
    endpoint = str(scenario.request.get("EndpointName"))
    await asyncio.to_thread(home.mkdir, parents=True, exist_ok=True)
    settings = Settings(home=home, task_queue=f"simulate-{uuid.uuid4().hex[:8]}")
    registry = SqlRegistry(f"sqlite:///{home / 'registry.db'}", arn_for=settings.arn)
    fleet = SimFleet({f.provision for f in faults if isinstance(f, StartFault)})
    alarms = SimAlarms(names)
    judges = SimJudges(
        scenario.judge_names(), {f.bake: f.looks for f in faults if isinstance(f, QuietFault)}
    )
    deps = Dependencies(
        settings=settings,
        registry=registry,
        fleet=fleet,
        router=SimRouter(),
        alarms=alarms,
        judges=judges,
    )
    try:
        _store(registry, settings, scenario)
        async with build_worker(client, deps):
            create = await client.start_workflow(
                CREATE_ENDPOINT,
                args=[
                    {
                        "EndpointName": endpoint,
                        "EndpointConfigName": scenario.current_config["EndpointConfigName"],
                    }
                ],
                id=f"simulate/{endpoint}/create/{uuid.uuid4().hex[:6]}",
                task_queue=settings.task_queue,
            )
            await asyncio.wait_for(create.result(), within)
            fleet.arm()
            initial = dict(fleet.sizes)
            deployment_id = f"simulate-{uuid.uuid4().hex[:12]}"
            handle = await client.start_workflow(
                UPDATE_ENDPOINT,
                args=[scenario.request, deployment_id],
                id=f"simulate/{endpoint}/update/{uuid.uuid4().hex[:6]}",
                task_queue=settings.task_queue,
            )
            script = _Script(
                alarms=[f for f in faults if isinstance(f, AlarmFault)],
                deadline=next((f for f in faults if isinstance(f, DeadlineFault)), None),
                default_alarm=names[0] if names else None,
            )
            try:
                held = await asyncio.wait_for(
                    _drive(handle, clock, script, alarms, registry, deployment_id), within
                )
                if not held:
                    try:
                        await handle.result()
                    except WorkflowFailureError:
                        pass  # a rolled-back deployment fails its workflow; the record says why
                history = await handle.fetch_history()
            finally:
                await _terminate_if_running(handle)
        record = registry.get_deployment(deployment_id)
        assert record is not None
        events = registry.list_events(deployment_id, limit=100_000)
        start = record.started_at
        # The record's end is the registry's wall clock; the events carry the workflow's time.
        end = max(offsets(start, [e.at for e in events]), default=0.0)
        change_offsets = offsets(start, [c[0] for c in fleet.changes])
        peak, hours = instance_usage(
            initial,
            [(o, c[1], c[2]) for o, c in zip(change_offsets, fleet.changes, strict=True)],
            end,
        )
        timeline = [
            TimelineEntry(o, e.type, e.message)
            for o, e in zip(offsets(start, [e.at for e in events]), events, strict=True)
        ]
        count = len(history.events)
        report = Report(
            endpoint=endpoint,
            outcome=PAUSED if held else record.outcome.value,
            failure_reason=record.failure_reason,
            duration_seconds=end,
            timeline=timeline,
            peak_instances=peak,
            instance_hours=hours,
            history_events=count,
            wall_seconds=time.monotonic() - started,
        )
        if count > 10_240:
            report.warnings.append(f"the history ({count} events) is past Temporal's warning")
        return report
    finally:
        registry.close()


def _store(registry: SqlRegistry, settings: Settings, scenario: Scenario) -> None:
    """The models and both configs, as the user would have created them."""
    now = datetime.now(UTC)
    configs = [scenario.current_config, scenario.new_config]
    for model in sorted({v["ModelName"] for c in configs for v in c["ProductionVariants"]}):
        registry.create_model(
            ModelRecord(
                name=model,
                arn=settings.arn("model", model),
                created_at=now,
                spec={
                    "ModelName": model,
                    "PrimaryContainer": {
                        "Image": SIMULATED_IMAGE,
                        "ModelDataUrl": f"file:///simulated/{model}",
                    },
                },
            )
        )
    for config in configs:
        name = config["EndpointConfigName"]
        registry.create_endpoint_config(
            EndpointConfigRecord(
                name=name, arn=settings.arn("endpoint-config", name), created_at=now, spec=config
            )
        )


async def _drive(
    handle: WorkflowHandle,
    clock: Clock,
    script: _Script,
    alarms: SimAlarms,
    registry: SqlRegistry,
    deployment_id: str,
) -> bool:
    """Move time on to the next moment that matters (a bake's end, a scripted alarm, the
    deadline of a held deployment) and act the faults, until the deployment finishes (False)
    or pauses on its own with no deadline to end it (True)."""
    plan: Plan | None = None
    started_at: datetime | None = None
    while True:
        view = await handle.query(PROGRESS, result_type=ProgressView)
        if view.finished:
            return False
        if plan is None:
            record = registry.get_deployment(deployment_id)
            if record is not None and record.plan is not None:
                plan, started_at = Plan.model_validate(record.plan), record.started_at
        if plan is None or view.rolling_back or view.abort_reason is not None:
            await asyncio.sleep(POLL_SECONDS)
            continue
        deadline = script.deadline
        if deadline is not None and not script.paused and view.step_index is not None:
            if view.step_index + 1 >= deadline.step:
                await _pause(handle)
                script.paused = True
                continue
        if view.paused and started_at is not None:
            if plan.max_execution_timeout_seconds is None and not script.paused:
                return True
            if plan.max_execution_timeout_seconds is None:
                raise FaultError(
                    "the deadline fault holds the deployment, but the request has no "
                    "MaximumExecutionTimeoutInSeconds: it would wait forever"
                )
            ends = started_at + timedelta(seconds=plan.max_execution_timeout_seconds)
            await clock.sleep((ends - await clock.now()).total_seconds() + PAST_THE_TIMER)
            continue
        if view.baking and view.bake_ends_at is not None and view.step_index is not None:
            await _bake(handle, clock, script, alarms, plan, view)
            continue
        await asyncio.sleep(POLL_SECONDS)


async def _bake(
    handle: WorkflowHandle,
    clock: Clock,
    script: _Script,
    alarms: SimAlarms,
    plan: Plan,
    view: ProgressView,
) -> None:
    assert view.step_index is not None and view.bake_ends_at is not None
    if view.step_index not in script.bakes_seen:
        script.bakes_seen.append(view.step_index)
    number = script.bakes_seen.index(view.step_index) + 1
    step = plan.steps[view.step_index].step
    assert isinstance(step, BakeStep)
    began = view.bake_ends_at - timedelta(seconds=step.seconds)
    now = await clock.now()
    for i, fault in enumerate(script.alarms):
        if i in script.fired or fault.bake != number:
            continue
        if fault.at >= step.seconds:
            raise FaultError(
                f"bake {number} lasts {step.seconds} s: an alarm {fault.at:g} s into it "
                "would come after it"
            )
        script.fired.add(i)
        name = fault.name or script.default_alarm
        assert name is not None
        reason = f"scripted fault: {fault.at:g} s into bake {number}"
        await clock.sleep((began + timedelta(seconds=fault.at) - now).total_seconds())
        # The alarm stays in ALARM (the end-of-bake pull check sees it too), and the watcher
        # signals the deployment, as the worker's alarm watcher does.
        alarms.set_state(name, "ALARM", reason)
        await handle.signal(ALARM_TRIPPED, AlarmTripped(name=name, reason=reason))
        return
    await clock.sleep((view.bake_ends_at - now).total_seconds() + PAST_THE_TIMER)


async def _pause(handle: WorkflowHandle) -> None:
    try:
        await handle.execute_update(
            PAUSE, ControlRequest(actor="simulate", reason="scripted deadline fault")
        )
    except WorkflowUpdateFailedError:
        pass  # already finishing or rolling back: nothing to hold


async def _terminate_if_running(handle: WorkflowHandle) -> None:
    try:
        description = await handle.describe()
        if description.status == WorkflowExecutionStatus.RUNNING:
            await handle.terminate("rehearsal over")
    except RPCError:
        pass
