"""Every side effect of a deployment, one small class per concern (registry, fleet, traffic,
alarms), each built with its dependency. `activities.models` is the typed contract with the
workflows."""

from __future__ import annotations

from typing import Any

from activities.alarms import AlarmActivities
from activities.fleet import FleetActivities
from activities.groups import GroupActivities
from activities.registry import RegistryActivities
from activities.settle import SettleActivities
from activities.traffic import TrafficActivities


def all_activities(
    registry: RegistryActivities,
    fleet: FleetActivities,
    traffic: TrafficActivities,
    alarms: AlarmActivities,
    groups: GroupActivities | None = None,
    settle: SettleActivities | None = None,
) -> list[Any]:
    """The bound activity methods a worker registers."""
    return [
        registry.prepare_create,
        registry.prepare_update,
        registry.prepare_weights,
        registry.prepare_delete,
        registry.plan_rollback,
        registry.record_progress,
        registry.record_event,
        registry.set_status,
        registry.finish_deployment,
        registry.remove_endpoint,
        registry.release_endpoint,
        fleet.provision,
        fleet.terminate,
        fleet.retire_fleets,
        traffic.shift_traffic,
        traffic.clear_routing,
        alarms.check_alarms,
        *([groups.hold, groups.release] if groups is not None else []),
        *([settle.prepare_settle] if settle is not None else []),
    ]
