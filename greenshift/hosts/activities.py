"""The instance activities of one host, on that host's own task queue (Temporal worker-specific
task queues, as in temporalio/samples-python `worker_specific_task_queues`).

Only the agent of host H polls `host_task_queue(base, H)`, so a deployment that schedules
`HostScaleUp` there launches on H and nowhere else. Each activity is the host-local half of the
`Fleet` interface: "have N of this fleet's instances here", absolute, so a retry is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from temporalio import activity

from activities.errors import business_errors, heartbeat_progress
from greenshift.errors import ValidationError
from greenshift.fleet.agent import FleetAgent
from greenshift.hosts.messages import HostScaleInput
from greenshift.hosts.store import HostStore
from greenshift.names import HOST_ADOPT, HOST_SCALE_DOWN, HOST_SCALE_UP, HOST_STATUS
from greenshift.ports import FleetStatus
from greenshift.registry.api import Registry


class HostActivities:
    """Built with this host's agent; registered only on this host's task queue."""

    def __init__(
        self, agent: FleetAgent, registry: Registry, store: HostStore | None = None
    ) -> None:
        self.agent = agent
        self.registry = registry
        self.store = store

    @activity.defn(name=HOST_SCALE_UP)
    @business_errors
    def scale_up(self, data: HostScaleInput) -> FleetStatus:
        try:
            fleet = self.registry.get_fleet(data.fleet_id)
            if fleet is None:
                raise ValidationError(f"fleet {data.fleet_id} has no record")
            if fleet.retired:  # retired since it was placed (a replacement late to a terminate)
                return self.agent.status(data.fleet_id)
            return self.agent.scale_up(
                fleet, data.count, heartbeat_progress(), indices=data.indices or None, share=True
            )
        finally:
            # Launched or not, the instance records now say what became of these indices.
            if self.store is not None:
                self.store.release(data.fleet_id, data.indices)

    @activity.defn(name=HOST_SCALE_DOWN)
    @business_errors
    def scale_down(self, data: HostScaleInput) -> FleetStatus:
        return self.agent.scale_down(data.fleet_id, data.count, heartbeat_progress(), share=True)

    @activity.defn(name=HOST_STATUS)
    def status(self, fleet_id: str) -> FleetStatus:
        return self.agent.status(fleet_id)

    @activity.defn(name=HOST_ADOPT)
    def adopt(self) -> dict[str, int]:
        return self.agent.adopt()

    def all(self) -> list[Callable[..., Any]]:
        return [self.scale_up, self.scale_down, self.status, self.adopt]
