"""From hosts and instance records to per-host shares of one fleet. Pure: the placement activity
reads the registry and calls this; tests call it with records they make."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from greenshift.hosts.messages import HostShare, Placement
from greenshift.hosts.placement import place
from greenshift.hosts.records import HostRecord, is_alive, room_of
from greenshift.registry.records import FleetRecord, InstanceRecord

# Instance states that hold a host's room and count toward a fleet's share there.
HOLDING = ("Launching", "InService", "Unhealthy", "Stopping")
LIVE = ("Launching", "InService", "Unhealthy")


def shares_for(
    fleet: FleetRecord,
    count: int,
    grow: bool,
    hosts: Sequence[HostRecord],
    instances: Sequence[InstanceRecord],
    fleet_types: dict[str, str],
    now: datetime,
    lost_after_seconds: float,
) -> Placement:
    """Each alive host's share of `fleet` for `count` instances. Growing places the missing
    ones on alive hosts that are not draining (ResourceLimitExceeded when they do not fit) and
    reserves their indices; shrinking takes from the hosts holding the most. Lost hosts get no
    share: their instances are out of rotation and replaced (greenshift.hosts.healer).
    `fleet_types`: fleet id -> instance type, for the room other fleets take."""
    if not hosts:
        return Placement(hosts_registered=False)
    alive = [h for h in hosts if is_alive(h, now, lost_after_seconds)]
    mine = [r for r in instances if r.fleet_id == fleet.fleet_id]
    current = {h.address: 0 for h in alive}
    for record in mine:
        if record.host in current and record.state in LIVE:
            current[record.host] += 1
    if grow:
        eligible = [h for h in alive if not h.draining or current[h.address]]
        rooms = []
        for host in eligible:
            others = [
                fleet_types.get(r.fleet_id, "")
                for r in instances
                if r.host == host.address and r.fleet_id != fleet.fleet_id and r.state in HOLDING
            ]
            room = room_of(host, others)
            if host.draining:  # keeps what it runs until moved, takes nothing new
                room = room_of(host.model_copy(update={"instance_types": ["-"]}), others)
            rooms.append(room)
        target = place(fleet.instance_type, count, rooms, current)
    else:
        target = place(fleet.instance_type, count, [room_of(h, []) for h in alive], current)
    taken = {r.index for r in mine}
    free = (i for i in range(count + len(taken) + 1) if i not in taken)
    shares = []
    for host in sorted(alive, key=lambda h: h.address):
        share = target.get(host.address, 0)
        if share == 0 and current[host.address] == 0:
            continue
        new = max(0, share - current[host.address]) if grow else 0
        indices = [next(free) for _ in range(new)]
        shares.append(
            HostShare(
                address=host.address, task_queue=host.task_queue, count=share, indices=indices
            )
        )
    return Placement(hosts_registered=True, shares=shares)
