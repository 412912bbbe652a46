"""What a deployment workflow knows about its own run: one typed object instead of loose flags.

`DeploymentWorkflow` (workflows/deployment.py) owns one `DeploymentState`; its update handlers,
the checklist and the bake judging (workflows/judging.py) read and change it. It is workflow
memory only: nothing here makes a command, so reshaping it never affects replay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities import models as act
    from greenshift.hosts.messages import Placement
    from greenshift.status import RollbackReason


class DeploymentPhase(StrEnum):
    """Where a deployment is. The values are shown to users (the `progress` query,
    DescribeDeployment) and recorded with its progress in the registry: never rename them."""

    PREPARING = "Preparing"
    PROVISIONING = "Provisioning"
    SHIFTING_TRAFFIC = "ShiftingTraffic"
    BAKING = "Baking"
    TERMINATING = "Terminating"
    PAUSED = "Paused"
    ROLLING_BACK = "RollingBack"
    CLEANING_UP = "CleaningUp"  # a failed create: no old fleet to roll back to
    FINISHED = "Finished"


# The phase of a forward step, by its kind.
STEP_PHASES = {
    "provision": DeploymentPhase.PROVISIONING,
    "traffic": DeploymentPhase.SHIFTING_TRAFFIC,
    "bake": DeploymentPhase.BAKING,
    "terminate": DeploymentPhase.TERMINATING,
}


@dataclass
class Abort:
    """Why the deployment hands over to rollback: one reason, one message (FailureReason)."""

    reason: RollbackReason
    message: str
    actor: str | None = None


@dataclass
class DeploymentState:
    """The run's state. The update handlers run concurrently with the checklist (on the
    workflow's one thread, switching only at awaits); its waits are conditions over these
    fields."""

    prepared: act.Prepared | None = None  # the prepare activity's result (plan, fleets, ref)
    lean: bool = False  # LEAN_PATCH holds for this run (decided once, at the start)
    # PREPARE_LOCAL_PATCH holds (decided with `lean`): the run prepares locally and has every
    # earlier patch without asking for it.
    prepare_local: bool = False
    # TRAFFIC_LOCAL_PATCH holds (decided with `lean`): traffic steps are local activities, and
    # the run has every earlier patch without asking for it.
    traffic_local: bool = False
    # PLACE_LOCAL_PATCH holds: provision and terminate steps are placed by a local activity (and
    # traffic_local holds, every earlier patch with it).
    place_local: bool = False
    # PREPARE_PLACE_PATCH holds: the preparation may begin the first step (place_local holds,
    # every earlier patch with it).
    prepare_place: bool = False
    # The first forward step's placement, when the preparation made it; taken by that step.
    first_placement: Placement | None = None
    phase: DeploymentPhase = DeploymentPhase.PREPARING
    index: int | None = None  # the plan step being carried out (or last carried out)
    started_steps: int = 0  # steps that began: the rollback starts from where they led
    # The abort flag (habit 6): set once, by an alarm, the deadline, a failed step or the update.
    abort: Abort | None = None
    paused: bool = False
    pause_message: str | None = None  # why the deployment paused itself (None: a user paused)
    baking: bool = False
    bake_ends_at: datetime | None = None
    # The index of the bake the traffic step before it began (StepInput.bake_after; None: the
    # next bake begins itself).
    begun_bake: int | None = None
    promote: bool = False  # the current bake is to end now
    # The forward steps are over (or never ran, when settling): the controls are refused and the
    # deadline timer ends.
    forward_done: bool = False
    rolling_back: bool = False
    finished: bool = False
    events: int = 0  # control events recorded so far: their idempotency keys

    def start_bake(self, ends_at: datetime) -> None:
        self.promote = False
        self.baking = True
        self.bake_ends_at = ends_at

    def end_bake(self) -> None:
        self.baking = False
        self.bake_ends_at = None
