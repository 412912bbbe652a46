"""Every side effect of a deployment, one small class per concern (prepare, recording, finish,
planner, fleet, traffic, alarms, ...), each built with its dependency. `activities.models` is the
typed contract with the workflows."""

from __future__ import annotations

from typing import Any

from activities.alarms import AlarmActivities
from activities.finish import FinishActivities
from activities.fleet import FleetActivities
from activities.groups import GroupActivities
from activities.planner import PlannerActivities
from activities.prepare import PrepareActivities
from activities.recording import RecordingActivities
from activities.settle import SettleActivities
from activities.traffic import TrafficActivities


def all_activities(
    prepare: PrepareActivities,
    recording: RecordingActivities,
    finish: FinishActivities,
    planner: PlannerActivities,
    fleet: FleetActivities,
    traffic: TrafficActivities,
    alarms: AlarmActivities,
    groups: GroupActivities | None = None,
    settle: SettleActivities | None = None,
) -> list[Any]:
    """The bound activity methods a worker registers."""
    return [
        prepare.prepare_create,
        prepare.prepare_update,
        prepare.prepare_weights,
        prepare.prepare_delete,
        planner.plan_rollback,
        recording.record_progress,
        recording.record_event,
        recording.set_status,
        finish.finish_deployment,
        finish.remove_endpoint,
        finish.release_endpoint,
        fleet.provision,
        fleet.terminate,
        fleet.retire_fleets,
        traffic.shift_traffic,
        traffic.clear_routing,
        alarms.check_alarms,
        *([groups.hold, groups.release] if groups is not None else []),
        *([settle.prepare_settle] if settle is not None else []),
    ]
