"""The typed messages between the workflows and their activities (STYLE.md habit 2).

Pure data with no I/O, so workflow modules may import it (through the sandbox) while activities
never import workflows. Workflows call activities by the names in greenshift.names (with every
other name that crosses a process) and never import the classes that implement them (which hold
the registry, the fleet, boto3...).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from greenshift.hosts.messages import PlaceInput, Placement
from greenshift.planning.model import Plan, Step, drop_legacy_undo
from greenshift.ports import AlarmState
from greenshift.status import DeploymentOutcome, EndpointStatus

# Error types (ApplicationError.type) that no retry can fix.
PROVISION_FAILED = "ProvisionFailed"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeploymentRef(_Message):
    """Which deployment of which endpoint an activity works for."""

    endpoint: str
    deployment_id: str


class PrepareInput(_Message):
    request: dict[str, Any]  # the SageMaker request JSON, already validated by the workflow
    deployment_id: str
    workflow_id: str
    started_at: datetime  # workflow.now(): deterministic, the deployment's StartTime
    # Also begin the plan's first step, in this phase, when it provisions a new fleet and
    # nothing comes before it (no alarm to check first): its progress recorded and its fleet
    # placed, as PlaceStep does (PREPARE_PLACE_PATCH, workflows/deployment.py). None: do not.
    first_step_phase: str | None = None


class Prepared(_Message):
    """What `prepare_*` decided: the plan (recorded in history, so replay never re-plans), the
    fleet ids of both sides, and what the endpoint becomes once the deployment succeeds."""

    ref: DeploymentRef
    endpoint_arn: str
    plan: Plan
    fleets: dict[str, str] = Field(default_factory=dict)  # FleetRef.key -> fleet id
    from_config: str | None = None
    to_config: str
    config_snapshot: dict[str, Any] = Field(default_factory=dict)
    last_deployment_config: dict[str, Any] | None = None
    started_at: datetime
    # The first step's placement, when the preparation began it (PrepareInput.first_step_phase);
    # None: the workflow places it itself.
    first_placement: Placement | None = None


class StepInput(_Message):
    """Carry out one step (forward or rollback). Steps hold absolute state: a retry is a no-op."""

    ref: DeploymentRef
    step: Step
    fleets: dict[str, str]
    confirm_timeout_seconds: float = 60.0
    # Fleet key -> RoutingStrategy of the config it runs (traffic steps; Plan.routing_strategies).
    routing_strategies: dict[str, str] = {}
    # The step's progress, recorded by the step's activity before it acts: one round trip a step
    # instead of two (None: the workflow recorded it itself, as older workflows do).
    progress: ProgressInput | None = None
    # Provision and terminate: act only if no host is registered (the shared queue's fleet does
    # the work, as place_fleet would say) and answer None otherwise, leaving the placement over
    # the hosts to the workflow. False: act unconditionally, as older workflows expect.
    unless_hosts: bool = False
    # Where the step stands in its deployment (forward: its plan index; every rollback step:
    # the number of forward steps): a traffic step's routing write is fenced by it
    # (RoutingFence), so a write that outlives its step cannot undo a later one. None: not
    # fenced.
    fence_step: int | None = None
    # A traffic step followed by a bake: the bake, begun by the step's activity once the
    # traffic is confirmed, so the bake needs no registry write of its own. None: the workflow
    # begins it.
    bake_after: BakeStart | None = None


class BakeStart(_Message):
    """The bake right after a traffic step, begun by that step's activity the moment the
    traffic is confirmed: its progress is recorded then, so the bake shows when it really ends.
    `progress.at` is the workflow's time when it asked for the step; the activity moves it on by
    the time the step took (its own clock may differ from the workflow's)."""

    progress: ProgressInput
    seconds: int


class ProgressInput(_Message):
    """Progress at a step boundary, written to the registry for DescribeEndpoint and the log."""

    ref: DeploymentRef
    step_index: int  # index into the plan's steps (forward), or -1 before the first
    phase: str  # Provisioning | ShiftingTraffic | Baking | Terminating | Paused | RollingBack ...
    message: str
    at: datetime
    bake_ends_at: datetime | None = None
    paused: bool = False
    rollback_step: int | None = None  # index into the rollback steps, while rolling back


BakeStart.model_rebuild()
StepInput.model_rebuild()


class PlaceStepInput(_Message):
    """A provision or terminate step begun in the workflow's own task (a local activity): its
    progress recorded, then its fleet placed over the hosts; the step itself is then the
    hosts' activities, or the shared queue's when no host is registered. `place` None: the
    step's fleet was never made (a terminate finds nothing to place)."""

    progress: ProgressInput | None = None
    place: PlaceInput | None = None


class EventInput(_Message):
    ref: DeploymentRef
    type: str
    message: str
    at: datetime
    actor: str | None = None
    key: str  # idempotency key: a retried activity writes nothing new
    detail: dict[str, Any] = Field(default_factory=dict)


class StatusInput(_Message):
    ref: DeploymentRef
    status: EndpointStatus
    reason: str
    at: datetime


class RollbackInput(_Message):
    ref: DeploymentRef
    plan: Plan
    started_steps: int  # steps that began (they may have taken effect): 0..len(plan.steps)

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_undo(cls, data: Any) -> Any:
        # plan_rollback inputs recorded before issue 13 carry the unused undo steps.
        return drop_legacy_undo(data)


class RollbackPlan(_Message):
    steps: list[Step]


class FinishInput(_Message):
    ref: DeploymentRef
    status: EndpointStatus
    outcome: DeploymentOutcome
    succeeded: bool  # True: the endpoint now serves `to_config` as planned
    prepared: Prepared
    failure_reason: str | None = None
    at: datetime


class AlarmCheckInput(_Message):
    alarms: list[str]
    # Also tell which alarms are built-in judges (AlarmCheckResult.judges): asked at the end of
    # a bake only, the one check whose answer decides whether the bake is judged.
    judges: bool = False


class AlarmCheckResult(_Message):
    """The first alarm found in ALARM (None when all are OK or INSUFFICIENT_DATA), and all
    states, for the progress record."""

    tripped: AlarmState | None = None
    states: dict[str, str] = Field(default_factory=dict)
    # Alarms whose state was last evaluated too long ago to be trusted (a hung evaluator), and
    # how old the oldest evaluation is, in seconds.
    stale: list[str] = Field(default_factory=list)
    stale_seconds: float = 0.0
    # Which of the alarms are built-in judges (None: not asked, or the judge source could not
    # say): a bake whose alarms hold none skips the judging activity. Older histories lack it.
    judges: list[str] | None = None


class PreparedDelete(_Message):
    ref: DeploymentRef
    endpoint_arn: str
    fleet_ids: list[str]


class FleetsInput(_Message):
    ref: DeploymentRef
    fleet_ids: list[str]


class ReleaseInput(_Message):
    """Give up an endpoint a deployment holds but could not prepare (e.g. the API reserved it and
    the workflow's own validation then refused): it must not stay Updating forever."""

    endpoint: str
    deployment_id: str
    reason: str
    at: datetime


# --- settling an endpoint whose workflow is gone (worker/reconciler.py) -----------------------


class SettleInput(_Message):
    """The reconciler found `endpoint` held by `deployment_id`, whose workflow is closed."""

    endpoint: str
    deployment_id: str
    reason: str  # why the endpoint is settled: what FailureReason will say
    at: datetime
    # Set when an AbortDeployment started the settling (the API, greenshift/orphans.py): who
    # and why, for the event log, as the abort update records it on a running settle.
    aborted_by: str | None = None
    abort_reason: str = ""


class SettlePlan(_Message):
    """What settling needs. `action`: `nothing` (no longer held: settled meanwhile), `release`
    (nothing was planned, or a delete: give the endpoint up, as release_endpoint does),
    `rollback` (an update: traffic back to the serving fleet, the new fleet removed) or
    `clean_up` (a create: no old fleet, the new one removed, Failed)."""

    action: str
    prepared: Prepared | None = None
    started_steps: int = 0
    step_index: int = -1
