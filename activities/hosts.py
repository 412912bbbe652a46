"""Placement of a fleet over the hosts, on the shared task queue: the workflow asks where a
fleet's instances go, then calls each host's own queue with its share (workflows/hosts.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity

from activities.errors import business_errors
from greenshift.errors import ValidationError
from greenshift.hosts.messages import HOST_FLEETS, PLACE_FLEET, PlaceInput, Placement
from greenshift.hosts.shares import shares_for
from greenshift.hosts.store import HostStore
from greenshift.registry.api import Registry


class HostPlacementActivities:
    def __init__(
        self, registry: Registry, store: HostStore | None, lost_after_seconds: float
    ) -> None:
        self.registry = registry
        self.store = store
        self.lost_after = lost_after_seconds

    @activity.defn(name=PLACE_FLEET)
    @business_errors
    def place_fleet(self, data: PlaceInput) -> Placement:
        """Record the fleet's desired count (absolute, as the provision and terminate steps do),
        then the per-host shares. No host store, or no host registered: the shared queue's
        fleet does the work, as on one machine before hosts existed."""
        hosts = self.store.list() if self.store is not None else []
        if not hosts:
            return Placement(hosts_registered=False)
        fleet = self.registry.get_fleet(data.fleet_id)
        if fleet is None:
            if not data.grow:  # nothing was ever made for it: already terminated
                return Placement(hosts_registered=True)
            raise ValidationError(f"fleet {data.fleet_id} has no record")
        if data.replace:
            if fleet.retired:
                return Placement(hosts_registered=True)
            data = data.model_copy(update={"count": fleet.desired_count})
        retired = not data.grow and data.count == 0
        if data.replace:
            pass
        elif fleet.desired_count != data.count or fleet.retired != retired:
            fleet = fleet.model_copy(update={"desired_count": data.count, "retired": retired})
            self.registry.upsert_fleet(fleet)
        instances = self.registry.list_instances()
        types = {}
        for fleet_id in {r.fleet_id for r in instances}:
            other = self.registry.get_fleet(fleet_id)
            if other is not None:
                types[fleet_id] = other.instance_type
        return shares_for(
            fleet,
            data.count,
            data.grow,
            hosts,
            instances,
            types,
            datetime.now(UTC),
            self.lost_after,
            drain=data.drain,
        )

    @activity.defn(name=HOST_FLEETS)
    def host_fleets(self, address: str) -> list[str]:
        """The fleets with instances on this host (what a drain moves), sorted."""
        return sorted({r.fleet_id for r in self.registry.list_instances(host=address)})
