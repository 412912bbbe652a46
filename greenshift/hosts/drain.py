"""`greenshift hosts drain HOST`: check the rest can hold the host's instances, mark it draining
(placement gives it nothing new), then run the DrainHost workflow, which moves every instance off
(replacement healthy first, then the old one out of rotation, then stopped)."""

from __future__ import annotations

from datetime import UTC, datetime

from greenshift.errors import ResourceLimitExceeded, ValidationError
from greenshift.hosts.shares import shares_for
from greenshift.hosts.store import HostStore
from greenshift.names import DRAIN_HOST
from greenshift.registry.api import Registry
from greenshift.settings import Settings
from greenshift.temporal import connect


def check_drain(registry: Registry, store: HostStore, address: str, lost_after: float) -> int:
    """How many instances the drain moves; raises ResourceLimitExceeded (saying what is short)
    when the other hosts cannot hold them, before anything is changed."""
    hosts = store.list()
    host = next((h for h in hosts if h.address == address), None)
    if host is None:
        raise ValidationError(f"no host {address} is registered")
    as_draining = [h.model_copy(update={"draining": True}) if h is host else h for h in hosts]
    instances = registry.list_instances()
    on_host = [r for r in instances if r.host == address]
    types = {}
    for fleet_id in sorted({r.fleet_id for r in instances}):
        fleet = registry.get_fleet(fleet_id)
        if fleet is not None:
            types[fleet_id] = fleet.instance_type
    for fleet_id in sorted({r.fleet_id for r in on_host}):
        fleet = registry.get_fleet(fleet_id)
        if fleet is None or fleet.retired:
            continue
        try:
            shares_for(
                fleet,
                fleet.desired_count,
                True,
                as_draining,
                instances,
                types,
                datetime.now(UTC),
                lost_after,
                drain=True,
            )
        except ResourceLimitExceeded as error:
            raise ResourceLimitExceeded(
                f"Cannot drain {address}: the other hosts cannot hold fleet {fleet_id}. "
                f"{error.message}"
            ) from None
    return len(on_host)


async def drain(settings: Settings, registry: Registry, store: HostStore, address: str) -> int:
    """Check, mark draining, move everything off; returns the instances moved."""
    moved = check_drain(registry, store, address, settings.host_lost_after_seconds)
    store.set_draining(address, True)
    client = await connect(settings)
    await client.execute_workflow(
        DRAIN_HOST, address, id=f"drain/{address}", task_queue=settings.task_queue
    )
    return moved
