"""Placement of a fleet over the hosts, on the shared task queue: the workflow asks where a
fleet's instances go, then calls each host's own queue with its share (workflows/hosts.py).
A deployment's provision or terminate step asks in a local activity that records the step's
progress first (PlaceStep): its workflow task places it, and only the host's share is an
activity."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from activities.errors import business_errors
from activities.fleet import ProgressRecorder, record_progress
from activities.models import PlaceStepInput
from greenshift.errors import ValidationError
from greenshift.hosts.events import record_host_event
from greenshift.hosts.messages import HostEventInput, PlaceInput, Placement
from greenshift.hosts.records import HostRecord, Reservation, counts_room
from greenshift.hosts.shares import shares_for, with_reservations
from greenshift.hosts.store import HostStore
from greenshift.names import HOST_FLEETS, PLACE_FLEET, PLACE_STEP, RECORD_HOST_EVENT
from greenshift.registry.api import Registry

# A reserved index not launched within this is given up (its host never ran the launch: lost, or
# its activity never started). Longer than the host activities' schedule-to-start timeout.
RESERVATION_TTL_SECONDS = 90.0


class HostPlacementActivities:
    """`record_progress` writes a step's progress (RecordingActivities.write_progress)."""

    def __init__(
        self,
        registry: Registry,
        store: HostStore | None,
        lost_after_seconds: float,
        record_progress: ProgressRecorder | None = None,
    ) -> None:
        self.registry = registry
        self.store = store
        self.lost_after = lost_after_seconds
        self.record_progress = record_progress

    @activity.defn(name=PLACE_FLEET)
    @business_errors
    def place_fleet(self, data: PlaceInput) -> Placement:
        """Record the fleet's desired count (absolute, as the provision and terminate steps do),
        then the per-host shares. No host store, or no host registered: the shared queue's
        fleet does the work, as on one machine before hosts existed."""
        return self._place(data)

    @activity.defn(name=PLACE_STEP)
    @business_errors
    def place_step(self, data: PlaceStepInput) -> Placement:
        """A provision or terminate step begun: its progress first, as the step's own activity
        records it, then its fleet's placement (a fleet never made has none to place: the
        shared queue's step finds nothing to do)."""
        return self.begin_step(data)

    def begin_step(self, data: PlaceStepInput) -> Placement:
        """PlaceStep's work, for the preparation that begins a deployment's first step too
        (activities/prepare.py)."""
        if data.progress is not None:
            record_progress(data.progress, self.record_progress)
        if data.place is None:
            return Placement(hosts_registered=False)
        return self._place(data.place)

    def _place(self, data: PlaceInput) -> Placement:
        if self.store is None or not self.store.any_registered():
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
        store = self.store
        placed = fleet

        def compute(reserved: list[Reservation], hosts: list[HostRecord]) -> Placement:
            # Read under the placement lock: what another placement just handed out is either
            # an instance record by now or one of `reserved`.
            if any(counts_room(h) for h in hosts):
                recorded = self.registry.list_instances()
            else:  # what other fleets run takes no room: this fleet's own is all it needs
                recorded = self.registry.list_instances(fleet_id=placed.fleet_id)
                reserved = [r for r in reserved if r.fleet_id == placed.fleet_id]
            instances = with_reservations(recorded, reserved)
            # The fleet's own type is on its record: only other fleets' are read (none at all
            # on hosts that count no room), one query less while the lock is held.
            others = {r.fleet_id for r in instances} - {placed.fleet_id}
            types = {**self.registry.instance_types(others), placed.fleet_id: placed.instance_type}
            return shares_for(
                placed,
                data.count,
                data.grow,
                hosts,
                instances,
                types,
                datetime.now(UTC),
                self.lost_after,
                drain=data.drain,
            )

        return store.place(fleet.fleet_id, compute, RESERVATION_TTL_SECONDS)

    @activity.defn(name=HOST_FLEETS)
    def host_fleets(self, address: str) -> list[str]:
        """The fleets with instances on this host (what a drain moves), sorted."""
        return sorted({r.fleet_id for r in self.registry.list_instances(host=address)})

    @activity.defn(name=RECORD_HOST_EVENT)
    def record_event(self, data: HostEventInput) -> bool:
        """What a replacement did, in the log of the fleet's deployment (a retry writes nothing
        new: the key is stored once). False when the fleet is gone with its endpoint."""
        return record_host_event(self.registry, data, datetime.now(UTC))

    def all(self) -> list[Callable[..., Any]]:
        return [self.place_fleet, self.place_step, self.host_fleets, self.record_event]
