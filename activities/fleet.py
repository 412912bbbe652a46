"""Fleet activities: bring a fleet to an absolute size and wait until it is healthy, or shrink it.

Long calls heartbeat through the Progress callback, so a cancelled step (deadline, abort) stops
promptly and a dead worker is noticed within the heartbeat timeout.

A step's progress comes with it (StepInput.progress) and is recorded first, and a step asked to
act only without hosts (StepInput.unless_hosts) answers None when hosts are registered: on one
machine a step is one activity, not a progress write, a placement and the step. Deployments since
the place-local-4 patch record the progress and place in a local activity first (PlaceStep,
activities/hosts.py) and call these only when no host is registered; the rest serves the runs
recorded before it.
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import activity

from activities.errors import business_errors, heartbeat_progress
from activities.models import FleetsInput, ProgressInput, StepInput
from greenshift.errors import ValidationError
from greenshift.hosts.store import HostStore
from greenshift.names import PROVISION, RETIRE_FLEETS, TERMINATE
from greenshift.planning.model import ProvisionStep, TerminateStep
from greenshift.ports import Fleet, FleetStatus
from greenshift.registry.api import Registry

ProgressRecorder = Callable[[ProgressInput], None]


def record_step_progress(data: StepInput, recorder: ProgressRecorder | None) -> None:
    """Write the progress a step carries before the step acts (shared with the traffic step)."""
    if data.progress is not None:
        record_progress(data.progress, recorder)


def record_progress(progress: ProgressInput, recorder: ProgressRecorder | None) -> None:
    if recorder is None:
        raise ValidationError("this worker was built without a progress recorder")
    recorder(progress)


class FleetActivities:
    """`hosts`: the hosts table (None: none registered); `record_progress` writes a step's
    progress (RecordingActivities.write_progress)."""

    def __init__(
        self,
        fleet: Fleet,
        registry: Registry,
        hosts: HostStore | None = None,
        record_progress: ProgressRecorder | None = None,
    ) -> None:
        self.fleet = fleet
        self.registry = registry
        self.hosts = hosts
        self.record_progress = record_progress

    def _on_hosts(self, data: StepInput) -> bool:
        """The step is the hosts' (workflows/hosts.py places it), not this queue's fleet."""
        return data.unless_hosts and self.hosts is not None and self.hosts.any_registered()

    @activity.defn(name=PROVISION)
    @business_errors
    def provision(self, data: StepInput) -> FleetStatus | None:
        step = data.step
        if not isinstance(step, ProvisionStep):
            raise ValidationError(f"provision got a {step.kind} step")
        record_step_progress(data, self.record_progress)
        if self._on_hosts(data):
            return None
        fleet_id = data.fleets[step.fleet.key]
        record = self.registry.get_fleet(fleet_id)
        if record is None:
            raise ValidationError(f"fleet {fleet_id} has no record")
        if record.desired_count != step.count or record.retired:
            record = record.model_copy(update={"desired_count": step.count, "retired": False})
            self.registry.upsert_fleet(record)
        return self.fleet.scale_up(record, step.count, heartbeat_progress())

    @activity.defn(name=TERMINATE)
    @business_errors
    def terminate(self, data: StepInput) -> FleetStatus | None:
        step = data.step
        if not isinstance(step, TerminateStep):
            raise ValidationError(f"terminate got a {step.kind} step")
        record_step_progress(data, self.record_progress)
        if self._on_hosts(data):
            return None
        fleet_id = data.fleets.get(step.fleet.key)
        if fleet_id is None:  # nothing was ever made for it: already terminated
            return FleetStatus(fleet_id="", desired=0, healthy=0, launching=0, failed=0)
        return self._scale_down(fleet_id, step.count)

    @activity.defn(name=RETIRE_FLEETS)
    @business_errors
    def retire_fleets(self, data: FleetsInput) -> None:
        for fleet_id in data.fleet_ids:
            self._scale_down(fleet_id, 0)

    def _scale_down(self, fleet_id: str, count: int) -> FleetStatus:
        record = self.registry.get_fleet(fleet_id)
        if record is not None and (record.desired_count != count or record.retired != (count == 0)):
            self.registry.upsert_fleet(
                record.model_copy(update={"desired_count": count, "retired": count == 0})
            )
        return self.fleet.scale_down(fleet_id, count, heartbeat_progress())
